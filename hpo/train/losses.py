"""Imbalance-aware losses, registered by name, faithful to their papers.

Contract: `build(name, class_counts, **params)` -> nn.Module called as
`loss(logits (B, K), target int64 (B,))` -> scalar. Any K, CPU or CUDA, float32 or bf16
autocast: every loss computes in float32 (`logits.float()`), because a bf16 log-softmax loses
the small probabilities the tail classes live on.

Every loss is an `ImbalanceLoss`: it computes a per-sample loss l and, when class weights w
are set, reduces it as the loss section's `reduction` says: `weighted_mean` sum(w[y] l) /
sum(w[y]) (the default: PyTorch's `cross_entropy(weight=w)`, LDAM-DRW's code) or `mean`
mean(w[y] l) (Cui et al. 2019's TF code). Without class weights both are the plain mean. Class
weights are normalised to sum to K (Cui et al.), which only matters to `mean`: there switching
them on does not change the loss scale on a balanced set.
Deferred re-weighting (DRW, Cao et al. 2019) is available to every loss: from the epoch
`drw_start * epochs` on, the class weights become the effective-number weights with `drw_beta`
(they replace any weights the loss had; drw_start 1.0 = never).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hpo.errors import UserError
from hpo.spec import catalog
from hpo.spec.options import Fraction, Num, Str
from hpo.spec.registry import Registry
from hpo.spec.schema import LOSS

LOSSES: Registry[Callable[..., "ImbalanceLoss"]] = Registry(catalog.LOSS, fixed=("class_counts",))


def build(name: str, class_counts: Sequence[int], **params: float | str) -> "ImbalanceLoss":
    """The loss `name` with its declared defaults; the loss section's own fields, taken by every
    loss: drw_start / drw_beta switch on deferred re-weighting, reduction picks how class
    weights reduce the batch."""
    own = {k: params.pop(k, LOSS.fields[k].default) for k in ("drw_start", "drw_beta", "reduction")}
    problem = LOSS.fields["reduction"].problem(own["reduction"])
    if problem:
        raise UserError(f"loss reduction {own['reduction']!r}: {problem}")
    loss = LOSSES.build(name, class_counts=class_counts, **params)
    loss.configure_drw(class_counts, own["drw_start"], own["drw_beta"])
    loss.reduction = own["reduction"]
    return loss


def normalise(w: torch.Tensor) -> torch.Tensor:
    return (w * len(w) / w.sum()).float()


def effective_number_weights(class_counts: Sequence[int], beta: float) -> torch.Tensor:
    """Cui et al. 2019: w_c = (1 - beta) / (1 - beta^n_c), normalised to sum to K."""
    n = torch.as_tensor(class_counts, dtype=torch.float64)
    if beta == 0:
        return torch.ones(len(n))
    return normalise((1.0 - beta) / (1.0 - torch.pow(beta, n)))


# weighting name -> class weights from counts (INS / ISNS / ENS of the EfficientNet write-up)
WEIGHTINGS: dict[str, Callable[[Sequence[int], float], torch.Tensor]] = {
    "ins": lambda n, beta: normalise(1.0 / torch.as_tensor(n, dtype=torch.float64)),
    "isns": lambda n, beta: normalise(1.0 / torch.as_tensor(n, dtype=torch.float64).sqrt()),
    "ens": effective_number_weights,
}


class ImbalanceLoss(nn.Module):
    """Base: per-sample loss + optional class weights + optional deferred re-weighting."""

    needs_cosine_head = False  # LDAM: the loop swaps the model's last Linear for a cosine one
    head_bias_init: float | None = None  # sigmoid CB focal: the loop sets the head bias to this
    reduction: str = LOSS.fields["reduction"].default  # `build` sets the study's choice

    def __init__(self, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        # buffers, so `.to(device)` moves every tensor the loss reads: no host copy per step, and
        # DRW's weights switch on as the very tensor already on the device (a captured step then
        # sees one new weight tensor at the switch, not a fresh copy each epoch)
        self.register_buffer("weight", weight, persistent=False)
        self.register_buffer("drw_weight", None, persistent=False)
        self.drw_start = 1.0

    def configure_drw(self, class_counts: Sequence[int], start: float, beta: float) -> None:
        self.drw_start = float(start)
        if self.drw_start < 1.0:
            self.drw_weight = effective_number_weights(class_counts, beta).to(self._device())

    def _device(self) -> torch.device:
        return next((b.device for b in self.buffers()), torch.device("cpu"))

    def start_epoch(self, epoch: int, epochs: int) -> None:
        """Called by the loop before each epoch (0-based): switches DRW weights on when due."""
        if self.drw_weight is not None and epoch >= math.floor(self.drw_start * epochs):
            self.weight = self.drw_weight

    def per_sample(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = self.per_sample(logits.float(), target)
        if self.weight is None:
            return loss.mean()
        w = self.weight.to(loss.device)[target]  # a no-op once the loop has moved the loss (`.to`)
        if self.reduction == "weighted_mean":
            return (w * loss).sum() / w.sum()
        return (w * loss).mean()


def focal_term(logits: torch.Tensor, target: torch.Tensor, gamma: float) -> torch.Tensor:
    """Per-sample -(1 - p_t)^gamma * log p_t."""
    logp = F.log_softmax(logits, dim=1).gather(1, target[:, None]).squeeze(1)
    if gamma == 0:
        return -logp
    # (1 - p)^gamma via expm1 stays accurate as p_t -> 1, where 1 - exp(logp) rounds to 0. Once
    # logp is exactly 0 (a confident right answer: logits [18, 0, 0] in float32) the power's
    # derivative gamma * 0^(gamma - 1) is inf for 0 < gamma < 1 and inf * 0 gives NaN gradients;
    # clamping the base at the smallest normal float keeps it finite, and the clamp passes no
    # gradient there (the true one is 0). Bases above that are untouched: values stay exact.
    one_minus_p = (-torch.expm1(logp)).clamp_min(torch.finfo(logp.dtype).tiny)
    return -torch.pow(one_minus_p, gamma) * logp


class PerSample(ImbalanceLoss):
    """A loss from a per-sample function of (float32 logits, target): what a new loss needs when
    class weights and DRW are all it shares with the others."""

    def __init__(self, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                 weight: torch.Tensor | None = None) -> None:
        super().__init__(weight)
        self.fn = fn

    def per_sample(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.fn(logits, target)


class FocalLoss(ImbalanceLoss):
    def __init__(self, gamma: float, weight: torch.Tensor | None = None) -> None:
        super().__init__(weight)
        self.gamma = float(gamma)

    def per_sample(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return focal_term(logits, target, self.gamma)


class SigmoidFocalLoss(ImbalanceLoss):
    """Cui et al. 2019's sigmoid form: a binary focal loss per class on one-hot labels, summed
    over classes. As in their code the classifier bias starts at b = -log((1 - pi) / pi) =
    -log(K - 1) with prior pi = 1/K, so every class starts at probability 1/K and the K-1
    negatives don't swamp the first steps (K = 2: b = 0); the loop applies it through
    `head_bias_init`. The modulator is an exp of a finite number, so no power of 0 arises here."""

    def __init__(self, gamma: float, num_classes: int, weight: torch.Tensor | None = None) -> None:
        super().__init__(weight)
        if num_classes < 2:
            raise ValueError(f"the sigmoid focal loss needs at least 2 classes, not {num_classes}")
        self.gamma = float(gamma)
        self.head_bias_init = -math.log(num_classes - 1)

    def per_sample(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        onehot = F.one_hot(target, logits.shape[1]).float()
        bce = F.binary_cross_entropy_with_logits(logits, onehot, reduction="none")
        # (1 - p_t)^gamma written as exp(-gamma * (y z + log(1 + e^-z))), stable for large |z|
        modulator = torch.exp(-self.gamma * (onehot * logits + F.softplus(-logits))) if self.gamma else 1.0
        return (modulator * bce).sum(dim=1)


class AdjustedCE(ImbalanceLoss):
    """Cross-entropy on logits + a fixed per-class offset (balanced softmax, logit adjustment),
    or minus a margin on the target logit, times a scale (LDAM)."""

    def __init__(self, offset: torch.Tensor | None = None, margin: torch.Tensor | None = None,
                 scale: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("offset", offset, persistent=False)
        self.register_buffer("margin", margin, persistent=False)
        self.scale = float(scale)

    def per_sample(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.offset is not None:
            logits = logits + self.offset.to(logits.device)
        if self.margin is not None:
            m = self.margin.to(logits.device)[target]
            logits = logits - F.one_hot(target, logits.shape[1]) * m[:, None]
        return F.cross_entropy(self.scale * logits, target, reduction="none")


class RecallLoss(ImbalanceLoss):
    """Tian et al. (recall loss): CE weighted per class by that class's false-negative rate in
    the batch (1 - recall, from hard predictions, no gradient through it); absent classes weigh 1."""

    def per_sample(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        k = logits.shape[1]
        with torch.no_grad():
            wrong = (logits.argmax(1) != target).float()
            n = torch.zeros(k, device=logits.device).index_add_(0, target, torch.ones_like(wrong))
            fn = torch.zeros(k, device=logits.device).index_add_(0, target, wrong)
            fnr = torch.where(n > 0, fn / n.clamp_min(1), torch.ones_like(n))
        return fnr[target] * F.cross_entropy(logits, target, reduction="none")


def _log_counts(class_counts: Sequence[int]) -> torch.Tensor:
    return torch.log(torch.as_tensor(class_counts, dtype=torch.float32))


@LOSSES.register("ce")
def ce(class_counts: Sequence[int]) -> ImbalanceLoss:
    return FocalLoss(gamma=0.0)


@LOSSES.register("weighted_ce", weighting=Str("ens", ("ins", "isns", "ens")), beta=Fraction(0.999))
def weighted_ce(class_counts: Sequence[int], weighting: str, beta: float) -> ImbalanceLoss:
    """CE with class weights: ins 1/n_c, isns 1/sqrt(n_c), ens (1 - beta)/(1 - beta^n_c); sum K."""
    return FocalLoss(gamma=0.0, weight=WEIGHTINGS[weighting](class_counts, beta))


@LOSSES.register("focal", gamma=Num(2.0, low=0))
def focal(class_counts: Sequence[int], gamma: float) -> ImbalanceLoss:
    """Lin et al. 2017, alpha-free form."""
    return FocalLoss(gamma=gamma)


@LOSSES.register("cb_focal", beta=Fraction(0.999), gamma=Num(2.0, low=0), form=Str("softmax", ("softmax", "sigmoid")))
def cb_focal(class_counts: Sequence[int], beta: float, gamma: float, form: str) -> ImbalanceLoss:
    """Class-balanced focal loss (Cui et al. 2019): focal loss weighted by the inverse effective
    number of samples of the target's class; `form: sigmoid` is the paper's own variant."""
    weight = effective_number_weights(class_counts, beta)
    if form == "sigmoid":
        return SigmoidFocalLoss(gamma=gamma, num_classes=len(class_counts), weight=weight)
    return FocalLoss(gamma=gamma, weight=weight)


# C: the rarest class's margin, any sign (one write-up searched -2..2); s: the logit scale
@LOSSES.register("ldam", C=Num(0.5), s=Num(30.0, 0, low_open=True))
def ldam(class_counts: Sequence[int], C: float, s: float) -> ImbalanceLoss:
    """LDAM (Cao et al. 2019): margins proportional to n_c^(-1/4), the rarest class's margin is
    C; logits are scaled by s and come from a cosine-normalised head (the loop swaps it in)."""
    m = torch.as_tensor(class_counts, dtype=torch.float64) ** -0.25
    loss = AdjustedCE(margin=(m * (C / m.max())).float(), scale=s)
    loss.needs_cosine_head = True
    return loss


@LOSSES.register("recall")
def recall(class_counts: Sequence[int]) -> ImbalanceLoss:
    return RecallLoss()


@LOSSES.register("balanced_softmax")
def balanced_softmax(class_counts: Sequence[int]) -> ImbalanceLoss:
    """Ren et al. 2020: softmax over logits + log n_c."""
    return AdjustedCE(offset=_log_counts(class_counts))


@LOSSES.register("logit_adjusted", tau=Num(1.0))
def logit_adjusted(class_counts: Sequence[int], tau: float) -> ImbalanceLoss:
    """Menon et al. 2021: logits + tau * log prior (tau 1 = balanced softmax up to a constant)."""
    log_prior = _log_counts(class_counts) - math.log(float(sum(class_counts)))
    return AdjustedCE(offset=tau * log_prior)


@LOSSES.register("poly1", epsilon=Num(1.0, doc="weight of the (1 - p_t) term"))
def poly1(class_counts: Sequence[int], epsilon: float) -> ImbalanceLoss:
    """Poly-1 (Leng et al. 2022): CE + epsilon * (1 - p_t)."""
    def per_sample(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(logits, target, reduction="none")
        return ce + epsilon * (1 - torch.exp(-ce))

    return PerSample(per_sample)
