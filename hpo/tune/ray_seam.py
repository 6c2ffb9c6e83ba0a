"""The one module that uses Ray's private API (checked on Ray 2.60.0: requirements.lock).
tests/test_layout.py fails on a private attribute of a Ray object, or a Ray logger named,
anywhere else, so a Ray upgrade has one file to check.

- OptunaSearch keeps the Optuna study, its storage, the study's name and the trials it asked for
  and was told about in private attributes; hpo's searcher (hpo.tune.searcher) reads them
  through the functions here (`ot_study`, `asked`, ...), and leaves those that carry the
  database URL out of the searcher Ray pickles (`picklable_state`).
- Ray's loggers by name (`RAY_LOGGERS`), and the Tune controller's logger, where Tune logs a
  searcher's failed write with its whole traceback (`filter_trial_errors`).
- The environment switches set before Ray starts (`ENV`).

Ray is imported by none of this at module level: `ENV` must be in the environment before Ray is.
"""
from __future__ import annotations

import logging
from typing import Any

# Ray's telemetry and Tune's per-trial JSON/CSV/TensorBoard loggers: none is needed here, and the
# loggers cost time on every trial (bench/overhead.py). Ray's idle workers started ahead of need
# when the driver connects import Ray while the launch reads the study, and Tune's trial actors do
# not wait for them (bench/launch_start.py). Set before Ray starts: its processes and the workers
# they start inherit the environment.
ENV = {"RAY_USAGE_STATS_ENABLED": "0", "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
       "RAY_AIR_NEW_OUTPUT": "0", "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "1e9",
       "RAY_prestart_worker_first_driver": "0"}
RAY_LOGGERS = ("ray", "ray.tune", "ray.train", "ray.air")
TUNE_CONTROLLER_LOGGER = "ray.tune.execution.tune_controller"
# OptunaSearch's attributes that hold the storage, the study and its trials: each carries the
# database URL and password
_STORAGE_STATE = ("_storage", "_ot_study", "_ot_trials")


def set_ray_log_level(level: int) -> None:
    """The level of every Ray logger hpo quietens (Ray sets its own on "ray" at `ray.init`)."""
    for name in RAY_LOGGERS:
        logging.getLogger(name).setLevel(level)


def filter_trial_errors(log_filter: logging.Filter) -> None:
    """Put `log_filter` on the logger Tune logs a searcher's failed call to (a filter acts only on
    records logged to its own logger, not on those of child loggers)."""
    logging.getLogger(TUNE_CONTROLLER_LOGGER).addFilter(log_filter)


def ot_study(search: Any) -> Any:
    """The Optuna study an OptunaSearch asks and tells."""
    return search._ot_study


def ot_storage(search: Any) -> Any:
    """The Optuna storage an OptunaSearch was given."""
    return search._storage


def study_name(search: Any) -> str:
    """The name of the Optuna study an OptunaSearch asks."""
    return search._study_name


def asked(search: Any) -> dict[str, Any]:
    """{Tune trial id: Optuna trial} of the trials an OptunaSearch asked for (its own dict: what
    its `suggest` adds to)."""
    return search._ot_trials


def told(search: Any) -> set[str]:
    """Tune trial ids an OptunaSearch has told Optuna the end of (its own set)."""
    return search._completed_trials


def picklable_state(search: Any, leave_out: tuple[str, ...] = ()) -> dict[str, Any]:
    """An OptunaSearch's attributes without those that hold the storage, the study and its
    trials (the database holds all of it), nor `leave_out`."""
    return {k: v for k, v in search.__dict__.items() if k not in _STORAGE_STATE + leave_out}
