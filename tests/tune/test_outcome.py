"""How each way a trial can end is told to Optuna (no Ray needed)."""
from __future__ import annotations

import json

from optuna.trial import TrialState

from hpo.tune.outcome import DETAILS, FAILED, decide

M = ["minority_f1", "macro_acc"]


def test_a_last_report_with_details_is_complete_with_its_values() -> None:
    o = decide({"minority_f1": 0.5, "macro_acc": 0.7, DETAILS: "{}", "epoch": 5}, False, M)
    assert (o.state, o.values, o.reason, o.stopped_at) == (TrialState.COMPLETE, [0.5, 0.7], None, None)


def test_a_result_without_details_was_stopped_early_and_is_marked() -> None:
    o = decide({"minority_f1": 0.5, "macro_acc": 0.7, "epoch": 3}, False, M)
    assert (o.state, o.stopped_at) == (TrialState.COMPLETE, 3)


def test_a_dead_worker_a_caught_exception_and_a_nan_each_fail_with_a_reason() -> None:
    assert decide({"minority_f1": 0.5, "macro_acc": 0.7}, True, M).reason == "worker_error"
    caught = {"minority_f1": float("nan"), "macro_acc": float("nan"), FAILED: 1,
              DETAILS: json.dumps({"fail_reason": "oom"})}
    assert (decide(caught, False, M).state, decide(caught, False, M).reason) == (TrialState.FAIL, "oom")
    nan = decide({"minority_f1": float("nan"), "macro_acc": 0.7, DETAILS: "{}"}, False, M)
    assert nan.state == TrialState.FAIL and nan.values is None and nan.reason.startswith("non_finite_objective")
    assert decide(None, False, M).state == TrialState.FAIL
    assert decide({"macro_acc": 0.7}, False, M).failed  # an objective missing
