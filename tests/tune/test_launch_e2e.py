"""End to end through the real `hpo` command: Ray Tune trials into a real SQLite study."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml

from conftest import hpo, write_study


FAST = {"train": {"epochs": 3}, "budget": {"n_trials": 4, "max_concurrent": 2}}


@pytest.fixture(scope="module")
def study_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A study `e2e` filled by `hpo launch` with 4 trials, 2 at a time (shared by the tests below)."""
    root = tmp_path_factory.mktemp("e2e")
    write_study(root / "spaces", "e2e", **FAST)
    url = f"sqlite:///{root / 'studies.db'}"
    r = hpo("launch", "--study", "e2e", "--spaces-dir", str(root / "spaces"), "--storage", url,
            "--n-trials", "4", "--max-concurrent", "2", cwd=root)
    assert r.returncode == 0, r.stdout + r.stderr
    return root, url


def _complete(url: str, name: str = "e2e") -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=name, storage=url)
    return study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))


def test_launch_fills_a_two_objective_study_and_a_relaunch_only_tops_up(study_db: tuple[Path, str]) -> None:
    root, url = study_db
    done = _complete(url)
    assert len(done) == 4
    assert all(len(t.values) == 2 and all(0.0 <= v <= 1.0 for v in t.values) for t in done)
    study = optuna.load_study(study_name="e2e", storage=url)
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE] * 2
    assert study.metric_names == ["minority_f1", "macro_acc"]
    # per-class metrics and the exact trained config are stored on each trial
    t = done[0]
    assert set(t.user_attrs["per_class"]) == {str(d) for d in range(10)}
    assert {"precision", "recall", "f1"} <= set(t.user_attrs["per_class"]["9"])
    assert t.user_attrs["config"]["loss"]["beta"] == pytest.approx(1 - t.params["one_minus_beta"])

    r = hpo("launch", "--study", "e2e", "--spaces-dir", str(root / "spaces"), "--storage", url,
            "--n-trials", "6", cwd=root)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "4 COMPLETE of a budget of 6" in r.stdout
    # the first launch's data check passed and is remembered: the relaunch does not run it again
    assert len(list((root / "storage" / "data_check").glob("*.npz"))) == 1
    assert "unchanged since a check passed" in r.stdout and "class counts" in r.stdout
    after = _complete(url)
    assert len(after) == 6 and len(optuna.load_study(study_name="e2e", storage=url).trials) == 6
    # the resumed sampler must not replay the first launch's draws
    assert len({json.dumps(t.params, sort_keys=True) for t in after}) == 6

    r = hpo("launch", "--study", "e2e", "--spaces-dir", str(root / "spaces"), "--storage", url,
            "--n-trials", "6", cwd=root)
    assert r.returncode == 0 and "budget already reached" in r.stdout
    assert len(optuna.load_study(study_name="e2e", storage=url).trials) == 6


def test_optuna_cli_reads_the_study(study_db: tuple[Path, str]) -> None:
    _, url = study_db
    exe = shutil.which("optuna") or str(Path(__import__("sys").executable).with_name("optuna"))
    r = subprocess.run([exe, "studies", "--storage", url, "-f", "json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "e2e" in [s["name"] for s in json.loads(r.stdout)]


@pytest.mark.parametrize("fmt", ["yaml", "json", "csv"])
def test_export_writes_the_pareto_front_in_each_format(study_db: tuple[Path, str], fmt: str) -> None:
    root, url = study_db
    out = root / f"front.{fmt}"
    r = hpo("export", "--study", "e2e", "--storage", url, "--out", str(out), "--format", fmt)
    assert r.returncode == 0, r.stderr
    study = optuna.load_study(study_name="e2e", storage=url)
    best = {t.number for t in study.best_trials}  # Optuna's own Pareto front
    if fmt == "csv":
        df = pd.read_csv(out)
        assert set(df["trial"]) == best
        assert {"minority_f1", "macro_acc", "param_lr", "config"} <= set(df.columns)
        return
    doc = yaml.safe_load(out.read_text()) if fmt == "yaml" else json.loads(out.read_text())
    assert {c["trial"] for c in doc["configs"]} == best
    for c in doc["configs"]:
        t = study.trials[c["trial"]]
        assert c["values"] == {"minority_f1": t.values[0], "macro_acc": t.values[1]}
        assert c["params"] == t.params
        assert c["config"]["data"]["name"] == "digits" and c["config"]["loss"]["name"] == "cb_focal"


def test_status_shows_counts_and_the_front(study_db: tuple[Path, str]) -> None:
    _, url = study_db
    r = hpo("status", "--study", "e2e", "--storage", url)
    assert r.returncode == 0, r.stderr
    assert "COMPLETE" in r.stdout and "Pareto front" in r.stdout and "minority_f1" in r.stdout


def test_train_reproduces_the_exported_trial_and_scores_the_test_split(study_db: tuple[Path, str]) -> None:
    root, url = study_db
    out = root / "front_for_train.yaml"
    assert hpo("export", "--study", "e2e", "--storage", url, "--out", str(out)).returncode == 0
    doc = yaml.safe_load(out.read_text())
    csv = root / "seeds.csv"
    r = hpo("train", "--config", str(out), "--seeds", "2", "--out", str(csv))
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(csv)
    assert list(df["seed"]) == [0, 1]
    # the same seed on the same split trains the same model: the trial's values come back
    assert df.loc[0, "val_minority_f1"] == pytest.approx(doc["configs"][0]["values"]["minority_f1"], abs=1e-6)
    assert df.loc[0, "val_macro_acc"] == pytest.approx(doc["configs"][0]["values"]["macro_acc"], abs=1e-6)
    assert df["test_macro_acc"].between(0, 1).all()
    summary = pd.read_csv(root / "seeds_summary.csv", index_col="metric")
    assert summary.loc["test_minority_f1", "mean"] == pytest.approx(df["test_minority_f1"].mean())
    assert summary.loc["test_f1[9]", "std"] == pytest.approx(df["test_f1[9]"].std())  # per class too
    assert "±" in r.stdout


def test_unknown_study_in_storage_exits_2(study_db: tuple[Path, str]) -> None:
    _, url = study_db
    r = hpo("status", "--study", "no_such_study", "--storage", url)
    assert r.returncode == 2 and "e2e" in r.stderr


def test_hpo_storage_env_var_is_used(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    r = hpo("status", "--study", "x", env={"HPO_STORAGE": url})
    assert r.returncode == 2 and f"no SQLite file {tmp_path / 'env.db'}" in r.stderr  # the variable's path
    assert not (tmp_path / "env.db").exists()  # a command that only reads creates no database


def test_failing_trials_end_as_fail_with_a_reason_and_the_launch_finishes(tmp_path: Path) -> None:
    """lr 1e6 diverges to an infinite loss: FAIL non_finite_loss, the study and the launch survive."""
    write_study(tmp_path / "spaces", "diverge", train={"epochs": 3},
                # every image every epoch (threshold 0): a few steps at lr 1e6 overflow float32
                search={"lr": {"choices": [1.0e6, 1.0e7]}, "threshold": {"choices": [0]}},
                budget={"n_trials": 2, "max_concurrent": 2})
    url = f"sqlite:///{tmp_path / 'd.db'}"
    r = hpo("launch", "--study", "diverge", "--spaces-dir", str(tmp_path / "spaces"), "--storage", url, cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr  # every trial of this launch failed
    trials = optuna.load_study(study_name="diverge", storage=url).trials
    # max_failed defaults to n_trials (2): no trial starts after the 2nd failure; one more may
    # already have started beside it (2 at a time)
    assert 2 <= len(trials) <= 3 and {t.state.name for t in trials} == {"FAIL"}
    assert all(t.user_attrs["fail_reason"] == "non_finite_loss" and t.user_attrs["epoch"] >= 1 for t in trials)
    assert "FAILED" in r.stdout


def test_asking_for_more_gpu_than_the_cluster_has_exits_2(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    write_study(tmp_path / "spaces", "gpu", resources={"gpu": 0.25})
    url = f"sqlite:///{tmp_path / 'g.db'}"
    r = hpo("launch", "--study", "gpu", "--spaces-dir", str(tmp_path / "spaces"), "--storage", url, cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "resources.gpu = 0.25 per trial" in r.stderr and "0 GPU(s)" in r.stderr
    assert optuna.get_all_study_names(storage=url) == []  # a refused launch leaves no empty study


@pytest.mark.parametrize("change, shown", [
    ({"objectives": [{"name": "minority_f1", "direction": "minimize"}, {"name": "macro_acc"}]}, "objectives"),
    ({"search": {"batch_size": {"choices": [16, 128]}}}, "batch_size: was {'type': 'categorical', 'choices': [16, 32, 64]}"),
    ({"search": {"threshold": {"type": "float", "low": 0.0, "high": 60.0}}}, "threshold: was {'type': 'int'}"),
])
def test_relaunch_with_changed_objectives_or_parameter_kinds_is_refused(study_db: tuple[Path, str], tmp_path: Path,
                                                                       change: dict, shown: str) -> None:
    _, url = study_db
    before = len(optuna.load_study(study_name="e2e", storage=url).trials)
    write_study(tmp_path / "spaces", "e2e", **FAST, **change)
    r = hpo("launch", "--study", "e2e", "--spaces-dir", str(tmp_path / "spaces"), "--storage", url, cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert shown in r.stderr
    assert len(optuna.load_study(study_name="e2e", storage=url).trials) == before  # no trial started
