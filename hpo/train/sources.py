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
import math
import os
import pickle
import sys
import warnings
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
    rebuild an array are found; every other global is refused. An array is rebuilt from bytes
    the file holds, so one that asks for more memory than `max_bytes` (the file's size) is refused
    before numpy allocates it."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.numeric", "_frombuffer"),
               ("numpy._core.numeric", "_frombuffer"), ("_codecs", "encode")}

    def __init__(self, fh: Any, max_bytes: int) -> None:
        super().__init__(fh, encoding="bytes")
        self.max_bytes = max_bytes

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused global {module}.{name}")
        if name == "encode":  # how Python 3 writes bytes at protocol 2: _codecs.encode(text, "latin1")
            return _latin1_encode
        if name == "ndarray":
            return self._ndarray
        if name == "dtype":
            return np.dtype
        core = getattr(np, "_core", None) or np.core  # numpy 2 moved numpy.core to numpy._core
        return self._reconstruct if name == "_reconstruct" else core.numeric._frombuffer

    def _fits(self, shape: Any, dtype: Any) -> None:
        dims = (shape,) if isinstance(shape, int) else tuple(shape)
        if not all(isinstance(d, int) for d in dims):
            raise pickle.UnpicklingError(f"array shape {_cut(repr(shape))} is not a tuple of integers")
        size = math.prod(dims) * np.dtype(dtype).itemsize  # Python integers: no overflow
        if size > self.max_bytes:
            raise pickle.UnpicklingError(f"an array of shape {_cut(repr(shape))} needs {size:,} bytes, more than "
                                         f"the whole file ({self.max_bytes:,} bytes) could hold")

    def _ndarray(self, shape: Any, dtype: Any = float, *args: Any) -> np.ndarray:
        self._fits(shape, dtype)
        return np.ndarray(shape, dtype, *args)

    def _reconstruct(self, subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
        if subtype != self._ndarray:  # what find_class gave for numpy.ndarray
            raise pickle.UnpicklingError(f"refused array type {_cut(repr(subtype))}")
        self._fits(shape, dtype)
        core = getattr(np, "_core", None) or np.core
        return core.multiarray._reconstruct(np.ndarray, shape, dtype)


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    if encoding != "latin1" or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refused _codecs.encode(..., {encoding!r})")
    return text.encode("latin1")


def read_cifar_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            d = _CifarUnpickler(fh, max_bytes=os.fstat(fh.fileno()).st_size).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise UserError(f"data: {path} is not a CIFAR pickle hpo can read ({type(exc).__name__}: "
                        f"{_cut(str(exc), 200)}); CIFAR files hold a dict of bytes, lists and numpy arrays, "
                        "nothing else") from None
    except MemoryError:  # a length field claiming more bytes than there are: the unpickler allocates it first
        raise UserError(f"data: {path} is not a CIFAR pickle hpo can read: it asks for more memory than this "
                        "machine has while being read; CIFAR files hold a dict of bytes, lists and numpy arrays "
                        "no larger than the file") from None
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


MAX_PIXELS = 1 << 25  # pixels one image may decode to (after a JPEG's reduced decode): a bounded peak
LARGE_PIXELS = 1 << 22  # above this an image decodes on the calling thread, reduced near the target size
_UNREADABLE, _TOO_LARGE, _LARGE = "unreadable", "too large", "large"


def _decode(path: Path, image_size: int, mode: str, large: bool = True) -> np.ndarray | str:
    """One image as uint8 (H, W, C) or (H, W); `_UNREADABLE` or `_TOO_LARGE` when it is not decoded,
    `_LARGE` for an image over LARGE_PIXELS unless `large`. Only the header is read before the size
    is known: a small file can hold a huge image."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.width * im.height <= LARGE_PIXELS:
                return np.asarray(im.convert(mode).resize((image_size, image_size), Image.BILINEAR), dtype=np.uint8)
            return _decode_large(im, image_size, mode) if large else _LARGE
    except Image.DecompressionBombError:  # Pillow's own limit, checked as it opens the file
        return _TOO_LARGE
    except Exception:  # noqa: BLE001 - PIL raises many kinds on a bad file
        return _UNREADABLE


def _decode_large(im: Any, image_size: int, mode: str) -> np.ndarray | str:
    """A large image decoded at about the target size: a JPEG by scaling its DCT (`draft`), then any
    image box-averaged down (`reduce`) before its mode is converted and it is resized."""
    from PIL import Image

    im.draft(mode, (image_size, image_size))  # JPEG only (no smaller than the target); others keep their size
    if im.width * im.height > MAX_PIXELS:
        return _TOO_LARGE
    factor = (max(1, im.width // image_size), max(1, im.height // image_size))
    try:
        small = im.reduce(factor)
    except ValueError:  # a mode reduce does not average (palette, 1-bit, 16-bit): converted first
        small = im.convert(mode).reduce(factor)
    return np.asarray(small.convert(mode).resize((image_size, image_size), Image.BILINEAR), dtype=np.uint8)


def _decode_all(paths: Sequence[Path], image_size: int, mode: str, threads: int) -> list[np.ndarray | str]:
    """Every image, on `threads` threads, except the large ones: those decode afterwards, one by one
    on this thread. Each decode thread's allocator keeps memory it freed, so large images decoded
    on every thread would hold one large image per thread, even one at a time."""
    if threads > 1 and len(paths) > 1:
        with ThreadPoolExecutor(threads, thread_name_prefix="hpo-decode") as pool:
            arrays = list(pool.map(_decode, paths, itertools.repeat(image_size), itertools.repeat(mode),
                                   itertools.repeat(False)))
    else:
        arrays = [_decode(p, image_size, mode, large=False) for p in paths]
    return [_decode(p, image_size, mode) if isinstance(a, str) and a == _LARGE else a for p, a in zip(paths, arrays)]


def read_images(paths: Sequence[Path], image_size: int, channels: int,
                threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Decode, convert and resize image files; returns (uint8 (N, C, S, S), indices that loaded).
    Unreadable files, and images over MAX_PIXELS, are skipped with one warning each naming how many
    and the first few.

    Files are decoded on `threads` threads (default `decode_threads()`): Pillow lets go of the GIL
    while it decodes and resizes (bench/image_decode.py times the threads). An image over
    LARGE_PIXELS decodes alone and near the target size, so memory stays bounded whatever the files hold."""
    from PIL import Image

    # hpo says which images it skipped as too large; Pillow's warning would repeat it without the path
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    arrays = _decode_all(paths, image_size, "L" if channels == 1 else "RGB", threads or decode_threads())
    ok = [i for i, a in enumerate(arrays) if not isinstance(a, str)]
    for reason, what in ((_UNREADABLE, "unreadable image(s)"),
                         (_TOO_LARGE, f"image(s) over {MAX_PIXELS:,} pixels (hpo's decode limit; shrink them)")):
        skipped = [str(p) for p, a in zip(paths, arrays) if isinstance(a, str) and a == reason]
        if skipped:
            print(f"warning: skipped {len(skipped)} {what}, first: {', '.join(skipped[:3])}", file=sys.stderr)
    if not ok:
        raise UserError(f"data: none of the {len(paths)} images could be read (first: {paths[0] if paths else '-'})")
    return (np.stack([arrays[i][None] if channels == 1 else arrays[i].transpose(2, 0, 1) for i in ok]),
            np.asarray(ok, dtype=np.int64))


def hidden(name: str) -> bool:
    """A name starting with '.': a tool's own folder or file (.ipynb_checkpoints, .DS_Store, .git),
    never a class or an image of the data set."""
    return name.startswith(".")


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
                  and not any(hidden(part) for part in p.relative_to(folder).parts))


def _class_folders(root: Path) -> dict[str, list[Path]]:
    classes = {d.name: _images_in(d) for d in sorted(root.iterdir()) if d.is_dir() and not hidden(d.name)}
    if not classes:
        raise UserError(f"data: {root} holds no class folders; expected ROOT/CLASS_NAME/*.png (or train/ val/ test/ "
                        "folders, each with one folder per class)")
    for name, files in classes.items():
        if not files:
            raise UserError(f"data: class folder {root / name} has no images ({', '.join(sorted(IMAGE_EXTENSIONS))}); "
                            "add images or remove the folder")
    return classes


def image_files(root: str) -> dict[str, dict[str, list[Path]]]:
    """The image files of ROOT/CLASS/*.png ({"all": {class: files}}) or ROOT/{train,val,test}/CLASS/*.png
    (one entry per split folder); every split folder has every class."""
    base = _need(Path(root), "image folder", "point data.params.root at a folder of class folders")
    split_dirs = [s for s in ("train", "val", "test") if (base / s).is_dir()]
    layout = {s: base / s for s in split_dirs} if "train" in split_dirs else {"all": base}
    if "train" in layout and "test" not in layout:
        raise UserError(f"data: {base} has train/ but no test/; add test/ or put the class folders directly in {base}")
    found = {part: _class_folders(folder) for part, folder in layout.items()}
    names = sorted({c for classes in found.values() for c in classes})
    for part, classes in found.items():
        missing = [c for c in names if c not in classes]
        if missing:
            raise UserError(f"data: {layout[part]} lacks class folders {missing} that other splits have")
    return found


@SOURCES.register("imagefolder", root=ROOT, image_size=IMAGE_SIZE, channels=CHANNELS)
def imagefolder(root: str, image_size: int, channels: int) -> Parts:
    """ROOT/CLASS/*.png (split by hpo), or ROOT/{train,val,test}/CLASS/*.png (val optional)."""
    found = image_files(root)
    names = tuple(sorted({c for classes in found.values() for c in classes}))
    parts: Parts = {}
    for part, classes in found.items():
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
            raise UserError(f"data: {path} entry {i}: image {_cut(repr(image))} must be a path relative to {base}")
        resolved = (base / image).resolve()
        if Path(image).is_absolute() or not resolved.is_relative_to(base):
            raise UserError(f"data: {path} entry {i}: image {_cut(repr(image))} resolves to {_cut(str(resolved))}, outside {base}; "
                            "image paths must be relative and stay under the annotation file's folder "
                            "(symlinks included): move the images there or the file next to them")
        out.append(resolved)
    return out


def _annotation_labels(path: Path, entries: list[dict], classes: list[str] | None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Each entry's label as a class index, and the class names. A label is an integer index or a
    class name; anything else (1.5, true, null, [1]) is refused: int() would quietly turn 1.5 into
    class 1 and true into class 1."""
    for i, e in enumerate(entries):
        lab = e["label"]
        if isinstance(lab, bool) or not isinstance(lab, (int, str)):
            raise UserError(f"data: {path} entry {i}: label {_cut(repr(lab))} is not a class index or a class name; "
                            "write each label as an integer 0..K-1 (e.g. 1) or as a class name string (e.g. \"cat\")")
    str_labels = sorted({e["label"] for e in entries if isinstance(e["label"], str)})
    # without class names, every class has an entry, so an index is below the number of entries
    k = len(classes) if classes else len(str_labels) if str_labels else len(entries)
    bad = [(i, e["label"]) for i, e in enumerate(entries) if isinstance(e["label"], int) and not 0 <= e["label"] < k]
    if bad:
        first = ", ".join(_cut(str(lab), 20) for _, lab in bad[:5])
        raise UserError(f"data: {path}: {len(bad)} labels outside 0..{k - 1} (first: [{first}]) from entry {bad[0][0]} on; "
                        "fix the labels or list every class name in data.params.classes")
    names = tuple(classes) if classes else tuple(str_labels) if str_labels else tuple(
        str(k) for k in range(max(e["label"] for e in entries) + 1))
    index = {n: k for k, n in enumerate(names)}
    labels = []
    for i, e in enumerate(entries):
        lab = e["label"]
        if isinstance(lab, str) and lab not in index:
            raise UserError(f"data: {path} entry {i}: label {_cut(repr(lab))} is not a known class "
                            f"({_cut(', '.join(names))})")
        labels.append(index[lab] if isinstance(lab, str) else lab)
    return check_labels(np.asarray(labels, dtype=np.int64), len(names), str(path)), names


def _cut(text: str, limit: int = 80) -> str:
    """A value from the user's file, cut so that a message never echoes more than a short piece of it."""
    return text if len(text) <= limit else text[:limit] + "..."


@SOURCES.register("annotations", file=FILE, image_size=IMAGE_SIZE, channels=CHANNELS,
                  classes=Option("list", None, doc="class names, in label order"))
def annotations(file: str, image_size: int, channels: int, classes: list[str] | None) -> Parts:
    """A JSON list of {"image": path relative to the file, "label": index or class name}; an entry
    may carry "split": train | val | test, otherwise hpo splits the pool."""
    path = _need(Path(file), "annotation file", "point data.params.file at a JSON list of {image, label}")
    try:
        entries = json.loads(path.read_text())
    except ValueError as exc:  # JSONDecodeError, or an integer of more digits than Python converts
        raise UserError(f"data: {path} is not valid JSON: {_cut(str(exc), 200)}") from None
    if not isinstance(entries, list) or not entries:
        raise UserError(f"data: {path} must hold a non-empty JSON list of {{\"image\": ..., \"label\": ...}}")
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or "image" not in e or "label" not in e:
            raise UserError(f"data: {path} entry {i} = {_cut(repr(e))}: needs keys 'image' and 'label'")
    y_all, names = _annotation_labels(path, entries, classes)
    split_of = [e.get("split", "all") for e in entries]
    images = _image_paths(path, entries)
    # checked before any image is read; `in` on a tuple also takes a value that cannot be hashed
    if any(s not in ("all", "train", "val", "test") for s in split_of) or ("all" in split_of and len(set(split_of)) > 1):
        raise UserError(f"data: {path}: 'split' must be train, val or test on every entry, or on none")
    parts: Parts = {}
    for part in sorted(set(split_of)):
        idx = [i for i, s in enumerate(split_of) if s == part]
        files = [images[i] for i in idx]
        x, ok = read_images(files, image_size, channels)
        parts[part] = ImageSet(x, y_all[idx][ok], names)
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
