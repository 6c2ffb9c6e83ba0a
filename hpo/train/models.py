"""Models, registered by name. Every factory takes num_classes and in_chans from the data."""
from __future__ import annotations

import difflib
import sys
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from hpo.errors import UserError
from hpo.spec import catalog
from hpo.spec.options import Fraction, Int, Option, Str
from hpo.spec.registry import Registry
from hpo.train.cifar_resnet import CifarResNet

MODELS: Registry[Callable[..., nn.Module]] = Registry(catalog.MODEL, fixed=("num_classes", "in_chans"))


def build(name: str, num_classes: int, in_chans: int, **params: object) -> nn.Module:
    return MODELS.build(name, num_classes=num_classes, in_chans=in_chans, **params)


def _conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


@MODELS.register("small_cnn", width=Int(32, low=1), dropout=Fraction(0.0))
def small_cnn(num_classes: int, in_chans: int, width: int, dropout: float) -> nn.Module:
    """Three 3x3 conv blocks and a linear head: trains on 8x8 digits in well under a second per epoch on CPU."""
    return nn.Sequential(
        _conv_bn(in_chans, width), _conv_bn(width, width), nn.MaxPool2d(2),
        _conv_bn(width, 2 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Dropout(dropout), nn.Linear(2 * width, num_classes),
    )


def _cifar_resnet(depth: int) -> Callable[..., nn.Module]:
    def factory(num_classes: int, in_chans: int) -> nn.Module:
        return CifarResNet(depth, num_classes, in_chans)

    factory.__doc__ = f"CIFAR ResNet-{depth} (3x3 stem, no max-pool, option-A shortcuts)."
    return factory


for _depth in (8, 20, 32):
    MODELS.register(f"cifar_resnet{_depth}")(_cifar_resnet(_depth))


@MODELS.register("timm", arch=Str("resnet18"), weights=Option("file", None, doc="a local weights file"),
                 drop_rate=Fraction(0.0))
def timm_model(num_classes: int, in_chans: int, arch: str, weights: str | None, drop_rate: float) -> nn.Module:
    """Any timm architecture, randomly initialised; `weights` loads a local state dict
    (torch.load with weights_only=True). Never downloads: pretrained=False always."""
    import timm

    check_timm_arch(arch)
    model = timm.create_model(arch, pretrained=False, num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate)
    if weights:
        load_weights(model, weights)
    return model


def check_timm_arch(arch: str, where: str = "model.arch") -> None:
    import timm

    if not timm.is_model(arch):
        close = difflib.get_close_matches(arch, timm.list_models(), n=5)
        raise UserError(f"{where} {arch!r} is not a timm model; close names: {', '.join(close) or '(none)'}")


def load_weights(model: nn.Module, path: str) -> list[str]:
    """Load what fits from a local checkpoint; tensors whose shape differs (a head for another
    number of classes, a stem for other channels) are skipped and named. Returns their names."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    own = model.state_dict()
    fits = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    skipped = sorted(set(state) - set(fits))
    if not fits:
        raise UserError(f"model.weights {path}: no tensor matches this model's parameters; wrong architecture?")
    model.load_state_dict(fits, strict=False)
    if skipped:
        print(f"model.weights: kept {len(fits)} tensors, skipped {len(skipped)} that differ "
              f"(first: {', '.join(skipped[:3])})", file=sys.stderr)
    return skipped


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
