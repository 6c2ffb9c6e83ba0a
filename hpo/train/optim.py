"""Optimisers, registered by name; `train.optimizer` picks one, its options sit beside it.

Every factory gets the parameters, lr and weight_decay (train fields every optimiser takes);
on CUDA the fused kernels are asked for where torch has them.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

import torch

from hpo.spec import catalog
from hpo.spec.options import Fraction
from hpo.spec.registry import Registry

OPTIMIZERS: Registry[Callable[..., torch.optim.Optimizer]] = Registry(
    catalog.OPTIMIZER, fixed=("params", "lr", "weight_decay"))


@OPTIMIZERS.register("sgd", momentum=Fraction(0.9))
def sgd(params: Iterable[Any], lr: float, weight_decay: float, momentum: float) -> torch.optim.Optimizer:
    """SGD with Nesterov momentum (plain SGD when momentum is 0)."""
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=momentum > 0)


@OPTIMIZERS.register("adamw")
def adamw(params: Iterable[Any], lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW (decoupled weight decay)."""
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def build(model: torch.nn.Module, train_cfg: dict[str, Any]) -> torch.optim.Optimizer:
    """The optimiser of a (resolved) train section: its selector, lr, weight decay and options."""
    opts = {k: v for k, v in train_cfg.items() if k in OPTIMIZERS.options(train_cfg["optimizer"])}
    return OPTIMIZERS.build(train_cfg["optimizer"], params=model.parameters(), lr=train_cfg["lr"],
                            weight_decay=train_cfg["weight_decay"], **opts)
