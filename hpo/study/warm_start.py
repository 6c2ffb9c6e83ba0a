"""`warm_start: {study: NAME, top: K}` (or `hpo launch --warm-start NAME`): a study's first trials
are the Pareto-best configs of an earlier study.

The earlier study's front (its feasible front, when it has constraints) is read best first; each
config is fitted to this study's search space: a number outside this space's range is clipped to
it, a categorical value this space does not offer skips the config, a parameter this space does
not search is dropped, and one it searches that the config lacks is left to the sampler. Each
config says what happened to it in one line. The fitted ones are queued (Optuna's
`enqueue_trial`), so the sampler's first asks return them; the study records the warm start, so a
relaunch queues nothing again.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import optuna

from hpo.errors import UserError
from hpo.spec.parse import STUDY_NAME
from hpo.spec.study import Param, StudySpec, WarmStart
from hpo.study import pareto
from hpo.study import storage as st

ATTR_STUDY = "hpo_warm_start"  # study: {"study": NAME, "queued": [its trial numbers], "skipped": [...]}
ATTR_TRIAL = "hpo_warm_start_from"  # a queued trial: "NAME#NUMBER", the trial it came from


def from_flag(spec: StudySpec, name: str | None) -> StudySpec:
    """The spec with `--warm-start NAME` in place of its own `warm_start.study` (its `top` kept)."""
    if name is None:
        return spec
    if not STUDY_NAME.fullmatch(name) or name == spec.name:
        raise UserError(f"--warm-start {name[:120]!r}: give the name of an earlier, other study")
    top = spec.warm_start.top if spec.warm_start else WarmStart(name).top
    return dataclasses.replace(spec, warm_start=WarmStart(name, top, spec.warm_start and spec.warm_start.storage))


def fit(spec: StudySpec, params: Mapping[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """`params` (an earlier trial's, by Optuna name) fitted to this space: (params, what changed),
    or (None, why it does not fit)."""
    out: dict[str, Any] = {}
    notes: list[str] = []
    taken: dict[str, Any] = {}
    for p in spec.search:
        if not p.active(taken) or p.optuna_name not in params:
            continue  # inactive here, or the earlier study did not search it: the sampler draws it
        value, note = _fit_one(p, params[p.optuna_name])
        if value is None:
            return None, [note]
        out[p.optuna_name], taken[p.name] = value, p.value(value)
        notes += [note] if note else []
    dropped = sorted(set(params) - set(out))  # not searched here, or inactive under this config's choices
    if dropped:
        notes.append(f"not used here, dropped: {', '.join(dropped)}")
    return out, notes


def _fit_one(p: Param, value: Any) -> tuple[Any, str]:
    if p.type == "categorical":
        return (value, "") if value in p.choices else (None, f"{p.name} = {value!r} is not among {list(p.choices)}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None, f"{p.name} = {value!r} is not a number"
    fitted = min(max(value, p.low), p.high)
    if p.type == "int":
        fitted = int(round(fitted))
    return fitted, "" if fitted == value else f"{p.optuna_name} {value:g} clipped to {fitted:g}"


def enqueue(study: optuna.Study, spec: StudySpec, storage: optuna.storages.BaseStorage) -> list[str]:
    """Queue the earlier study's best configs as this study's first trials, once; returns the lines
    that say what was queued, clipped or skipped (none when there is nothing to do)."""
    ws = spec.warm_start
    if ws is None or ATTR_STUDY in study.user_attrs:
        return []
    source = st.load_study(storage if ws.storage is None else
                           st.open_storage(st.resolve_url(ws.storage, create=False), create=False), ws.study)
    best = pareto.front(source)[:ws.top]
    lines, queued, skipped, seen = [], [], [], {}
    for t in best:
        params, notes = fit(spec, t.params)
        key = None if params is None else repr(sorted(params.items()))
        if params is None or key in seen:
            skipped.append(t.number)
            why = notes[0] if params is None else f"once fitted, the same config as trial {seen[key]}"
            lines.append(f"warm start: trial {t.number} of {ws.study!r} skipped: {why}")
            continue
        seen[key] = t.number
        study.enqueue_trial(params, user_attrs={ATTR_TRIAL: f"{ws.study}#{t.number}"})
        queued.append(t.number)
        lines.append(f"warm start: trial {t.number} of {ws.study!r} queued" + (f" ({'; '.join(notes)})" if notes else ""))
    study.set_user_attr(ATTR_STUDY, {"study": ws.study, "queued": queued, "skipped": skipped})
    if not best:
        lines.append(f"warm start: study {ws.study!r} has no COMPLETE trial on its front; nothing queued")
    return lines
