"""Learning-rate schedules, registered by name: `schedule: {name: step, milestones: [0.5, 0.75]}`.

Each is one of torch's epoch schedulers; every schedule takes `warmup_epochs` (the schedule
section's own field): a linear warm-up from lr / (warmup_epochs + 1) to lr, after which the
named schedule runs over the remaining epochs. `Schedule.step` is called once per epoch with
that epoch's validation metrics, which `plateau` watches.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch.optim.lr_scheduler import (CosineAnnealingLR, ConstantLR, LinearLR, LRScheduler, MultiStepLR,
                                      ReduceLROnPlateau, SequentialLR)

from hpo.spec import catalog
from hpo.spec.options import Int, Num, Option, Str
from hpo.spec.schema import METRICS
from hpo.spec.registry import Registry

SCHEDULES: Registry[Callable[..., Any]] = Registry(catalog.SCHEDULE, fixed=("opt", "epochs", "warmup_epochs"))


@SCHEDULES.register("cosine")
def cosine(opt: torch.optim.Optimizer, epochs: int, warmup_epochs: int) -> LRScheduler:
    """Cosine annealing to 0 over the epochs after warm-up."""
    return CosineAnnealingLR(opt, T_max=max(1, epochs - warmup_epochs))


@SCHEDULES.register("constant")
def constant(opt: torch.optim.Optimizer, epochs: int, warmup_epochs: int) -> LRScheduler:
    """The same lr throughout."""
    return ConstantLR(opt, factor=1.0, total_iters=0)


@SCHEDULES.register("step", milestones=Option("numbers", [0.5, 0.75], doc="epochs, or fractions of the epochs if < 1"),
                    factor=Num(0.1, 0, 1, low_open=True, high_open=True, doc="lr multiplier at each milestone"))
def step(opt: torch.optim.Optimizer, epochs: int, warmup_epochs: int, milestones: list[float],
         factor: float) -> LRScheduler:
    """lr times `factor` at each milestone (e.g. [160, 180] of 200 epochs, or [0.8, 0.9])."""
    at = [round(m * epochs) if m < 1 else int(m) for m in milestones]
    return MultiStepLR(opt, [max(1, m - warmup_epochs) for m in at], gamma=factor)


@SCHEDULES.register("plateau", monitor=Str("macro_acc", METRICS, doc="the validation metric watched (higher is better)"),
                    factor=Num(0.1, 0, 1, low_open=True, high_open=True), patience=Int(2, low=0))
def plateau(opt: torch.optim.Optimizer, epochs: int, warmup_epochs: int, monitor: str, factor: float,
            patience: int) -> ReduceLROnPlateau:
    """lr times `factor` when `monitor` has not improved for `patience` epochs."""
    return ReduceLROnPlateau(opt, mode="max", factor=factor, patience=patience)


class Schedule:
    """The epoch schedule of one trial: warm-up, then the named schedule."""

    def __init__(self, opt: torch.optim.Optimizer, cfg: dict[str, Any], epochs: int) -> None:
        self.warmup = int(cfg["warmup_epochs"])
        opts = {k: v for k, v in cfg.items() if k in SCHEDULES.options(cfg["name"])}
        warm = LinearLR(opt, start_factor=1 / (self.warmup + 1), total_iters=self.warmup) if self.warmup else None
        self.main = SCHEDULES.build(cfg["name"], opt=opt, epochs=epochs, warmup_epochs=self.warmup, **opts)
        self.monitor: str | None = opts.get("monitor")
        if isinstance(self.main, ReduceLROnPlateau):  # steps on a metric: not chainable, so run it by hand
            self.warm, self.sched = warm, None
        else:
            self.warm, self.sched = None, SequentialLR(opt, [warm, self.main], [self.warmup]) if warm else self.main
        self.epoch = 0

    def step(self, metrics: dict[str, float]) -> None:
        """After an epoch, with its validation metrics."""
        self.epoch += 1
        if self.sched is not None:
            self.sched.step()
        elif self.warm is not None and self.epoch <= self.warmup:
            self.warm.step()
        else:
            self.main.step(metrics[self.monitor])

