"""The split a trial trains on: source -> train / val / test -> long-tail cut of train.

- A source that gives one pool is split stratified into train / val / test (fractions
  `split.val`, `split.test`); with `val_from: train` the validation part is instead carved
  stratified from the long-tailed training part.
- A source with its own test set (CIFAR, train/ + test/ folders): `val_from: test` (default)
  carves a validation set from the test set, stratified, so it keeps the test set's balance
  (`split.val` of it); `val_from: train` carves it from the long-tailed train set.
- Only the training part is cut to the long tail; the test split never feeds the objective.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import RepeatedStratifiedKFold, train_test_split

from hpo.errors import UserError
from hpo.train.longtail import longtail_counts, take_counts
from hpo.train.sources import ImageSet, load

__all__ = ["ImageSet", "Splits", "prepare"]


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


def _subset(s: ImageSet, idx: np.ndarray) -> ImageSet:
    return ImageSet(s.x[idx], s.y[idx], s.class_names)


def _carve(s: ImageSet, fraction: float, seed: int, what: str) -> tuple[ImageSet, ImageSet]:
    """Stratified split of `s` into (rest, carved) with `fraction` of each class carved out."""
    counts = np.bincount(s.y, minlength=len(s.class_names))
    if (counts < 2).any():
        few = [s.class_names[k] for k in np.flatnonzero(counts < 2)]
        raise UserError(f"data.split: classes {few} have fewer than 2 images, too few to carve a {what} split; "
                        f"lower data.longtail.ratio or use data.split.val_from: test")
    try:
        rest, carved = train_test_split(np.arange(len(s.y)), test_size=fraction, stratify=s.y, random_state=seed)
    except ValueError as exc:  # sklearn: the fraction leaves fewer images than classes
        raise UserError(f"data.split: cannot carve a stratified {what} split of {fraction} from "
                        f"{len(s.y)} images in {len(counts)} classes ({exc}); raise data.split.{what}") from None
    return _subset(s, np.sort(rest)), _subset(s, np.sort(carved))


BENCHMARKS = ("digits", "cifar10", "cifar100")  # the sources `profile: auto` cuts (balanced, public)


def profile(data_cfg: dict[str, Any]) -> str:
    """The long-tail profile that applies: `auto` cuts the benchmark sources only; a user's own
    images (folders, annotations, npz) keep their own counts unless the study asks."""
    p = data_cfg["longtail"]["profile"]
    return ("exp" if data_cfg["name"] in BENCHMARKS else "none") if p == "auto" else p


def cut_longtail(train: ImageSet, lt: dict[str, Any], seed: int) -> ImageSet:
    if lt["profile"] == "none":
        return train
    pool = np.bincount(train.y, minlength=len(train.class_names))
    # n_max is the smallest class of the (balanced) pool, so every class can supply its count
    counts = longtail_counts(int(pool.min()), len(pool), lt["profile"], float(lt["ratio"]),
                             float(lt["minority_fraction"]))
    return _subset(train, take_counts(train.y, counts, seed))


def prepare(data_cfg: dict[str, Any]) -> Splits:
    parts = load(data_cfg["name"], dict(data_cfg["params"]))
    seed, split = int(data_cfg["seed"]), data_cfg["split"]
    lt = {**data_cfg["longtail"], "profile": profile(data_cfg)}
    val_from = split["val_from"]
    if "all" in parts:
        pool = parts["all"]
        pool, test = _carve(pool, split["test"], seed, "test")
        if val_from == "test":  # both held-out parts keep the source's balance
            pool, val = _carve(pool, split["val"] / (1 - split["test"]), seed, "val")
        train = cut_longtail(pool, lt, seed)
        if val_from == "train":
            train, val = _carve(train, split["val"], seed, "val")
    else:
        train, test = cut_longtail(parts["train"], lt, seed), parts["test"]
        if "val" in parts:
            val = parts["val"]
        elif val_from == "test":
            test, val = _carve(test, split["val"], seed, "val")
        else:
            train, val = _carve(train, split["val"], seed, "val")
    out = Splits(train, val, test)
    _enough_per_class(out, lt, split)
    return out


MIN_PER_CLASS = 2  # one image gives a per-class F1 of 0 or 1 and nothing to resample from


def _enough_per_class(s: Splits, lt: dict[str, Any], split: dict[str, Any]) -> None:
    """Every class keeps at least MIN_PER_CLASS training and validation images, else exit 2 with a fix."""
    for name, part in (("training", s.train), ("validation", s.val)):
        counts = np.bincount(part.y, minlength=len(s.class_names))
        few = np.flatnonzero(counts < MIN_PER_CLASS)
        if not len(few):
            continue
        listed = ", ".join(f"{s.class_names[k]} ({counts[k]})" for k in few)
        if name == "training" and lt["profile"] != "none":
            head = int(counts.max())  # the head class keeps n_max: the tail keeps int(n_max / ratio)
            fix = (f"lower data.longtail.ratio to at most {head // MIN_PER_CLASS} (the head class keeps {head}) "
                   "or use data.longtail.profile: none")
        elif name == "training":
            fix = "add images of those classes, or merge or drop them"
        else:
            fix = (f"raise data.split.val (now {split['val']})" + (" or use data.split.val_from: test"
                                                                   if split["val_from"] == "train" else ""))
        raise UserError(f"data: classes with fewer than {MIN_PER_CLASS} {name} images: {listed}; {fix}")


def folds(data_cfg: dict[str, Any], s: Splits) -> list[Splits]:
    """`data.split.folds` (k) x `repeats`: stratified folds of the non-test pool, i.e. the single
    split's training and validation parts together (after the long-tail cut, so each validation
    fold keeps the pool's proportions). The test split stays as it is, untouched."""
    split = data_cfg["split"]
    k, repeats = int(split["folds"]), int(split["repeats"])
    if k < 2:
        raise UserError(f"data.split.folds: {k} folds is not k-fold; use 0 for the single split or at least 2")
    pool = ImageSet(np.concatenate([s.train.x, s.val.x]), np.concatenate([s.train.y, s.val.y]), s.class_names)
    counts = np.bincount(pool.y, minlength=len(s.class_names))
    if counts.min() < MIN_PER_CLASS * k:  # every validation fold keeps MIN_PER_CLASS of every class
        c = int(counts.argmin())
        raise UserError(f"data.split.folds: {k} folds need {MIN_PER_CLASS * k} images of each class in the "
                        f"non-test pool; class {s.class_names[c]} has {counts[c]}: lower data.split.folds to at "
                        f"most {counts[c] // MIN_PER_CLASS}")
    cv = RepeatedStratifiedKFold(n_splits=k, n_repeats=repeats, random_state=int(data_cfg["seed"]))
    return [Splits(_subset(pool, tr), _subset(pool, va), s.test) for tr, va in cv.split(pool.x, pool.y)]
