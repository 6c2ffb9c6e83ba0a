"""The `npz` source: images and labels in a NumPy .npz file, pooled or already split."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from hpo.errors import UserError
from hpo.train.sources.base import FILE, SOURCES, ImageSet, Parts, check_labels, need


@SOURCES.register("npz", file=FILE)
def npz(file: str) -> Parts:
    """Arrays x, y (optionally x_val, y_val, x_test, y_test, class_names); x as (N, H, W),
    (N, H, W, C) with C in 1 / 3, or (N, C, H, W): uint8 (or integers in 0..255), or floats in
    [0, 1] (scaled by 255) or [0, 255]; y integers (floats only when every one is whole)."""
    path = need(Path(file), "npz file", "point data.params.file at an .npz with arrays x and y")
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
