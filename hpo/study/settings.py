"""A study fixes what its trials train on: the settings no search parameter changes, and the data.

Relaunching a study with a changed fixed setting (the data set's options, the model, a fixed
train / loss / rebalance value, the objectives), or on data that changed under the same settings
(images added, removed or edited: the data check's content digest and per-class counts,
`data_record`), would put trials trained on different data into one front. `hpo launch` refuses
that (exit 2, showing the differences, per class for the data) unless `--allow-changed-settings`
is given: then the change is recorded on the study, the settings version goes up, and every
trial records the version it trained under, so fronts, export and report use the current
version's trials only (`pareto.full_trials`).
"""
from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from hpo.errors import UserError
from hpo.spec import StudySpec
from hpo.study import optuna_seam
from hpo.study.storage import ATTR_STOPPED_EARLY

ATTR_FIXED = "hpo_fixed"  # study: the fixed settings, flattened (dotted keys)
ATTR_VERSION = "hpo_settings_version"  # study: the current version, 0 at creation
ATTR_CHANGES = "hpo_settings_changes"  # study: [{version, time, changes}]
ATTR_TRIAL_VERSION = "hpo_settings"  # trial: the version it trained under
ATTR_DATA = "hpo_data"  # study: the data it trains on (`data_record`)


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


def data_record(summary: Any, digest: str | None) -> dict[str, Any]:
    """What a study keeps of its data: the content digest the data check computed
    (hpo.tune.data_check.content_digest) and each part's per-class counts. SUMMARY: the data
    check's answer (`DataSummary` or `Splits`)."""
    k = len(summary.class_names)
    return {"digest": digest, "class_names": list(summary.class_names),
            "counts": {part: np.bincount(getattr(summary, part).y, minlength=k).tolist()
                       for part in ("train", "val", "test")}}


def _old_data(attrs: dict[str, Any]) -> dict[str, Any] | None:
    """The data record of a study, or for a study from before it was kept, the training counts its
    launches recorded (no digest: the counts alone are compared)."""
    if ATTR_DATA in attrs:
        return attrs[ATTR_DATA]
    if "class_counts" in attrs and "class_names" in attrs:
        return {"digest": None, "class_names": attrs["class_names"], "counts": {"train": attrs["class_counts"]}}
    return None


def data_differences(old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[str]:
    """Lines saying how the data changed: per class, each part's count that differs; else that the
    images differ at the same counts. Empty: the same data (or nothing to compare)."""
    if old is None or new is None:
        return []
    counts = [{name: {part: c[i] for part, c in rec["counts"].items()} for i, name in enumerate(rec["class_names"])}
              for rec in (old, new)]
    lines = []
    for name in dict.fromkeys([*old["class_names"], *new["class_names"]]):
        was, now = counts[0].get(name, {}), counts[1].get(name, {})
        parts = [f"{part} {was.get(part, 0)} -> {now.get(part, 0)}" for part in old["counts"]
                 if was.get(part, 0) != now.get(part, 0)]
        if parts:
            gone = " (class gone)" if name not in counts[1] else " (new class)" if name not in counts[0] else ""
            lines.append(f"  data class {name!r}{gone}: " + ", ".join(parts))
    if len(lines) > SHOWN:
        lines[SHOWN:] = [f"  ... and {len(lines) - SHOWN} more classes"]
    if not lines and old["digest"] is not None and old["digest"] != new["digest"]:
        lines.append("  data: the same class counts, other images (files changed in place, or another Pillow or hpo "
                     "version decodes them differently)")
    return lines


SHOWN = 20  # class lines a refusal shows


def settle(study: optuna.Study, spec: StudySpec, allow_changed: bool, data: dict[str, Any] | None = None) -> int:
    """Record the settings (and DATA, `data_record`'s) of a new study, or check a resumed one's;
    returns the version trials of this launch train under."""
    new = fixed_settings(spec)
    attrs = study.user_attrs
    if ATTR_FIXED not in attrs:  # a new study (or one from before settings were recorded)
        study.set_user_attr(ATTR_FIXED, new)
        study.set_user_attr(ATTR_VERSION, attrs.get(ATTR_VERSION, 0))
        if data is not None:
            study.set_user_attr(ATTR_DATA, data)
        return int(attrs.get(ATTR_VERSION, 0))
    version, diff = int(attrs.get(ATTR_VERSION, 0)), differences(attrs[ATTR_FIXED], new)
    changed_data = data_differences(_old_data(attrs), data)
    if not diff and not changed_data:
        if data is not None and ATTR_DATA not in attrs:  # a study from before its data was recorded
            study.set_user_attr(ATTR_DATA, data)
        return version
    shown = "\n".join([*(f"  {k}: was {old!r}, now {now!r}" for k, (old, now) in diff.items()), *changed_data])
    if not allow_changed:
        what = "other fixed settings" if diff else "other data"
        what = "other fixed settings and other data" if diff and changed_data else what
        raise UserError(f"{spec.path}: study {spec.name!r} was run with {what}; its trials would share a front "
                        f"with trials trained differently:\n{shown}\n  fix: restore them, launch under a new study "
                        "name, or pass --allow-changed-settings (later trials are kept apart)")
    record = {**diff, **({"data": [line.strip() for line in changed_data]} if changed_data else {})}
    study.set_user_attr(ATTR_CHANGES, [*attrs.get(ATTR_CHANGES, []),
                                       {"version": version + 1, "time": time.time(), "changes": record}])
    study.set_user_attr(ATTR_FIXED, new)
    if data is not None:
        study.set_user_attr(ATTR_DATA, data)
    study.set_user_attr(ATTR_VERSION, version + 1)
    return version + 1


def full_rows(study: optuna.Study, of: Sequence[optuna_seam.Row] | None = None) -> list[optuna_seam.Row]:
    """COMPLETE trials that ran all their epochs (no `hpo_stopped_early`) under the study's
    current fixed settings (this module), in number order; of the study's `rows` (or
    `heads`) `of`, when the caller has read them."""
    stopped = optuna_seam.numbers_with_attr(study, ATTR_STOPPED_EARLY)
    of = optuna_seam.rows(study, (TrialState.COMPLETE,)) if of is None else of
    full = [r for r in of if r.state == TrialState.COMPLETE and r.number not in stopped]
    attrs = study.user_attrs
    if ATTR_CHANGES not in attrs:  # settings never changed: every trial trained under version 0
        return full
    version = attrs.get(ATTR_VERSION, 0)
    tagged = optuna_seam.user_attrs(study, full, [ATTR_TRIAL_VERSION])
    return [r for r in full if tagged.get(r.number, {}).get(ATTR_TRIAL_VERSION, 0) == version]
