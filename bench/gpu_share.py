"""Trials sharing a GPU through the real `hpo launch`: 1, 2 and 4 trials per GPU (`resources.gpu`
1, 0.5, 0.25), side by side in one run.

For each share: the aggregate training images/s of all trials together (images trained / wall
seconds from the first trial's start to the last one's end), and the seconds from the launch's
start to the first finished epoch of any trial and to the first COMPLETE trial; and how soon a
reused worker's later trials start training: the gap between a worker's previous trial's last
report and its next trial's first, less one epoch of that trial (the gap between its first two
reports, both mid-run epochs: the final report also carries the last evaluation and the plots).
Goals: four trials together train at least as fast as one alone; the first epoch ends within
30 s; a worker's second and later trials start training within 2 s.

The study is search_spaces/cifar10_lt_ldam.yaml on a CIFAR-shaped set written here (scikit-learn's
digits at 32x32x3, 5000 images per class tiled, cut by the study's own long-tail profile to
ratio 100), `rebalance: none` (an epoch is the training set, so images trained are exact),
a fixed number of epochs, 2 trials per concurrent slot. Every report a trial makes is stamped
by a wrapper around hpo's trainable, in the worker.

    python bench/gpu_share.py                      # on a machine with a CUDA GPU
    python bench/gpu_share.py --cpu-smoke          # the same code path on the CPU, tiny (no figure)

bench/gpu_check.py runs it as one of its steps; its figures go to docs/gpu.md.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
LOG = "GPU_SHARE_LOG"


def stamped_trial(config: dict, spec: Any) -> None:
    """hpo's trainable, each report stamped with the time into the file $GPU_SHARE_LOG."""
    from ray import tune

    from hpo.tune import trainable

    report = tune.report

    def stamped(metrics: dict, **kw: Any) -> None:
        stamp = {"t": time.time(), "pid": os.getpid(), "trial": tune.get_context().get_trial_id(),
                 "epoch": metrics.get("epoch")}
        with open(os.environ[LOG], "a") as f:
            f.write(json.dumps(stamp) + "\n")
        report(metrics, **kw)

    tune.report = stamped  # trainable calls tune.report by attribute: this worker's reports are stamped
    try:
        trainable.trainable(config, spec)
    finally:
        tune.report = report


def cifar_shaped(path: Path, per_class: int) -> None:
    """digits as 32x32 RGB uint8, `per_class` images of each of the 10 classes, and a test part."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16.0
    x = (F.interpolate(x, size=32, mode="bilinear").repeat(1, 3, 1, 1) * 255).to(torch.uint8).numpy()
    take = np.concatenate([np.resize(np.flatnonzero(d.target == k), per_class) for k in range(10)])
    test = np.concatenate([np.flatnonzero(d.target == k)[:100] for k in range(10)])
    np.savez(path, x=x[take], y=d.target[take], x_test=x[test], y_test=d.target[test])


def study_file(folder: Path, data: Path, share: float, concurrent: int, epochs: int, smoke: bool) -> Path:
    raw = yaml.safe_load((REPO / "search_spaces" / "cifar10_lt_ldam.yaml").read_text())
    raw.update(study=f"share{concurrent}", budget={"n_trials": 2 * concurrent, "max_concurrent": concurrent},
               resources={"cpu": 1, "gpu": 0 if smoke else share}, rebalance={"method": "none"})
    raw["data"].update(name="npz", params={"file": str(data)})
    raw["train"].update(epochs=epochs, device="cpu" if smoke else "cuda")
    if smoke:  # a small model, a milder cut of a small set: every class keeps enough to split
        raw["model"] = {"name": "small_cnn"}
        raw["data"]["longtail"] = {"profile": "exp", "ratio": 10}
    path = folder / f"share{concurrent}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def later_starts(stamps: list[dict[str, Any]]) -> list[float]:
    """For each trial a worker ran after another: seconds from the previous trial's last report to
    this one's first, less one epoch of this trial (set-up, not training). Needs 3+ epochs."""
    out = []
    for pid in {s["pid"] for s in stamps}:
        by_trial: dict[str, list[float]] = {}
        for s in sorted((s for s in stamps if s["pid"] == pid), key=lambda s: s["t"]):
            by_trial.setdefault(s["trial"], []).append(s["t"])
        runs = sorted(by_trial.values())
        for prev, this in zip(runs, runs[1:]):
            if len(this) >= 3:
                out.append(this[0] - prev[-1] - (this[1] - this[0]))
    return out


def run_share(folder: Path, data: Path, share: float, epochs: int, smoke: bool) -> dict[str, float]:
    from hpo.spec import load_spec
    from hpo.study import optuna_seam
    from hpo.tune.launch import launch

    concurrent = round(1 / share)
    spec = load_spec(study_file(folder, data, share, concurrent, epochs, smoke))
    log = folder / f"share{concurrent}.log"
    os.environ[LOG] = str(log)
    t0 = time.time()
    study = launch(spec, f"sqlite:///{folder / 'hpo.db'}", quiet=True, trial_fn=stamped_trial).study
    stamps = [json.loads(line) for line in log.read_text().splitlines()]
    rows = [r for r in optuna_seam.rows(study) if r.state.name == "COMPLETE"]
    trials = optuna_seam.frozen(study, rows)
    every = study.get_trials(deepcopy=False)
    starts = [t.datetime_start.timestamp() for t in every if t.datetime_start]
    ends = [t.datetime_complete.timestamp() for t in every if t.datetime_complete]
    images = sum(sum(t.user_attrs["class_counts"]) * epochs for t in trials)
    return {"trials": len(trials), "agg_ips": images / (max(ends) - min(starts)),
            "first_epoch_s": min(s["t"] for s in stamps) - t0,
            "first_complete_s": min(ends) - t0, "later_starts": later_starts(stamps)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=4, help="3 or more: the later trials' start needs two mid-run epochs")
    ap.add_argument("--per-class", type=int, default=5000, help="images per class before the long-tail cut")
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny, on the CPU: checks the bench runs, no figure")
    a = ap.parse_args()
    smoke = a.cpu_smoke
    if not smoke:
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("gpu_share.py needs a CUDA GPU (or --cpu-smoke)")
    shares = (1.0, 0.5) if smoke else (1.0, 0.5, 0.25)
    per_class, epochs = (200, 3) if smoke else (a.per_class, a.epochs)
    with tempfile.TemporaryDirectory(prefix="hpo-gpu-share-") as tmp:
        folder = Path(tmp)
        os.chdir(folder)  # the launch writes storage/ here
        data = folder / "cifar_shaped.npz"
        cifar_shaped(data, per_class)
        results = {share: run_share(folder, data, share, epochs, smoke) for share in shares}
    print(f"cifar10_lt_ldam on a CIFAR-shaped set, {epochs} epochs, 2 trials per slot"
          f"{' (CPU smoke run: no figure)' if smoke else ''}")
    print(f"{'trials per GPU':<16}{'aggregate img/s':>17}{'first epoch (s)':>17}{'first COMPLETE (s)':>20}"
          f"{'later trials start (s)':>24}")
    for share, r in results.items():
        later = r["later_starts"]
        starts = f"{np.median(later):.1f} (max {max(later):.1f})" if later else "-"
        print(f"{round(1 / share):<16}{r['agg_ips']:>17.0f}{r['first_epoch_s']:>17.1f}{r['first_complete_s']:>20.1f}"
              f"{starts:>24}")
    one = results[1.0]["agg_ips"]
    for share in shares[1:]:
        print(f"aggregate {round(1 / share)} per GPU / 1 alone: {results[share]['agg_ips'] / one:.2f} (goal >= 1)")


if __name__ == "__main__":
    main()
