"""`train.label_smoothing` for every loss: the loss against the smoothed target distribution.

With eps the smoothing, the target is (1 - eps) one-hot(y) + eps / K uniform. For a loss linear
in its target distribution (cross-entropy and every CE-based loss here) that is exactly
(1 - eps) * loss(logits, y) + eps * mean over classes k of loss(logits, k): what this computes,
in one call of the loss on the batch repeated K times, so any registered loss gets it unchanged.
"""
from __future__ import annotations

import torch
from torch import nn


class LabelSmoothing(nn.Module):
    def __init__(self, loss: nn.Module, eps: float) -> None:
        super().__init__()
        self.loss, self.eps = loss, float(eps)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.eps == 0:
            return self.loss(logits, target)
        b, k = logits.shape
        every = torch.arange(k, device=target.device).repeat_interleave(b)  # class k for each sample
        uniform = self.loss(logits.repeat(k, 1), every)
        return (1 - self.eps) * self.loss(logits, target) + self.eps * uniform
