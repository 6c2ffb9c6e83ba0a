"""The shipped fine-tuning study, for two tiny trials through the real `hpo launch`: a tiny timm
architecture and a local weights file stand in for ResNet-50 and timm's hub; nothing downloads."""
from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from conftest import hpo, write_study
from datafiles import write_png_tree



def tiny_weights(path: Path) -> Path:
    from safetensors.torch import save_file

    from hpo.train import models

    state = models.build("timm", num_classes=1000, in_chans=3, arch="test_resnet").state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path


def study_file(tmp_path: Path, model: dict) -> Path:
    write_png_tree(tmp_path / "imgs", per_class=12)
    return write_study(tmp_path / "spaces", "ft", base="finetune_resnet",
                       data={"params": {"root": str(tmp_path / "imgs"), "image_size": 32, "channels": 3}},
                       model=model, train={"epochs": 2, "batch_size": 16},
                       budget={"n_trials": 2, "max_concurrent": 2}, resources={"cpu": 1, "gpu": 0})


def test_finetune_study_runs_two_trials_from_a_local_weights_file(tmp_path: Path) -> None:
    weights = tiny_weights(tmp_path / "w.safetensors")
    study_file(tmp_path, {"name": "timm", "arch": "test_resnet", "weights": str(weights), "input_size": 48})
    url = f"sqlite:///{tmp_path / 'ft.db'}"
    r = hpo("launch", "--study", "ft", "--spaces-dir", str(tmp_path / "spaces"), "--storage", url, cwd=tmp_path,
            env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
    assert r.returncode == 0, r.stdout + r.stderr
    trials = optuna.load_study(study_name="ft", storage=url).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    cfg = trials[0].user_attrs["config"]
    assert cfg["model"]["weights"] == str(weights) and cfg["schedule"]["name"] in ("cosine", "step", "plateau")
    assert {"lr", "backbone_lr_mult", "optimizer", "weight_decay", "schedule", "magnitude", "loss"} <= set(trials[0].params)


def test_pretrained_weights_missing_offline_exit_2_before_any_trial(tmp_path: Path) -> None:
    study_file(tmp_path, {"name": "timm", "arch": "test_resnet", "pretrained": True})
    url = f"sqlite:///{tmp_path / 'ft.db'}"
    r = hpo("launch", "--study", "ft", "--spaces-dir", str(tmp_path / "spaces"), "--storage", url, cwd=tmp_path,
            env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty_hf")})
    assert r.returncode == 2, r.stdout + r.stderr
    assert "'test_resnet'" in r.stderr and str(tmp_path / "empty_hf") in r.stderr and "weights: FILE" in r.stderr
    assert not (tmp_path / "storage" / "ray").exists()  # no trial started
