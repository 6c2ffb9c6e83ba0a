"""Constraints on real SQLite studies: what a trial measured, what Optuna's samplers are told, and
which trials the front, export and the readers' lines leave out."""
from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest

from hpo.errors import SpecError, UserError
from hpo.spec import parse_spec
from hpo.spec.study import Constraint
from hpo.study import constraints, export, pareto
from hpo.study import storage as st

PER_CLASS = {"good": {"precision": 0.9, "recall": 0.95, "f1": 0.92, "support": 50, "train_count": 200},
             "bad": {"precision": 0.7, "recall": 0.6, "f1": 0.65, "support": 10, "train_count": 40},
             "gone": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0, "train_count": 1}}
ATTRS = {"per_class": PER_CLASS, "minority": [1, 2], "seconds": 12.0, "macro_acc": 0.775, "n_params": 93_322}


def spec_with(items: list[dict], **extra) -> object:
    raw = {"search": {"lr": {"low": 0.01, "high": 0.1}}, "constraints": items, **extra}
    return parse_spec(raw, "s.yaml", default_name="s")


@pytest.mark.parametrize("item, value", [
    ({"metric": "recall", "class": "bad", "min": 0.9}, 0.6),
    ({"metric": "f1", "class": 0, "min": 0.9}, 0.92),  # a class by index
    ({"metric": "minority_recall", "min": 0.5}, 0.6),  # the absent class (support 0) has no recall
    ({"metric": "worst_class_recall", "min": 0.5}, 0.6),
    ({"metric": "seconds", "max": 60}, 12.0),
    ({"metric": "n_params", "max": 100_000}, 93_322),  # the parameter count the training loop records
    ({"metric": "macro_acc", "min": 0.5}, 0.775),
])
def test_measure_reads_each_kind_of_metric_from_the_trials_record(item: dict, value: float) -> None:
    (c,) = spec_with([item]).constraints
    assert constraints.measure(c, ATTRS) == pytest.approx(value)


def test_unrecorded_metric_counts_as_met_and_nan_as_missed() -> None:
    """GPU memory is not recorded on CPU (met); a NaN metric (an empty shot group) is missed."""
    (gpu,) = spec_with([{"metric": "gpu_mem_peak_mb", "max": 100}]).constraints
    (few,) = spec_with([{"metric": "few_shot_acc", "min": 0.2}]).constraints
    assert constraints.measure(gpu, ATTRS) is None and constraints.violation(gpu, None) <= 0
    assert constraints.violation(few, float("nan")) > 0


@pytest.mark.parametrize("items, field, words", [
    ([{"metric": "recal", "min": 0.9}], "constraints[0].metric", "known: accuracy"),
    ([{"metric": "recall", "min": 0.9}], "constraints[0].class", "measured per class"),
    ([{"metric": "macro_acc", "class": "bad", "min": 0.9}], "constraints[0].class", "not a per-class"),
    ([{"metric": "macro_acc", "min": 1.5}], "constraints[0].min", "<= 1"),
    ([{"metric": "macro_acc", "min": 0.1, "max": 0.9}], "constraints[0]", "exactly one of min or max"),
    ([{"metric": "seconds", "max": -1}], "constraints[0].max", ">= 0"),
    ([{"metric": "n_params", "max": -5}], "constraints[0].max", ">= 0"),
    ([{"metric": "macro_acc", "min": 0.5}, {"metric": "macro_acc", "min": 0.5}], "constraints[1]", "repeats"),
    ({"metric": "macro_acc"}, "constraints", "must be a list"),
])
def test_bad_constraints_are_refused_naming_field_and_value(items: object, field: str, words: str) -> None:
    with pytest.raises(SpecError) as got:
        spec_with(items)
    assert got.value.field == field and words in str(got.value)


def test_unknown_class_refused_against_the_datas_class_names() -> None:
    spec = spec_with([{"metric": "recall", "class": "severe", "min": 0.5}])
    with pytest.raises(SpecError, match="(?s)no such class.*classes: good, bad"):
        constraints.check_classes(spec, ["good", "bad"])
    constraints.check_classes(spec_with([{"metric": "recall", "class": 1, "min": 0.5}]), ["good", "bad"])


def run_trials(url: str, spec: object, recalls: list[tuple[float, float, float]]) -> optuna.Study:
    """A study whose trials (minority_f1, macro_acc, recall of bad) are told as the searcher tells them."""
    study = st.open_study(spec, st.open_storage(url))
    constraints.settle(study, spec)
    for f1, acc, bad in recalls:
        trial = study.ask({"lr": optuna.distributions.FloatDistribution(0.01, 0.1)})
        attrs = {"per_class": {"good": {"recall": 1.0, "support": 5}, "bad": {"recall": bad, "support": 5}},
                 "minority": [1]}
        for k, v in constraints.record(trial, spec.constraints, attrs).items():
            trial.set_user_attr(k, v)
        study.tell(trial, [f1, acc])
    return study


def test_front_and_export_hold_feasible_trials_only_unless_asked(sqlite_url: str) -> None:
    spec = spec_with([{"metric": "recall", "class": "bad", "min": 0.9}])
    # trial 0 dominates every other but misses the constraint; 1 and 2 meet it
    study = run_trials(sqlite_url, spec, [(0.9, 0.9, 0.5), (0.5, 0.6, 0.95), (0.6, 0.5, 0.92), (0.4, 0.4, 0.2)])
    assert [t.number for t in pareto.front(study)] == [2, 1]
    assert [t.number for t in pareto.front(study, include_infeasible=True)] == [0]
    doc = export.document(study, sqlite_url)
    assert [r["trial"] for r in doc["configs"]] == [2, 1]
    assert doc["infeasible"] == {"trials": 2, "of": 4, "by_constraint": {"recall[bad] >= 0.9": 2}}
    lines = constraints.lines(study)
    assert "2 of 4 COMPLETE trials missed a constraint" in lines[1] and "recall[bad] >= 0.9: 2" in lines[1]
    assert constraints.verdict(study) == []


def test_the_samplers_see_each_trials_constraint_values(sqlite_url: str) -> None:
    """Optuna's public record of constraints (FrozenTrial.constraints), which TPE, NSGA-II and GP read."""
    spec = spec_with([{"metric": "recall", "class": "bad", "min": 0.9}])
    study = run_trials(sqlite_url, spec, [(0.9, 0.9, 0.5), (0.5, 0.6, 0.95)])
    got = [t.constraints for t in optuna.load_study(study_name="s", storage=sqlite_url).trials]
    assert got == [{"recall[bad] >= 0.9": pytest.approx(0.4)}, {"recall[bad] >= 0.9": pytest.approx(-0.05)}]


def test_tpe_learns_the_feasible_region_from_the_recorded_values() -> None:
    """Objective best at x = 1, feasible only for x < 0.3: with the constraint told, TPE's later
    draws land in the feasible region far more often than without."""
    (c,) = spec_with([{"metric": "macro_acc", "max": 0.3}]).constraints

    def feasible_share(told: bool) -> float:
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=1, n_startup_trials=10),
                                    direction="maximize")
        xs = []
        for _ in range(40):
            trial = study.ask()
            x = trial.suggest_float("x", 0, 1)
            if told:
                constraints.record(trial, [c], {"macro_acc": x})
            study.tell(trial, x)
            xs.append(x)
        return sum(x < 0.3 for x in xs[20:]) / 20

    assert feasible_share(True) >= feasible_share(False) + 0.4


def test_no_feasible_trial_gives_the_plain_statement(sqlite_url: str) -> None:
    spec = spec_with([{"metric": "recall", "class": "bad", "min": 0.99}])
    study = run_trials(sqlite_url, spec, [(0.9, 0.9, 0.5), (0.5, 0.6, 0.95)])
    assert pareto.front(study) == []
    (line,) = constraints.verdict(study)
    assert line.startswith("no trial met the constraints: all 2 COMPLETE trials missed") and "recall[bad]" in line


def test_relaunch_with_other_constraints_refused_once_trials_ran(sqlite_url: str) -> None:
    spec = spec_with([{"metric": "recall", "class": "bad", "min": 0.9}])
    study = run_trials(sqlite_url, spec, [(0.5, 0.6, 0.95)])
    constraints.settle(study, spec)  # the same: fine
    with pytest.raises(UserError, match=r"constraints \[recall\[bad\] >= 0.8\] differ.*1 trials"):
        constraints.settle(study, spec_with([{"metric": "recall", "class": "bad", "min": 0.8}]))
    with pytest.raises(UserError, match=r"constraints \[none\] differ"):
        constraints.settle(study, spec_with([]))


def test_a_study_without_constraints_reads_as_before(sqlite_url: str) -> None:
    spec = spec_with([])
    study = run_trials(sqlite_url, spec, [(0.9, 0.9, 0.5)])
    assert [t.number for t in pareto.front(study)] == [0]
    assert constraints.lines(study) == [] and "constraints" not in export.document(study, sqlite_url)
    assert not math.isnan(study.trials[0].values[0]) and study.trials[0].constraints == {}


def test_the_report_notes_the_constraints_and_counts_feasible_hypervolume(sqlite_url: str, tmp_path: Path) -> None:
    from hpo.views.report import write_report

    spec = spec_with([{"metric": "recall", "class": "bad", "min": 0.9}])
    study = run_trials(sqlite_url, spec, [(0.9, 0.9, 0.5), (0.5, 0.6, 0.95)])
    page = write_report(study, tmp_path / "report").read_text()
    assert "constraints: recall[bad] &gt;= 0.9" in page and "1 of 2 COMPLETE trials missed a constraint" in page
    hv = (tmp_path / "report" / "hypervolume.csv").read_text()
    assert "0.81" not in hv and "0.3" in hv  # trial 0's 0.9 x 0.9 missed the constraint: only 0.5 x 0.6 counts


def test_the_trust_signals_count_the_front_that_is_shown(sqlite_url: str) -> None:
    """`hpo status --include-infeasible` shows every trial's front: its support line counts that front."""
    from hpo.study import trust

    spec = spec_with([{"metric": "recall", "class": "bad", "min": 0.9}])
    study = run_trials(sqlite_url, spec, [(0.9, 0.9, 0.5), (0.5, 0.6, 0.95), (0.6, 0.5, 0.92), (0.4, 0.4, 0.2)])
    assert trust.signals(study).pareto_best == 2
    assert trust.signals(study, include_infeasible=True).pareto_best == 1
