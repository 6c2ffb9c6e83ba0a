"""Bad data is a clear error before any trial starts (unreadable images: a warning and a skip)."""
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


def test_threaded_decode_gives_the_serial_arrays_in_order_and_skips_the_same_files(tmp_path: Path) -> None:
    paths = write_png_tree(tmp_path / "imgs", per_class=6)
    for i in (0, 17, 59):  # broken files at the start, the middle and the end of the list
        paths[i].write_bytes(b"not a png")
    x1, ok1 = sources.read_images(paths, 12, 1, threads=1)
    x4, ok4 = sources.read_images(paths, 12, 1, threads=4)
    assert np.array_equal(x1, x4) and np.array_equal(ok1, ok4)
    assert ok4.tolist() == [i for i in range(60) if i not in (0, 17, 59)] and x4.shape == (57, 1, 12, 12)
    rgb, _ = sources.read_images(paths[1:9], 10, 3, threads=3)
    assert rgb.shape == (8, 3, 10, 10) and np.array_equal(rgb, sources.read_images(paths[1:9], 10, 3, threads=1)[0])


def test_decode_threads_follow_omp_num_threads_as_ray_sets_it_for_a_trial(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert sources.decode_threads() == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert sources.decode_threads() == len(os.sched_getaffinity(0))


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
    with pytest.raises(UserError, match=r"fewer than 2 training images: seven \(1\), eight \(1\), nine \(1\); "
                                        r"the head class keeps only 10 images, too few for a long-tail cut that "
                                        r"leaves 10 of every class: use data.longtail.profile: none, or "
                                        r"data.split.val_from: test"):
        prepare(cfg("cifar10", {"root": str(root), "verify": False}, profile="exp", val_from="train") | {
            "longtail": {"profile": "exp", "ratio": 10, "minority_fraction": 0.5}})


def test_a_users_class_of_one_image_cannot_be_split_and_the_message_says_so(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "d.npz", per_class=10)
    arrays = dict(np.load(path))
    keep = np.flatnonzero(arrays["y"] != 2)[:].tolist() + np.flatnonzero(arrays["y"] == 2)[:1].tolist()
    np.savez(path, **{k: v[sorted(keep)] for k, v in arrays.items()})
    with pytest.raises(UserError, match=r"too few to carve a test split: 2 \(1\); add images of those classes"):
        prepare(cfg("npz", {"file": str(path)}))


def test_missing_required_data_param_and_weights_file_are_spec_errors(tmp_path: Path) -> None:
    write_study(tmp_path / "spaces", "x", data={"name": "imagefolder"})
    r = hpo("launch", "--study", "x", "--spaces-dir", str(tmp_path / "spaces"), "--storage", f"sqlite:///{tmp_path}/s.db")
    assert r.returncode == 2 and "'data.params.root'" in r.stderr and "needs root" in r.stderr
    write_study(tmp_path / "spaces", "y", model={"name": "timm", "arch": "resnet18", "weights": "no/such.pth"})
    r = hpo("launch", "--study", "y", "--spaces-dir", str(tmp_path / "spaces"), "--storage", f"sqlite:///{tmp_path}/s.db")
    assert r.returncode == 2 and "'model.weights'" in r.stderr and "no such file" in r.stderr


# ---- issue 12: careless or hostile data files ----------------------------------------------------

def test_cifar_files_must_match_torchvisions_md5_unless_verify_is_false(tmp_path: Path) -> None:
    root = write_cifar10_root(tmp_path / "c", train_per_class=2, test_per_class=2)
    with pytest.raises(UserError, match=r"batches.meta does not match torchvision's checksum for cifar10 .*verify: false"):
        sources.load("cifar10", {"root": str(root), "download": False, "verify": True})
    parts = sources.load("cifar10", {"root": str(root), "download": False, "verify": False})
    assert parts["train"].x.shape == (20, 3, 32, 32) and parts["test"].class_names[0] == "zero"


def test_cifar_md5_sums_are_torchvisions() -> None:
    from torchvision.datasets import CIFAR10, CIFAR100

    sums = sources.cifar._torchvision_md5("cifar10")
    assert sums["data_batch_1"] == dict(CIFAR10.train_list)["data_batch_1"] and sums["batches.meta"] == CIFAR10.meta["md5"]
    assert sources.cifar._torchvision_md5("cifar100") == {"train": dict(CIFAR100.train_list)["train"],
                                                    "test": dict(CIFAR100.test_list)["test"], "meta": CIFAR100.meta["md5"]}


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_a_pickle_that_runs_code_is_refused_and_never_runs(tmp_path: Path, protocol: int) -> None:
    root = write_cifar10_root(tmp_path / "c", train_per_class=2, test_per_class=2)
    marker = tmp_path / "pwned"
    with open(root / "cifar-10-batches-py" / "data_batch_3", "wb") as f:
        pickle.dump({b"data": _Payload(marker), b"labels": [0]}, f, protocol=protocol)
    with pytest.raises(UserError, match=r"data_batch_3 is not a CIFAR pickle .*refused global (posix|os)\.system"):
        sources.load("cifar10", {"root": str(root), "download": False, "verify": False})
    assert not marker.exists(), "the payload ran"


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_restricted_unpickler_reads_numpy_arrays_of_every_protocol(tmp_path: Path, protocol: int) -> None:
    d = {b"data": np.arange(12, dtype=np.uint8).reshape(2, 6), b"labels": [1, 2], b"f": np.float32(0.5)}
    (tmp_path / "p").write_bytes(pickle.dumps(d, protocol=protocol))
    try:
        out = sources.read_cifar_pickle(tmp_path / "p")
    except UserError as exc:  # a numpy scalar needs numpy.core.multiarray.scalar: not a CIFAR need
        assert "scalar" in str(exc)
        del d[b"f"]
        (tmp_path / "p").write_bytes(pickle.dumps(d, protocol=protocol))
        out = sources.read_cifar_pickle(tmp_path / "p")
    assert out[b"labels"] == [1, 2] and out[b"data"].tolist() == d[b"data"].tolist()


@pytest.mark.parametrize("image", ["../../etc/passwd", "/etc/passwd", "images/../../outside.png", "link/0000.png"])
def test_annotation_images_must_stay_under_the_files_folder(tmp_path: Path, image: str) -> None:
    labels = write_annotations(tmp_path / "ann", per_class=2)
    write_png_tree(tmp_path / "elsewhere", per_class=1)
    (tmp_path / "ann" / "link").symlink_to(tmp_path / "elsewhere" / "digit_0")
    (tmp_path / "outside.png").write_bytes((tmp_path / "elsewhere" / "digit_0" / "0000.png").read_bytes())
    entries = json.loads(labels.read_text())
    entries[3]["image"] = image
    labels.write_text(json.dumps(entries))
    with pytest.raises(UserError, match=rf"entry 3: image '{image}' resolves to .*outside {tmp_path}/ann"):
        sources.load("annotations", {"file": str(labels), "image_size": 8, "channels": 1, "classes": None})


def test_annotation_symlink_inside_the_folder_is_fine(tmp_path: Path) -> None:
    labels = write_annotations(tmp_path / "ann", per_class=2)
    (tmp_path / "ann" / "alias").symlink_to(tmp_path / "ann" / "images")
    entries = json.loads(labels.read_text())
    entries[0]["image"] = entries[0]["image"].replace("images/", "alias/", 1)
    labels.write_text(json.dumps(entries))
    parts = sources.load("annotations", {"file": str(labels), "image_size": 8, "channels": 1, "classes": None})
    assert len(parts["all"].y) == 20


def _npz(tmp_path: Path, **arrays: np.ndarray) -> dict:
    np.savez(tmp_path / "d.npz", **arrays)
    return {"file": str(tmp_path / "d.npz")}


def test_npz_float_images_in_0_1_are_scaled_and_in_0_255_rounded(tmp_path: Path) -> None:
    y = np.array([0, 1])
    x01 = np.array([[[0.0, 0.5], [1.0, 0.2]]] * 2)
    assert sources.load("npz", _npz(tmp_path, x=x01, y=y))["all"].x[0, 0].tolist() == [[0, 128], [255, 51]]
    x255 = np.array([[[0.0, 127.6], [255.0, 3.2]]] * 2)
    assert sources.load("npz", _npz(tmp_path, x=x255, y=y))["all"].x[0, 0].tolist() == [[0, 128], [255, 3]]


@pytest.mark.parametrize("x, problem", [
    (np.full((2, 4, 4), 300.0), r"pixel values span 300 .. 300"),
    (np.full((2, 4, 4), -0.5), r"pixel values span -0.5 .. -0.5"),
    (np.array([[[np.nan] * 4] * 4] * 2), r"32 pixel values are NaN or infinite"),
    (np.full((2, 4, 4), 256, dtype=np.int32), r"pixel values span 256 .. 256"),
    (np.full((2, 4, 4), -1, dtype=np.int8), r"pixel values span -1 .. -1"),
    (np.full((2, 4, 4), True), r"images must be a non-empty numeric array .*dtype bool"),
])
def test_npz_images_outside_0_255_are_refused(tmp_path: Path, x: np.ndarray, problem: str) -> None:
    with pytest.raises(UserError, match=rf"d.npz:x: {problem}"):
        sources.load("npz", _npz(tmp_path, x=x, y=np.array([0, 1])))


def test_npz_labels_must_be_integers_and_as_many_as_images(tmp_path: Path) -> None:
    x = np.zeros((3, 4, 4), np.uint8)
    with pytest.raises(UserError, match=r"d.npz:y: labels must be integers; 1 are not whole numbers \(first: \[1.5\]\)"):
        sources.load("npz", _npz(tmp_path, x=x, y=np.array([0.0, 1.5, 2.0])))
    assert sources.load("npz", _npz(tmp_path, x=x, y=np.array([0.0, 1.0, 2.0])))["all"].y.dtype == np.int64
    with pytest.raises(UserError, match=r"d.npz:y has 2 labels but its images array has 3 images"):
        sources.load("npz", _npz(tmp_path, x=x, y=np.array([0, 1])))
    with pytest.raises(UserError, match=r"d.npz:y: labels must be a 1-D integer array; got dtype <U1"):
        sources.load("npz", _npz(tmp_path, x=x, y=np.array(["a", "b", "c"])))


def test_npz_object_arrays_are_refused_without_unpickling(tmp_path: Path) -> None:
    x = np.zeros((2, 4, 4), np.uint8)
    with pytest.raises(UserError, match=r"d.npz: Object arrays cannot be loaded when allow_pickle=False"):
        sources.load("npz", _npz(tmp_path, x=x, y=np.array([0, 1]), class_names=np.array(["a", None], dtype=object)))
    (tmp_path / "p.npz").write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(UserError, match=r"p.npz: This file contains pickled"):
        sources.load("npz", {"file": str(tmp_path / "p.npz")})


def test_restricted_unpickler_reads_the_numpy_1_names_torchvisions_files_use(tmp_path: Path) -> None:
    blob = pickle.dumps({b"data": np.arange(6, dtype=np.uint8).reshape(2, 3), b"labels": [0, 1]}, protocol=2)
    assert b"numpy._core.multiarray\n_reconstruct" in blob  # GLOBAL opcode: newline-terminated text
    (tmp_path / "p").write_bytes(blob.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    assert sources.read_cifar_pickle(tmp_path / "p")[b"data"].tolist() == [[0, 1, 2], [3, 4, 5]]


def test_cifar_files_with_the_published_md5_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    root = write_cifar10_root(tmp_path / "c", train_per_class=2, test_per_class=2)
    sums = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in (root / "cifar-10-batches-py").iterdir()}
    monkeypatch.setattr(sources.cifar, "_torchvision_md5", lambda name: sums)  # as if these were torchvision's files
    assert len(sources.load("cifar10", {"root": str(root), "download": False, "verify": True})["train"].y) == 20


def test_hidden_folders_never_become_classes_nor_their_images_samples(tmp_path: Path) -> None:
    write_png_tree(tmp_path / "imgs", per_class=3)
    for hidden in (tmp_path / "imgs" / ".ipynb_checkpoints", tmp_path / "imgs" / "digit_0" / ".thumbs"):
        write_png_tree(hidden, per_class=1)  # images a notebook or a file browser left behind
        (hidden / "x.png").write_bytes((tmp_path / "imgs" / "digit_0" / "0000.png").read_bytes())
    (tmp_path / "imgs" / "digit_1" / ".0001.png").write_bytes((tmp_path / "imgs" / "digit_1" / "0003.png").read_bytes())
    parts = sources.load("imagefolder", {"root": str(tmp_path / "imgs"), "image_size": 8, "channels": 1})
    assert parts["all"].class_names == tuple(f"digit_{d}" for d in range(10))
    assert np.bincount(parts["all"].y).tolist() == [3] * 10


@pytest.mark.parametrize("label, shown", [(1.5, "1.5"), (None, "None"), ([1], r"\[1\]"), (True, "True"),
                                          ({"k": 1}, r"\{'k': 1\}")])
def test_annotation_labels_that_are_neither_an_index_nor_a_name_are_refused(tmp_path: Path, label: object,
                                                                           shown: str) -> None:
    # 1.5 used to become class 1 and true class 1; null and [1] gave a TypeError traceback
    path = write_annotations(tmp_path / "ann", per_class=2)
    entries = [{**e, "label": int(e["label"][-1])} for e in json.loads(path.read_text())]
    entries[3]["label"] = label
    path.write_text(json.dumps(entries))
    with pytest.raises(UserError, match=rf"labels.json entry 3: label {shown} is not a class index or a class name; "
                                        r"write each label as an integer 0..K-1"):
        sources.load("annotations", {"file": str(path), "image_size": 8, "channels": 1})


def test_annotation_index_labels_far_out_of_range_are_refused_before_any_class_is_named(tmp_path: Path) -> None:
    path = write_annotations(tmp_path / "ann", per_class=2)
    entries = [{**e, "label": int(e["label"][-1])} for e in json.loads(path.read_text())]
    entries[5]["label"] = 10 ** 30  # would have named 10**30 classes, then overflowed int64
    path.write_text(json.dumps(entries))
    with pytest.raises(UserError, match=r"1 labels outside 0..19 \(first: \[10000000000000000000\.\.\.\]\) "
                                        r"from entry 5 on"):
        sources.load("annotations", {"file": str(path), "image_size": 8, "channels": 1})
    path.write_text("[" + "1" * 5000 + "]")  # more digits than Python converts: a ValueError, not a JSONDecodeError
    with pytest.raises(UserError, match=r"labels.json is not valid JSON: Exceeds the limit"):
        sources.load("annotations", {"file": str(path)})


class _Call:
    """Pickles as a call of `fn(*args)`: what a hostile file can ask of the allowed numpy names."""

    def __init__(self, fn: object, *args: object) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple:
        return self.fn, self.args


@pytest.mark.parametrize("call", ["ndarray", "reconstruct", "dtype", "length"])
def test_a_cifar_pickle_asking_for_a_huge_array_is_refused_before_numpy_allocates_it(tmp_path: Path, call: str) -> None:
    core = getattr(np, "_core", None) or np.core
    blob = {"ndarray": lambda: pickle.dumps({b"data": _Call(np.ndarray, (10 ** 13,))}, protocol=2),
            "reconstruct": lambda: pickle.dumps({b"data": _Call(core.multiarray._reconstruct, np.ndarray,
                                                                (10 ** 6, 10 ** 7), b"b")}, protocol=4),
            "dtype": lambda: pickle.dumps({b"data": _Call(np.ndarray, (10,), np.dtype(("u1", (10 ** 4, 10 ** 5))))}),
            # a BINBYTES8 whose length claims a petabyte: the unpickler allocates it before reading
            "length": lambda: b"\x80\x04\x8e" + (10 ** 15).to_bytes(8, "little") + b"abc."}[call]()
    (tmp_path / "p").write_bytes(blob)
    with pytest.raises(UserError, match=r"p is not a CIFAR pickle hpo can read.*(more than the whole file|more memory)"):
        sources.read_cifar_pickle(tmp_path / "p")


def write_flat_png(path: Path, width: int, height: int) -> Path:
    """A grey PNG of one colour, written row by row through zlib: a huge image in a small file,
    made without holding the image in memory."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    z, row, body = zlib.compressobj(9), b"\x00" + b"\x80" * width, []  # filter byte 0, then the pixels
    body = [z.compress(row) for _ in range(height)] + [z.flush()]
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", b"".join(body)) + chunk(b"IEND", b""))
    return path


PEAK_LIMIT_MB = 64  # what decoding the images below may add to the process's peak memory


_PEAK = """
import re, sys
from pathlib import Path
from hpo.train import sources

def kb(field):
    return int(re.search(field + r":\\s+(\\d+)", Path("/proc/self/status").read_text()).group(1))

Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) starts again from here: imports left out
before = kb("VmRSS")
x, ok = sources.read_images([Path(p) for p in sys.argv[2:]], 32, 3, threads=int(sys.argv[1]))
print((kb("VmHWM") - before) / 1024, x.shape)
"""


def _decode_peak(paths: list[Path], threads: int) -> tuple[float, str, str]:
    """(MB the decode added to the peak RSS, the decoded shape, stderr) of read_images in a fresh process."""
    r = subprocess.run([sys.executable, "-c", _PEAK, str(threads), *map(str, paths)], cwd=REPO, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    mb, shape = r.stdout.split(" ", 1)
    return float(mb), shape.strip(), r.stderr


def test_a_huge_image_in_a_small_file_is_skipped_without_decoding_it(tmp_path: Path) -> None:
    bomb = write_flat_png(tmp_path / "bomb.png", 11000, 11000)  # 121 M pixels in about 120 KB
    assert bomb.stat().st_size < 1 << 20
    small = write_png_tree(tmp_path / "imgs", per_class=1)[:2]
    mb, shape, err = _decode_peak([small[0], bomb, small[1]], threads=2)
    assert shape == "(2, 3, 32, 32)" and mb < PEAK_LIMIT_MB, (mb, shape)
    assert f"skipped 1 image(s) over {sources.MAX_PIXELS:,} pixels" in err and "bomb.png" in err
    assert "DecompressionBombWarning" not in err


def test_large_images_decode_one_at_a_time_near_the_target_size(tmp_path: Path) -> None:
    # six 5000 x 5000 PNGs (25 MB each decoded, grey) with six decode threads: decoded on the calling
    # thread, one after the other, and box-reduced before their conversion to RGB (75 MB at full size),
    # the peak stays near one of them; on the decode threads it held one per thread, even one at a time
    from PIL import Image

    pngs = [write_flat_png(tmp_path / f"big{i}.png", 5000, 5000) for i in range(6)]
    jpeg = tmp_path / "big.jpg"  # over MAX_PIXELS at full size; its reduced (DCT-scaled) decode is not
    Image.new("L", (6000, 6000), 90).save(jpeg, quality=50)
    mb, shape, err = _decode_peak([*pngs, jpeg], threads=6)
    assert shape == "(7, 3, 32, 32)" and "skipped" not in err, (shape, err)
    assert mb < PEAK_LIMIT_MB, mb
    x, _ = sources.read_images([pngs[0], jpeg], 32, 3, threads=1)
    assert (x[0] == 0x80).all() and (np.abs(x[1].astype(int) - 90) <= 1).all()  # the pixels survive the reduction
