"""How a finished Ray trial is told to Optuna: COMPLETE, FAIL with a reason, or stopped early.

A pure function of what Ray hands the searcher, so every case is a unit test. Stock OptunaSearch
tells COMPLETE with the last values even when the trial errored, and leaves a trial RUNNING
when a value is NaN; hpo never does either.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Sequence

from optuna.trial import TrialState

from hpo.study.storage import ATTR_FAIL_REASON

DETAILS = "hpo_details"  # result key: JSON of a trial's per-class metrics; only its last report has it
FAILED = "hpo_failed"  # result key set when the trial caught its own exception


@dataclass(frozen=True)
class Outcome:
    state: TrialState
    values: list[float] | None
    reason: str | None = None  # why a FAIL failed
    stopped_at: int | None = None  # the epoch a scheduler stopped a COMPLETE trial at

    @property
    def failed(self) -> bool:
        return self.state == TrialState.FAIL


def decide(result: dict[str, Any] | None, error: bool, metrics: Sequence[str]) -> Outcome:
    """The outcome of a trial whose last result is `result` (`error`: Ray says its worker died)."""
    if error:  # the worker died or Ray gave up on it: no reason of ours reached the driver
        return Outcome(TrialState.FAIL, None, "worker_error")
    if result and result.get(FAILED):
        return Outcome(TrialState.FAIL, None, json.loads(result[DETAILS])[ATTR_FAIL_REASON])
    values = [result.get(m) for m in metrics] if result else None
    if values is None or any(v is None or not math.isfinite(v) for v in values):
        return Outcome(TrialState.FAIL, None, f"non_finite_objective {values}")
    if DETAILS not in result:
        # only a trial's last report carries DETAILS: a scheduler stopped this one. Its values are
        # partial; it stays COMPLETE (as Ray reports it) but is marked, and fronts leave it out
        return Outcome(TrialState.COMPLETE, values, stopped_at=int(result.get("epoch", 0)))
    return Outcome(TrialState.COMPLETE, values)
