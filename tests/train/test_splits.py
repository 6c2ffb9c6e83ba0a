"""Long-tail profiles and the digits-LT split."""
from __future__ import annotations

import numpy as np

from hpo.train.splits import prepare
from hpo.train.longtail import exp_profile

DIGITS_LT = {"name": "digits", "seed": 0, "longtail": {"profile": "exp", "ratio": 100, "minority_fraction": 0.5},
             "split": {"val": 0.2, "test": 0.2, "val_from": "test"}, "params": {}}


def test_exp_profile_reproduces_cifar10_lt_ratio_100() -> None:
    assert exp_profile(5000, 10, 100) == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


def test_digits_lt_has_a_long_tailed_train_split_and_balanced_val_and_test() -> None:
    s = prepare(DIGITS_LT)
    assert s.class_counts == [104, 62, 37, 22, 13, 8, 4, 2, 1, 1]
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
    assert profile(auto) == "exp" and prepare(auto).class_counts == [104, 62, 37, 22, 13, 8, 4, 2, 1, 1]
    path = write_npz(tmp_path / "d.npz", per_class=20)
    own = {**auto, "name": "npz", "params": {"file": str(path)}}
    assert profile(own) == "none"
    assert len(set(prepare(own).class_counts)) == 1  # balanced in, balanced out: nothing cut
