"""test_sources' end-to-end tests: the real `hpo` command (or Ray) in a subprocess; `make test-fast`
leaves them out (tests/conftest.py marks every test of a *_e2e.py file)."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
import numpy as np
import pytest
from conftest import REPO, hpo, write_study
from datafiles import write_annotations, write_cifar10_root, write_npz, write_png_tree
from hpo.errors import UserError
from hpo.train import sources
from hpo.train.splits import prepare


def test_bad_data_exits_2_before_any_trial(tmp_path: Path) -> None:
    write_study(tmp_path / "spaces", "nodata", data={"name": "cifar10", "params": {"root": str(tmp_path / "none")}})
    url = f"sqlite:///{tmp_path / 's.db'}"
    r = hpo("launch", "--study", "nodata", "--spaces-dir", str(tmp_path / "spaces"), "--storage", url, cwd=tmp_path)
    assert r.returncode == 2 and "cifar-10-batches-py" in r.stderr, r.stderr
    assert not (tmp_path / "storage" / "ray").exists()  # Ray never started


def test_unknown_timm_arch_exits_2_with_close_names(tmp_path: Path) -> None:
    write_study(tmp_path / "spaces", "t", model={"name": "timm", "arch": "resnet181"})
    r = hpo("launch", "--study", "t", "--spaces-dir", str(tmp_path / "spaces"), "--storage", f"sqlite:///{tmp_path}/s.db")
    assert r.returncode == 2 and "not a timm model" in r.stderr and "resnet18" in r.stderr
