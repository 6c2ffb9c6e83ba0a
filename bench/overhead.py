"""Per-trial service overhead: no-op trials through `hpo launch` (Ray Tune, OptunaSearch, the
SQLite study, our bookkeeping) against Optuna alone on the same study file, in one run.

Each no-op trial samples its parameters and reports two values at once, so what is timed is
everything around training. Ray is started once and warmed up by a small launch; then one
launch of N trials is timed. The per-trial cost is the slope of the trials' completion times
(from the study's own datetime_complete) over trials N/4..N, a least-squares fit: fixed costs
(Tuner set-up, study open, Ray start) do not enter it. T(N) / N with those costs is shown too.
Optuna alone runs `study.optimize` over N trials with the same define-by-run space and sampler,
measured the same way.

    python bench/overhead.py                 # defaults: N 80, 2 trials at a time
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import optuna

from hpo.tune.launch import launch
from hpo.tune.outcome import DETAILS
from hpo.study.space import DefineByRun, build_sampler
from hpo.spec import StudySpec, load_spec, parse_spec

from _common import REPO, add_out, recorded

GOAL = "hpo launch costs at most 60 ms per trial (the slope of its trials' completion times)"


def fake_values(params: dict) -> tuple[float, float]:
    """Deterministic, spread-out objective values from the parameters (no training)."""
    h = zlib.crc32(json.dumps(params, sort_keys=True).encode())
    return (h % 1000) / 1000, (h // 1000 % 1000) / 1000


def noop_trial(config: dict, spec: StudySpec) -> None:
    from ray import tune

    a, b = fake_values(config)
    tune.report({"minority_f1": a, "macro_acc": b, DETAILS: json.dumps({})})


def slope_ms(study: optuna.Study) -> float:
    """Milliseconds per trial: least-squares slope of completion time over trials N/4..N."""
    done = sorted(t.datetime_complete.timestamp() for t in study.trials if t.datetime_complete)
    tail = np.asarray(done[len(done) // 4:])
    return float(np.polyfit(np.arange(len(tail)), tail, 1)[0] * 1000)


def time_service(spec: StudySpec, url: str, n: int, concurrent: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    study = launch(spec, url, n_trials=n, max_concurrent=concurrent, quiet=True, trial_fn=noop_trial).study
    return time.perf_counter() - t0, slope_ms(study)


def time_optuna(spec: StudySpec, url: str, n: int, concurrent: int) -> tuple[float, float]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = DefineByRun(spec)
    study = optuna.create_study(study_name="optuna_alone", storage=url, directions=spec.directions,
                                sampler=build_sampler(spec, 0).sampler)

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        space(trial)
        return fake_values(trial.params)

    t0 = time.perf_counter()
    study.optimize(objective, n_trials=n, n_jobs=concurrent)
    return time.perf_counter() - t0, slope_ms(study)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=80)
    ap.add_argument("--concurrent", type=int, default=2)
    add_out(ap, "overhead")
    a = ap.parse_args()
    with recorded(a.out, GOAL):
        run(a)


def run(a: argparse.Namespace) -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    # TPE, a cheap sampler, on both sides: what differs is then the service itself (the default
    # GP sampler adds ~0.3 s a suggestion to both, whoever drives it)
    spec = parse_spec({**load_spec(REPO / "search_spaces" / "cb_focal_beta.yaml").raw,
                       "sampler": {"name": "tpe", "seed": 0}}, "cb_focal_beta.yaml with TPE")
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # launch writes storage/ray here
        ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        try:
            time_service(spec, f"sqlite:///{tmp}/warm.db", 4, a.concurrent)  # start Ray's workers once
            total, per_trial = time_service(spec, f"sqlite:///{tmp}/hpo.db", a.n, a.concurrent)
        finally:
            ray.shutdown()
        total_opt, per_trial_opt = time_optuna(spec, f"sqlite:///{tmp}/optuna.db", a.n, a.concurrent)

    print(f"{a.n} no-op trials, {a.concurrent} at a time, SQLite, the cb_focal_beta space ({spec.sampler['name']})")
    print(f"{'':<34}{'ms/trial (slope)':>18}{'T(N)/N':>10}")
    print(f"{'hpo launch (Ray Tune, service)':<34}{per_trial:>18.1f}{total / a.n * 1000:>10.1f}")
    print(f"{'Optuna alone (study.optimize)':<34}{per_trial_opt:>18.1f}{total_opt / a.n * 1000:>10.1f}")
    print(f"ratio hpo / Optuna alone (slopes): {per_trial / per_trial_opt:.2f}")


if __name__ == "__main__":
    main()
