"""Long-tail profiles and the digits-LT split."""
from __future__ import annotations

import numpy as np

import pytest

from hpo.errors import UserError
from hpo.train.splits import prepare
from hpo.train.longtail import exp_profile

DIGITS_LT = {"name": "digits", "seed": 0, "longtail": {"profile": "exp", "ratio": 50, "minority_fraction": 0.5},
             "split": {"val": 0.2, "test": 0.2, "val_from": "test"}, "params": {}}


def test_exp_profile_reproduces_cifar10_lt_ratio_100() -> None:
    assert exp_profile(5000, 10, 100) == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


def test_digits_lt_has_a_long_tailed_train_split_and_balanced_val_and_test() -> None:
    s = prepare(DIGITS_LT)
    assert s.class_counts == [104, 67, 43, 28, 18, 11, 7, 4, 3, 2]
    for part in (s.val, s.test):
        n = np.bincount(part.y)
        assert n.min() >= 34 and n.max() <= 38  # stratified from the balanced source
    assert s.train.x.dtype == np.uint8 and s.train.x.shape[1:] == (1, 8, 8)


def test_split_is_reproducible_from_the_seed() -> None:
    a, b = prepare(DIGITS_LT), prepare(DIGITS_LT)
    assert np.array_equal(a.train.x, b.train.x) and np.array_equal(a.val.y, b.val.y)
    c = prepare({**DIGITS_LT, "seed": 1})
    assert not np.array_equal(a.train.x, c.train.x)


def test_auto_profile_cuts_benchmarks_only_never_a_users_own_data(tmp_path) -> None:
    from datafiles import write_npz

    from hpo.train.splits import profile

    auto = {**DIGITS_LT, "longtail": {**DIGITS_LT["longtail"], "profile": "auto"}}
    assert profile(auto) == "exp" and prepare(auto).class_counts == [104, 67, 43, 28, 18, 11, 7, 4, 3, 2]
    path = write_npz(tmp_path / "d.npz", per_class=20)
    own = {**auto, "name": "npz", "params": {"file": str(path)}}
    assert profile(own) == "none"
    assert len(set(prepare(own).class_counts)) == 1  # balanced in, balanced out: nothing cut


def test_a_cut_leaving_a_class_one_training_image_exits_2_with_the_largest_ratio_that_fits() -> None:
    # ratio 100 on digits keeps int(104 / 100) = 1 image of classes 8 and 9: one image gives an F1 of
    # 0 or 1 and nothing to resample from, so it is refused, naming the classes and the fix
    steep = {**DIGITS_LT, "longtail": {**DIGITS_LT["longtail"], "ratio": 100}}
    with pytest.raises(UserError, match=r"fewer than 2 training images: 8 \(1\), 9 \(1\); lower "
                                        r"data.longtail.ratio to at most 52"):
        prepare(steep)
    at_most = {**DIGITS_LT, "longtail": {**DIGITS_LT["longtail"], "ratio": 52}}
    assert min(prepare(at_most).class_counts) == 2  # the suggested ratio does fit


def test_a_users_class_with_one_training_image_exits_2(tmp_path) -> None:
    from datafiles import write_npz

    path = write_npz(tmp_path / "d.npz", per_class=20)
    arrays = dict(np.load(path))
    keep = np.flatnonzero(arrays["y"] != 2)[:]  # class 2 keeps 3 images: one per split part
    keep = np.sort(np.concatenate([keep, np.flatnonzero(arrays["y"] == 2)[:3]]))
    np.savez(path, **{k: v[keep] for k, v in arrays.items()})
    own = {**DIGITS_LT, "name": "npz", "params": {"file": str(path)}, "longtail": {**DIGITS_LT["longtail"], "profile": "auto"}}
    with pytest.raises(UserError, match=r"fewer than 2 (training|validation) images: 2 \(1\)"):
        prepare(own)
