"""One Ray Tune function trial: sampled params -> full config -> train -> report."""
from __future__ import annotations

import json
import os
import traceback
from typing import Any

import ray
from ray import tune

from hpo.spec import StudySpec
from hpo.study import storage as st
from hpo.tune.outcome import DETAILS, FAILED
from hpo.views import artifacts

# per-class values that travel to the driver as one JSON string (Ray flattens nested dicts)
DETAIL_KEYS = ("per_class", "class_counts", "class_names", "minority", "shot_groups", "confusion",
               "fold_values", "fold_std")  # the last two: k-fold trials only


def trainable(config: dict[str, Any], spec: StudySpec) -> None:
    """An exception is reported as a result carrying its reason rather than raised: the study
    records FAIL with that reason, and the reused worker stays alive for the next trial."""
    from hpo.train import loop  # torch: imported in the worker, not the driver

    loop.set_threads(spec.cpu)  # don't let each trial grab every core
    cfg = spec.trial_config(config)
    try:
        folded = cfg["data"]["split"]["folds"] >= 2
        final = (loop.run_folds if folded else loop.run)(cfg, report=tune.report)
    except Exception as exc:  # noqa: BLE001 - any trial failure must end as FAIL, not stop the study
        traceback.print_exc()  # into the trial's log under storage/ray/STUDY/
        details = getattr(exc, "details", {})
        reason = getattr(exc, "reason", f"{type(exc).__name__}: {exc}")
        # Ray insists every result carries the objectives: NaN, which the driver turns into FAIL
        tune.report({**{m: float("nan") for m in spec.metric_names}, FAILED: 1,
                     DETAILS: json.dumps({**details, st.ATTR_FAIL_REASON: reason}, default=str)})
        return
    scalars = {k: v for k, v in final.items() if isinstance(v, (int, float, str))}
    scalars["worker_pid"] = os.getpid()  # with data_cached / data_loads: shows a worker's reuse
    scalars["ray_node"] = ray.get_runtime_context().get_node_id()
    details = {k: final[k] for k in DETAIL_KEYS if k in final}
    try:
        files = artifacts.render(final)
    except Exception:  # noqa: BLE001 - plots are a convenience; the values are what counts
        traceback.print_exc()
        files = ""
    tune.report({**scalars, DETAILS: json.dumps({**scalars, **details}), artifacts.RESULT_KEY: files})
