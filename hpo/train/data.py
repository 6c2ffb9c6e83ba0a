"""Data sources (registry) and the split a trial trains on.

Every source returns the whole labelled set as one uint8 array (N, C, H, W): small-image data
sets fit in memory, and the training loop moves them to the device once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from sklearn.model_selection import train_test_split

from hpo import catalog
from hpo.errors import UserError
from hpo.registry import Registry
from hpo.train.longtail import longtail_counts, take_counts


@dataclass(frozen=True)
class ImageSet:
    x: np.ndarray  # uint8, (N, C, H, W)
    y: np.ndarray  # int64, (N,)
    class_names: tuple[str, ...]


@dataclass(frozen=True)
class Splits:
    train: ImageSet
    val: ImageSet
    test: ImageSet  # never used by the objective; only `hpo train` reports on it

    @property
    def class_counts(self) -> list[int]:
        return np.bincount(self.train.y, minlength=len(self.train.class_names)).tolist()

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.train.class_names


DATASETS: Registry[Callable[..., ImageSet]] = Registry("data set", catalog.DATASETS, fixed=())


@DATASETS.register("digits")
def digits() -> ImageSet:
    """scikit-learn's 1797 8x8 handwritten digits: shipped inside the package, so always there."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # pixel values are 0..16
    return ImageSet(x, d.target.astype(np.int64), tuple(str(n) for n in d.target_names))


def _subset(s: ImageSet, idx: np.ndarray) -> ImageSet:
    return ImageSet(s.x[idx], s.y[idx], s.class_names)


def prepare(data_cfg: dict[str, Any]) -> Splits:
    """Load, split stratified into train / val / test, then cut only the train part to a long tail.

    Validation and test keep the source's class balance (as in Cao et al. 2019 for CIFAR-LT):
    a tail class with 1 training image still gets enough validation images for its F1 to mean
    something.
    """
    full = DATASETS.get(data_cfg["name"])(**data_cfg.get("params", {}))
    seed, split = int(data_cfg["seed"]), data_cfg["split"]
    idx = np.arange(len(full.y))
    held = split["val"] + split["test"]
    train_idx, rest = train_test_split(idx, test_size=held, stratify=full.y, random_state=seed)
    val_idx, test_idx = train_test_split(rest, test_size=split["test"] / held, stratify=full.y[rest],
                                         random_state=seed)
    train = _subset(full, train_idx)
    lt = data_cfg["longtail"]
    if lt["profile"] != "none":
        pool = np.bincount(train.y, minlength=len(full.class_names))
        # n_max is the smallest class of the (balanced) pool, so every class can supply its count
        counts = longtail_counts(int(pool.min()), len(pool), lt["profile"], float(lt["ratio"]))
        train = _subset(train, take_counts(train.y, counts, seed))
    out = Splits(train, _subset(full, val_idx), _subset(full, test_idx))
    for name, part in (("validation", out.val), ("training", out.train)):
        missing = [full.class_names[k] for k, c in enumerate(np.bincount(part.y, minlength=len(full.class_names)))
                   if c == 0]
        if missing:
            raise UserError(f"data.split leaves classes {missing} without {name} images; "
                            "raise data.split.val or lower data.longtail.ratio")
    return out
