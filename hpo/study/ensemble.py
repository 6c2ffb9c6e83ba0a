"""Pareto ensembles without retraining: greedy forward selection on stored validation logits.

Caruana et al. (2004): start from nothing and repeatedly add (with replacement) the trial whose
softmax, averaged with those chosen so far, scores best on the validation split, until the
ensemble has `size` members. The score is the mean of the study's objectives, each taken in its
better direction (every hpo metric is a fraction in [0, 1]). The averaged softmax is the
write-ups' stacking. Test logits are read only to report the chosen ensemble, never to choose.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import optuna

from hpo.study.pareto import full_trials, signs
from hpo.study.posthoc import load_logits
from hpo.study.storage import ATTR_CONFIG, objective_names
from hpo.train.metrics import softmax  # numpy and scikit-learn; no torch


@dataclass(frozen=True)
class Member:
    number: int
    val: np.ndarray  # softmax probabilities
    test: np.ndarray
    counts: list[int]
    minority: list[int] | None


def score(probs: np.ndarray, y: np.ndarray, m: Member, metrics: Sequence[str], sgn: Sequence[int]) -> tuple:
    from hpo.train.metrics import evaluate

    values = evaluate(y, probs.argmax(1), m.counts, m.minority, probs=probs)
    vals = tuple(float(values[k]) for k in metrics)
    return float(np.mean([v if s > 0 else 1 - v for v, s in zip(vals, sgn)])), vals


def members(study: optuna.Study, artifact_store: Any) -> tuple[list[Member], np.ndarray, np.ndarray]:
    out, y_val, y_test = [], None, None
    for t in full_trials(study):
        lg = load_logits(t, study, artifact_store)
        if lg:
            out.append(Member(t.number, softmax(lg["val"]), softmax(lg["test"]), t.user_attrs["class_counts"],
                              t.user_attrs.get("minority")))
            y_val, y_test = lg["y_val"], lg["y_test"]
    return out, y_val, y_test


def select(study: optuna.Study, artifact_store: Any, size: int) -> dict[str, Any]:
    """The chosen members (trial numbers, repeats allowed) and the validation / test values of the
    ensemble and of the best single trial by the same score."""
    pool, y_val, y_test = members(study, artifact_store)
    if not pool:
        raise ValueError("no full trial with stored logits")
    metrics, sgn = objective_names(study), signs(study.directions)
    chosen: list[Member] = []
    total = np.zeros_like(pool[0].val)
    for _ in range(size):
        best = max(pool, key=lambda m: score((total + m.val) / (len(chosen) + 1), y_val, m, metrics, sgn)[0])
        chosen.append(best)
        total += best.val
    single = max(pool, key=lambda m: score(m.val, y_val, m, metrics, sgn)[0])
    ens_test = sum(m.test for m in chosen) / len(chosen)
    return {"members": [m.number for m in chosen], "metrics": metrics,
            "ensemble": {"val": score(total / len(chosen), y_val, single, metrics, sgn)[1],
                         "test": score(ens_test, y_test, single, metrics, sgn)[1]},
            "single": {"trial": single.number, "val": score(single.val, y_val, single, metrics, sgn)[1],
                       "test": score(single.test, y_test, single, metrics, sgn)[1]}}


def document(study: optuna.Study, result: dict[str, Any]) -> dict[str, Any]:
    """An export `hpo train` re-runs: every member re-trained, their softmax averaged."""
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    return {"study": study.study_name, "ensemble": {"members": result["members"], "metrics": result["metrics"]},
            "configs": [{"trial": n, "config": by_number[n].user_attrs.get(ATTR_CONFIG)} for n in result["members"]]}
