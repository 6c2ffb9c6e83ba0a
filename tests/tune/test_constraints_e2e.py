"""Constraints end to end through the real `hpo launch` on the digits demo: a constraint only part of
the space meets (a learning rate too small to learn anything stays at chance and misses it), then one nobody meets."""
from __future__ import annotations

from pathlib import Path

import optuna
import yaml

from conftest import hpo



def study_file(folder: Path, name: str, constraints: list[dict], n_trials: int, epochs: int) -> None:
    raw = {"study": name, "data": {"name": "digits", "longtail": {"profile": "exp", "ratio": 10}},
           "model": {"name": "small_cnn", "width": 8}, "train": {"epochs": epochs, "momentum": 0.9},
           "search": {"lr": {"choices": [1.0e-6, 0.1]}}, "constraints": constraints,
           "sampler": {"name": "random", "seed": 0}, "budget": {"n_trials": n_trials, "max_concurrent": 2}}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


def test_front_status_and_export_hold_only_trials_that_met_the_constraint(tmp_path: Path) -> None:
    spaces, url = tmp_path / "spaces", f"sqlite:///{tmp_path / 'studies.db'}"
    # n_params: a cost every trial meets, measured from what the training loop recorded through Ray
    study_file(spaces, "feasible", [{"metric": "macro_acc", "min": 0.3}, {"metric": "n_params", "max": 10_000_000}],
               n_trials=2, epochs=3)
    r = hpo("check", "--study", "feasible", "--spaces-dir", str(spaces), cwd=tmp_path)
    assert r.returncode == 0 and "constraints (a trial counts only when it meets all" in r.stdout, r.stderr
    r = hpo("launch", "--study", "feasible", "--spaces-dir", str(spaces), "--storage", url, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    trials = optuna.load_study(study_name="feasible", storage=url).get_trials(
        states=(optuna.trial.TrialState.COMPLETE,))
    missed = {t.number for t in trials if "hpo_infeasible" in t.user_attrs}
    met = {t.number for t in trials} - missed
    assert missed and met, [(t.params, t.user_attrs.get("hpo_constraint_values")) for t in trials]
    # what the sampler was told: the same verdict, through Optuna's public record
    assert {t.number for t in trials if max(t.constraints.values()) > 0} == missed
    assert all(t.params["lr"] == 1.0e-6 for t in trials if t.number in missed)
    assert all(t.user_attrs["hpo_constraint_values"]["n_params"] == t.user_attrs["n_params"] > 0 for t in trials)

    r = hpo("status", "--study", "feasible", "--storage", url, cwd=tmp_path)
    assert r.returncode == 0 and f"{len(missed)} of 2 COMPLETE trials missed a constraint" in r.stdout, r.stdout
    out = tmp_path / "front.yaml"
    r = hpo("export", "--study", "feasible", "--storage", url, "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    doc = yaml.safe_load(out.read_text())
    assert {c["trial"] for c in doc["configs"]} <= met and doc["constraints"] == ["macro_acc >= 0.3", "n_params <= 1e+07"]
    assert doc["infeasible"]["trials"] == len(missed) and doc["infeasible_included"] is False
    r = hpo("export", "--study", "feasible", "--storage", url, "--out", str(out), "--include-infeasible",
            cwd=tmp_path)
    assert r.returncode == 0 and yaml.safe_load(out.read_text())["infeasible_included"] is True

    # a new study warm-started from this one (--warm-start): its first trials are the feasible front's configs
    study_file(spaces, "later", [], n_trials=2, epochs=1)
    r = hpo("launch", "--study", "later", "--spaces-dir", str(spaces), "--storage", url, "--warm-start", "feasible",
            cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [line for line in r.stdout.splitlines() if line.startswith("warm start: trial ")]
    # the front's trials all trained lr 0.1 alike: one is queued, the others are the same config
    assert "of 'feasible' queued" in lines[0] and all("the same config as trial" in x for x in lines[1:]), r.stdout
    first = optuna.load_study(study_name="later", storage=url).trials[0]
    assert first.state.name == "COMPLETE" and first.params["lr"] == 0.1
    assert int(first.user_attrs["hpo_warm_start_from"].split("#")[1]) in met



def test_a_launch_where_no_trial_meets_the_constraints_says_so(tmp_path: Path) -> None:
    spaces, url = tmp_path / "spaces", f"sqlite:///{tmp_path / 'studies.db'}"
    study_file(spaces, "never", [{"metric": "worst_class_recall", "min": 1.0}, {"metric": "seconds", "max": 0.001}],
               n_trials=2, epochs=1)
    r = hpo("launch", "--study", "never", "--spaces-dir", str(spaces), "--storage", url, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no trial met the constraints: all 2 COMPLETE trials missed at least one of" in r.stdout
    assert "(no trial met the constraints)" in r.stdout  # the front printed after the launch
