"""The five write-ups' studies (search_spaces/severity_grading, cifar50_lt_efficientnet,
cifar10_lt_cb_focal, face_mask, anomaly_detection), each on a small data set of its own class
structure (counts scaled down, proportions kept; 32 px digits from scikit-learn) for two tiny
trials through the real `hpo launch`. Only what a laptop cannot run is replaced: epochs, batch
size and resources, and the pretrained timm model by timm's tiny `test_resnet` with a local
weights file (nothing downloads). Everything else (loss, search space, objectives, minority
class names, rebalancing, schedule) is the shipped study's."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from conftest import SPACES, hpo, write_study
from datafiles import write_cifar10_root, write_image_classes


TINY = {"epochs": 1, "batch_size": 16}


def tiny_weights(path: Path) -> Path:
    """test_resnet's ImageNet-shaped (1000-class) state dict as a .safetensors file."""
    from safetensors.torch import save_file

    from hpo.train import models

    if not path.exists():
        state = models.build("timm", num_classes=1000, in_chans=3, arch="test_resnet").state_dict()
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path


def folder_params(root: Path) -> dict[str, Any]:
    return {"params": {"root": str(root), "image_size": 32, "channels": 3}}


def local_model(tmp: Path) -> dict[str, Any]:
    return {"name": "timm", "arch": "test_resnet", "weights": str(tiny_weights(tmp / "w.safetensors"))}


def severity(tmp: Path) -> dict[str, Any]:
    # 591 / 839 / 324 scaled by 1/10; the folder names the study's `minority: [severe]` expects
    write_image_classes(tmp / "imgs", {"nil": 59, "moderate": 84, "severe": 32})
    return {"data": folder_params(tmp / "imgs"), "model": local_model(tmp)}


def cifar50(tmp: Path) -> dict[str, Any]:
    # a balanced 50-class export in ROOT/train, ROOT/test (12 / 6 per class); the study cuts the
    # training part itself, at ratio 6 here (12 ... 2): the shipped ratio 50 would leave these
    # 12-image classes one image, which hpo refuses. The architecture stays searched, between two
    # tiny timm models (randomly initialised: one weights file cannot fit both).
    names = {f"class_{i:02d}": 12 for i in range(50)}
    write_image_classes(tmp / "c50" / "train", names)
    write_image_classes(tmp / "c50" / "test", dict.fromkeys(names, 6), offset=12)
    data = {**folder_params(tmp / "c50"), "longtail": {"profile": "exp", "ratio": 6}}
    return {"data": data, "model": {"name": "timm", "arch": "test_resnet"},
            "search": {"arch": {"choices": ["test_resnet", "test_efficientnet"]}}}


def cifar10(tmp: Path) -> dict[str, Any]:
    write_cifar10_root(tmp / "cifar", train_per_class=100, test_per_class=20)
    params: dict[str, Any] = {"root": str(tmp / "cifar"), "download": False}
    catalog = json.loads((SPACES.parent / "hpo" / "spec" / "catalog.json").read_text())
    if "verify" in catalog["data set"]["cifar10"]["options"]:  # MD5 checks: these files are re-packed
        params["verify"] = False
    # ratio 50, not the shipped 100: 100 images a class at ratio 100 would leave the tail one image
    return {"data": {"params": params, "longtail": {"profile": "exp", "ratio": 50}}}


def face_mask(tmp: Path) -> dict[str, Any]:
    # the write-up's own split, scaled by 1/10: train 500 / 60, valid 300 / 40, test 500 / 90
    for part, (a, b), offset in (("train", (50, 6), 0), ("val", (30, 4), 50), ("test", (50, 9), 80)):
        write_image_classes(tmp / "masks" / part, {"with_mask": a, "without_mask": b}, offset=offset)
    return {"data": folder_params(tmp / "masks"), "model": local_model(tmp)}


def anomaly(tmp: Path) -> dict[str, Any]:
    write_image_classes(tmp / "parts", {"good": 50, "bad": 10})  # 250 / 50 scaled by 1/5
    return {"data": folder_params(tmp / "parts"), "model": local_model(tmp)}


CASES = {"severity_grading": severity, "cifar50_lt_efficientnet": cifar50, "cifar10_lt_cb_focal": cifar10,
         "face_mask": face_mask, "anomaly_detection": anomaly}


@pytest.mark.parametrize("name", list(CASES))
def test_seed_study_runs_two_trials(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = yaml.safe_load((SPACES / f"{name}.yaml").read_text())
    overrides = CASES[name](tmp_path)
    write_study(tmp_path / "spaces", name, base=name, train=TINY, budget={"n_trials": 2, "max_concurrent": 2},
                resources={"cpu": 1, "gpu": 0}, **overrides)
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    spaces = str(tmp_path / "spaces")

    # `hpo check` in this process (one torch import for all five studies, not one each)
    from hpo.cli import main

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["check", "--study", name, "--spaces-dir", spaces]) == 0, capsys.readouterr()
    assert f"study {name!r}" in capsys.readouterr().out

    url = f"sqlite:///{tmp_path / 'seed.db'}"
    r = hpo("launch", "--study", name, "--spaces-dir", spaces, "--storage", url, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "unchanged since a check passed" in r.stdout  # `hpo check` passed it just now: not checked again
    study = optuna.load_study(study_name=name, storage=url)
    trials = study.trials
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"], [t.user_attrs for t in trials]
    assert [len(t.values) for t in trials] == [2, 2]

    # every searched parameter the trial's choices switch on was sampled
    searched = set(shipped["search"])
    for t in trials:
        cfg = t.user_attrs["config"]
        active = {n for n, b in shipped["search"].items() if "when" not in b}
        assert active <= {p.removeprefix("one_minus_") for p in t.params}, (name, t.params)
        assert {p.removeprefix("one_minus_") for p in t.params} <= searched
        assert cfg["loss"]["name"] in (shipped["search"].get("loss", {}).get("choices") or [shipped["loss"]["name"]])
    names = study.user_attrs["class_names"]
    if "minority" in shipped:  # the study's class names are the folder's: the minority is that class
        assert [names[i] for i in trials[0].user_attrs["minority"]] == shipped["minority"]
    if name == "cifar10_lt_cb_focal":  # exp profile, ratio 50, n_max 100
        assert study.user_attrs["class_counts"] == [100, 64, 41, 27, 17, 11, 7, 4, 3, 2]
        assert trials[0].user_attrs["config"]["schedule"]["name"] == "step"
    if name == "cifar50_lt_efficientnet":  # ratio 6 from 12 a class: 12 ... 2
        counts = study.user_attrs["class_counts"]
        assert len(counts) == 50 and counts[0] == 12 and counts[-1] == 2
        assert {t.params["arch"] for t in trials} <= {"test_resnet", "test_efficientnet"}
    if name == "face_mask":
        assert study.user_attrs["class_counts"] == [50, 6]  # the train folder as it is: not cut
