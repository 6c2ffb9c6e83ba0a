"""test_splits's end-to-end tests: the real `hpo` command (or Ray) in a subprocess; `make test-fast`
leaves them out (tests/conftest.py marks every test of a *_e2e.py file)."""
from __future__ import annotations

import numpy as np
import pytest
from hpo.errors import UserError
from hpo.train.splits import prepare
from hpo.train.longtail import exp_profile


def test_hpo_launch_refuses_more_folds_than_the_smallest_class_allows_before_any_trial(tmp_path) -> None:
    import optuna

    from conftest import hpo, write_study

    write_study(tmp_path / "spaces", "kf", data={"split": {"val": 0.2, "test": 0.2, "folds": 25}})
    url = f"sqlite:///{tmp_path / 'k.db'}"
    r = hpo("launch", "--study", "kf", "--spaces-dir", str(tmp_path / "spaces"), "--storage", url, cwd=tmp_path)
    assert r.returncode == 2 and "data.split.folds: 25 folds need 50 images of each class" in r.stderr, r.stderr
    assert "kf" not in optuna.study.get_all_study_names(url)  # no study, no trial
