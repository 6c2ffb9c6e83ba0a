"""Data sources, registered by name. Each returns its labelled images as uint8 (N, C, H, W)
arrays, either as one pool ("all") or already split ("train", "test", optionally "val").

Every check of the user's files happens here, so `hpo launch` can run it once before any trial
starts: a missing root, an empty class folder, labels outside 0..K-1 are errors naming the path
and the fix; unreadable images are skipped with one warning (count and first paths).
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import pickle
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
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
VERIFY = Bool(True, doc="check each file against torchvision's MD5 sums; false for your own re-packed files")


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


def _cifar(name: str, root: str, download: bool, verify: bool) -> Parts:
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
    sums = _torchvision_md5(name) if verify else {}

    def read(f: str, what: str) -> Any:
        path = _need(base / f, f"{name} {what}", "the extracted archive is incomplete")
        if verify:
            _check_md5(path, sums[f], name)
        return read_cifar_pickle(path)

    def load(files: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for f in files:
            d = read(f, "batch file")
            xs.append(np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(d[label_key], dtype=np.int64))
        return np.concatenate(xs), np.concatenate(ys)

    names = tuple(n.decode() for n in read(meta, "meta file")[names_key])
    (xtr, ytr), (xte, yte) = load(train_files), load(test_files)
    return {"train": ImageSet(xtr, check_labels(ytr, len(names), str(base)), names),
            "test": ImageSet(xte, check_labels(yte, len(names), str(base)), names)}


def _torchvision_md5(name: str) -> dict[str, str]:
    """file name -> MD5, as torchvision publishes them (its CIFAR classes' train_list, test_list, meta)."""
    import torchvision

    cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
    return {**dict(cls.train_list), **dict(cls.test_list), cls.meta["filename"]: cls.meta["md5"]}


def _check_md5(path: Path, expected: str, name: str) -> None:
    md5 = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            md5.update(chunk)
    if md5.hexdigest() != expected:
        raise UserError(f"data: {path} does not match torchvision's checksum for {name} (md5 {md5.hexdigest()}, "
                        f"expected {expected}): the file is damaged or not torchvision's {name}. Re-download it "
                        "(data.params.download: true into an empty root), or, for your own re-packed files, set "
                        "data.params.verify: false (they are then read with a pickle reader that runs no code)")


class _CifarUnpickler(pickle.Unpickler):
    """Reads CIFAR's pickles (dicts of bytes, lists and numpy arrays) and nothing else: a pickle
    can name any function to call while loading (os.system ...), so only the numpy names that
    rebuild an array are found; every other global is refused."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.numeric", "_frombuffer"),
               ("numpy._core.numeric", "_frombuffer"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        if name == "encode":  # how Python 3 writes bytes at protocol 2: _codecs.encode(text, "latin1")
            return _latin1_encode
        if name in ("ndarray", "dtype"):
            return getattr(np, name)
        core = getattr(np, "_core", None) or np.core  # numpy 2 moved numpy.core to numpy._core
        return getattr(core.multiarray if name == "_reconstruct" else core.numeric, name)


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    if encoding != "latin1" or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refused _codecs.encode(..., {encoding!r})")
    return text.encode("latin1")


def read_cifar_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            d = _CifarUnpickler(fh, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise UserError(f"data: {path} is not a CIFAR pickle hpo can read ({type(exc).__name__}: {exc}); "
                        "CIFAR files hold a dict of bytes, lists and numpy arrays, nothing else") from None
    if not isinstance(d, dict):
        raise UserError(f"data: {path} holds a {type(d).__name__}, not the dict a CIFAR file holds")
    return d


@SOURCES.register("cifar10", root=ROOT, download=Bool(False), verify=VERIFY)
def cifar10(root: str, download: bool, verify: bool) -> Parts:
    return _cifar("cifar10", root, download, verify)


@SOURCES.register("cifar100", root=ROOT, download=Bool(False), verify=VERIFY)
def cifar100(root: str, download: bool, verify: bool) -> Parts:
    return _cifar("cifar100", root, download, verify)


# ---- image files -------------------------------------------------------------------------------

def decode_threads() -> int:
    """Threads that decode image files: OMP_NUM_THREADS where it is set (Ray sets it in each
    trial's worker to the trial's CPUs, so four trials on a card do not fight over the cores), else
    every core this process may use (the launch's data check)."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, int(env)) if env.isdigit() else len(os.sched_getaffinity(0))


def _decode(path: Path, image_size: int, mode: str) -> np.ndarray | None:
    """One image as uint8 (H, W, C) or (H, W); None when it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert(mode).resize((image_size, image_size), Image.BILINEAR), dtype=np.uint8)
    except Exception:  # noqa: BLE001 - PIL raises many kinds on a bad file
        return None


def read_images(paths: Sequence[Path], image_size: int, channels: int,
                threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Decode, convert and resize image files; returns (uint8 (N, C, S, S), indices that loaded).
    Unreadable files are skipped with one warning naming how many and the first few.

    Files are decoded on `threads` threads (default `decode_threads()`): Pillow lets go of the GIL
    while it decodes and resizes, and 1,754 JPEGs took 7.3 s on one core, every launch's data check
    and every trial worker's first load (bench/image_decode.py compares)."""
    mode = "L" if channels == 1 else "RGB"
    n = threads or decode_threads()
    if n > 1 and len(paths) > 1:
        with ThreadPoolExecutor(n, thread_name_prefix="hpo-decode") as pool:
            arrays = list(pool.map(_decode, paths, itertools.repeat(image_size), itertools.repeat(mode)))
    else:
        arrays = [_decode(p, image_size, mode) for p in paths]
    ok = [i for i, a in enumerate(arrays) if a is not None]
    bad = [str(p) for p, a in zip(paths, arrays) if a is None]
    if bad:
        print(f"warning: skipped {len(bad)} unreadable image(s), first: {', '.join(bad[:3])}", file=sys.stderr)
    if not ok:
        raise UserError(f"data: none of the {len(paths)} images could be read (first: {paths[0] if paths else '-'})")
    return (np.stack([arrays[i][None] if channels == 1 else arrays[i].transpose(2, 0, 1) for i in ok]),
            np.asarray(ok, dtype=np.int64))


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


def _image_paths(path: Path, entries: list[dict]) -> list[Path]:
    """Each entry's image, resolved (symlinks too); it must lie under the annotation file's
    folder, so a shared or downloaded annotation file cannot make hpo read /etc/passwd."""
    base = path.parent.resolve()
    out = []
    for i, e in enumerate(entries):
        image = e["image"]
        if not isinstance(image, str) or not image:
            raise UserError(f"data: {path} entry {i}: image {image!r} must be a path relative to {base}")
        resolved = (base / image).resolve()
        if Path(image).is_absolute() or not resolved.is_relative_to(base):
            raise UserError(f"data: {path} entry {i}: image {image!r} resolves to {resolved}, outside {base}; "
                            "image paths must be relative and stay under the annotation file's folder "
                            "(symlinks included): move the images there or the file next to them")
        out.append(resolved)
    return out


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
    images = _image_paths(path, entries)
    parts: Parts = {}
    for part in sorted(set(split_of)):
        idx = [i for i, s in enumerate(split_of) if s == part]
        files = [images[i] for i in idx]
        x, ok = read_images(files, image_size, channels)
        parts[part] = ImageSet(x, y_all[idx][ok], names)
    if set(parts) - {"all", "train", "val", "test"} or ("all" in parts and len(parts) > 1):
        raise UserError(f"data: {path}: 'split' must be train, val or test on every entry, or on none")
    return parts


@SOURCES.register("npz", file=FILE)
def npz(file: str) -> Parts:
    """Arrays x, y (optionally x_val, y_val, x_test, y_test, class_names); x as (N, H, W),
    (N, H, W, C) with C in 1 / 3, or (N, C, H, W): uint8 (or integers in 0..255), or floats in
    [0, 1] (scaled by 255) or [0, 255]; y integers (floats only when every one is whole)."""
    path = _need(Path(file), "npz file", "point data.params.file at an .npz with arrays x and y")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = dict(z)
    except ValueError as exc:  # object arrays (they need pickle, which can run code) and pickle files
        raise UserError(f"data: {path}: {exc}; save plain numeric / string arrays (np.savez with numpy dtypes, "
                        "not Python objects)") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"data: {path} is not a readable .npz file ({exc})") from None
    if "x" not in arrays or "y" not in arrays:
        raise UserError(f"data: {path} needs arrays 'x' and 'y' (has {', '.join(arrays) or 'none'})")
    suffixes = {"": "all" if "x_test" not in arrays else "train", "_val": "val", "_test": "test"}
    xs = {s: _npz_images(arrays["x" + s], f"{path}:x{s}") for s in suffixes if "x" + s in arrays}
    ys = {s: _npz_labels(arrays.get("y" + s), len(xs[s]), f"{path}:y{s}") for s in xs}
    k = len(arrays["class_names"]) if "class_names" in arrays else int(max(y.max(initial=0) for y in ys.values())) + 1
    names = tuple(str(n) for n in arrays["class_names"]) if "class_names" in arrays else tuple(str(i) for i in range(k))

    def nchw(x: np.ndarray) -> np.ndarray:
        if x.ndim == 3:
            return x[:, None]
        return x.transpose(0, 3, 1, 2) if x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3) else x

    return {suffixes[s]: ImageSet(np.ascontiguousarray(nchw(xs[s])), check_labels(ys[s], k, f"{path}:y{s}"), names)
            for s in xs}


def _npz_images(x: np.ndarray, where: str) -> np.ndarray:
    """x as uint8: integers must lie in 0..255; floats in [0, 1] are scaled by 255, floats in
    [0, 255] rounded; NaN, infinities and anything else are refused (never wrapped around)."""
    if x.dtype.kind not in "uif" or x.ndim not in (3, 4) or len(x) == 0:
        raise UserError(f"data: {where}: images must be a non-empty numeric array (N, H, W), (N, H, W, C) or "
                        f"(N, C, H, W); got dtype {x.dtype}, shape {x.shape}")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise UserError(f"data: {where}: {int((~np.isfinite(x)).sum())} pixel values are NaN or infinite")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 255:
        raise UserError(f"data: {where}: pixel values span {lo:g} .. {hi:g}; hpo reads uint8 0..255, or floats in "
                        "[0, 1] or [0, 255]: rescale them (e.g. undo a mean / std normalisation)")
    if x.dtype.kind == "f":
        x = np.round(x * 255.0 if hi <= 1.0 else x)
    return x.astype(np.uint8)


def _npz_labels(y: np.ndarray | None, n: int, where: str) -> np.ndarray:
    if y is None:
        raise UserError(f"data: {where} is missing: each x array needs its labels")
    if y.ndim != 1 or y.dtype.kind not in "uif":
        raise UserError(f"data: {where}: labels must be a 1-D integer array; got dtype {y.dtype}, shape {y.shape}")
    if len(y) != n:
        raise UserError(f"data: {where} has {len(y)} labels but its images array has {n} images; they must match")
    if y.dtype.kind == "f":
        whole = np.isfinite(y) & (y == np.round(y))
        if not whole.all():
            raise UserError(f"data: {where}: labels must be integers; {int((~whole).sum())} are not whole numbers "
                            f"(first: {y[~whole][:5].tolist()}); save them as an integer array")
    return y.astype(np.int64)


def load(name: str, params: dict[str, Any]) -> Parts:
    return SOURCES.build(name, **params)
