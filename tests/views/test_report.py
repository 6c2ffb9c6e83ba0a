"""Report numbers on a hand-made study: hypervolume and per-loss table."""
from __future__ import annotations

import optuna
import pytest

from hpo.study import pareto, storage
from hpo.views import report


def make_study(points: list[tuple[str, float, float]], early: set[int] = frozenset()) -> optuna.Study:
    study = optuna.create_study(directions=["maximize", "maximize"])
    study.set_user_attr(storage.ATTR_OBJECTIVES, [{"name": "minority_f1", "direction": "maximize"},
                                                  {"name": "macro_acc", "direction": "maximize"}])
    for i, (loss, a, b) in enumerate(points):
        attrs = {storage.ATTR_CONFIG: {"loss": {"name": loss}}}
        if i in early:
            attrs[storage.ATTR_STOPPED_EARLY] = 3
        study.add_trial(optuna.trial.create_trial(values=[a, b], user_attrs=attrs))
    return study


def test_hypervolume_history_by_hand() -> None:
    study = make_study([("ce", 0.5, 0.5), ("ce", 0.2, 0.2), ("focal", 0.8, 0.2), ("focal", 0.9, 0.9)])
    # 0.25; dominated point adds nothing; + (0.8-0.5)*0.2 = 0.31; (0.9, 0.9) dominates all: 0.81
    assert [h for _, h in pareto.hypervolume_history(study)] == pytest.approx([0.25, 0.25, 0.31, 0.81])


def test_early_stopped_trials_stay_out_of_the_report_numbers() -> None:
    study = make_study([("ce", 0.5, 0.5), ("ce", 0.99, 0.99)], early={1})
    assert [h for _, h in pareto.hypervolume_history(study)] == pytest.approx([0.25])
    assert report.per_loss_table(study).loc["ce", "trials"] == 1


def test_per_loss_table_best_and_median() -> None:
    study = make_study([("ce", 0.1, 0.4), ("ce", 0.3, 0.2), ("ce", 0.2, 0.9), ("ldam", 0.6, 0.5)])
    t = report.per_loss_table(study)
    assert list(t.index) == ["ldam", "ce"]  # sorted by best minority_f1
    assert t.loc["ce", "minority_f1 best"] == pytest.approx(0.3)
    assert t.loc["ce", "minority_f1 median"] == pytest.approx(0.2)
    assert t.loc["ce", "macro_acc best"] == pytest.approx(0.9) and t.loc["ce", "trials"] == 3


def test_growing_hypervolume_takes_a_whole_curve_per_trial() -> None:
    # trial 0 brings two points, (0.5, 0.5) and (0.8, 0.2): 0.25 + 0.3 * 0.2 = 0.31; trial 1 only
    # dominated points: unchanged; trial 2 (0.9, 0.9) dominates everything: 0.81
    groups = [(0, [(0.5, 0.5), (0.8, 0.2)]), (1, [(0.4, 0.4), (0.1, 0.1)]), (2, [(0.9, 0.9)])]
    assert [h for _, h in pareto.growing_hypervolume(groups, [1, 1])] == pytest.approx([0.31, 0.31, 0.81])
