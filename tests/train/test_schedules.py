"""Learning-rate schedules: the lr of each epoch, warm-up included."""
from __future__ import annotations

import math

import pytest
import torch

from hpo.train.schedules import SCHEDULES, Schedule


def lrs(cfg: dict, epochs: int = 10, metrics: list[float] | None = None) -> list[float]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = Schedule(opt, {"warmup_epochs": 0, **SCHEDULES.with_defaults(cfg["name"], {k: v for k, v in cfg.items()
                                                                        if k not in ("name", "warmup_epochs")}),
                           "name": cfg["name"], **({"warmup_epochs": cfg["warmup_epochs"]}
                                                    if "warmup_epochs" in cfg else {})}, epochs)
    out = []
    for e in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        sched.step({"macro_acc": (metrics or [0.5] * epochs)[e]})
    return out


def test_cosine_anneals_from_lr_to_zero() -> None:
    got = lrs({"name": "cosine"}, epochs=4)
    assert got == pytest.approx([0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(4)])


def test_step_milestones_as_fractions_or_epochs() -> None:
    assert lrs({"name": "step", "milestones": [0.5, 0.8]}) == pytest.approx([1] * 5 + [0.1] * 3 + [0.01] * 2)
    assert lrs({"name": "step", "milestones": [6, 8], "factor": 0.5}) == pytest.approx([1] * 6 + [0.5] * 2 + [0.25] * 2)


def test_warmup_rises_linearly_then_the_schedule_runs_on_the_remaining_epochs() -> None:
    got = lrs({"name": "step", "milestones": [6], "warmup_epochs": 3})
    assert got == pytest.approx([0.25, 0.5, 0.75, 1, 1, 1, 0.1, 0.1, 0.1, 0.1])


def test_plateau_cuts_lr_when_the_watched_metric_stalls() -> None:
    flat = [0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]
    got = lrs({"name": "plateau", "patience": 1, "factor": 0.5}, metrics=flat)
    assert got[:3] == [1.0, 1.0, 1.0] and got[-1] < 0.2


def test_constant_keeps_lr() -> None:
    assert lrs({"name": "constant"}, epochs=3) == [1.0, 1.0, 1.0]
