"""A launch with mo_asha: trials get stopped early, are marked, and stay out of export, status
and report."""
from __future__ import annotations

import pytest

from pathlib import Path

import optuna
import yaml

from conftest import hpo, write_study



def test_early_stopped_trials_exist_are_marked_and_never_exported(tmp_path: Path) -> None:
    write_study(tmp_path / "spaces", "asha", base="cb_focal_asha", train={"epochs": 9},
                budget={"n_trials": 10, "max_concurrent": 1})
    url = f"sqlite:///{tmp_path / 'a.db'}"
    r = hpo("launch", "--study", "asha", "--spaces-dir", str(tmp_path / "spaces"), "--storage", url, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    trials = optuna.load_study(study_name="asha", storage=url).trials
    stopped = [t for t in trials if "hpo_stopped_early" in t.user_attrs]
    full = [t for t in trials if "hpo_stopped_early" not in t.user_attrs]
    assert stopped and full, [t.user_attrs.get("hpo_stopped_early") for t in trials]
    assert {t.user_attrs["hpo_stopped_early"] for t in stopped} <= {1, 3}  # the rungs below 9 epochs
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert all(t.user_attrs["epoch"] == 9 for t in full)

    out = tmp_path / "front.yaml"
    assert hpo("export", "--study", "asha", "--storage", url, "--out", str(out)).returncode == 0
    exported = {c["trial"] for c in yaml.safe_load(out.read_text())["configs"]}
    assert exported and not exported & {t.number for t in stopped}
    # what Optuna itself would call the front may well include a stopped trial; ours never does
    status = hpo("status", "--study", "asha", "--storage", url)
    assert f"{len(stopped)} were stopped early" in status.stdout
    report_dir = tmp_path / "report"
    assert hpo("report", "--study", "asha", "--storage", url, "--out", str(report_dir)).returncode == 0
    front_csv = (report_dir / "pareto_front.csv").read_text().splitlines()[1:]
    assert {int(line.split(",")[0]) for line in front_csv} == exported


def test_scheduler_settings_are_validated(tmp_path: Path) -> None:
    write_study(tmp_path / "spaces", "bad", base="cb_focal_asha", scheduler={"name": "mo_asha", "grace_epochs": 15})
    r = hpo("launch", "--study", "bad", "--spaces-dir", str(tmp_path / "spaces"), "--storage", f"sqlite:///{tmp_path}/x.db")
    assert r.returncode == 2 and "'scheduler.grace_epochs' = 15" in r.stderr


def test_a_launch_stops_every_trial_over_a_monotone_bound_at_the_first_rung(tmp_path: Path) -> None:
    """A parameter bound no model meets (n_params <= 10) is known at epoch 1: each trial stops at the
    first rung, whatever its objectives, rather than train all its epochs."""
    write_study(tmp_path / "spaces", "lean", base="cb_focal_asha", train={"epochs": 9},
                budget={"n_trials": 3, "max_concurrent": 1}, constraints=[{"metric": "n_params", "max": 10}])
    url = f"sqlite:///{tmp_path / 'a.db'}"
    r = hpo("launch", "--study", "lean", "--spaces-dir", str(tmp_path / "spaces"), "--storage", url, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    trials = optuna.load_study(study_name="lean", storage=url).trials
    assert len(trials) == 3 and all(t.user_attrs.get("hpo_stopped_early") == 1 for t in trials), \
        [(t.state, t.user_attrs.get("hpo_stopped_early")) for t in trials]
