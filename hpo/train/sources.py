"""Data sources, registered by name. Each returns its labelled images as uint8 (N, C, H, W)
arrays, either as one pool ("all") or already split ("train", "test", optionally "val").

Every check of the user's files happens here, so `hpo launch` can run it once before any trial
starts: a missing root, an empty class folder, labels outside 0..K-1 are errors naming the path
and the fix; unreadable images are skipped with one warning (count and first paths).
"""
from __future__ import annotations

import json
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from hpo.errors import UserError
from hpo.spec import catalog
from hpo.spec.options import Bool, Int, Option
from hpo.spec.registry import Registry

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclass(frozen=True)
class ImageSet:
    x: np.ndarray  # uint8, (N, C, H, W)
    y: np.ndarray  # int64, (N,)
    class_names: tuple[str, ...]


Parts = dict[str, ImageSet]  # {"all"} or {"train", "test"} or {"train", "val", "test"}

SOURCES: Registry[Callable[..., Parts]] = Registry(catalog.DATA)

# options several sources share; `path` values are made absolute (Ray moves each trial's cwd)
ROOT, FILE = Option("path", doc="a folder"), Option("path", doc="a file")
IMAGE_SIZE, CHANNELS = Int(32, low=1, doc="images are resized to this square"), Int(3, choices=(1, 3))


def _need(path: Path, what: str, fix: str) -> Path:
    if not path.exists():
        raise UserError(f"data: {what} {path} does not exist; {fix}")
    return path


def check_labels(y: np.ndarray, k: int, where: str) -> np.ndarray:
    bad = (y < 0) | (y >= k)
    if bad.any():
        raise UserError(f"data: {where}: {int(bad.sum())} labels outside 0..{k - 1} (first: {y[bad][:5].tolist()}); "
                        "fix the labels or list every class name")
    return y.astype(np.int64)


# ---- digits -----------------------------------------------------------------------------------

@SOURCES.register("digits")
def digits() -> Parts:
    """scikit-learn's 1797 8x8 handwritten digits: shipped inside the package, so always there."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # pixel values are 0..16
    return {"all": ImageSet(x, d.target.astype(np.int64), tuple(str(n) for n in d.target_names))}


# ---- CIFAR in torchvision's on-disk format --------------------------------------------------------

_CIFAR = {  # name -> (folder, train files, test files, label key, meta file, names key)
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels",
                "batches.meta", b"label_names"),
    "cifar100": ("cifar-100-python", ["train"], ["test"], b"fine_labels", "meta", b"fine_label_names"),
}


def _cifar(name: str, root: str, download: bool) -> Parts:
    folder, train_files, test_files, label_key, meta, names_key = _CIFAR[name]
    base = Path(root) / folder
    if not base.is_dir():
        if download:  # only when the study file says so; this machine may have no network
            import torchvision

            cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
            cls(root, train=True, download=True)
        else:
            raise UserError(f"data: {name} files not found: expected folder {base} (torchvision's layout). "
                            f"Extract {folder.replace('-batches-py', '').replace('-python', '')}-python.tar.gz "
                            f"into {root}, point data.params.root at the folder holding {folder}, "
                            "or set data.params.download: true")

    def load(files: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for f in files:
            with open(_need(base / f, f"{name} batch file", "the extracted archive is incomplete"), "rb") as fh:
                d = pickle.load(fh, encoding="bytes")  # noqa: S301 - torchvision's own format
            xs.append(np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(d[label_key], dtype=np.int64))
        return np.concatenate(xs), np.concatenate(ys)

    with open(_need(base / meta, f"{name} meta file", "the extracted archive is incomplete"), "rb") as fh:
        names = tuple(n.decode() for n in pickle.load(fh, encoding="bytes")[names_key])  # noqa: S301
    (xtr, ytr), (xte, yte) = load(train_files), load(test_files)
    return {"train": ImageSet(xtr, check_labels(ytr, len(names), str(base)), names),
            "test": ImageSet(xte, check_labels(yte, len(names), str(base)), names)}


@SOURCES.register("cifar10", root=ROOT, download=Bool(False))
def cifar10(root: str, download: bool) -> Parts:
    return _cifar("cifar10", root, download)


@SOURCES.register("cifar100", root=ROOT, download=Bool(False))
def cifar100(root: str, download: bool) -> Parts:
    return _cifar("cifar100", root, download)


# ---- image files -------------------------------------------------------------------------------

def read_images(paths: Sequence[Path], image_size: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode, convert and resize image files; returns (uint8 (N, C, S, S), indices that loaded).
    Unreadable files are skipped with one warning naming how many and the first few."""
    from PIL import Image

    mode = "L" if channels == 1 else "RGB"
    out, ok, bad = [], [], []
    for i, p in enumerate(paths):
        try:
            with Image.open(p) as im:
                arr = np.asarray(im.convert(mode).resize((image_size, image_size), Image.BILINEAR), dtype=np.uint8)
        except Exception:  # noqa: BLE001 - PIL raises many kinds on a bad file
            bad.append(str(p))
            continue
        out.append(arr[None] if channels == 1 else arr.transpose(2, 0, 1))
        ok.append(i)
    if bad:
        print(f"warning: skipped {len(bad)} unreadable image(s), first: {', '.join(bad[:3])}", file=sys.stderr)
    if not out:
        raise UserError(f"data: none of the {len(paths)} images could be read (first: {paths[0] if paths else '-'})")
    return np.stack(out), np.asarray(ok, dtype=np.int64)


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def _class_folders(root: Path) -> dict[str, list[Path]]:
    classes = {d.name: _images_in(d) for d in sorted(root.iterdir()) if d.is_dir()}
    if not classes:
        raise UserError(f"data: {root} holds no class folders; expected ROOT/CLASS_NAME/*.png (or train/ val/ test/ "
                        "folders, each with one folder per class)")
    for name, files in classes.items():
        if not files:
            raise UserError(f"data: class folder {root / name} has no images ({', '.join(sorted(IMAGE_EXTENSIONS))}); "
                            "add images or remove the folder")
    return classes


@SOURCES.register("imagefolder", root=ROOT, image_size=IMAGE_SIZE, channels=CHANNELS)
def imagefolder(root: str, image_size: int, channels: int) -> Parts:
    """ROOT/CLASS/*.png (split by hpo), or ROOT/{train,val,test}/CLASS/*.png (val optional)."""
    base = _need(Path(root), "image folder", "point data.params.root at a folder of class folders")
    split_dirs = [s for s in ("train", "val", "test") if (base / s).is_dir()]
    layout = {s: base / s for s in split_dirs} if "train" in split_dirs else {"all": base}
    if "train" in layout and "test" not in layout:
        raise UserError(f"data: {base} has train/ but no test/; add test/ or put the class folders directly in {base}")
    found = {part: _class_folders(folder) for part, folder in layout.items()}
    names = tuple(sorted({c for classes in found.values() for c in classes}))
    parts: Parts = {}
    for part, classes in found.items():
        missing = [c for c in names if c not in classes]
        if missing:
            raise UserError(f"data: {layout[part]} lacks class folders {missing} that other splits have")
        paths = [p for c in names for p in classes[c]]
        labels = np.asarray([k for k, c in enumerate(names) for _ in classes[c]], dtype=np.int64)
        x, ok = read_images(paths, image_size, channels)
        parts[part] = ImageSet(x, labels[ok], names)
    return parts


@SOURCES.register("annotations", file=FILE, image_size=IMAGE_SIZE, channels=CHANNELS,
                  classes=Option("list", None, doc="class names, in label order"))
def annotations(file: str, image_size: int, channels: int, classes: list[str] | None) -> Parts:
    """A JSON list of {"image": path relative to the file, "label": index or class name}; an entry
    may carry "split": train | val | test, otherwise hpo splits the pool."""
    path = _need(Path(file), "annotation file", "point data.params.file at a JSON list of {image, label}")
    try:
        entries = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"data: {path} is not valid JSON: {exc}") from None
    if not isinstance(entries, list) or not entries:
        raise UserError(f"data: {path} must hold a non-empty JSON list of {{\"image\": ..., \"label\": ...}}")
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or "image" not in e or "label" not in e:
            raise UserError(f"data: {path} entry {i} = {e!r}: needs keys 'image' and 'label'")
    str_labels = sorted({e["label"] for e in entries if isinstance(e["label"], str)})
    names = tuple(classes) if classes else tuple(str_labels) if str_labels else tuple(
        str(k) for k in range(max(int(e["label"]) for e in entries) + 1))
    index = {n: k for k, n in enumerate(names)}
    labels = []
    for i, e in enumerate(entries):
        lab = e["label"]
        if isinstance(lab, str) and lab not in index:
            raise UserError(f"data: {path} entry {i}: label {lab!r} is not a known class ({', '.join(names)})")
        labels.append(index[lab] if isinstance(lab, str) else int(lab))
    y_all = check_labels(np.asarray(labels), len(names), str(path))
    split_of = [e.get("split", "all") for e in entries]
    parts: Parts = {}
    for part in sorted(set(split_of)):
        idx = [i for i, s in enumerate(split_of) if s == part]
        files = [path.parent / entries[i]["image"] for i in idx]
        x, ok = read_images(files, image_size, channels)
        parts[part] = ImageSet(x, y_all[idx][ok], names)
    if set(parts) - {"all", "train", "val", "test"} or ("all" in parts and len(parts) > 1):
        raise UserError(f"data: {path}: 'split' must be train, val or test on every entry, or on none")
    return parts


@SOURCES.register("npz", file=FILE)
def npz(file: str) -> Parts:
    """Arrays x, y (optionally x_val, y_val, x_test, y_test, class_names); x uint8 as (N, H, W),
    (N, H, W, C) with C in 1 / 3, or (N, C, H, W)."""
    path = _need(Path(file), "npz file", "point data.params.file at an .npz with arrays x and y")
    with np.load(path, allow_pickle=False) as z:
        arrays = dict(z)
    if "x" not in arrays or "y" not in arrays:
        raise UserError(f"data: {path} needs arrays 'x' and 'y' (has {', '.join(arrays) or 'none'})")
    k = len(arrays["class_names"]) if "class_names" in arrays else int(max(arrays[a].max() for a in arrays if a.startswith("y"))) + 1
    names = tuple(str(n) for n in arrays["class_names"]) if "class_names" in arrays else tuple(str(i) for i in range(k))

    def nchw(x: np.ndarray) -> np.ndarray:
        if x.ndim == 3:
            return x[:, None]
        return x.transpose(0, 3, 1, 2) if x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3) else x

    suffixes = {"": "all" if "x_test" not in arrays else "train", "_val": "val", "_test": "test"}
    return {part: ImageSet(np.ascontiguousarray(nchw(arrays["x" + s]).astype(np.uint8)),
                           check_labels(arrays["y" + s], k, f"{path}:y{s}"), names)
            for s, part in suffixes.items() if "x" + s in arrays}


def load(name: str, params: dict[str, Any]) -> Parts:
    return SOURCES.build(name, **params)
