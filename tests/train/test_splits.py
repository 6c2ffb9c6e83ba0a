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


def test_the_suggested_ratio_follows_the_cuts_own_truncation(tmp_path) -> None:
    from datafiles import write_npz

    # 164 a class leaves a head of 98 after the test and validation parts: 98 * 49^-1 is
    # 1.999... in floating point, which the cut truncates to 1, so 98 // 2 = 49 would not fit
    path = write_npz(tmp_path / "d.npz", per_class=164)
    cfg = {**DIGITS_LT, "name": "npz", "params": {"file": str(path)}}
    at = lambda r: {**cfg, "longtail": {**cfg["longtail"], "ratio": r}}  # noqa: E731
    with pytest.raises(UserError, match=r"9 \(1\); lower data.longtail.ratio to at most 48 \(the head class keeps 98"):
        prepare(at(60))
    with pytest.raises(UserError, match=r"9 \(1\)"):
        prepare(at(49))
    assert min(prepare(at(48)).class_counts) == 2


def test_a_validation_part_carved_from_the_cut_asks_for_a_ratio_that_leaves_both_parts_two() -> None:
    carved = {**DIGITS_LT, "split": {**DIGITS_LT["split"], "val_from": "train"}}
    for ratio, short in ((100, r"training images: 9 \(1\)"), (60, r"validation images: 7 \(1\), 8 \(1\), 9 \(0\)")):
        with pytest.raises(UserError, match=short + r"; lower data.longtail.ratio to about 13 \(the head class keeps "
                                              r"139, the smallest then 10 for training and validation\), use "
                                              r"data.longtail.profile: none, or use data.split.val_from: test"):
            prepare({**carved, "longtail": {**carved["longtail"], "ratio": ratio}})
    s = prepare({**carved, "longtail": {**carved["longtail"], "ratio": 13}})
    assert min(s.class_counts) >= 2 and np.bincount(s.val.y).min() >= 2


def test_hpo_check_refuses_a_cut_that_leaves_one_image(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from conftest import write_study
    from hpo.cli import main

    write_study(tmp_path, "steep", data={"longtail": {"profile": "exp", "ratio": 100}})
    assert main(["check", "--study", "steep", "--spaces-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "classes with fewer than 2 training images: 8 (1), 9 (1)" in err, err
    assert "lower data.longtail.ratio to at most 52" in err


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


def test_k_fold_covers_the_non_test_pool_once_per_repeat_and_leaves_test_alone() -> None:
    from hpo.train.splits import folds

    cfg = {**DIGITS_LT, "split": {**DIGITS_LT["split"], "folds": 3, "repeats": 2}}
    single = prepare(cfg)
    parts = folds(cfg, single)
    assert len(parts) == 6
    pool = len(single.train.y) + len(single.val.y)
    for r in range(2):  # each repeat's validation folds partition the pool
        val_sizes = [len(p.val.y) for p in parts[3 * r:3 * r + 3]]
        assert sum(val_sizes) == pool and all(len(p.train.y) + len(p.val.y) == pool for p in parts[3 * r:3 * r + 3])
        seen = np.concatenate([p.val.x.reshape(len(p.val.y), -1) for p in parts[3 * r:3 * r + 3]])
        assert len(np.unique(seen, axis=0)) == len(np.unique(np.concatenate(
            [single.train.x, single.val.x]).reshape(pool, -1), axis=0))  # every pool image, once
    for p in parts:  # stratified: each fold's validation keeps the pool's class proportions
        assert np.array_equal(p.test.y, single.test.y) and p.test.x is single.test.x
        share = np.bincount(p.val.y, minlength=10) / len(p.val.y)
        whole = np.bincount(np.concatenate([single.train.y, single.val.y]), minlength=10) / pool
        assert np.abs(share - whole).max() < 0.02


def test_k_fold_settings_that_cannot_work_exit_2() -> None:
    from hpo.train.splits import folds

    single = prepare(DIGITS_LT)
    with pytest.raises(UserError, match=r"1 fold is not k-fold"):
        folds({**DIGITS_LT, "split": {**DIGITS_LT["split"], "folds": 1, "repeats": 1}}, single)
    with pytest.raises(UserError, match=r"40 folds need 80 images of each class.*class 8 has 38: lower data.split.folds to at most 19"):
        folds({**DIGITS_LT, "split": {**DIGITS_LT["split"], "folds": 40, "repeats": 1}}, single)


@pytest.mark.parametrize("k, said", [(20, "20 folds need 40 images of each class in the non-test pool; class 8 has 38: "
                                          "lower data.split.folds to at most 19"),
                                     (1, "1 fold is not k-fold (it would train on the single split); use 0")])
def test_hpo_check_refuses_a_k_fold_that_cannot_work(tmp_path, capsys: pytest.CaptureFixture[str], k: int,
                                                     said: str) -> None:
    # 20 folds passed the check, then every trial FAILed; 1 fold silently trained on the single split
    from conftest import write_study
    from hpo.cli import main

    write_study(tmp_path, "kf", data={"split": {"val": 0.2, "test": 0.2, "folds": k}})
    assert main(["check", "--study", "kf", "--spaces-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and said in err, err
