"""Rebalancing samplers: per-epoch class counts as specified (seeded statistical tests)."""
from __future__ import annotations

import numpy as np
import pytest

from hpo.train.rebalance import epoch_indices, threshold_indices

Y = np.repeat(np.arange(4), [500, 100, 20, 3])


def class_counts_over(cfg: dict, epochs: int = 200, seed: int = 0) -> np.ndarray:
    cfg = {"start": 0.0, **cfg}  # a rebalance section as the validator fills it
    rng = np.random.default_rng(seed)
    return np.array([np.bincount(Y[epoch_indices(Y, cfg, rng)], minlength=4) for _ in range(epochs)])


def test_threshold_resampling_hits_the_threshold_and_sees_every_tail_image() -> None:
    per_epoch = class_counts_over({"method": "threshold", "threshold": 60})
    # expected 60 per class; the head (rate 0.12) has binomial sd ~7.3 per epoch, ~0.5 over 200
    assert per_epoch.mean(axis=0) == pytest.approx([60, 60, 60, 60], abs=2.0)
    idx = threshold_indices(Y, 60, np.random.default_rng(1))
    tail = np.flatnonzero(Y == 3)
    assert np.bincount(idx, minlength=len(Y))[tail].tolist() == [20, 20, 20]  # rate 20: each exactly 20x
    mid = np.flatnonzero(Y == 2)  # rate 3: each of the 20 images exactly 3 times
    assert set(np.bincount(idx, minlength=len(Y))[mid].tolist()) == {3}


def test_threshold_0_is_a_plain_shuffle() -> None:
    order = epoch_indices(Y, {"method": "threshold", "threshold": 0, "start": 0.0}, np.random.default_rng(0))
    assert sorted(order.tolist()) == list(range(len(Y)))


def test_weighted_sampler_balances_classes_in_expectation() -> None:
    per_epoch = class_counts_over({"method": "weighted_sampler"}, epochs=100)
    share = per_epoch.sum(axis=0) / per_epoch.sum()
    assert share == pytest.approx([0.25] * 4, abs=0.01)
    assert per_epoch.sum(axis=1).tolist() == [len(Y)] * 100  # N draws per epoch


def test_sqrt_sampling_gives_shares_proportional_to_sqrt_counts() -> None:
    per_epoch = class_counts_over({"method": "sqrt"}, epochs=100)
    share = per_epoch.sum(axis=0) / per_epoch.sum()
    expected = np.sqrt([500, 100, 20, 3]) / np.sqrt([500, 100, 20, 3]).sum()
    assert share == pytest.approx(expected, abs=0.01)


def test_deferred_rebalancing_starts_at_its_fraction() -> None:
    cfg = {"method": "weighted_sampler", "start": 0.5}
    rng = np.random.default_rng(0)
    early = epoch_indices(Y, cfg, rng, epoch=4, epochs=10)
    late = epoch_indices(Y, cfg, rng, epoch=5, epochs=10)
    assert sorted(early.tolist()) == list(range(len(Y)))  # plain shuffle before epoch 5
    assert np.bincount(Y[late], minlength=4)[3] > 50  # rebalanced: the 3-image class is drawn ~156 times
