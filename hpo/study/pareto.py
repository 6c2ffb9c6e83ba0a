"""Pareto logic for every reader of a study: directions, dominance, fronts, crowding, hypervolume.

Objectives are compared after multiplying by their sign (+1 maximise, -1 minimise), so every
function here works on "higher is better" numbers. Only trials that ran all their epochs enter
a front (`full_trials`): a trial the scheduler stopped early is COMPLETE with partial values.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence, TypeVar

import optuna

from hpo.study import constraints, optuna_seam, settings
from hpo.study.settings import ATTR_TRIAL_VERSION, ATTR_VERSION
from hpo.study.storage import ATTR_STOPPED_EARLY

Point = Sequence[float]
T = TypeVar("T")


def signs(directions: Sequence[Any]) -> list[int]:
    """+1 per maximised objective, -1 per minimised one; takes "maximize" / "max" / StudyDirection."""
    return [1 if str(getattr(d, "name", d)).lower().startswith("max") else -1 for d in directions]


def reference(sgn: Sequence[int]) -> list[float]:
    """The hypervolume reference point: the worst value of a [0, 1] metric, 0 when maximised and 1
    when minimised (every hpo metric is such a fraction)."""
    return [0.0 if s > 0 else 1.0 for s in sgn]


def dominates(a: Point, b: Point, sgn: Sequence[int]) -> bool:
    """a dominates b: no worse in every objective, better in one."""
    return all(s * x >= s * y for x, y, s in zip(a, b, sgn)) and any(s * x > s * y for x, y, s in zip(a, b, sgn))


def nondominated_ranks(points: Sequence[Point], sgn: Sequence[int]) -> list[int]:
    """Front index of each point: 0 for the Pareto front, 1 for the front once 0 is removed, ..."""
    ranks, left, front_no = [-1] * len(points), set(range(len(points))), 0
    while left:
        front = {i for i in left if not any(dominates(points[j], points[i], sgn) for j in left if j != i)}
        for i in front:
            ranks[i] = front_no
        left -= front
        front_no += 1
    return ranks


def crowding(points: Sequence[Point], members: Sequence[int]) -> dict[int, float]:
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


def hypervolume(points: Sequence[Point], sgn: Sequence[int], ref: Point) -> float:
    """The volume dominated by `points` and bounded by the reference point `ref` (exact; slices
    along the last objective, recursively: fine for the fronts of a study, tens of points)."""
    r = [s * x for s, x in zip(sgn, ref)]
    up = [tuple(s * x for s, x in zip(sgn, p)) for p in points]
    return _hv([p for p in up if all(x > y for x, y in zip(p, r))], r)


def _hv(points: list[tuple[float, ...]], ref: list[float]) -> float:
    if not points:
        return 0.0
    if len(ref) == 1:
        return max(p[0] for p in points) - ref[0]
    levels = sorted({p[-1] for p in points}, reverse=True) + [ref[-1]]
    if len(ref) == 2:  # the same slices and sums as below, with a running maximum: O(n log n)
        order, best, i, terms = sorted(points, key=lambda p: -p[-1]), -math.inf, 0, []
        for hi, lo in zip(levels, levels[1:]):
            while i < len(order) and order[i][-1] >= hi:
                best, i = max(best, order[i][0]), i + 1
            terms.append((best - ref[0]) * (hi - lo))
        return sum(terms)
    return sum(_hv([p[:-1] for p in points if p[-1] >= hi], ref[:-1]) * (hi - lo)
               for hi, lo in zip(levels, levels[1:]))


def full_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """COMPLETE trials that ran all their epochs under the study's current fixed settings: the
    ones fronts and reports may use (hpo.study.settings)."""
    version = study.user_attrs.get(ATTR_VERSION, 0)
    return [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if ATTR_STOPPED_EARLY not in t.user_attrs and t.user_attrs.get(ATTR_TRIAL_VERSION, 0) == version]


def nondominated(trials: Sequence[T], sgn: Sequence[int]) -> list[T]:
    """The members of `trials` (anything with `.values`) no other member dominates, in their order.
    Trials are visited best first in lexicographic order of their signed values, an order in
    which a dominating point always comes before the points it dominates; so each one is only
    compared with the front found so far (O(n x front), not O(n^2))."""
    keyed = sorted(range(len(trials)), key=lambda i: tuple(s * x for s, x in zip(sgn, trials[i].values)), reverse=True)
    kept: list[int] = []
    for i in keyed:
        if not any(dominates(trials[j].values, trials[i].values, sgn) for j in kept):
            kept.append(i)
    return [trials[i] for i in sorted(kept)]


def front_rows(study: optuna.Study, full: Sequence[optuna_seam.Row] | None = None,
               include_infeasible: bool = False) -> list[optuna_seam.Row]:
    """The Pareto front as values and numbers only (optuna_seam rows), sorted as `front` sorts;
    `full`: the study's `settings.full_rows`, when the caller has them already. Trials that missed one of
    the study's constraints are left out unless `include_infeasible` (hpo.study.constraints)."""
    sgn = signs(study.directions)
    full = settings.full_rows(study) if full is None else full
    best = nondominated(full if include_infeasible else constraints.feasible(study, full), sgn)
    return sorted(best, key=lambda t: (-sgn[0] * t.values[0], t.number))


def front(study: optuna.Study, include_infeasible: bool = False) -> list[optuna.trial.FrozenTrial]:
    """Non-dominated full trials, sorted by the first objective, best first. Their params and user
    attributes are read for these trials only; system attributes and datetimes are left empty."""
    return optuna_seam.frozen(study, front_rows(study, include_infeasible=include_infeasible))


def hypervolume_history(study: optuna.Study, full: Sequence[optuna_seam.Row] | None = None) -> list[tuple[int, float]]:
    """(trial number, hypervolume of the front of the full trials so far), in trial order. The
    reference point is the worst value of a [0, 1] metric: 0 when maximised, 1 when minimised."""
    rows = settings.full_rows(study) if full is None else full
    return growing_hypervolume(((t.number, [t.values]) for t in rows), signs(study.directions))


def growing_hypervolume(groups: Iterable[tuple[int, Sequence[Point]]], sgn: Sequence[int]) -> list[tuple[int, float]]:
    """(number, hypervolume of the front of every point so far) after each group of points (a trial's
    one point, or its whole post-hoc curve), reference 0 / 1 per direction. Only the front so far is
    kept: a dominated point adds no volume."""
    ref = reference(sgn)
    points: list[Point] = []
    out: list[tuple[int, float]] = []
    for number, group in groups:
        new = False
        for v in group:
            if any(p == v or dominates(p, v, sgn) for p in points):
                continue
            points, new = [p for p in points if not dominates(v, p, sgn)] + [v], True
        out.append((number, hypervolume(points, sgn, ref) if new or not out else out[-1][1]))
    return out
