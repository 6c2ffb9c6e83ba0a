"""`hpo init`'s choices: plain functions of the folder's survey, the machine and a measured step."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from hpo.spec.parse import parse_spec
from hpo.study import init

CPU = init.Machine(cpus=2, gpus=0, described="2 CPU core(s), no CUDA GPU")
GPU = init.Machine(cpus=16, gpus=2, described="16 CPU core(s), 2 GPUs")
PRETRAINED = ({"name": "timm", "arch": "tf_efficientnet_lite0", "weights": "/w.pth"}, True, "model: lite0")
SCRATCH = ({}, False, "model: from scratch (no weights)")


def data(**counts: int) -> init.Data:
    return init.Data("/data/parts", counts, 64, False, 0, False)


def fast(recipe: init.Recipe) -> tuple[float, float]:
    return 0.01, 0.1


def test_a_tiny_minority_gets_k_fold_and_is_the_minority_class() -> None:
    p = init.plan("parts", data(good=250, bad=50), CPU, PRETRAINED, fast, 10)
    assert p.doc["data"]["split"]["folds"] == init.KFOLDS and p.doc["minority"] == ["bad"]
    assert any("3-fold" in line and "'bad' has 50 images" in line for line in p.why)
    big = init.plan("parts", data(good=900, bad=300), CPU, PRETRAINED, fast, 10)
    assert "folds" not in big.doc["data"]["split"]


def test_the_budget_fits_the_minutes_asked_from_the_measured_step() -> None:
    def slow(recipe: init.Recipe) -> tuple[float, float]:
        return 0.5, 2.0

    p = init.plan("parts", data(good=900, bad=300), CPU, PRETRAINED, slow, 30)
    per_trial = init.trial_seconds(data(good=900, bad=300), init.cpu_recipe(PRETRAINED[0], True, 64), 0, 0.5, 2.0)
    assert p.doc["budget"]["n_trials"] == int(30 * 60 // per_trial)
    assert p.minutes <= 30
    cheap = init.plan("parts", data(good=900, bad=300), CPU, PRETRAINED, fast, 30)
    assert cheap.doc["budget"]["n_trials"] == init.TRIALS[1]  # a ceiling for a first study


def test_too_little_time_for_the_fewest_trials_cuts_epochs_and_says_so() -> None:
    def slow(recipe: init.Recipe) -> tuple[float, float]:
        return 2.0, 2.0

    p = init.plan("parts", data(good=900, bad=300), CPU, PRETRAINED, slow, 5)
    assert p.doc["budget"]["n_trials"] == init.TRIALS[0]
    assert p.doc["train"]["epochs"] < init.cpu_recipe(PRETRAINED[0], True, 64).epochs
    assert any(line.startswith("epochs:") for line in p.why)


def test_no_weights_means_a_small_network_from_scratch_and_a_gpu_gets_one_trial_per_gpu() -> None:
    p = init.plan("parts", data(good=250, bad=50), CPU, SCRATCH, fast, 10)
    assert p.doc["model"]["name"] == "small_cnn" and "backbone_lr_mult" not in p.doc["search"]
    g = init.plan("parts", data(good=250, bad=50), GPU, PRETRAINED, fast, 60)
    assert g.doc["resources"] == {"cpu": 8, "gpu": 1} and g.doc["budget"]["max_concurrent"] == 2
    assert g.doc["data"]["params"]["image_size"] == 224


def test_the_rendered_file_is_a_valid_study_with_every_reason_in_its_header(tmp_path: Path) -> None:
    (tmp_path / "w.pth").write_bytes(b"")
    model = {**PRETRAINED[0], "weights": str(tmp_path / "w.pth")}
    p = init.plan("parts", data(good=250, bad=50), CPU, (model, True, "model: lite0"), fast, 10)
    text = init.render(p, "hpo init --data /data/parts")
    parse_spec(yaml.safe_load(text), str(tmp_path / "parts.yaml"))
    header = [line for line in text.splitlines() if line.startswith("#   ")]
    assert header == [f"#   {line}" for line in p.why]


def test_the_survey_counts_readable_images_skips_hidden_folders_and_sees_grey(tmp_path: Path) -> None:
    from PIL import Image

    from hpo.train.survey import survey

    for cls, n in (("good", 5), ("bad", 2), (".ipynb_checkpoints", 3)):
        (tmp_path / cls).mkdir()
        for i in range(n):
            Image.fromarray(np.zeros((20, 30), np.uint8)).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "bad" / "broken.png").write_bytes(b"\x89PNG not really")
    s = survey(str(tmp_path))
    assert s.totals == {"bad": 2, "good": 5} and s.smallest == ("bad", 2)
    assert s.grey and s.median_side == 20 and [Path(u).name for u in s.unreadable] == ["broken.png"]


def test_backbone_prefers_timms_weights_then_the_imagenet_wheel_offline(monkeypatch: pytest.MonkeyPatch,
                                                                       tmp_path: Path) -> None:
    from huggingface_hub import constants

    from hpo.train import weights

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    model, pretrained, why = weights.backbone("resnet50", None)
    assert pretrained and model["arch"] == weights.WHEEL_ARCH and model["weights"] == weights.imagenet_wheel()
    assert "HF_HUB_OFFLINE" in why
    monkeypatch.setattr(weights, "imagenet_wheel", lambda: None)
    model, pretrained, why = weights.backbone("resnet50", None)
    assert not pretrained and "--weights FILE" in why


def test_init_refuses_a_missing_folder_a_single_class_and_a_bad_minutes_with_exit_2(tmp_path: Path) -> None:
    from PIL import Image

    from conftest import hpo

    r = hpo("init", "--data", str(tmp_path / "nope"), cwd=tmp_path)
    assert r.returncode == 2 and "nope" in r.stderr
    (tmp_path / "one" / "only").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "one" / "only" / "a.png")
    r = hpo("init", "--data", str(tmp_path / "one"), cwd=tmp_path)
    assert r.returncode == 2 and "found 1 class folder(s)" in r.stderr
    r = hpo("init", "--data", str(tmp_path / "one"), "--minutes", "0", cwd=tmp_path)
    assert r.returncode == 2 and "--minutes" in r.stderr
    assert not (tmp_path / "search_spaces").exists()  # nothing written


def test_init_refuses_a_file_for_a_folder_unreadable_classes_and_an_unknown_arch(tmp_path: Path) -> None:
    from conftest import hpo

    (tmp_path / "file.png").write_bytes(b"x")
    r = hpo("init", "--data", str(tmp_path / "file.png"), cwd=tmp_path)
    assert r.returncode == 2 and "is not a folder" in r.stderr
    for cls in ("a", "b"):
        (tmp_path / "bad" / cls).mkdir(parents=True)
        (tmp_path / "bad" / cls / "x.png").write_bytes(b"not an image")
    r = hpo("init", "--data", str(tmp_path / "bad"), cwd=tmp_path)
    assert r.returncode == 2 and "no readable image" in r.stderr
    from PIL import Image

    for cls in ("a", "b"):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "bad" / cls / "ok.png")
    r = hpo("init", "--data", str(tmp_path / "bad"), "--arch", "resnet5O", cwd=tmp_path)
    assert r.returncode == 2 and "--arch 'resnet5O' is not a timm model" in r.stderr


def test_a_newline_in_a_class_name_cannot_end_a_comment_of_the_written_file(tmp_path: Path) -> None:
    p = init.plan("parts", data(**{"good": 250, "bad\nstudy: evil": 50}), CPU, SCRATCH, fast, 10)
    text = init.render(p, "hpo init --data x\ny: 1")
    doc = yaml.safe_load(text)
    assert doc["study"] == "parts" and "y" not in doc and doc["minority"] == ["bad\nstudy: evil"]
