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
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from hpo.export import dominates


def nondominated_ranks(points: Sequence[Sequence[float]], signs: Sequence[int]) -> list[int]:
    """Front index of each point: 0 for the Pareto front, 1 for the front once 0 is removed, ..."""
    ranks, left, front_no = [-1] * len(points), set(range(len(points))), 0
    while left:
        front = {i for i in left if not any(dominates(points[j], points[i], signs) for j in left if j != i)}
        for i in front:
            ranks[i] = front_no
        left -= front
        front_no += 1
    return ranks


def crowding(points: Sequence[Sequence[float]], members: Sequence[int]) -> dict[int, float]:
    """NSGA-II crowding distance of each member of one front (boundary points: infinite)."""
    dist = {i: 0.0 for i in members}
    if len(members) <= 2:
        return {i: math.inf for i in members}
    for m in range(len(points[members[0]])):
        order = sorted(members, key=lambda i: points[i][m])
        lo, hi = points[order[0]][m], points[order[-1]][m]
        dist[order[0]] = dist[order[-1]] = math.inf
        if hi == lo:
            continue
        for a, b, c in zip(order, order[1:], order[2:]):
            dist[b] += (points[c][m] - points[a][m]) / (hi - lo)
    return dist


@dataclass
class MOASHA:
    """The decision rule alone (no Ray): feed it results, it says continue or stop."""

    signs: Sequence[int]  # +1 maximise, -1 minimise, per objective
    max_epochs: int
    grace_epochs: int = 1
    eta: int = 3
    rungs: dict[int, list[tuple[str, tuple[float, ...]]]] = field(default_factory=dict)
    stopped: dict[str, int] = field(default_factory=dict)  # trial -> epoch it was stopped at

    def __post_init__(self) -> None:
        r, self.milestones = self.grace_epochs, []
        while r < self.max_epochs:
            self.milestones.append(r)
            r *= self.eta
        self.rungs = {r: [] for r in self.milestones}

    def on_result(self, trial: str, epoch: int, values: Sequence[float | None] | None) -> bool:
        """True: let the trial continue; False: stop it now."""
        if epoch not in self.rungs or values is None or len(values) != len(self.signs) \
                or any(v is None or not math.isfinite(v) for v in values):
            return True
        recorded = self.rungs[epoch]
        if any(t == trial for t, _ in recorded):  # a repeated report at the same rung
            return trial not in self.stopped
        recorded.append((trial, tuple(float(v) for v in values)))
        if trial not in self.keep(epoch):
            self.stopped[trial] = epoch
            return False
        return True

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


def ray_scheduler(metrics: Sequence[str], directions: Sequence[str], max_epochs: int, grace_epochs: int,
                  eta: int) -> Any:
    """MOASHA as a Ray Tune TrialScheduler (Ray imported here, lazily, like everything Ray)."""
    from ray.tune.schedulers import FIFOScheduler, TrialScheduler

    class MOASHAScheduler(FIFOScheduler):
        def __init__(self) -> None:
            super().__init__()
            self.rule = MOASHA([1 if d == "maximize" else -1 for d in directions], max_epochs, grace_epochs, eta)

        def set_search_properties(self, metric: Any, mode: Any, **spec: Any) -> bool:
            return True  # the objectives are the study's, fixed at construction

        def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
            if "epoch" not in result:
                return TrialScheduler.CONTINUE
            values = [result.get(m) for m in metrics]
            keep = self.rule.on_result(trial.trial_id, int(result["epoch"]), values)
            return TrialScheduler.CONTINUE if keep else TrialScheduler.STOP

        def debug_string(self) -> str:
            return f"MO-ASHA: rungs {self.rule.milestones}, stopped {len(self.rule.stopped)}"

    return MOASHAScheduler()
