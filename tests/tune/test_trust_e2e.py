"""A launch in which no trial learns anything says so at its end, with the likely causes."""
from __future__ import annotations

from pathlib import Path


from conftest import hpo, write_study



def test_a_launch_whose_trials_never_beat_chance_ends_with_a_plain_statement(tmp_path: Path) -> None:
    """An lr range far too small to move the weights: every trial scores what a constant guess
    scores, and the launch's last lines name that and what to look at."""
    write_study(tmp_path / "spaces", "stuck", train={"epochs": 2},
                search={"lr": {"low": 1.0e-9, "high": 1.0e-8, "log": True}},
                budget={"n_trials": 2, "max_concurrent": 2})
    r = hpo("launch", "--study", "stuck", "--spaces-dir", str(tmp_path / "spaces"),
            "--storage", f"sqlite:///{tmp_path / 's.db'}", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "No trial beats chance" in r.stdout
    assert "lr" in r.stdout.split("No trial beats chance")[1]  # the likely causes name the lr range
