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
from typing import Any, Callable

import numpy as np

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
    if (counts < 2).any():  # the source's own counts (a cut part is checked before it is carved)
        few = ", ".join(f"{s.class_names[k]} ({counts[k]})" for k in np.flatnonzero(counts < 2))
        raise UserError(f"data.split: classes with fewer than 2 images, too few to carve a {what} split: {few}; "
                        "add images of those classes, or merge or drop them")
    # imported here: the launch's driver imports this module (the data profile for the study note)
    # but splits in its data-check process (hpo.tune.data_check); scikit-learn is slow to import
    from sklearn.model_selection import train_test_split

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
    carved_from_cut = False  # the validation part comes out of the (cut) training part
    if "all" in parts:
        pool = parts["all"]
        pool, test = _carve(pool, split["test"], seed, "test")
        if val_from == "test":  # both held-out parts keep the source's balance
            pool, val = _carve(pool, split["val"] / (1 - split["test"]), seed, "val")
        train = cut_longtail(pool, lt, seed)
        if val_from == "train":
            carved_from_cut = True
            _enough(train, "training", lambda: _fix(_counts(train), lt, split, True))
            train, val = _carve(train, split["val"], seed, "val")
    else:
        train, test = cut_longtail(parts["train"], lt, seed), parts["test"]
        if "val" in parts:
            val = parts["val"]
        elif val_from == "test":
            test, val = _carve(test, split["val"], seed, "val")
        else:
            carved_from_cut = True
            _enough(train, "training", lambda: _fix(_counts(train), lt, split, True))
            train, val = _carve(train, split["val"], seed, "val")
    # the cut's counts: a validation part carved from the cut training part took some of them
    cut = _counts(train) + (_counts(val) if carved_from_cut else 0)
    _enough(train, "training", lambda: _fix(cut, lt, split, carved_from_cut))
    _enough(val, "validation", lambda: _fix(cut, lt, split, carved_from_cut, validation=True))
    return Splits(train, val, test)


MIN_PER_CLASS = 2  # one image gives a per-class F1 of 0 or 1 and nothing to resample from


def _counts(part: ImageSet) -> np.ndarray:
    return np.bincount(part.y, minlength=len(part.class_names))


def _enough(part: ImageSet, name: str, fix: Callable[[], str]) -> None:
    """Every class keeps at least MIN_PER_CLASS images in PART, else exit 2 naming them and FIX."""
    counts = _counts(part)
    few = np.flatnonzero(counts < MIN_PER_CLASS)
    if len(few):
        listed = ", ".join(f"{part.class_names[k]} ({counts[k]})" for k in few)
        raise UserError(f"data: classes with fewer than {MIN_PER_CLASS} {name} images: {listed}; {fix()}")


def _fix(cut: np.ndarray, lt: dict[str, Any], split: dict[str, Any], carved_from_cut: bool,
         validation: bool = False) -> str:
    """What to change when a class has too few images. CUT: the class counts of the long-tailed
    training part before any validation part was carved from it (its head class keeps n_max)."""
    other_val = " or use data.split.val_from: test" if split["val_from"] == "train" else ""
    if validation and not carved_from_cut:
        return f"raise data.split.val (now {split['val']}){other_val}"
    if lt["profile"] == "none":
        return "add images of those classes, or merge or drop them" if not validation else \
            f"raise data.split.val (now {split['val']}){other_val}"
    n_max, k = int(cut.max()), len(cut)
    # the smallest class must keep `need` images: 2, or enough that a stratified validation part
    # of split.val leaves 2 on each side (about: sklearn rounds each class's share)
    need = MIN_PER_CLASS
    if carved_from_cut:
        need = int(np.ceil(MIN_PER_CLASS / min(split["val"], 1 - split["val"])))
    # found with the cut's own arithmetic: int(n_max * ratio^-1) truncates (98 at ratio 49 keeps 1)
    ratio = n_max // need
    while ratio >= 1 and min(longtail_counts(n_max, k, lt["profile"], ratio, float(lt["minority_fraction"]))) < need:
        ratio -= 1
    if ratio <= 1:  # ratio 1 is no cut at all
        return (f"the head class keeps only {n_max} images, too few for a long-tail cut that leaves {need} of every "
                "class: use data.longtail.profile: none" + (", or data.split.val_from: test" if other_val else ""))
    bound = "about" if carved_from_cut else "at most"
    both = " for training and validation" if carved_from_cut else ""
    ways = [f"lower data.longtail.ratio to {bound} {ratio} (the head class keeps {n_max}, the smallest then "
            f"{need}{both})", "use data.longtail.profile: none"] + (["use data.split.val_from: test"] if other_val else [])
    return ", ".join(ways[:-1]) + ", or " + ways[-1]


def check_folds(data_cfg: dict[str, Any], s: Splits) -> None:
    """`data.split.folds` fits the single split `s`: 0 (no k-fold) or at least 2, and few enough that
    every validation fold keeps MIN_PER_CLASS of every class of the non-test pool. Run by the
    launch's data check and `hpo check`, so a k that cannot work ends the launch before any trial."""
    k = int(data_cfg["split"]["folds"])
    if k == 0:
        return
    if k < 2:
        raise UserError(f"data.split.folds: {k} fold is not k-fold (it would train on the single split); "
                        "use 0 for the single split or at least 2")
    counts = _counts(s.train) + _counts(s.val)
    if counts.min() < MIN_PER_CLASS * k:
        c = int(counts.argmin())
        most = counts[c] // MIN_PER_CLASS
        fix = f"lower data.split.folds to at most {most}" if most >= 2 else \
            "use data.split.folds: 0 (the single split) or add images of that class"
        raise UserError(f"data.split.folds: {k} folds need {MIN_PER_CLASS * k} images of each class in the "
                        f"non-test pool; class {s.class_names[c]} has {counts[c]}: {fix}")


def folds(data_cfg: dict[str, Any], s: Splits) -> list[Splits]:
    """`data.split.folds` (k) x `repeats`: stratified folds of the non-test pool, i.e. the single
    split's training and validation parts together (after the long-tail cut, so each validation
    fold keeps the pool's proportions). The test split stays as it is, untouched."""
    check_folds(data_cfg, s)
    k, repeats = int(data_cfg["split"]["folds"]), int(data_cfg["split"]["repeats"])
    if k == 0:
        raise UserError("data.split.folds: 0 means the single split, not k-fold; set it to at least 2")
    pool = ImageSet(np.concatenate([s.train.x, s.val.x]), np.concatenate([s.train.y, s.val.y]), s.class_names)
    from sklearn.model_selection import RepeatedStratifiedKFold  # see `_carve`

    cv = RepeatedStratifiedKFold(n_splits=k, n_repeats=repeats, random_state=int(data_cfg["seed"]))
    return [Splits(_subset(pool, tr), _subset(pool, va), s.test) for tr, va in cv.split(pool.x, pool.y)]
