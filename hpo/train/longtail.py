"""Long-tail profiles: how many training images each class keeps (class 0 is the head)."""
from __future__ import annotations

from typing import Callable

import numpy as np


def exp_profile(n_max: int, k: int, ratio: float, minority_fraction: float = 0.5) -> list[int]:
    """n_i = n_max * ratio^(-i / (K - 1)), truncated to int as in Cao et al. 2019 (LDAM-DRW code)."""
    if k == 1:
        return [n_max]
    return [int(n_max * ratio ** (-i / (k - 1))) for i in range(k)]


def step_profile(n_max: int, k: int, ratio: float, minority_fraction: float = 0.5) -> list[int]:
    """The last round(minority_fraction * K) classes keep n_max / ratio images, the rest n_max
    (Cao et al. 2019's step imbalance, mu = minority_fraction)."""
    n_minority = int(round(minority_fraction * k))
    return [n_max] * (k - n_minority) + [int(n_max / ratio)] * n_minority


PROFILES: dict[str, Callable[[int, int, float, float], list[int]]] = {"exp": exp_profile, "step": step_profile}


def longtail_counts(n_max: int, k: int, profile: str, ratio: float, minority_fraction: float = 0.5) -> list[int]:
    return [max(1, c) for c in PROFILES[profile](n_max, k, ratio, minority_fraction)]


def take_counts(y: np.ndarray, counts: list[int], seed: int) -> np.ndarray:
    """Indices keeping counts[c] seeded-random images of each class c (sorted, reproducible)."""
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(np.flatnonzero(y == c))[:n] for c, n in enumerate(counts)]
    return np.sort(np.concatenate(keep))
