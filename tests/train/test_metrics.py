"""Metrics against scikit-learn and a hand-worked 3-class example."""
from __future__ import annotations

import math

import pytest
import numpy as np
from sklearn.metrics import (average_precision_score, confusion_matrix, f1_score, precision_score, recall_score,
                             roc_auc_score)

from hpo.errors import UserError
from hpo.train import metrics

Y_TRUE = [0, 0, 0, 0, 1, 1, 2, 2]
Y_PRED = [0, 0, 0, 1, 1, 2, 2, 0]


def test_hand_worked_three_class_example() -> None:
    m = metrics.evaluate(Y_TRUE, Y_PRED, class_counts=[150, 30, 10])
    # recalls 3/4, 1/2, 1/2 -> macro 7/12; accuracy 5/8
    assert m["macro_acc"] == pytest.approx(7 / 12)
    assert m["accuracy"] == pytest.approx(5 / 8)
    # mean count 63.3: classes 1 and 2 are the minority; both have P = R = F1 = 1/2
    assert m["minority"] == [1, 2] and m["minority_f1"] == pytest.approx(0.5)
    assert m["per_class"]["0"] == {"precision": pytest.approx(3 / 4), "recall": pytest.approx(3 / 4),
                                   "f1": pytest.approx(3 / 4), "support": 4, "train_count": 150}
    assert m["g_mean"] == pytest.approx((0.75 * 0.5 * 0.5) ** (1 / 3))
    # many > 100: class 0; medium 20..100: class 1; few < 20: class 2
    assert m["shot_groups"] == {"many": [0], "medium": [1], "few": [2]}
    assert (m["many_shot_acc"], m["medium_shot_acc"], m["few_shot_acc"]) == pytest.approx((0.75, 0.5, 0.5))
    assert m["confusion"] == [[3, 1, 0], [0, 1, 1], [1, 0, 1]]


def test_agrees_with_sklearn() -> None:
    m = metrics.evaluate(Y_TRUE, Y_PRED, class_counts=[150, 30, 10])
    for c, (p, r, f) in enumerate(zip(precision_score(Y_TRUE, Y_PRED, average=None),
                                      recall_score(Y_TRUE, Y_PRED, average=None),
                                      f1_score(Y_TRUE, Y_PRED, average=None))):
        assert (m["per_class"][str(c)]["precision"], m["per_class"][str(c)]["recall"],
                m["per_class"][str(c)]["f1"]) == pytest.approx((p, r, f))
    assert m["macro_acc"] == pytest.approx(recall_score(Y_TRUE, Y_PRED, average="macro"))
    assert m["confusion"] == confusion_matrix(Y_TRUE, Y_PRED).tolist()


def test_default_minority_is_below_the_mean_training_count() -> None:
    assert metrics.default_minority([591, 839, 324]) == [2]  # mean 584.7: only the severe class
    assert metrics.default_minority([250, 50]) == [1]
    assert metrics.default_minority([5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]) == [3, 4, 5, 6, 7, 8, 9]  # mean 1240.6


def test_minority_override_by_index_or_name() -> None:
    y = [0, 1, 2, 2]
    assert metrics.evaluate(y, y, [10, 10, 1], minority=[0])["minority"] == [0]
    assert metrics.evaluate(y, y, [10, 10, 1], minority=["b"], class_names=["a", "b", "c"])["minority"] == [1]
    with pytest.raises(UserError, match="neither a class index"):
        metrics.evaluate(y, y, [10, 10, 1], minority=[7])


def test_shot_thresholds_are_configurable_and_empty_groups_are_nan() -> None:
    m = metrics.evaluate(Y_TRUE, Y_PRED, class_counts=[150, 30, 10], many_above=5, few_below=2)
    assert m["shot_groups"] == {"many": [0, 1, 2], "medium": [], "few": []}
    assert math.isnan(m["few_shot_acc"]) and m["many_shot_acc"] == pytest.approx(7 / 12)


def test_two_class_auroc_and_average_precision_rank_by_the_minority_probability() -> None:
    # 250 good (class 0) / 50 bad (class 1) in miniature: 4 good, 2 bad. Ranked by p(bad):
    # bad 0.9, good 0.8, bad 0.6, good 0.3, good 0.2, good 0.1 -> 7 of the 8 (bad, good) pairs in order
    y = [1, 0, 1, 0, 0, 0]
    p_bad = [0.9, 0.8, 0.6, 0.3, 0.2, 0.1]
    probs = np.array([[1 - p, p] for p in p_bad])
    m = metrics.evaluate(y, probs.argmax(1), class_counts=[250, 50], probs=probs)
    assert m["minority"] == [1]
    assert m["auroc"] == pytest.approx(7 / 8)
    assert m["average_precision"] == pytest.approx((1 / 1 + 2 / 3) / 2)  # precision at each bad one found
    assert m["auroc"] == pytest.approx(roc_auc_score(y, p_bad))
    assert m["average_precision"] == pytest.approx(average_precision_score(y, p_bad))


def test_multi_class_ranking_metrics_average_the_minority_classes_one_vs_rest() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [20, 8, 6])
    probs = rng.dirichlet([1, 1, 1], size=len(y))
    m = metrics.evaluate(y, probs.argmax(1), class_counts=[150, 30, 10], probs=probs)
    want = np.mean([roc_auc_score(y == c, probs[:, c]) for c in (1, 2)])
    assert m["minority"] == [1, 2] and m["auroc"] == pytest.approx(want)
    assert m["average_precision"] == pytest.approx(np.mean([average_precision_score(y == c, probs[:, c]) for c in (1, 2)]))


def test_ranking_metrics_are_nan_without_probabilities_or_with_a_missing_class() -> None:
    m = metrics.evaluate(Y_TRUE, Y_PRED, class_counts=[150, 30, 10])
    assert math.isnan(m["auroc"]) and math.isnan(m["average_precision"])
    probs = np.full((4, 3), 1 / 3)
    m = metrics.evaluate([0, 0, 0, 1], [0, 0, 0, 0], class_counts=[150, 30, 10], probs=probs)
    assert math.isnan(m["auroc"])  # class 2 is a minority class with no validation image
    diverged = np.full((8, 3), np.nan)  # a model whose loss went NaN: no exception, NaN metrics
    m = metrics.evaluate(Y_TRUE, Y_PRED, class_counts=[150, 30, 10], probs=diverged)
    assert math.isnan(m["auroc"]) and math.isnan(m["average_precision"])


def test_two_class_logit_adjustment_never_changes_the_ranking_metrics() -> None:
    # tau shifts every logit pair by the same constant: p(bad) keeps its order, so AUROC and AP stay;
    # the decision threshold on p(bad) moves, so F1 can change (the post-hoc sweep's point)
    rng = np.random.default_rng(1)
    logits, y = rng.normal(size=(40, 2)), rng.integers(0, 2, 40)
    base = metrics.evaluate(y, logits.argmax(1), [30, 10], probs=metrics.softmax(logits))
    for tau in (0.5, 1.0, 2.0):
        adj = metrics.adjust(logits, [30, 10], tau)
        m = metrics.evaluate(y, adj.argmax(1), [30, 10], probs=metrics.softmax(adj))
        assert (m["auroc"], m["average_precision"]) == pytest.approx((base["auroc"], base["average_precision"]))


@pytest.mark.parametrize("positive", [0, 1])
def test_two_class_logit_adjustment_is_a_threshold_on_the_minority_probability(positive: int) -> None:
    counts = [250, 50] if positive == 1 else [50, 250]  # the anomaly set's 250 good / 50 bad, either order
    rng = np.random.default_rng(2)
    logits = rng.normal(scale=3, size=(500, 2))
    p_min = metrics.softmax(logits)[:, positive]
    for tau in (0.0, 0.5, 1.0, 1.7):
        by_tau = metrics.adjust(logits, counts, tau).argmax(1) == positive
        threshold = metrics.decision_threshold(counts, tau, positive)
        assert np.array_equal(by_tau, p_min > threshold)
    assert metrics.decision_threshold(counts, 0.0, positive) == 0.5
    assert metrics.decision_threshold(counts, 1.0, positive) == pytest.approx(50 / 300)  # the minority's prior
