"""Bad data is a clear error before any trial starts (unreadable images: a warning and a skip)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import hpo, write_study
from datafiles import write_annotations, write_cifar10_root, write_npz, write_png_tree
from hpo.errors import UserError
from hpo.train import sources
from hpo.train.splits import prepare


def cfg(name: str, params: dict, profile: str = "none", **split: object) -> dict:
    return {"name": name, "seed": 0, "params": params, "longtail": {"profile": profile, "ratio": 10, "minority_fraction": 0.5},
            "split": {"val": 0.2, "test": 0.2, "val_from": "test", **split}}


def test_missing_cifar_root_names_the_root_and_how_to_get_the_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=rf"{tmp_path}/cifar-10-batches-py.*cifar-10-python.tar.gz.*download: true"):
        prepare(cfg("cifar10", {"root": str(tmp_path)}))


def test_missing_image_root_and_annotation_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=rf"image folder {tmp_path}/nope does not exist"):
        prepare(cfg("imagefolder", {"root": str(tmp_path / "nope")}))
    with pytest.raises(UserError, match=rf"annotation file {tmp_path}/a.json does not exist"):
        prepare(cfg("annotations", {"file": str(tmp_path / "a.json")}))
    with pytest.raises(UserError, match=r"npz file .* does not exist"):
        prepare(cfg("npz", {"file": str(tmp_path / "x.npz")}))


def test_class_folder_without_images(tmp_path: Path) -> None:
    write_png_tree(tmp_path / "imgs", per_class=5)
    (tmp_path / "imgs" / "empty_class").mkdir()
    (tmp_path / "imgs" / "empty_class" / "notes.txt").write_text("no images here")
    with pytest.raises(UserError, match=rf"class folder {tmp_path}/imgs/empty_class has no images"):
        prepare(cfg("imagefolder", {"root": str(tmp_path / "imgs")}))


def test_unreadable_images_are_skipped_with_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_png_tree(tmp_path / "imgs", per_class=20)
    for i in range(3):
        (tmp_path / "imgs" / "digit_0" / f"broken_{i}.png").write_bytes(b"not a png")
    parts = sources.load("imagefolder", {"root": str(tmp_path / "imgs"), "image_size": 8, "channels": 1})
    assert len(parts["all"].y) == 200
    err = capsys.readouterr().err
    assert "skipped 3 unreadable image(s)" in err and "broken_0.png" in err


def test_labels_outside_0_to_k_minus_1(tmp_path: Path) -> None:
    labels = write_annotations(tmp_path / "ann", per_class=3)
    entries = json.loads(labels.read_text())
    entries[0]["label"] = 12
    labels.write_text(json.dumps([{**e, "label": int(e["label"][-1]) if isinstance(e["label"], str) else e["label"]}
                                  for e in entries]))
    with pytest.raises(UserError, match=r"1 labels outside 0..9 \(first: \[12\]\)"):
        sources.load("annotations", {"file": str(labels), "classes": [str(d) for d in range(10)]})
    bad = tmp_path / "bad.npz"
    x = np.zeros((4, 8, 8), np.uint8)
    np.savez(bad, x=x, y=np.array([0, 1, 2, -1]), class_names=np.array(["a", "b", "c"]))
    with pytest.raises(UserError, match=r"labels outside 0..2 \(first: \[-1\]\)"):
        sources.load("npz", {"file": str(bad)})


def test_unknown_string_label_names_the_entry(tmp_path: Path) -> None:
    labels = write_annotations(tmp_path / "ann", per_class=2)
    with pytest.raises(UserError, match=r"entry 0: label 'digit_0' is not a known class"):
        sources.load("annotations", {"file": str(labels), "classes": ["a", "b"]})


def test_split_that_leaves_a_class_without_validation_images(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "d.npz", per_class=4)  # 4 per class: a 10% test cut leaves some classes out
    with pytest.raises(UserError, match=r"data.split: cannot carve a stratified|without (validation|training) images"):
        prepare({**cfg("npz", {"file": str(path)}), "split": {"val": 0.05, "test": 0.05, "val_from": "test"}})
    root = write_cifar10_root(tmp_path / "c", train_per_class=10, test_per_class=10)
    with pytest.raises(UserError, match=r"fewer than 2 images, too few to carve a val split"):
        prepare(cfg("cifar10", {"root": str(root)}, profile="exp", val_from="train") | {
            "longtail": {"profile": "exp", "ratio": 10, "minority_fraction": 0.5}})


def test_bad_data_exits_2_before_any_trial(tmp_path: Path) -> None:
    write_study(tmp_path / "spaces", "nodata", data={"name": "cifar10", "params": {"root": str(tmp_path / "none")}})
    url = f"sqlite:///{tmp_path / 's.db'}"
    r = hpo("launch", "--study", "nodata", "--spaces-dir", str(tmp_path / "spaces"), "--storage", url, cwd=tmp_path)
    assert r.returncode == 2 and "cifar-10-batches-py" in r.stderr, r.stderr
    assert not (tmp_path / "storage" / "ray").exists()  # Ray never started


def test_missing_required_data_param_and_weights_file_are_spec_errors(tmp_path: Path) -> None:
    write_study(tmp_path / "spaces", "x", data={"name": "imagefolder"})
    r = hpo("launch", "--study", "x", "--spaces-dir", str(tmp_path / "spaces"), "--storage", f"sqlite:///{tmp_path}/s.db")
    assert r.returncode == 2 and "'data.params.root'" in r.stderr and "needs root" in r.stderr
    write_study(tmp_path / "spaces", "y", model={"name": "timm", "arch": "resnet18", "weights": "no/such.pth"})
    r = hpo("launch", "--study", "y", "--spaces-dir", str(tmp_path / "spaces"), "--storage", f"sqlite:///{tmp_path}/s.db")
    assert r.returncode == 2 and "'model.weights'" in r.stderr and "no such file" in r.stderr


def test_unknown_timm_arch_exits_2_with_close_names(tmp_path: Path) -> None:
    write_study(tmp_path / "spaces", "t", model={"name": "timm", "arch": "resnet181"})
    r = hpo("launch", "--study", "t", "--spaces-dir", str(tmp_path / "spaces"), "--storage", f"sqlite:///{tmp_path}/s.db")
    assert r.returncode == 2 and "not a timm model" in r.stderr and "resnet18" in r.stderr
