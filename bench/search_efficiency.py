"""Search efficiency on digits-LT (imbalance ratio 100): random search, the default sampler
(GP), and GP with mo_asha early stopping (or the --methods given), over several seeds, through
the real `hpo launch`.

For each run: the hypervolume of the Pareto front of fully trained trials (reference point
(0, 0); early-stopped trials never count) against trials started and against epochs consumed
(a stopped trial consumed the epochs it reached). The target is the hypervolume random search
reaches with N full trials (mean over seeds). Printed: how many trials each method needs to reach it,
and what fraction of random search's epochs. Also writes a PNG.

    python bench/search_efficiency.py                  # 3 seeds x 64 trials per method
    python bench/search_efficiency.py --methods random,tpe,tpe+mo_asha --out bench/search_efficiency_tpe.txt
    python bench/search_efficiency.py --seeds 1 --trials 16   # a quick look
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import yaml

from hpo.study import storage as st
from hpo.tune.launch import launch
from hpo.study.pareto import hypervolume_history
from hpo.spec import parse_spec

from _common import REPO, add_out, recorded

GOAL = ("the default sampler with mo_asha reaches random search's 64-trial hypervolume within 40% of its epochs; "
        "the default sampler without early stopping needs at most 24 trials for it")
ASHA = {"name": "mo_asha", "grace_epochs": 1, "eta": 3}
METHODS = {  # name -> (sampler, scheduler)
    "random": ("random", {"name": "none"}),
    "tpe": ("tpe", {"name": "none"}),
    "tpe+mo_asha": ("tpe", ASHA),
    "gp": ("gp", {"name": "none"}),
    "nsga2": ("nsga2", {"name": "none"}),
    "gp+mo_asha": ("gp", ASHA),
}


def run(method: str, seed: int, trials: int, concurrent: int, url: str) -> list[tuple[int, int, float]]:
    """[(trials started, epochs consumed, hypervolume)] after each trial, in trial order."""
    raw = yaml.safe_load((REPO / "search_spaces" / "cb_focal_beta.yaml").read_text())
    sampler, scheduler = METHODS[method]
    raw.update(study=f"{method.replace('+', '-')}_s{seed}", sampler={"name": sampler, "seed": seed}, scheduler=scheduler,
               budget={"n_trials": trials, "max_concurrent": concurrent})
    spec = parse_spec(raw, f"<bench {method} seed {seed}>")
    study = launch(spec, url, quiet=True).study
    hv = dict(hypervolume_history(study))
    out, epochs, best = [], 0, 0.0
    for t in sorted(study.trials, key=lambda t: t.number):
        epochs += int(t.user_attrs.get(st.ATTR_STOPPED_EARLY) or t.user_attrs.get("epoch") or 0)
        best = hv.get(t.number, best)
        out.append((t.number + 1, epochs, best))
    return out


def first_reaching(curve: list[tuple[int, int, float]], target: float, axis: int) -> float:
    hit = [row[axis] for row in curve if row[2] >= target - 1e-12]
    return float(hit[0]) if hit else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--trials", type=int, default=64)
    ap.add_argument("--concurrent", type=int, default=2)
    ap.add_argument("--png", default=str(REPO / "bench" / "search_efficiency.png"))
    ap.add_argument("--methods", default="random,gp,gp+mo_asha",  # random, the default sampler, + mo_asha
                    help=f"comma-separated, first one sets the target; known: {', '.join(METHODS)}")
    add_out(ap, "search_efficiency")
    a = ap.parse_args()
    unknown = [m for m in a.methods.split(",") if m not in METHODS]
    if unknown:
        ap.error(f"unknown methods {unknown}; known: {', '.join(METHODS)}")
    with recorded(a.out, GOAL):
        measure(a)


def measure(a: argparse.Namespace) -> None:
    """Every method over every seed, the table against the target, and the PNG."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    import ray

    png = Path(a.png).resolve()
    methods = a.methods.split(",")
    curves: dict[str, list[list[tuple[int, int, float]]]] = {m: [] for m in methods}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        try:
            for seed in range(a.seeds):
                for method in methods:
                    curves[method].append(run(method, seed, a.trials, a.concurrent, f"sqlite:///{tmp}/bench.db"))
                    print(f"seed {seed} {method:<12} hypervolume {curves[method][-1][-1][2]:.4f} "
                          f"epochs {curves[method][-1][-1][1]}  ({time.perf_counter() - t0:.0f}s)", flush=True)
        finally:
            ray.shutdown()

    base = methods[0]
    target = float(np.mean([c[-1][2] for c in curves[base]]))
    base_epochs = float(np.mean([c[-1][1] for c in curves[base]]))
    print(f"\ntarget: hypervolume of {base} after {a.trials} full trials, mean of {a.seeds} seeds = {target:.4f}"
          f" ({base_epochs:.0f} epochs)")
    print(f"{'method':<14}{'final HV (mean)':>16}{'trials to target':>20}{'epochs to target':>20}{'% of ' + base + ' epochs':>20}")
    for method, runs in curves.items():
        trials = [first_reaching(c, target, 0) for c in runs]
        epochs = [first_reaching(c, target, 1) for c in runs]
        print(f"{method:<14}{np.mean([c[-1][2] for c in runs]):>16.4f}{_fmt(trials):>20}{_fmt(epochs):>20}"
              f"{_fmt([100 * e / base_epochs for e in epochs]):>20}")
    plot(curves, target, png)
    print(f"\nper-seed values: 'n/a' = never reached within the run. Figure: {png}")


def _fmt(values: list[float]) -> str:
    ok = [v for v in values if not np.isnan(v)]
    shown = "/".join("n/a" if np.isnan(v) else f"{v:.0f}" for v in values)
    return f"{np.mean(ok):.0f} ({shown})" if len(ok) == len(values) else shown


def plot(curves: dict, target: float, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), dpi=100)
    colors = ("tab:grey", "tab:blue", "tab:red", "tab:green", "tab:purple", "tab:orange")
    for (method, runs), color in zip(curves.items(), colors):
        for i, c in enumerate(runs):
            kw = {"label": method} if i == 0 else {}
            axes[0].step([r[0] for r in c], [r[2] for r in c], where="post", color=color, alpha=0.7, **kw)
            axes[1].step([r[1] for r in c], [r[2] for r in c], where="post", color=color, alpha=0.7, **kw)
    for ax, xlabel in zip(axes, ("trials started", "epochs consumed")):
        ax.axhline(target, ls="--", c="k", lw=0.8, label=f"{next(iter(curves))}'s final (mean)")
        ax.set(xlabel=xlabel, ylabel="hypervolume, reference (0, 0)")
        ax.legend()
    fig.suptitle("digits-LT (ratio 100), cb_focal_beta space: minority F1 x macro accuracy")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)


if __name__ == "__main__":
    main()
