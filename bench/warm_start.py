"""Warm start: how many trials a study started from an earlier study's Pareto-best configs needs to
reach that study's best hypervolume, against a cold start on the same space.

Per seed: a first study runs N trials (digits-LT, the cb_focal_beta space, the default sampler, few
epochs); then two studies on the same space and data, both with another sampler seed: one
warm-started from the first (`warm_start: {study: FIRST, top: K}`, hpo.study.warm_start), one cold.
Printed: the trials each needs until the hypervolume of its front reaches the first study's final
one, per seed and on average, and the ratio cold / warm.

The studies run in this process, one trial at a time, as a launch runs them without Ray: the
study's sampler asks, hpo's define-by-run samples, the training loop trains, the values are told;
the warm start queues its configs with the same call `hpo launch` makes.

    python bench/warm_start.py                              # 3 seeds, 24 trials each, 5 epochs
    python bench/warm_start.py --train-seed 1 --out bench/warm_start_train_seed1.txt
    python bench/warm_start.py --seeds 1 --trials 8 --out -  # a quick look
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time

import numpy as np
import optuna

from hpo.spec.study import WarmStart
from hpo.study import pareto, space, warm_start
from hpo.study import storage as st
from hpo.train import loop

from _common import REPO, add_out, cb_focal_beta_spec, recorded

GOAL = ("a study warm-started from a finished one reaches that study's best hypervolume in fewer trials "
        "than a cold start on the same space (mean of 3 seeds)")


def run(spec, url: str, trials: int, epochs: int, train_seed: int = 0) -> optuna.Study:
    """`spec`'s study, `trials` trials of `epochs` epochs (each model initialised and its batches drawn
    from `train_seed`) asked and told here (its warm start queued first)."""
    storage = st.open_storage(url)
    st.open_study(spec, storage)
    study = optuna.load_study(study_name=spec.name, storage=storage,
                              sampler=space.build_sampler(spec, 0).sampler)
    for line in warm_start.enqueue(study, spec, storage):
        print(f"  {line}")
    sample = space.DefineByRun(spec)
    for _ in range(trials):
        trial = study.ask()
        sample(trial)
        cfg = spec.trial_config(trial.params)
        cfg["train"].update(epochs=epochs, seed=train_seed)
        final = loop.run(cfg)
        study.tell(trial, [final[m] for m in spec.metric_names])
    return study


def trials_to(study: optuna.Study, target: float) -> float:
    """The first trial count at which the study's front reaches `target` (NaN: never)."""
    hit = [n + 1 for n, hv in pareto.hypervolume_history(study) if hv >= target - 1e-12]
    return float(hit[0]) if hit else float("nan")


def variant(base, name: str, seed: int, warm_from: str | None = None, top: int = 5):
    return dataclasses.replace(base, name=name, sampler={**base.sampler, "seed": seed},
                               warm_start=WarmStart(warm_from, top) if warm_from else None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--trials", type=int, default=24, help="trials of each study (default %(default)s)")
    ap.add_argument("--epochs", type=int, default=5, help="epochs of each trial (default %(default)s)")
    ap.add_argument("--top", type=int, default=5, help="configs the warm start queues (default %(default)s)")
    ap.add_argument("--train-seed", type=int, default=0,
                    help="the training seed of the warm and cold studies (the first one trains with 0): another "
                         "one asks whether the queued configs hold under another initialisation, not only "
                         "replay their values (default %(default)s)")
    add_out(ap, "warm_start")
    a = ap.parse_args()
    with recorded(a.out, GOAL):
        measure(a)


def measure(a: argparse.Namespace) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    loop.set_threads(1)
    base = cb_focal_beta_spec()
    print(f"space {os.path.relpath(base.path, REPO)}, sampler {base.sampler['name']}, {a.trials} trials per study, "
          f"{a.epochs} epochs per trial, warm start top {a.top}, training seed 0 (first) and {a.train_seed} "
          "(warm, cold)")
    cold, warm, t0 = [], [], time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        for seed in range(a.seeds):
            first = run(variant(base, f"first_s{seed}", seed), url, a.trials, a.epochs)
            target = pareto.hypervolume_history(first)[-1][1]
            print(f"seed {seed}: first study's hypervolume {target:.4f} (reached at trial "
                  f"{trials_to(first, target):.0f})")
            other = 1000 + seed  # both later studies draw alike; only the queued configs differ
            w = run(variant(base, f"warm_s{seed}", other, f"first_s{seed}", a.top), url, a.trials, a.epochs,
                    a.train_seed)
            c = run(variant(base, f"cold_s{seed}", other), url, a.trials, a.epochs, a.train_seed)
            warm.append(trials_to(w, target))
            cold.append(trials_to(c, target))
            print(f"seed {seed}: trials to reach it: warm {_show(warm[-1])}, cold {_show(cold[-1])} "
                  f"({time.perf_counter() - t0:.0f}s)", flush=True)
    summary(warm, cold, a.trials)


def _show(v: float) -> str:
    return "n/a" if np.isnan(v) else f"{v:.0f}"


def summary(warm: list[float], cold: list[float], trials: int) -> None:
    """Means and the ratio; a study that never reached the target counts as trials + 1 (a lower bound)."""
    capped = lambda vs: [trials + 1 if np.isnan(v) else v for v in vs]  # noqa: E731
    mw, mc = float(np.mean(capped(warm))), float(np.mean(capped(cold)))
    never = sum(np.isnan(v) for v in warm + cold)
    print(f"\ntrials to reach the first study's hypervolume, mean of {len(warm)} seeds: warm {mw:.1f} "
          f"({'/'.join(map(_show, warm))}), cold {mc:.1f} ({'/'.join(map(_show, cold))})")
    if never:
        print(f"{never} studies never reached it within {trials} trials: counted as {trials + 1} (so the cold "
              "figure is a lower bound)")
    print(f"ratio cold / warm: {mc / mw:.2f}x")


if __name__ == "__main__":
    main()
