"""Imbalance-aware losses, registered by name.

Contract (DESIGN.md): `build(name, class_counts, **params)` -> nn.Module called as
`loss(logits (B, K), target int64 (B,))` -> scalar. Any K, CPU or CUDA, float32 or bf16 autocast:
every loss computes in float32 (`logits.float()`) because log-softmax in bf16 loses the small
probabilities that the tail classes live on.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hpo import catalog
from hpo.registry import Registry

LOSSES: Registry[Callable[..., nn.Module]] = Registry("loss", catalog.LOSSES, fixed=("class_counts",))


def build(name: str, class_counts: Sequence[int], **params: float) -> nn.Module:
    return LOSSES.get(name)(class_counts=class_counts, **params)


def effective_number_weights(class_counts: Sequence[int], beta: float) -> torch.Tensor:
    """Cui et al. 2019: w_c = (1 - beta) / (1 - beta^n_c), normalised to sum to K."""
    n = torch.as_tensor(class_counts, dtype=torch.float64)
    w = (1.0 - beta) / (1.0 - torch.pow(beta, n))
    return (w * len(n) / w.sum()).float()


def focal_term(logits: torch.Tensor, target: torch.Tensor, gamma: float) -> torch.Tensor:
    """Per-sample -(1 - p_t)^gamma * log p_t, in float32."""
    logp = F.log_softmax(logits.float(), dim=1).gather(1, target[:, None]).squeeze(1)
    if gamma == 0:
        return -logp
    # (1 - p)^gamma via expm1 stays accurate when p_t -> 1, where 1 - exp(logp) would round to 0
    return -torch.pow(-torch.expm1(logp), gamma) * logp


class FocalLoss(nn.Module):
    def __init__(self, gamma: float, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.gamma = float(gamma)
        self.register_buffer("weight", weight if weight is not None else None, persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        per_sample = focal_term(logits, target, self.gamma)
        if self.weight is not None:
            per_sample = per_sample * self.weight.to(per_sample.device)[target]
        return per_sample.mean()


@LOSSES.register("ce")
def ce(class_counts: Sequence[int]) -> nn.Module:
    return FocalLoss(gamma=0.0)


@LOSSES.register("focal")
def focal(class_counts: Sequence[int], gamma: float = 2.0) -> nn.Module:
    """Lin et al. 2017, alpha-free form."""
    return FocalLoss(gamma=gamma)


@LOSSES.register("cb_focal")
def cb_focal(class_counts: Sequence[int], beta: float = 0.999, gamma: float = 2.0) -> nn.Module:
    """Class-balanced focal loss (Cui et al. 2019), softmax form: focal loss weighted by the
    inverse effective number of samples of the target's class."""
    return FocalLoss(gamma=gamma, weight=effective_number_weights(class_counts, beta))
