"""Each real data source on disk: two through a 2-trial `hpo launch` (a root relative to where the
launch runs, which its Ray workers must resolve too; the CIFAR-10 pickles), the others through
what a launch does with them in this process (the driver's data check, then one trial's training
and metrics): the same loading code, without a Ray start for each source."""
from __future__ import annotations

import pytest

from pathlib import Path
from typing import Any

import optuna

from conftest import hpo, write_study
from datafiles import write_annotations, write_cifar10_root, write_npz, write_png_tree

TWO_TRIALS = {"train": {"epochs": 2}, "budget": {"n_trials": 2, "max_concurrent": 2}}


def launch_two(tmp_path: Path, data: dict, model: dict | None = None, **extra: object) -> optuna.Study:
    extra = {**extra, "model": model} if model else extra
    write_study(tmp_path / "spaces", "src", data=data, **extra, **TWO_TRIALS)
    url = f"sqlite:///{tmp_path / 'src.db'}"
    r = hpo("launch", "--study", "src", "--spaces-dir", str(tmp_path / "spaces"), "--storage", url, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    study = optuna.load_study(study_name="src", storage=url)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    return study


def check_and_train(tmp_path: Path, data: dict, **extra: object) -> tuple[Any, dict[str, Any]]:
    """(the driver's checked splits, one trial's final metrics) for a study on `data`."""
    from hpo.spec import load_spec
    from hpo.train import loop
    from hpo.train.preflight import check_study

    spec = load_spec(write_study(tmp_path / "spaces", "src", data=data, **extra, **TWO_TRIALS))
    splits = check_study(spec)
    return splits, loop.run(spec.trial_config({}))


def test_imagefolder_one_folder_split_by_hpo(tmp_path: Path) -> None:
    write_png_tree(tmp_path / "imgs", per_class=40)
    splits, final = check_and_train(tmp_path, {"name": "imagefolder", "params": {
        "root": str(tmp_path / "imgs"), "image_size": 8, "channels": 1}, "longtail": {"profile": "exp", "ratio": 10}})
    assert list(splits.class_names) == [f"digit_{d}" for d in range(10)]
    assert splits.class_counts[0] == 24 and splits.class_counts[-1] == 2
    assert final["class_counts"] == list(splits.class_counts)  # the trial trained on the driver's split
    assert set(final["per_class"]) == {f"digit_{d}" for d in range(10)}


def test_imagefolder_with_train_and_test_folders_and_a_relative_root(tmp_path: Path) -> None:
    write_png_tree(tmp_path / "data" / "train", per_class=30)
    write_png_tree(tmp_path / "data" / "test", per_class=20, offset=30)
    study = launch_two(tmp_path, {"name": "imagefolder", "params": {"root": "data", "image_size": 16, "channels": 3},
                                  "longtail": {"profile": "step", "ratio": 5}})
    assert study.user_attrs["class_counts"] == [30] * 5 + [6] * 5
    assert study.user_attrs["split_sizes"] == {"train": 180, "val": 40, "test": 160}  # val: 20% of test


def test_annotations_json(tmp_path: Path) -> None:
    labels = write_annotations(tmp_path / "ann", per_class=40)
    splits, final = check_and_train(tmp_path, {"name": "annotations", "params": {
        "file": str(labels), "image_size": 8, "channels": 1}, "longtail": {"profile": "none"}},
        minority=["digit_8", "digit_9"])
    assert sum(splits.class_counts) == 240  # 60% of 400 for training
    assert final["minority"] == [8, 9]


def test_cifar10_root_in_torchvision_format_with_resnet8(tmp_path: Path) -> None:
    root = write_cifar10_root(tmp_path / "cifar")
    # synthetic files: their MD5 is not torchvision's, so verify: false (read by the restricted unpickler)
    study = launch_two(tmp_path, {"name": "cifar10", "params": {"root": str(root), "verify": False},
                                  "longtail": {"profile": "exp", "ratio": 10}},
                       model={"name": "cifar_resnet8"})
    assert study.user_attrs["class_names"][:2] == ["zero", "one"]
    assert study.user_attrs["class_counts"] == [60, 46, 35, 27, 21, 16, 12, 10, 7, 6]  # 60 * 10^(-i/9)


def test_npz_arrays(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "d.npz", per_class=40)
    splits, final = check_and_train(tmp_path, {"name": "npz", "params": {"file": str(path)},
                                               "longtail": {"profile": "exp", "ratio": 5}})
    assert len(splits.class_counts) == 10 and len(final["per_class"]) == 10
