"""Per-class and imbalance-aware metrics, computed with scikit-learn."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from hpo.errors import UserError
from hpo.spec.schema import METRICS_GROUPS

MANY_ABOVE = METRICS_GROUPS.fields["many_above"].default
FEW_BELOW = METRICS_GROUPS.fields["few_below"].default


def adjust(logits: np.ndarray, class_counts: Sequence[int], tau: float) -> np.ndarray:
    """Post-hoc logit adjustment (Menon et al. 2021): logits - tau * log(prior), the prior being
    the training class frequencies; tau > 0 favours the rare classes."""
    counts = np.asarray(class_counts, dtype=np.float64)
    return np.asarray(logits, dtype=np.float64) - tau * np.log(counts / counts.sum())


def decision_threshold(class_counts: Sequence[int], tau: float, positive: int) -> float:
    """With two classes, adjusting by tau is thresholding: class `positive` is predicted when its
    softmax probability exceeds 1 / (1 + (n_other / n_pos)^tau), i.e. 0.5 at tau 0 and, for the
    rarer class, its prior n_pos / (n_pos + n_other) at tau 1. A threshold on the model's output at
    evaluation; `rebalance.threshold` is the resampling count during training, another thing."""
    n_pos, n_other = float(class_counts[positive]), float(class_counts[1 - positive])
    return 1.0 / (1.0 + (n_other / n_pos) ** tau)


def default_minority(class_counts: Sequence[int]) -> list[int]:
    """Classes whose training count is below the mean count."""
    counts = np.asarray(class_counts, dtype=float)
    return [int(k) for k in np.flatnonzero(counts < counts.mean())]


def resolve_minority(minority: Sequence[int | str] | None, class_counts: Sequence[int],
                     class_names: Sequence[str] | None = None) -> list[int]:
    """Class indices of the minority set: given by index or by name, else the default."""
    if minority is None:
        return default_minority(class_counts)
    names = list(class_names or [str(k) for k in range(len(class_counts))])
    out = []
    for m in minority:
        if isinstance(m, str) and m in names:
            out.append(names.index(m))
        elif isinstance(m, int) and 0 <= m < len(class_counts):
            out.append(m)
        else:
            raise UserError(f"minority: {m!r} is neither a class index 0..{len(class_counts) - 1} "
                            f"nor a class name ({', '.join(names)})")
    return sorted(set(out))


def shot_groups(class_counts: Sequence[int], many_above: int = MANY_ABOVE, few_below: int = FEW_BELOW) -> dict[str, list[int]]:
    """Many-shot (> many_above training images), medium (few_below..many_above), few-shot (< few_below)."""
    n = np.asarray(class_counts)
    return {"many": np.flatnonzero(n > many_above).tolist(),
            "medium": np.flatnonzero((n >= few_below) & (n <= many_above)).tolist(),
            "few": np.flatnonzero(n < few_below).tolist()}


def softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def ranking(y_true: Sequence[int], probs: np.ndarray | None, minority_idx: Sequence[int]) -> dict[str, float]:
    """AUROC and average precision of each minority class against the rest, by its predicted
    probability, averaged over the minority classes (scikit-learn). With two classes this is the
    usual binary AUROC / AP with the minority class as the positive one. NaN without probabilities,
    with non-finite ones (a diverged model: the trial then fails as non_finite_loss, not here), or
    when a minority class is absent from y_true (its AUROC is undefined)."""
    y = np.asarray(y_true)
    if (probs is None or not np.isfinite(probs).all() or not len(minority_idx)
            or any(not (y == c).any() or (y == c).all() for c in minority_idx)):
        return {"auroc": float("nan"), "average_precision": float("nan")}
    from sklearn.metrics import average_precision_score, roc_auc_score  # see `evaluate`

    return {"auroc": float(np.mean([roc_auc_score(y == c, probs[:, c]) for c in minority_idx])),
            "average_precision": float(np.mean([average_precision_score(y == c, probs[:, c]) for c in minority_idx]))}


def evaluate(y_true: Sequence[int], y_pred: Sequence[int], class_counts: Sequence[int],
             minority: Sequence[int | str] | None = None,
             class_names: Sequence[str] | None = None, many_above: int = MANY_ABOVE,
             few_below: int = FEW_BELOW, probs: np.ndarray | None = None) -> dict[str, Any]:
    """Metrics of one prediction run (`probs`: the predicted class probabilities, for the ranking
    metrics). A group or minority set with no class gives NaN, not 0: an empty group has no
    accuracy, and a study optimising it should see that, not a fake score."""
    # imported here, not at the top: the launch's driver imports this module to resolve the
    # minority classes and never scores; scikit-learn would cost it ~1 s of its start
    # (bench/storage_scale.py times the start)
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    k = len(class_counts)
    labels = list(range(k))
    p, r, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    minority_idx = resolve_minority(minority, class_counts, class_names)
    names = list(class_names or [str(c) for c in labels])
    present = support > 0  # recall of a class absent from y_true is undefined; leave it out
    recalls = r[present]
    groups = shot_groups(class_counts, many_above, few_below)
    shot = {f"{g}_shot_acc": float(r[idx].mean()) if idx else float("nan") for g, idx in groups.items()}
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_acc": float(recalls.mean()),
        "minority_f1": float(f1[minority_idx].mean()) if minority_idx else float("nan"),
        "g_mean": float(np.prod(recalls) ** (1.0 / len(recalls))),
        **ranking(y_true, probs, minority_idx),
        "minority": minority_idx,
        **shot,
        "shot_groups": groups,
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "per_class": {
            names[c]: {"precision": float(p[c]), "recall": float(r[c]), "f1": float(f1[c]),
                       "support": int(support[c]), "train_count": int(class_counts[c])}
            for c in labels
        },
    }
