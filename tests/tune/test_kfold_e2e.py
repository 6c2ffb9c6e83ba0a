"""k-fold objectives through the real `hpo launch`: the study records each fold's value and their
spread, the trial's value is the fold mean, and `hpo export` / `hpo train` work on the study."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import optuna_dashboard
import pytest

from conftest import hpo, write_study



def test_a_k_fold_study_records_fold_values_and_exports_and_retrains(tmp_path: Path) -> None:
    write_study(tmp_path / "spaces", "kfold", data={"split": {"val": 0.2, "test": 0.2, "folds": 2}},
                train={"epochs": 2}, budget={"n_trials": 2, "max_concurrent": 2})
    url = f"sqlite:///{tmp_path / 'k.db'}"
    r = hpo("launch", "--study", "kfold", "--spaces-dir", str(tmp_path / "spaces"), "--storage", url, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    study = optuna.load_study(study_name="kfold", storage=url)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    for t in study.trials:
        folds, spread = t.user_attrs["fold_values"], t.user_attrs["fold_std"]
        assert len(folds["minority_f1"]) == 2
        assert t.values == pytest.approx([np.mean(folds["minority_f1"]), np.mean(folds["macro_acc"])])
        assert spread["minority_f1"] == pytest.approx(np.std(folds["minority_f1"]))
    assert "k-fold objectives" in optuna_dashboard.get_note(study)
    out = tmp_path / "front.yaml"
    assert hpo("export", "--study", "kfold", "--storage", url, "--out", str(out), cwd=tmp_path).returncode == 0
    r = hpo("train", "--config", str(out), "--seeds", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "test_minority_f1" in r.stdout
