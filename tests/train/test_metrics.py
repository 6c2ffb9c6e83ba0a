"""Metrics against scikit-learn and a hand-worked 3-class example."""
from __future__ import annotations

import math

import pytest
from sklearn.metrics import confusion_matrix, f1_score, precision_score, recall_score

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
