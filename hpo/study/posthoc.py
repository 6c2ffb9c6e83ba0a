"""Post-hoc logit adjustment: every trained model is a curve of trade-offs, not one point.

Menon et al. (2021): subtracting tau * log(prior) from a model's logits after training moves it
along the minority-F1 / macro-accuracy trade-off much as training with the adjusted loss does.
Each full trial stored its validation logits (`logits.npz`); sweeping tau on them gives a curve
of (minority F1, macro accuracy) per trial, and the study's post-hoc front is the Pareto front
over all (trial, tau) points. For two classes the sweep is a sweep of the decision threshold on
the minority class's probability. Only validation logits are read here: test logits are for
`hpo train` / report scoring, never for choosing.

A study's constraints (hpo.study.constraints) hold per (trial, tau) point: a constraint on what the
predictions measure (a class's recall, `minority_recall`, an objective metric, ...) is measured
again at each tau, a constraint on the trial's cost (`seconds`, ...) as the trial recorded it. Only
the points that meet them all count, unless the reader asks for all. A constraint on the
predictions becomes each trial's operating point (`operating`): the tau nearest 0 that meets it,
as a threshold is set to reach a required recall.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import optuna

from hpo.spec.schema import CONSTRAINT_COSTS
from hpo.spec.study import Constraint
from hpo.study.pareto import dominates, full_trials, signs
from hpo.study import constraints, optuna_seam, settings
from hpo.study.storage import LOGITS, objective_names

TAUS = tuple(np.round(np.linspace(-1.0, 3.0, 41), 3))  # 0 = the trial as trained


@dataclass(frozen=True)
class Point:
    trial: int
    tau: float
    values: tuple[float, ...]
    feasible: bool = True  # met every constraint of the study at this tau


def load_logits(trial: optuna.trial.FrozenTrial, study: optuna.Study, artifact_store: Any) -> dict[str, np.ndarray]:
    from optuna.artifacts import download_artifact, get_all_artifact_meta

    meta = [m for m in get_all_artifact_meta(trial, storage=optuna_seam.storage_of(study)) if m.filename == LOGITS]
    if not meta:
        return {}
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / LOGITS
        download_artifact(artifact_store=artifact_store, artifact_id=meta[0].artifact_id, file_path=str(path))
        return dict(np.load(io.BytesIO(path.read_bytes())))


def sweep(val_logits: np.ndarray, y_val: np.ndarray, class_counts: Sequence[int], minority: Sequence[int] | None,
          taus: Sequence[float] = TAUS, class_names: Sequence[str] | None = None) -> list[tuple[float, dict[str, Any]]]:
    """(tau, every metric of the adjusted predictions) for each tau, on the validation split."""
    from hpo.train.metrics import adjust, evaluate, softmax  # numpy and scikit-learn; no torch

    out = []
    for tau in taus:
        adjusted = adjust(val_logits, class_counts, tau)
        out.append((float(tau), evaluate(y_val, adjusted.argmax(1), class_counts, minority, class_names,
                                         probs=softmax(adjusted))))
    return out


def curve(val_logits: np.ndarray, y_val: np.ndarray, class_counts: Sequence[int], minority: Sequence[int] | None,
          metrics: Sequence[str], taus: Sequence[float] = TAUS) -> list[tuple[float, tuple[float, ...]]]:
    """(tau, objective values) for each tau, on the validation split."""
    return [(tau, tuple(float(m[k]) for k in metrics)) for tau, m in sweep(val_logits, y_val, class_counts,
                                                                          minority, taus)]


def on_predictions(c: Constraint) -> bool:
    """`c` bounds what the predictions measure (moves with tau), not what the trial cost."""
    return c.metric not in CONSTRAINT_COSTS


def _meets(stated: Sequence[Constraint], measured: dict[str, Any]) -> bool:
    return all(constraints.violation(c, constraints.measure(c, measured)) <= 0 for c in stated)


def points(study: optuna.Study, artifact_store: Any, taus: Sequence[float] = TAUS,
           include_infeasible: bool = False) -> list[Point]:
    """Every (full trial, tau) point whose trial stored logits and that met the study's constraints
    (with `include_infeasible`, every point, each marked)."""
    metrics, stated, out = objective_names(study), constraints.of_study(study), []
    on_pred = [c for c in stated if on_predictions(c)]
    for t in full_trials(study):
        lg = load_logits(t, study, artifact_store)
        if not lg:
            continue
        counts, names = t.user_attrs["class_counts"], t.user_attrs.get("class_names")
        recorded = t.user_attrs.get(constraints.ATTR_MEASURED) or {}
        cost_met = all(constraints.violation(c, recorded.get(c.label)) <= 0 for c in stated if not on_predictions(c))
        for tau, m in sweep(lg["val"], lg["y_val"], counts, t.user_attrs.get("minority"), taus, names):
            ok = cost_met and _meets(on_pred, m)
            if ok or include_infeasible:
                out.append(Point(t.number, tau, tuple(float(m[k]) for k in metrics), ok))
    return out


def operating(study: optuna.Study, pts: Sequence[Point]) -> tuple[list[Point], list[int]]:
    """Per trial, its operating point under the study's constraints on the predictions: the tau
    nearest 0 (the least adjustment; of two as near, the smaller) at which the trial meets them
    all; and the trials of `pts` where no tau does. ([], []) when no such constraint is stated."""
    if not any(on_predictions(c) for c in constraints.of_study(study)):
        return [], []
    best: dict[int, Point] = {}
    for p in sorted((p for p in pts if p.feasible), key=lambda p: (abs(p.tau), p.tau)):
        best.setdefault(p.trial, p)
    return sorted(best.values(), key=lambda p: p.trial), sorted({p.trial for p in pts} - set(best))


def front(study: optuna.Study, pts: Sequence[Point]) -> list[Point]:
    """The Pareto front over all (trial, tau) points, best first objective first."""
    sgn = signs(study.directions)
    best = [p for p in pts if not any(dominates(q.values, p.values, sgn) for q in pts if q is not p)]
    uniq: dict[tuple, Point] = {}
    for p in sorted(best, key=lambda p: (abs(p.tau), p.trial)):  # of a trial's equal points, the smallest |tau|
        uniq.setdefault((p.trial, p.values), p)
    return sorted(uniq.values(), key=lambda p: (-sgn[0] * p.values[0], p.trial, p.tau))


def rows(study: optuna.Study, pts: Sequence[Point]) -> list[dict[str, Any]]:
    """Export rows of the post-hoc front: each trial's config with the chosen `train.posthoc_tau`,
    which `hpo train` applies at evaluation."""
    import copy

    from hpo.study.storage import ATTR_CONFIG

    names, by_number = objective_names(study), {t.number: t for t in full_trials(study)}
    out = []
    for p in front(study, pts):
        t = by_number[p.trial]
        cfg = copy.deepcopy(t.user_attrs.get(ATTR_CONFIG))
        if cfg is not None:
            cfg["train"]["posthoc_tau"] = p.tau
        row = {"trial": p.trial, "posthoc_tau": p.tau, "values": dict(zip(names, p.values)),
               "params": dict(t.params), "config": cfg}
        counts = t.user_attrs.get("class_counts") or []
        if len(counts) == 2:  # two classes: the same choice as a threshold on p(minority class)
            from hpo.train.metrics import decision_threshold

            positive = (t.user_attrs.get("minority") or [int(np.argmin(counts))])[0]
            row["minority_threshold"] = round(decision_threshold(counts, p.tau, positive), 4)
        out.append(row)
    return out


def hypervolumes(study: optuna.Study, pts: Sequence[Point], include_infeasible: bool = False) -> tuple[float, float]:
    """(plain front's, post-hoc front's) hypervolume on validation, reference 0 / 1 per direction;
    the plain front of the trials that met the constraints unless `include_infeasible`."""
    from hpo.study.pareto import hypervolume, reference

    sgn = signs(study.directions)
    ref = reference(sgn)
    full = settings.full_rows(study)
    plain = [t.values for t in (full if include_infeasible else constraints.feasible(study, full))]
    return hypervolume(plain, sgn, ref), hypervolume([p.values for p in pts], sgn, ref)


def hypervolume_history(study: optuna.Study, pts: Sequence[Point]) -> list[tuple[int, float]]:
    """(trial number, hypervolume of the post-hoc front of the trials so far): each trial adds its
    whole tau curve. Tau 0 is the trial as trained, so this never falls below the plain history."""
    from itertools import groupby

    from hpo.study.pareto import growing_hypervolume

    ordered = sorted(pts, key=lambda p: p.trial)
    groups = ((n, [p.values for p in g]) for n, g in groupby(ordered, key=lambda p: p.trial))
    return growing_hypervolume(groups, signs(study.directions))
