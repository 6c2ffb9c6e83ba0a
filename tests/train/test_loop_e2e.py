"""test_loop's end-to-end tests: the real `hpo` command (or Ray) in a subprocess; `make test-fast`
leaves them out (tests/conftest.py marks every test of a *_e2e.py file)."""
from __future__ import annotations

from pathlib import Path
import numpy as np
import optuna
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import recall_score
from torch.utils.data import DataLoader, TensorDataset
from conftest import SPACES, hpo, write_study
from hpo.spec import load_spec
from hpo.train import device_data, loop, models
from hpo.train.splits import prepare


def test_a_reused_ray_worker_loads_the_data_once_for_two_trials(tmp_path: Path) -> None:
    write_study(tmp_path / "spaces", "cache", train={"epochs": 1}, budget={"n_trials": 2, "max_concurrent": 1})
    url = f"sqlite:///{tmp_path / 'c.db'}"
    r = hpo("launch", "--study", "cache", "--spaces-dir", str(tmp_path / "spaces"), "--storage", url, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    t0, t1 = optuna.load_study(study_name="cache", storage=url).trials
    assert t0.user_attrs["worker_pid"] == t1.user_attrs["worker_pid"]  # one reused worker
    assert (t0.user_attrs["data_cached"], t1.user_attrs["data_cached"]) == (False, True)
    assert t0.user_attrs["data_loads"] == t1.user_attrs["data_loads"] == 1
