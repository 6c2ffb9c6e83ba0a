"""Models, registered by name. Every factory takes num_classes and in_chans from the data."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from hpo import catalog
from hpo.registry import Registry

MODELS: Registry[Callable[..., nn.Module]] = Registry("model", catalog.MODELS, fixed=("num_classes", "in_chans"))


def build(name: str, num_classes: int, in_chans: int, **params: object) -> nn.Module:
    return MODELS.get(name)(num_classes=num_classes, in_chans=in_chans, **params)


def _conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


@MODELS.register("small_cnn")
def small_cnn(num_classes: int, in_chans: int, width: int = 32, dropout: float = 0.0) -> nn.Module:
    """Three 3x3 conv blocks and a linear head: trains on 8x8 digits in well under a second per epoch on CPU."""
    return nn.Sequential(
        _conv_bn(in_chans, width), _conv_bn(width, width), nn.MaxPool2d(2),
        _conv_bn(width, 2 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Dropout(dropout), nn.Linear(2 * width, num_classes),
    )


class CosineLinear(nn.Module):
    """Logits = cosine between the normalised feature and normalised class weights (LDAM's
    NormedLinear): each in [-1, 1], so the loss's scale s sets the logit range."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features).uniform_(-1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(F.normalize(x, dim=1), F.normalize(self.weight, dim=1))


def _last_linear(model: nn.Module) -> tuple[nn.Module, str, nn.Linear]:
    last = None
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Linear):
                last = (parent, name, child)
    if last is None:
        raise ValueError(f"{type(model).__name__} has no nn.Linear classifier head")
    return last


def adapt_head(model: nn.Module, cosine: bool = False, bias_init: float | None = None) -> nn.Module:
    """What a loss asks of the classifier head: a cosine head (LDAM) or a bias start value
    (sigmoid CB focal). Works on any model whose classifier is its last nn.Linear."""
    parent, name, head = _last_linear(model)
    if cosine:
        setattr(parent, name, CosineLinear(head.in_features, head.out_features).to(head.weight.device))
    elif bias_init is not None and head.bias is not None:
        nn.init.constant_(head.bias, bias_init)
    return model
