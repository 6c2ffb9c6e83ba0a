"""What every data source shares: the registry a source is declared in (`SOURCES`), the images
it returns (`ImageSet`, `Parts`), the options several take, and the checks on the user's files
they all make (a missing path, labels outside 0..K-1), each an error naming the path and the fix."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

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


def need(path: Path, what: str, fix: str) -> Path:
    if not path.exists():
        raise UserError(f"data: {what} {path} does not exist; {fix}")
    if "folder" in what and not path.is_dir():
        raise UserError(f"data: {what} {path} is not a folder; {fix}")
    return path


def check_labels(y: np.ndarray, k: int, where: str) -> np.ndarray:
    bad = (y < 0) | (y >= k)
    if bad.any():
        raise UserError(f"data: {where}: {int(bad.sum())} labels outside 0..{k - 1} (first: {y[bad][:5].tolist()}); "
                        "fix the labels or list every class name")
    return y.astype(np.int64)


def cut(text: str, limit: int = 80) -> str:
    """A value from the user's file, cut so that a message never echoes more than a short piece of it."""
    return text if len(text) <= limit else text[:limit] + "..."


def load(name: str, params: dict[str, Any]) -> Parts:
    return SOURCES.build(name, **params)
