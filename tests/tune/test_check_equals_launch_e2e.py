"""`hpo check` runs every check `hpo launch` runs before a trial, and a launch refused by any of
them leaves the storage untouched: no study, not even the database file."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from conftest import hpo, write_study


OFFLINE = {"HF_ENDPOINT": "https://192.0.2.1", "HTTPS_PROXY": "", "https_proxy": ""}  # a hub that never answers


def _no_gpu() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")


CASES = {
    "cpu": ({"resources": {"cpu": 4096}}, "resources.cpu = 4096 per trial, but this machine has", None),
    "gpu": ({"resources": {"gpu": 1}}, "resources.gpu = 1 per trial, but this machine has 0 GPU(s)", _no_gpu),
    "weights": ({"model": {"name": "timm", "arch": "resnet18", "pretrained": True}},
                "no pretrained weights for 'resnet18'", None),
    "data": ({"data": {"name": "imagefolder", "params": {"root": "no_such_folder"}}}, "no_such_folder", None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_check_refuses_what_launch_refuses_and_the_refused_launch_creates_nothing(case: str, tmp_path: Path) -> None:
    overrides, message, guard = CASES[case]
    if guard:
        guard()
    write_study(tmp_path / "spaces", "refused", **overrides)
    env = {**OFFLINE, "HF_HOME": str(tmp_path / "hf")}
    check = hpo("check", "--study", "refused", "--spaces-dir", str(tmp_path / "spaces"), cwd=tmp_path, env=env)
    assert check.returncode == 2, check.stdout + check.stderr
    assert message in check.stderr
    db = tmp_path / "refused.db"
    t0 = time.perf_counter()
    launch = hpo("launch", "--study", "refused", "--spaces-dir", str(tmp_path / "spaces"),
                 "--storage", f"sqlite:///{db}", cwd=tmp_path, env=env)
    assert launch.returncode == 2, launch.stdout + launch.stderr
    assert message in launch.stderr
    assert not db.exists()  # nothing was written to the storage: no study, no file
    if case == "weights":  # the probe's seconds, not a minute of download retries (start-up included)
        assert time.perf_counter() - t0 < 30
        assert "weights: FILE" in launch.stderr
