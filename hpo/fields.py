"""What a study file may contain: every section's fields, their types, defaults and checks.

The only place a new setting needs declaring; `hpo.spec` walks these tables to validate a file.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from hpo import catalog
from hpo.errors import unknown_name

Check = Callable[[Any], str | None]  # returns a problem description, or None if fine


def positive(v: Any) -> str | None:
    return None if v > 0 else "must be > 0"


def non_negative(v: Any) -> str | None:
    return None if v >= 0 else "must be >= 0"


def fraction(v: Any) -> str | None:
    return None if 0 <= v < 1 else "must be in [0, 1)"


def unit(v: Any) -> str | None:
    return None if 0 <= v <= 1 else "must be in [0, 1] (a fraction of the epochs)"


def one_of(options: tuple[str, ...], kind: str = "value") -> Check:
    return lambda v: None if v in options else unknown_name(kind, v, options)


@dataclass(frozen=True)
class Field:
    kind: type | tuple[type, ...]
    default: Any
    check: Check | None = None


NUM = (int, float)

# section -> field -> (type, default, check). The only place a new setting needs declaring.
SECTIONS: dict[str, dict[str, Field]] = {
    "data": {
        "name": Field(str, "digits", one_of(tuple(catalog.DATASETS), "data set")),
        "seed": Field(int, 0, non_negative),
        "longtail": Field(dict, {"profile": "exp", "ratio": 100}),
        "split": Field(dict, {"val": 0.2, "test": 0.2}),
        "params": Field(dict, {}),
    },
    "model": {"name": Field(str, "small_cnn", one_of(tuple(catalog.MODELS), "model"))},
    "train": {
        "epochs": Field(int, 30, positive),
        "lr": Field(NUM, 0.05, positive),
        "batch_size": Field(int, 32, positive),
        "optimizer": Field(str, "sgd", one_of(catalog.OPTIMIZERS)),
        "momentum": Field(NUM, 0.9, fraction),
        "weight_decay": Field(NUM, 5e-4, non_negative),
        "device": Field(str, "auto", one_of(catalog.DEVICES)),
        "seed": Field(int, 0, non_negative),
        "compile": Field((str, bool), "auto", lambda c: None if c in ("auto", True, False)
                         else "must be auto (CUDA only), true or false"),
        # on-device batch augmentation for small images: random crop after zero padding, h-flip
        "augment": Field(dict, {"crop_padding": 0, "flip": False}),
    },
    "loss": {"name": Field(str, "ce", one_of(tuple(catalog.LOSSES), "loss"))},
    "rebalance": {
        "method": Field(str, "threshold", one_of(catalog.REBALANCE_METHODS, "rebalancing method")),
        "threshold": Field(NUM, 0, non_negative),  # images per class per epoch; 0 = off
        "start": Field(NUM, 0.0, unit),  # deferred rebalancing: fraction of epochs before it starts
    },
    "metrics": {  # many / medium / few-shot groups by training count (Liu et al. 2019's 100 / 20)
        "many_above": Field(int, 100, non_negative),
        "few_below": Field(int, 20, non_negative),
    },
}

# value checks for data source parameters (data.params)
DATA_PARAMS: dict[str, Field] = {
    "root": Field(str, None),
    "file": Field(str, None),
    "download": Field(bool, False),
    "image_size": Field(int, 32, positive),
    "channels": Field(int, 3, lambda c: None if c in (1, 3) else "must be 1 (grey) or 3 (RGB)"),
    "classes": Field(list, None, lambda c: None if c and all(isinstance(n, str) for n in c)
                     else "must be a non-empty list of class names"),
}
REQUIRED_DATA_PARAMS: dict[str, tuple[str, ...]] = {
    "cifar10": ("root",), "cifar100": ("root",), "imagefolder": ("root",), "annotations": ("file",), "npz": ("file",),
}

# value checks for loss / model parameters (they live beside `name` in their section)
PARAM_CHECKS: dict[str, Field] = {
    "beta": Field(NUM, 0.999, fraction),
    "gamma": Field(NUM, 2.0, non_negative),
    "form": Field(str, "softmax", one_of(catalog.CB_FORMS, "cb_focal form")),
    "weighting": Field(str, "ens", one_of(catalog.WEIGHTINGS, "weighting")),
    "C": Field(NUM, 0.5),  # LDAM's largest margin: any sign, as one write-up searched negatives
    "s": Field(NUM, 30.0, positive),
    "tau": Field(NUM, 1.0),
    "drw_start": Field(NUM, 1.0, unit),
    "drw_beta": Field(NUM, 0.9999, fraction),
    "width": Field(int, 32, positive),
    "dropout": Field(NUM, 0.0, fraction),
    "arch": Field(str, "resnet18"),
    "weights": Field(str, ""),
    "drop_rate": Field(NUM, 0.0, fraction),
}

TOP_LEVEL = ("study", "description", *SECTIONS, "minority", "search", "objectives", "sampler", "scheduler", "budget",
             "resources")
PARAM_KEYS = ("type", "low", "high", "log", "step", "choices", "complement", "when")
PARAM_TYPES = ("float", "int", "categorical")
