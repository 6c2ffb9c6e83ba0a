"""A study fixes what its trials train on: the settings no search parameter changes.

Relaunching a study with a changed fixed setting (the data, the model, a fixed train / loss /
rebalance value, the objectives) would put trials trained on different data into one front.
`hpo launch` refuses that (exit 2, showing the differences) unless `--allow-changed-settings`
is given: then the change is recorded on the study, the settings version goes up, and every
trial records the version it trained under, so fronts, export and report use the current
version's trials only (`pareto.full_trials`).
"""
from __future__ import annotations

import json
import time
from typing import Any

import optuna

from hpo.errors import UserError
from hpo.spec import StudySpec

ATTR_FIXED = "hpo_fixed"  # study: the fixed settings, flattened (dotted keys)
ATTR_VERSION = "hpo_settings_version"  # study: the current version, 0 at creation
ATTR_CHANGES = "hpo_settings_changes"  # study: [{version, time, changes}]
ATTR_TRIAL_VERSION = "hpo_settings"  # trial: the version it trained under


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def fixed_settings(spec: StudySpec) -> dict[str, Any]:
    """What every trial of the study trains with, searched fields left out (JSON-plain)."""
    cfg = spec.fixed_config()
    cfg.pop("resources")  # where a trial runs, not what it trains
    cfg["train"].pop("cuda_graph", None)  # how the step runs: the same training, replayed (graph_step.py)
    cfg["objectives"] = [[o.name, o.direction] for o in spec.objectives]
    flat = flatten(json.loads(json.dumps(cfg, default=str)))
    for p in spec.search:
        flat.pop(".".join(x for x in (p.section, p.sub, p.field) if x), None)
    return flat


def differences(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[Any]]:
    return {k: [old.get(k, "(unset)"), new.get(k, "(unset)")] for k in sorted({*old, *new})
            if old.get(k, "(unset)") != new.get(k, "(unset)")}


def settle(study: optuna.Study, spec: StudySpec, allow_changed: bool) -> int:
    """Record the settings of a new study, or check a resumed one's; returns the version trials
    of this launch train under."""
    new = fixed_settings(spec)
    attrs = study.user_attrs
    if ATTR_FIXED not in attrs:  # a new study (or one from before settings were recorded)
        study.set_user_attr(ATTR_FIXED, new)
        study.set_user_attr(ATTR_VERSION, attrs.get(ATTR_VERSION, 0))
        return int(attrs.get(ATTR_VERSION, 0))
    version, diff = int(attrs.get(ATTR_VERSION, 0)), differences(attrs[ATTR_FIXED], new)
    if not diff:
        return version
    shown = "\n".join(f"  {k}: was {old!r}, now {now!r}" for k, (old, now) in diff.items())
    if not allow_changed:
        raise UserError(f"{spec.path}: study {spec.name!r} was run with other fixed settings; its trials would "
                        f"share a front with trials trained differently:\n{shown}\n  fix: restore them, launch "
                        "under a new study name, or pass --allow-changed-settings (later trials are kept apart)")
    study.set_user_attr(ATTR_CHANGES, [*attrs.get(ATTR_CHANGES, []),
                                       {"version": version + 1, "time": time.time(), "changes": diff}])
    study.set_user_attr(ATTR_FIXED, new)
    study.set_user_attr(ATTR_VERSION, version + 1)
    return version + 1
