"""Per-trial service overhead: no-op trials through `hpo launch` (Ray Tune, OptunaSearch, the
SQLite study, our bookkeeping) against Optuna alone on the same study file, in one run.

Each no-op trial samples its parameters and reports two values at once, so what is timed is
everything around training. For the service, Ray is started once and two launches of N1 and N2
trials are timed after a warm-up launch: (T(N2) - T(N1)) / (N2 - N1) is the marginal cost of one trial, with fixed
costs (Tuner set-up, study open) cancelled; T(N2) / N2 is also shown. Optuna alone runs
`study.optimize` over N2 trials with the same define-by-run space and sampler.

    python bench/overhead.py                 # defaults: N1 20, N2 80, 2 trials at a time
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import zlib
from pathlib import Path

import optuna

from hpo.launch import DETAILS, launch
from hpo.space import DefineByRun, build_sampler
from hpo.spec import StudySpec, load_spec

REPO = Path(__file__).resolve().parents[1]


def fake_values(params: dict) -> tuple[float, float]:
    """Deterministic, spread-out objective values from the parameters (no training)."""
    h = zlib.crc32(json.dumps(params, sort_keys=True).encode())
    return (h % 1000) / 1000, (h // 1000 % 1000) / 1000


def noop_trial(config: dict, spec: StudySpec) -> None:
    from ray import tune

    a, b = fake_values(config)
    tune.report({"minority_f1": a, "macro_acc": b, DETAILS: json.dumps({})})


def time_service(spec: StudySpec, url: str, n: int, concurrent: int) -> float:
    t0 = time.perf_counter()
    launch(spec, url, n_trials=n, max_concurrent=concurrent, quiet=True, trial_fn=noop_trial)
    return time.perf_counter() - t0


def time_optuna(spec: StudySpec, url: str, n: int, concurrent: int) -> float:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = DefineByRun(spec)
    study = optuna.create_study(study_name="optuna_alone", storage=url, directions=spec.directions,
                                sampler=build_sampler(spec, 0))

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        space(trial)
        return fake_values(trial.params)

    t0 = time.perf_counter()
    study.optimize(objective, n_trials=n, n_jobs=concurrent)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n1", type=int, default=20)
    ap.add_argument("--n2", type=int, default=80)
    ap.add_argument("--concurrent", type=int, default=2)
    a = ap.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    spec = load_spec(REPO / "search_spaces" / "cb_focal_beta.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # launch writes storage/ray here
        ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        try:
            time_service(spec, f"sqlite:///{tmp}/warm.db", 4, a.concurrent)  # start Ray's workers once
            # study-wide budgets: N1 trials, then a second launch on a fresh study for N2
            t1 = time_service(spec, f"sqlite:///{tmp}/a.db", a.n1, a.concurrent)
            t2 = time_service(spec, f"sqlite:///{tmp}/b.db", a.n2, a.concurrent)
        finally:
            ray.shutdown()
        t_opt = time_optuna(spec, f"sqlite:///{tmp}/c.db", a.n2, a.concurrent)

    marginal = (t2 - t1) / (a.n2 - a.n1) * 1000
    print(f"no-op trials, {a.concurrent} at a time, SQLite, search space of cb_focal_beta ({spec.sampler['name']})")
    print(f"{'':<38}{'ms / trial':>12}")
    print(f"{'hpo launch, marginal (T(%d)-T(%d))/%d' % (a.n2, a.n1, a.n2 - a.n1):<38}{marginal:>12.1f}")
    print(f"{'hpo launch, T(%d)/%d incl. set-up' % (a.n2, a.n2):<38}{t2 / a.n2 * 1000:>12.1f}")
    print(f"{'Optuna alone, %d trials' % a.n2:<38}{t_opt / a.n2 * 1000:>12.1f}")
    print(f"ratio hpo marginal / Optuna alone: {marginal / (t_opt / a.n2 * 1000):.2f}")


if __name__ == "__main__":
    main()
