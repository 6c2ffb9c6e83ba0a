"""Multi-objective asynchronous successive halving (MO-ASHA) for Ray Tune.

Rungs sit at epochs r, r*eta, r*eta^2, ... below the last epoch. When a trial reaches a rung,
its objective vector is recorded there and ranked against every vector recorded at that rung
so far: by non-dominated front (NSGA-II's sorting), then by crowding distance within a front
(spread-out points first), then by arrival. It continues if it is on the rung's Pareto front or
ranks in the top ceil(n / eta) of the n recorded; otherwise it stops. (Never stopping a
non-dominated trial is our choice: with two objectives the front is small, and a trial that is
best at one of them is exactly what a trade-off search must not lose.) As in ASHA (Li et al. 2020) nothing waits for a rung to
fill, so workers never idle; unlike Ray's ASHA every objective counts, so a trial that is best
at minority F1 but poor at macro accuracy is kept (Schmucker et al. 2021's MO-ASHA does the
same with random sampling; here it runs under Optuna's samplers through OptunaSearch).

A result without every objective (or with a non-finite one) is not recorded and the trial goes
on: a missing metric is no evidence against it, and a NaN loss fails the trial by itself.

A study's constraints (hpo.study.constraints) that are monotone in training decide at a rung too:
a trial that already misses one there would miss it at its last epoch, so it stops and is not
recorded (it must not push a feasible trial out of the rung's quota). Those are the costs that
only grow or never change while a trial trains: `seconds` and `gpu_mem_peak_mb` under a `max`
(time spent and a peak only grow) and `n_params` under either bound (fixed once the model is
built); the training loop reports them with every epoch. What the predictions measure (a class's
recall, an objective metric) can rise or fall from one epoch to the next: such a constraint never
stops a trial early, the searcher judges it on the finished trial.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from hpo.spec import catalog
from hpo.spec.options import Int
from hpo.spec.registry import Registry
from hpo.spec.study import Constraint
from hpo.study.pareto import crowding, nondominated_ranks, signs


GROWING = ("seconds", "gpu_mem_peak_mb")  # costs that only grow while a trial trains
FIXED = ("n_params",)  # costs that do not change while it trains


def monotone(c: Constraint) -> bool:
    """A trial that misses `c` at a rung would miss it at its last epoch."""
    return c.metric in FIXED or (c.metric in GROWING and c.high is not None)


@dataclass
class MOASHA:
    """The decision rule alone (no Ray): feed it results, it says continue or stop."""

    signs: Sequence[int]  # +1 maximise, -1 minimise, per objective
    max_epochs: int
    grace_epochs: int = 1
    eta: int = 3
    constraints: Sequence[Constraint] = ()  # the study's; only the monotone ones are read
    rungs: dict[int, list[tuple[str, tuple[float, ...]]]] = field(default_factory=dict)
    stopped: dict[str, int] = field(default_factory=dict)  # trial -> epoch it was stopped at

    def __post_init__(self) -> None:
        r, self.milestones = self.grace_epochs, []
        while r < self.max_epochs:
            self.milestones.append(r)
            r *= self.eta
        self.rungs = {r: [] for r in self.milestones}
        self.constraints = [c for c in self.constraints if monotone(c)]
        self.missed: dict[str, list[str]] = {}  # trial -> the monotone constraints it missed at its rung

    def on_result(self, trial: str, epoch: int, values: Sequence[float | None] | None,
                  costs: Mapping[str, Any] | None = None) -> bool:
        """True: let the trial continue; False: stop it now. `costs`: the epoch's report, where the
        monotone constraints' metrics are read."""
        if epoch not in self.rungs:
            return True
        if trial in self.stopped:  # a repeated report at the rung it was stopped at
            return False
        missed = self._missed(costs or {})
        if missed:
            self.stopped[trial], self.missed[trial] = epoch, missed
            return False
        if values is None or len(values) != len(self.signs) or any(v is None or not math.isfinite(v) for v in values):
            return True
        recorded = self.rungs[epoch]
        if any(t == trial for t, _ in recorded):  # a repeated report at the same rung
            return True
        recorded.append((trial, tuple(float(v) for v in values)))
        if trial not in self.keep(epoch):
            self.stopped[trial] = epoch
            return False
        return True

    def _missed(self, costs: Mapping[str, Any]) -> list[str]:
        """The monotone constraints `costs` already miss (a cost not reported misses nothing)."""
        return [str(c) for c in self.constraints
                if isinstance(costs.get(c.metric), (int, float)) and c.violation(float(costs[c.metric])) > 0]

    def keep(self, epoch: int) -> set[str]:
        """The rung's Pareto front plus the top ceil(n / eta) by (front, crowding, arrival)."""
        recorded = self.rungs[epoch]
        points = [v for _, v in recorded]
        ranks = nondominated_ranks(points, self.signs)
        crowd: dict[int, float] = {}
        for f in set(ranks):
            crowd.update(crowding(points, [i for i, r in enumerate(ranks) if r == f]))
        order = sorted(range(len(points)), key=lambda i: (ranks[i], -crowd[i], i))
        top = order[:math.ceil(len(points) / self.eta)]
        return {recorded[i][0] for i in top} | {recorded[i][0] for i, r in enumerate(ranks) if r == 0}


class MOASHAScheduler(FIFOScheduler):
    """MOASHA as a Ray Tune TrialScheduler."""

    def __init__(self, metrics: Sequence[str], directions: Sequence[str], max_epochs: int, grace_epochs: int,
                 eta: int, constraints: Sequence[Constraint] = ()) -> None:
        super().__init__()
        self.metrics = list(metrics)
        self.rule = MOASHA(signs(directions), max_epochs, grace_epochs, eta, constraints)

    def set_search_properties(self, metric: Any, mode: Any, **spec: Any) -> bool:
        return True  # the objectives are the study's, fixed at construction

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if "epoch" not in result:
            return TrialScheduler.CONTINUE
        values = [result.get(m) for m in self.metrics]
        keep = self.rule.on_result(trial.trial_id, int(result["epoch"]), values, result)
        return TrialScheduler.CONTINUE if keep else TrialScheduler.STOP

    def debug_string(self) -> str:
        return f"MO-ASHA: rungs {self.rule.milestones}, stopped {len(self.rule.stopped)}"


# name -> Ray scheduler for a study; "none" is Tune's default (every trial runs all its epochs)
SCHEDULERS: Registry[Callable[..., Any]] = Registry(catalog.SCHEDULER,
                                                  fixed=("metrics", "directions", "max_epochs", "constraints"))


@SCHEDULERS.register("none")
def no_scheduler(metrics: Sequence[str], directions: Sequence[str], max_epochs: int,
                 constraints: Sequence[Constraint] = ()) -> None:
    """Every trial runs all its epochs."""
    return None


@SCHEDULERS.register("mo_asha", grace_epochs=Int(1, low=1, doc="the first rung"), eta=Int(3, low=2))
def mo_asha(metrics: Sequence[str], directions: Sequence[str], max_epochs: int, grace_epochs: int,
            eta: int, constraints: Sequence[Constraint] = ()) -> MOASHAScheduler:
    """Multi-objective ASHA: stop trials off the rung's front beyond the top 1 / eta, or over a monotone constraint.

    The monotone constraints (`monotone`): seconds and GPU memory under a max, parameters under either bound."""
    return MOASHAScheduler(metrics, directions, max_epochs, grace_epochs, eta, constraints)
