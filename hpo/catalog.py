"""Names a study file may use, and the keyword parameters each takes.

This module is torch-free on purpose: `hpo` validates a study file (and answers `--help`)
without importing torch or ray. The torch registries in `hpo.train` check at import that
every factory they register appears here with exactly these parameters, so the two can't drift.
"""
from __future__ import annotations

# loss name -> parameters its factory accepts (besides class_counts)
LOSSES: dict[str, tuple[str, ...]] = {
    "ce": (),
    "weighted_ce": ("weighting", "beta"),
    "focal": ("gamma",),
    "cb_focal": ("beta", "gamma", "form"),
    "ldam": ("C", "s"),
    "recall": (),
    "balanced_softmax": (),
    "logit_adjusted": ("tau",),
}
# parameters every loss takes: deferred re-weighting (fraction of epochs; 1.0 = never) and its beta
LOSS_COMMON: tuple[str, ...] = ("drw_start", "drw_beta")
WEIGHTINGS: tuple[str, ...] = ("ins", "isns", "ens")
CB_FORMS: tuple[str, ...] = ("softmax", "sigmoid")

# rebalancing samplers (hpo.train.rebalance); threshold 0 with method threshold = no resampling
REBALANCE_METHODS: tuple[str, ...] = ("none", "threshold", "weighted_sampler", "sqrt")

# model name -> parameters its factory accepts (besides num_classes, in_chans)
MODELS: dict[str, tuple[str, ...]] = {
    "small_cnn": ("width", "dropout"),
    "cifar_resnet8": (),
    "cifar_resnet20": (),
    "cifar_resnet32": (),
    "timm": ("arch", "weights", "drop_rate"),  # any timm architecture; weights only from a local file
}

# data source name -> parameters it accepts
DATASETS: dict[str, tuple[str, ...]] = {
    "digits": (),
    "cifar10": ("root", "download"),
    "cifar100": ("root", "download"),
    "imagefolder": ("root", "image_size", "channels"),
    "annotations": ("file", "image_size", "channels", "classes"),
    "npz": ("file",),
}
DATA_PATH_PARAMS: tuple[str, ...] = ("root", "file")  # made absolute at load: Ray moves each trial's cwd

# metric names a study may optimise; all are "higher is better" fractions in [0, 1]
METRICS: tuple[str, ...] = ("minority_f1", "macro_acc", "accuracy", "g_mean",
                             "many_shot_acc", "medium_shot_acc", "few_shot_acc")

SAMPLERS: tuple[str, ...] = ("tpe", "nsga2", "random", "gp")

LONGTAIL_PROFILES: tuple[str, ...] = ("exp", "step", "none")
VAL_FROM: tuple[str, ...] = ("test", "train")

OPTIMIZERS: tuple[str, ...] = ("sgd", "adamw")

DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
