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

from hpo.spec import catalog
from hpo.spec.options import Num
from hpo.spec.registry import Registry
from hpo.spec.schema import REBALANCE as TABLE

METHODS: Registry[Callable[..., np.ndarray]] = Registry(catalog.REBALANCE, fixed=("y", "rng"))


def threshold_indices(y: np.ndarray, threshold: float, rng: np.random.Generator) -> np.ndarray:
    counts = np.bincount(y)
    rate = threshold / counts[y]  # per image
    copies = np.floor(rate).astype(np.int64) + (rng.random(len(y)) < rate - np.floor(rate))
    return rng.permutation(np.repeat(np.arange(len(y)), copies))


def _by_class_power(y: np.ndarray, power: float, rng: np.random.Generator) -> np.ndarray:
    p = np.bincount(y)[y].astype(np.float64) ** -power
    return rng.choice(len(y), size=len(y), replace=True, p=p / p.sum())


@METHODS.register("none")
def shuffle(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Plain shuffled epochs."""
    return rng.permutation(len(y))


@METHODS.register("threshold", threshold=Num(0, low=0, doc="images per class per epoch; 0 = off"))
def threshold(y: np.ndarray, rng: np.random.Generator, threshold: float) -> np.ndarray:
    """Each class sampled at rate threshold / count (stochastic rounding)."""
    return threshold_indices(y, float(threshold), rng) if threshold > 0 else rng.permutation(len(y))


@METHODS.register("weighted_sampler")
def weighted_sampler(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """N draws with replacement, probability proportional to 1 / n_class."""
    return _by_class_power(y, 1.0, rng)


@METHODS.register("sqrt")
def sqrt(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """N draws with replacement, probability proportional to 1 / sqrt(n_class)."""
    return _by_class_power(y, 0.5, rng)


def epoch_indices(y: np.ndarray, cfg: dict[str, Any], rng: np.random.Generator, epoch: int = 0,
                  epochs: int = 1) -> np.ndarray:
    """A shuffled index order for epoch `epoch` (0-based) under the rebalance section `cfg`."""
    if epoch < math.floor(float(cfg["start"]) * epochs):
        return rng.permutation(len(y))
    order = METHODS.build(cfg["method"], y=y, rng=rng, **{k: v for k, v in cfg.items() if k not in TABLE.fields})
    return order if len(order) else rng.permutation(len(y))  # a tiny threshold may draw nothing
