"""Image files decoded, converted and resized on `decode_threads()` threads, with a bounded peak
of memory: an image over MAX_PIXELS is skipped, one over LARGE_PIXELS decodes on the calling
thread, reduced near the target size; unreadable files are skipped with one warning."""
from __future__ import annotations

import itertools
import os
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hpo.errors import UserError


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
