"""Constraints a study file states (`constraints:`): what a trial measured against each, what the
samplers are told, and which trials the readers (front, status, export, report) leave out.

A trial's constraint values reach Optuna's samplers through the trial itself
(`optuna.Trial.set_constraint`, one key per constraint, <= 0 when met): TPE, NSGA-II and GP read
them from the stored trials and learn where the feasible region is. hpo also records, on the
trial, what it measured (`hpo_constraint_values`) and, when it missed any, which ones
(`hpo_infeasible`): readers find the infeasible trials by that one key, as they find the trials a
scheduler stopped early.

The set of constraints is recorded on the study and may not change once trials were told to the
sampler under it (GP requires every trial to carry the same constraints): a relaunch with other
constraints is refused, with the fix.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Any, Mapping, Sequence

import optuna

from hpo.errors import SpecError, UserError
from hpo.spec.schema import PER_CLASS_METRICS
from hpo.spec.study import Constraint, StudySpec
from hpo.study import optuna_seam, settings

ATTR_MEASURED = "hpo_constraint_values"  # trial: {label: the value measured, None when not recorded}
ATTR_INFEASIBLE = "hpo_infeasible"  # trial: [the constraints it missed]; absent when it met them all
ATTR_STUDY = "hpo_constraints"  # study: the constraints in force, as the study file states them
# what the sampler is told for a constraint whose metric came out NaN (e.g. a shot group with no
# class): missed, by as much as a fraction can miss; a finite number, as the GP models the values
NAN_VIOLATION = 1.0


def from_json(items: Sequence[Mapping[str, Any]]) -> tuple[Constraint, ...]:
    """Constraints as recorded on a study (Constraint.to_json) -> Constraints."""
    return tuple(Constraint(c["metric"], low=c.get("min"), high=c.get("max"), cls=c.get("class")) for c in items)


def measure(c: Constraint, attrs: Mapping[str, Any]) -> float | None:
    """The value of `c`'s metric among a trial's recorded attributes; None when the trial did not
    record it (GPU memory on CPU; per-class values of a trial a scheduler stopped early)."""
    per_class = attrs.get("per_class") or {}
    if c.metric in PER_CLASS_METRICS:
        row = _class_row(per_class, c.cls)
        return None if row is None else float(row[c.metric])
    if c.metric in ("minority_recall", "worst_class_recall"):
        names = list(per_class)  # in class order (hpo.train.metrics.evaluate)
        rows = [per_class[names[k]] for k in attrs.get("minority") or [] if 0 <= k < len(names)] \
            if c.metric == "minority_recall" else list(per_class.values())
        recalls = [float(r["recall"]) for r in rows if r.get("support", 1) > 0]  # an absent class has no recall
        if not recalls:
            return None if not per_class else float("nan")
        return sum(recalls) / len(recalls) if c.metric == "minority_recall" else min(recalls)
    value = attrs.get(c.metric)
    return None if value is None else float(value)


def _class_row(per_class: Mapping[str, Any], cls: str | int | None) -> Mapping[str, Any] | None:
    if isinstance(cls, int):
        names = list(per_class)
        return per_class[names[cls]] if 0 <= cls < len(names) else None
    return per_class.get(str(cls))


def violation(c: Constraint, value: float | None) -> float:
    """What the sampler is told: <= 0 when met. A value the trial did not record counts as met
    (no GPU memory is used on CPU), a NaN as missed."""
    if value is None:
        return 0.0
    return NAN_VIOLATION if math.isnan(value) else c.violation(value)


def record(trial: optuna.Trial, constraints: Sequence[Constraint], attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Tell the trial's constraint values to Optuna (before the trial is told its values, so the
    sampler sees them with it) and return the user attributes that record them."""
    if not constraints:
        return {}
    measured = {c.label: measure(c, attrs) for c in constraints}
    missed = []
    for c in constraints:
        amount = violation(c, measured[c.label])
        trial.set_constraint(str(c), amount)
        if amount > 0:
            missed.append(str(c))
    return {ATTR_MEASURED: measured, **({ATTR_INFEASIBLE: missed} if missed else {})}


def check_classes(spec: StudySpec, class_names: Sequence[str]) -> None:
    """A per-class constraint must name a class the data has (by name or index): exit 2 otherwise."""
    for i, c in enumerate(spec.constraints):
        if c.cls is None or (isinstance(c.cls, int) and 0 <= c.cls < len(class_names)) or c.cls in class_names:
            continue
        raise SpecError(spec.path, f"constraints[{i}].class", c.cls, "no such class in the data",
                        f"classes: {', '.join(class_names)} (or their index 0..{len(class_names) - 1})")


def checked(spec: StudySpec, splits: Any) -> Any:
    """`splits` (the launch's data check), once every class a constraint names is in them."""
    check_classes(spec, splits.class_names)
    return splits


def settle(study: optuna.Study, spec: StudySpec) -> None:
    """Record the spec's constraints on the study; refuse other constraints than those the study's
    finished trials were told to the sampler under."""
    new = [c.to_json() for c in spec.constraints]
    had = study.user_attrs.get(ATTR_STUDY)
    if had == new or (had is None and not new):
        return
    if new and not hasattr(optuna.Trial, "set_constraint"):
        raise UserError(f"{spec.path}: constraints need Optuna 5.0 or later (Trial.set_constraint); "
                        f"this is {optuna.__version__}\n  fix: pip install 'optuna>=5.0,<5.1'")
    done = {k: v for k, v in optuna_seam.counts_by_state(study).items() if k in ("COMPLETE", "PRUNED")}
    if done:
        was = ", ".join(map(str, from_json(had or []))) or "none"
        now = ", ".join(map(str, spec.constraints)) or "none"
        raise UserError(f"{spec.path}: constraints [{now}] differ from those study {spec.name!r} has run "
                        f"{sum(done.values())} trials under: [{was}]; its sampler was told each trial's values for "
                        "those\n  fix: restore them, or launch under a new study name "
                        "(warm_start: {study: " + spec.name + "} starts it from this one's best configs)")
    study.set_user_attr(ATTR_STUDY, new)


def of_study(study: optuna.Study) -> tuple[Constraint, ...]:
    return from_json(study.user_attrs.get(ATTR_STUDY) or [])


def split(study: optuna.Study, rows: Sequence[optuna_seam.Row]) -> tuple[list[optuna_seam.Row], Counter[str]]:
    """`rows` that met every constraint, and how many of the others missed each constraint."""
    if ATTR_STUDY not in study.user_attrs:
        return list(rows), Counter()
    infeasible = optuna_seam.numbers_with_attr(study, ATTR_INFEASIBLE)
    missed = [r for r in rows if r.number in infeasible]
    by = Counter(c for got in optuna_seam.user_attrs(study, missed, [ATTR_INFEASIBLE]).values()
                 for c in got.get(ATTR_INFEASIBLE, []))
    return [r for r in rows if r.number not in infeasible], by


def feasible(study: optuna.Study, rows: Sequence[optuna_seam.Row]) -> list[optuna_seam.Row]:
    return split(study, rows)[0]


def lines(study: optuna.Study, full: Sequence[optuna_seam.Row] | None = None, included: bool = False) -> list[str]:
    """What a reader says about the constraints: which, and how many full trials missed which
    (`included`: the reader shows those trials too)."""
    constraints = of_study(study)
    if not constraints:
        return []
    full = settings.full_rows(study) if full is None else full
    kept, by = split(study, full)
    out = [f"constraints: {', '.join(map(str, constraints))}"]
    n_out = len(full) - len(kept)
    if n_out:
        shown = "shown (--include-infeasible)" if included else "left out of the front; --include-infeasible shows them"
        out.append(f"{n_out} of {len(full)} COMPLETE trials missed a constraint ({shown}): "
                   + ", ".join(f"{c}: {n}" for c, n in by.most_common()))
    return out


def verdict(study: optuna.Study) -> list[str]:
    """The line a launch ends with when no full trial met the constraints (none otherwise)."""
    constraints = of_study(study)
    full = settings.full_rows(study) if constraints else []
    return [none_met(constraints, len(full))] if full and not feasible(study, full) else []


def none_met(constraints: Sequence[Constraint], n: int) -> str:
    return (f"no trial met the constraints: all {n} COMPLETE trials missed at least one of "
            f"{', '.join(map(str, constraints))}; relax them, widen the search space, or train longer")


def export_fields(study: optuna.Study, included: bool) -> dict[str, Any]:
    """What an export says about the constraints: which, whether trials that missed one are in it,
    and how many full trials missed each."""
    stated = of_study(study)
    if not stated:
        return {}
    full = settings.full_rows(study)
    kept, by = split(study, full)
    return {"constraints": [str(c) for c in stated], "infeasible_included": included,
            "infeasible": {"trials": len(full) - len(kept), "of": len(full), "by_constraint": dict(by)}}


def check_lines(spec: StudySpec) -> list[str]:
    """What `hpo check` says about the constraints and the warm start."""
    out = []
    if spec.constraints:
        out.append("constraints (a trial counts only when it meets all; the sampler learns from them): "
                   + ", ".join(map(str, spec.constraints)))
    if spec.warm_start is not None:
        w = spec.warm_start
        out.append(f"warm start: the first trials are the {w.top} Pareto-best configs of study {w.study!r}"
                   + (" in the storage given" if w.storage else "") + " that fit this search space")
    return out
