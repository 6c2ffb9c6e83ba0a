"""Which training indices an epoch visits.

Threshold resampling (from the EfficientNet CIFAR-50 write-up): every class is sampled at
rate threshold / count, so each class contributes about `threshold` images per epoch:
the head is down-sampled, the tail up-sampled. A fractional rate is rounded stochastically
per image (rate 2.4 -> 2 copies, plus a third with probability 0.4), so tail images with
rate >= 1 are all seen every epoch.
"""
from __future__ import annotations

import numpy as np


def threshold_indices(y: np.ndarray, threshold: float, rng: np.random.Generator) -> np.ndarray:
    counts = np.bincount(y)
    rate = threshold / counts[y]  # per image
    copies = np.floor(rate).astype(np.int64) + (rng.random(len(y)) < rate - np.floor(rate))
    return rng.permutation(np.repeat(np.arange(len(y)), copies))


def epoch_indices(y: np.ndarray, rebalance: dict, rng: np.random.Generator) -> np.ndarray:
    """A shuffled index order for one epoch under the study's rebalancing settings."""
    threshold = float(rebalance.get("threshold", 0) or 0)
    if threshold > 0:
        return threshold_indices(y, threshold, rng)
    return rng.permutation(len(y))
