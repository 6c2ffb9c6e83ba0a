"""Models, registered by name. Every factory takes num_classes and in_chans from the data."""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from hpo.errors import UserError
from hpo.spec import catalog
from hpo.spec.options import Bool, Fraction, Int, Option, Str
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


@dataclass(frozen=True)
class InputSpec:
    """What a model wants of its input: per-channel mean / std (of [0, 1] pixels) and a square size
    (None: as the data comes). Pretrained weights carry their own normalisation."""

    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    size: int | None = None


def input_spec(model: nn.Module) -> InputSpec:
    return getattr(model, "hpo_input", InputSpec())


_pretrained: dict[tuple, dict[str, torch.Tensor]] = {}  # one entry per worker: the last weights loaded


@MODELS.register("timm", arch=Str("resnet18"), pretrained=Bool(False, doc="timm's pretrained weights (hub / cache)"),
                 weights=Option("file", None, doc="a local weights file (.safetensors or torch.save)"),
                 drop_rate=Fraction(0.0), input_size=Option("int", None, 8, doc="resize inputs to this square"))
def timm_model(num_classes: int, in_chans: int, arch: str, pretrained: bool, weights: str | None, drop_rate: float,
               input_size: int | None) -> nn.Module:
    """Any timm architecture. With `pretrained` (timm's hub and cache; HF_HOME and HF_HUB_OFFLINE
    apply) or `weights`, timm loads the weights, replaces the head for the study's classes and adapts
    the stem to `in_chans`, and inputs are normalised with the weights' own mean / std."""
    import timm

    check_timm_arch(arch)
    kw = dict(num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate)
    if not (pretrained or weights):
        model = timm.create_model(arch, **kw)
        model.hpo_input = InputSpec(size=input_size)
        return model
    key = (arch, weights, num_classes, in_chans)
    if key in _pretrained:  # a reused worker's next trial: no second read of the weights
        model = timm.create_model(arch, **kw)
        model.load_state_dict(_pretrained[key])
    else:
        model = _load_pretrained(arch, weights, kw)
        _pretrained.clear()
        _pretrained[key] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    cfg = model.pretrained_cfg
    mean, std = tuple(cfg["mean"]), tuple(cfg["std"])
    if in_chans != len(mean):  # a stem adapted to grey images: one channel, the mean statistics
        mean, std = (sum(mean) / len(mean),) * in_chans, (sum(std) / len(std),) * in_chans
    model.hpo_input = InputSpec(mean, std, input_size)
    return model


def _load_pretrained(arch: str, weights: str | None, kw: dict) -> nn.Module:
    import timm

    from hpo.train import weights as w

    if weights:  # read here: a file in another implementation's key names is renamed for timm
        overlay: dict | None = {"state_dict": w.read_file(weights, arch)}
    else:  # seconds, not timm's minute of download retries; a cached copy is read with no network call
        reach = w.require(arch, "model.pretrained")
        overlay = {"file": reach.detail} if reach.how == "cache" else None
    try:
        return timm.create_model(arch, pretrained=True, pretrained_cfg_overlay=overlay, **kw)
    except Exception as exc:  # noqa: BLE001 - hub, network and shape errors all mean "no usable weights"
        text = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        if weights:
            raise UserError(f"model.weights {weights}: timm could not load it into {arch!r}: {text}") from None
        raise UserError(f"model.pretrained: no pretrained weights for {arch!r} could be loaded ({text}); looked in "
                        f"the Hugging Face cache {w.cache_dir()} (HF_HOME / HF_HUB_OFFLINE apply). Fetch them "
                        f"once online, or give a local file with `weights: FILE`") from None


def check_timm_arch(arch: str, where: str = "model.arch") -> None:
    import timm

    if not timm.is_model(arch):
        close = difflib.get_close_matches(arch, timm.list_models(), n=5)
        raise UserError(f"{where} {arch!r} is not a timm model; close names: {', '.join(close) or '(none)'}")


class CosineLinear(nn.Module):
    """Logits = cosine between the normalised feature and normalised class weights (LDAM's
    NormedLinear): each in [-1, 1], so the loss's scale s sets the logit range."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features).uniform_(-1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(F.normalize(x, dim=1), F.normalize(self.weight, dim=1))


def head(model: nn.Module) -> nn.Module:
    """The classifier head: the last nn.Linear (or the cosine head that replaced it)."""
    parent, name, _ = _last_linear(model, (nn.Linear, CosineLinear))
    return getattr(parent, name)


def _last_linear(model: nn.Module, kinds: tuple[type, ...] = (nn.Linear,)) -> tuple[nn.Module, str, nn.Module]:
    last = None
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, kinds):
                last = (parent, name, child)
    if last is None:
        raise ValueError(f"{type(model).__name__} has no nn.Linear classifier head")
    return last


def adapt_head(model: nn.Module, cosine: bool = False, bias_init: float | None = None) -> nn.Module:
    """What a loss asks of the classifier head: a cosine head (LDAM) or a bias start value
    (sigmoid CB focal). Works on any model whose classifier is its last nn.Linear."""
    parent, name, lin = _last_linear(model)
    if cosine:
        setattr(parent, name, CosineLinear(lin.in_features, lin.out_features).to(lin.weight.device))
    elif bias_init is not None and lin.bias is not None:
        nn.init.constant_(lin.bias, bias_init)
    return model
