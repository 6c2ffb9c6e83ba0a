"""Which training indices an epoch visits: the rebalancing samplers, registered by name.

- `threshold` (the EfficientNet CIFAR-50 write-up): every class is sampled at rate
  threshold / count, so each contributes about `threshold` images per epoch: the head is
  down-sampled, the tail up-sampled. A fractional rate is rounded stochastically per image
  (rate 2.4 -> 2 copies, plus a third with probability 0.4), so tail images with rate >= 1
  are all seen every epoch. threshold 0 = off.
- `weighted_sampler`: N draws with replacement, image probability proportional to 1 / n_class
  (PyTorch's WeightedRandomSampler with inverse-frequency weights): classes equal in expectation.
- `sqrt`: N draws with replacement, probability proportional to 1 / sqrt(n_class): class c gets
  a share proportional to sqrt(n_c), between instance-balanced and class-balanced.
- `start`: deferred rebalancing; plain shuffled epochs before `start * epochs`.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

Sampler = Callable[[np.ndarray, dict[str, Any], np.random.Generator], np.ndarray]


def threshold_indices(y: np.ndarray, threshold: float, rng: np.random.Generator) -> np.ndarray:
    counts = np.bincount(y)
    rate = threshold / counts[y]  # per image
    copies = np.floor(rate).astype(np.int64) + (rng.random(len(y)) < rate - np.floor(rate))
    return rng.permutation(np.repeat(np.arange(len(y)), copies))


def _by_class_power(y: np.ndarray, power: float, rng: np.random.Generator) -> np.ndarray:
    p = np.bincount(y)[y].astype(np.float64) ** -power
    return rng.choice(len(y), size=len(y), replace=True, p=p / p.sum())


def _shuffle(y: np.ndarray, cfg: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(len(y))


def _threshold(y: np.ndarray, cfg: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    threshold = float(cfg.get("threshold", 0) or 0)
    return threshold_indices(y, threshold, rng) if threshold > 0 else rng.permutation(len(y))


SAMPLERS: dict[str, Sampler] = {
    "none": _shuffle,
    "threshold": _threshold,
    "weighted_sampler": lambda y, cfg, rng: _by_class_power(y, 1.0, rng),
    "sqrt": lambda y, cfg, rng: _by_class_power(y, 0.5, rng),
}


def epoch_indices(y: np.ndarray, cfg: dict[str, Any], rng: np.random.Generator, epoch: int = 0,
                  epochs: int = 1) -> np.ndarray:
    """A shuffled index order for epoch `epoch` (0-based) under the study's rebalancing settings."""
    if epoch < math.floor(float(cfg.get("start", 0.0)) * epochs):
        return rng.permutation(len(y))
    order = SAMPLERS[cfg.get("method", "threshold")](y, cfg, rng)
    return order if len(order) else rng.permutation(len(y))  # a tiny threshold may draw nothing
