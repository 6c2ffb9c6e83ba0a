"""The anomaly write-up's shape (250 good / 50 bad parts) with the same budget searched twice: on a
single split with a 10% validation part (5 anomalies, as the author had) and with 5-fold
objectives on the same non-test pool; then every exported Pareto-best config of each study is
re-trained over 3 seeds and scored on the untouched test split.

The images are real but small: scikit-learn's 8x8 digits, 250 "good" parts drawn from the digits
0-8 and 50 "bad" ones from the digit 9 (seeded), written as an npz file. The study is
search_spaces/anomaly_detection.yaml with what a 2-core CPU cannot run replaced: `small_cnn`
instead of the pretrained ResNet-34 at 224 px, no augmentation (flips change digits), 10 epochs,
a learning-rate range for training from scratch (1e-4 .. 1e-2), 12 trials, CPU resources. The
loss, rebalancing choices, weight decay, optimiser and objectives are the shipped study's.

    python bench/kfold_anomaly.py          # ~8 min on a 2-core CPU; writes bench/kfold_anomaly.txt
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from _common import REPO, SHAPES, add_out, hpo, no_goal, recorded, write_groups

BASE = "anomaly_detection"
GOAL = no_goal("do k-fold objectives rank configs better than a tiny validation split?")


def study_file(folder: Path, name: str, npz: Path, split: dict[str, Any], n_trials: int) -> None:
    raw = yaml.safe_load((REPO / "search_spaces" / f"{BASE}.yaml").read_text())
    raw.update(study=name, model={"name": "small_cnn", "width": 16},
               budget={"n_trials": n_trials, "max_concurrent": 2}, resources={"cpu": 1, "gpu": 0})
    raw["data"] = {"name": "npz", "params": {"file": str(npz)}, "longtail": {"profile": "none"},
                   "split": {"test": 0.2, **split}}
    raw["train"] = {**raw["train"], "epochs": 10, "batch_size": 32, "augment": {}}
    raw["search"]["lr"] = {"low": 1.0e-4, "high": 1.0e-2, "log": True}
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-trials", type=int, default=12)
    ap.add_argument("--seeds", type=int, default=3)
    add_out(ap, "kfold_anomaly")
    a = ap.parse_args()
    with recorded(a.out, GOAL):
        run(a)


def run(a: argparse.Namespace) -> None:
    from hpo.study.export import read_configs
    from hpo.train.retrain import retrain

    variants = {"single split, 10% validation": {"val": 0.1},
                "5-fold objectives (same pool)": {"val": 0.1, "folds": 5}}
    lines = [f"anomaly shape 250 good / 50 bad (digits 0-8 / 9, 8x8), {a.n_trials} trials each, small_cnn, "
             f"10 epochs; every exported config re-trained with {a.seeds} seeds, scored on the test split", "",
             f"{'study':<32}{'config':>8}{'val minority_f1':>17}{'test minority_f1':>20}{'test macro_acc':>20}"]
    summary = []
    with tempfile.TemporaryDirectory(prefix="hpo-kfold-") as tmp_name:
        tmp = Path(tmp_name)
        npz = write_groups(tmp / "parts.npz", SHAPES[BASE][0])
        for i, (label, split) in enumerate(variants.items()):
            name = f"anomaly_{i}"
            study_file(tmp, name, npz, split, a.n_trials)
            url = f"sqlite:///{tmp / 'bench.db'}"
            hpo("launch", "--study", name, "--spaces-dir", str(tmp), "--storage", url, cwd=tmp)
            out = tmp / f"{name}.yaml.out"
            hpo("export", "--study", name, "--storage", url, "--out", str(out), "--format", "yaml", cwd=tmp)
            doc = yaml.safe_load(out.read_text())
            tests = []
            for entry, config in zip(doc["configs"], read_configs(out)):
                df = retrain(config, seeds=a.seeds)
                f1, acc = df["test_minority_f1"], df["test_macro_acc"]
                tests.append(f1.mean())
                lines.append(f"{label:<32}{'trial ' + str(entry['trial']):>8}{entry['values']['minority_f1']:>17.4f}"
                             f"{f'{f1.mean():.4f} +- {f1.std():.4f}':>20}{f'{acc.mean():.4f} +- {acc.std():.4f}':>20}")
            summary.append(f"{label}: {len(tests)} exported config(s), mean test minority F1 over them "
                           f"{np.mean(tests):.4f}")
    print("\n".join(lines + [""] + summary))


if __name__ == "__main__":
    main()
