"""Names a study file may use, and the keyword parameters each takes.

This module is torch-free on purpose: `hpo` validates a study file (and answers `--help`)
without importing torch or ray. The torch registries in `hpo.train` check at import that
every factory they register appears here with exactly these parameters, so the two can't drift.
"""
from __future__ import annotations

# loss name -> parameters its factory accepts (besides class_counts)
LOSSES: dict[str, tuple[str, ...]] = {
    "ce": (),
    "focal": ("gamma",),
    "cb_focal": ("beta", "gamma"),
}

# model name -> parameters its factory accepts (besides num_classes, in_chans)
MODELS: dict[str, tuple[str, ...]] = {
    "small_cnn": ("width", "dropout"),
}

# data source name -> parameters it accepts
DATASETS: dict[str, tuple[str, ...]] = {
    "digits": (),
}

# metric names a study may optimise; all are "higher is better" fractions in [0, 1]
METRICS: tuple[str, ...] = ("minority_f1", "macro_acc", "accuracy", "g_mean")

SAMPLERS: tuple[str, ...] = ("tpe", "nsga2", "random", "gp")

LONGTAIL_PROFILES: tuple[str, ...] = ("exp", "none")

OPTIMIZERS: tuple[str, ...] = ("sgd", "adamw")

DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
