"""Optimisers, registered by name; `train.optimizer` picks one, its options sit beside it.

Every factory gets the parameter groups, lr and weight_decay (train fields every optimiser
takes) and `fused`: on CUDA torch's fused kernels (one kernel for the whole update, not one per
tensor) where torch has them. The groups put the classifier head at lr and the rest (the
backbone) at lr * train.backbone_lr_mult: fine-tuning a pretrained network wants the head to
move faster than the features.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

import torch

from hpo.spec import catalog
from hpo.spec.options import Fraction
from hpo.spec.registry import Registry

OPTIMIZERS: Registry[Callable[..., torch.optim.Optimizer]] = Registry(
    catalog.OPTIMIZER, fixed=("params", "lr", "weight_decay", "fused"))
Groups = Iterable[dict[str, Any]]


@OPTIMIZERS.register("sgd", momentum=Fraction(0.9))
def sgd(params: Groups, lr: float, weight_decay: float, fused: bool, momentum: float) -> torch.optim.Optimizer:
    """SGD with Nesterov momentum (plain SGD when momentum is 0)."""
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=momentum > 0,
                           fused=fused or None)


@OPTIMIZERS.register("adam")
def adam(params: Groups, lr: float, weight_decay: float, fused: bool) -> torch.optim.Optimizer:
    """Adam (weight decay as L2 on the gradient)."""
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=fused or None)


@OPTIMIZERS.register("adamw")
def adamw(params: Groups, lr: float, weight_decay: float, fused: bool) -> torch.optim.Optimizer:
    """AdamW (decoupled weight decay)."""
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused or None)


def _timm(name: str, doc: str) -> None:
    """An optimiser from timm's factory (its foreach kernels on CUDA)."""
    def factory(params: Groups, lr: float, weight_decay: float, fused: bool) -> torch.optim.Optimizer:
        from timm.optim import create_optimizer_v2

        return create_optimizer_v2(list(params), opt=name, lr=lr, weight_decay=weight_decay, foreach=fused or None)

    factory.__doc__ = doc
    OPTIMIZERS.register(name)(factory)


for _name, _doc in (("nadam", "NAdam (timm)."), ("radam", "RAdam (timm)."), ("rmsprop", "RMSprop (timm, TF-style)."),
                    ("lamb", "LAMB (timm): layer-wise adaptive large-batch optimiser.")):
    _timm(_name, _doc)


def param_groups(model: torch.nn.Module, head: torch.nn.Module, lr: float, backbone_lr_mult: float) -> list[dict]:
    """The head's parameters at lr, every other parameter at lr * backbone_lr_mult."""
    head_ids = {id(p) for p in head.parameters()}
    rest = [p for p in model.parameters() if id(p) not in head_ids]
    groups = [{"params": list(head.parameters()), "lr": lr, "role": "head"}]
    if rest:
        groups.append({"params": rest, "lr": lr * backbone_lr_mult, "role": "backbone"})
    return groups


def build(model: torch.nn.Module, head: torch.nn.Module, train_cfg: dict[str, Any]) -> torch.optim.Optimizer:
    """The optimiser of a (resolved) train section: its selector, lr, weight decay and options."""
    opts = {k: v for k, v in train_cfg.items() if k in OPTIMIZERS.options(train_cfg["optimizer"])}
    fused = next(model.parameters()).is_cuda
    groups = param_groups(model, head, train_cfg["lr"], train_cfg["backbone_lr_mult"])
    return OPTIMIZERS.build(train_cfg["optimizer"], params=groups, lr=train_cfg["lr"],
                            weight_decay=train_cfg["weight_decay"], fused=fused, **opts)
