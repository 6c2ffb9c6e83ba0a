"""The write-ups' hand-tuned recipes against hpo's search, on data of the same shape.

For the three write-ups whose shape fits a 2-core CPU (severity grading 591 / 839 / 324, face
masks 500 / 60, anomaly 250 / 50), scikit-learn's 8x8 digits are grouped into that class
structure (counts scaled where the digits do not suffice, proportions kept) and written as an npz
file. Each shipped study (search_spaces/NAME.yaml) then runs as it is except for what a CPU
cannot run: `small_cnn` instead of the pretrained ImageNet network at 128-224 px (on 8x8 grey
digits a pretrained backbone does not apply: both sides get the same small network), CPU
resources and a budget of 12 trials. The search space, losses, optimiser, schedule, epochs,
objectives and minority class are the shipped study's.

Compared, both re-trained with seeds 0, 1, 2 and scored on the untouched test split:
- the author's recipe: the study with every searched value set to what the write-up used;
- hpo: the exported Pareto-best config with the highest mean of the validation objectives
  (the rule never reads test).

    python bench/seeds.py          # ~6 min on a 2-core CPU; writes bench/seeds.txt
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]

# name: (classes as {class name: (digits, images)}, the author's values of the searched parameters)
SHAPES: dict[str, tuple[dict[str, tuple[tuple[int, ...], int]], dict[str, Any]]] = {
    # 591 / 839 / 324 scaled by 1/5; their final loss was recall loss, SGD lr 1e-3, alpha 0.01
    "severity_grading": ({"nil": ((0, 1, 2), 118), "moderate": ((3, 4, 5), 168), "severe": ((6, 7, 8, 9), 65)},
                         {"loss": "recall", "lr": 1e-3, "weight_decay": 1e-2}),
    # 500 / 60 scaled by 1/2; Adam lr 1e-3, their transforms on, the minority grown to 360 (x6 -> threshold)
    "face_mask": ({"with_mask": (tuple(range(9)), 250), "without_mask": ((9,), 30)},
                  {"lr": 1e-3, "flip": True, "rotate": 20.0, "blur": 0.3, "resized_crop": 0.2, "sharpness": 0.3,
                   "autocontrast": 0.3, "magnitude": 1.0, "threshold": 180}),
    # 250 / 50 as they are; AdamW lr 1e-4, weight decay 1e-3, CE, weighted sampler
    "anomaly_detection": ({"good": (tuple(range(9)), 250), "bad": ((9,), 50)},
                          {"method": "weighted_sampler", "loss": "ce", "lr": 1e-4, "weight_decay": 1e-3}),
}
OBJECTIVE_COLUMNS = ("minority_f1", "macro_acc", "g_mean")


def write_groups(path: Path, classes: dict[str, tuple[tuple[int, ...], int]], seed: int = 0) -> Path:
    """An npz of 8x8 grey digits: each class drawn (seeded, without replacement) from its digits."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images * (255 / 16)).round().astype(np.uint8)  # (N, 8, 8)
    rng = np.random.default_rng(seed)
    idx = [rng.choice(np.flatnonzero(np.isin(digits.target, ds)), n, replace=False) for ds, n in classes.values()]
    y = np.concatenate([np.full(len(i), k) for k, i in enumerate(idx)])
    np.savez(path, x=x[np.concatenate(idx)], y=y, class_names=np.array(list(classes)))
    return path


def hpo(*args: str, cwd: Path) -> str:
    r = subprocess.run([sys.executable, "-m", "hpo.cli", *args], cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"hpo {args[0]} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return r.stdout


def cpu_study(base: str, npz: Path, n_trials: int, **data: Any) -> dict[str, Any]:
    """The shipped study BASE on the npz file, with what a 2-core CPU cannot run replaced."""
    raw = yaml.safe_load((REPO / "search_spaces" / f"{base}.yaml").read_text())
    raw.update(model={"name": "small_cnn", "width": 16}, budget={"n_trials": n_trials, "max_concurrent": 2},
               resources={"cpu": 1, "gpu": 0})
    raw["data"] = {"name": "npz", "params": {"file": str(npz)}, "longtail": {"profile": "none"},
                   "split": {**raw["data"].get("split", {}), **data}}
    return raw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-trials", type=int, default=12)
    ap.add_argument("--seeds", type=int, default=3)
    a = ap.parse_args()
    from hpo.spec import parse_spec
    from hpo.study.export import read_configs
    from hpo.train.retrain import retrain

    head = f"{'shape':<20}{'side':<44}" + "".join(f"{'test ' + c:>22}" for c in OBJECTIVE_COLUMNS)
    lines, verdicts = [head], []
    with tempfile.TemporaryDirectory(prefix="hpo-seeds-") as tmp_name:
        tmp = Path(tmp_name)
        for name, (classes, author) in SHAPES.items():
            raw = cpu_study(name, write_groups(tmp / f"{name}.npz", classes), a.n_trials)
            (tmp / f"{name}.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
            spec = parse_spec(raw, f"{name}.yaml")
            url = f"sqlite:///{tmp / 'seeds.db'}"
            hpo("launch", "--study", name, "--spaces-dir", str(tmp), "--storage", url, cwd=tmp)
            out = tmp / f"{name}.export.yaml"
            hpo("export", "--study", name, "--storage", url, "--out", str(out), cwd=tmp)
            doc = yaml.safe_load(out.read_text())
            best = max(range(len(doc["configs"])), key=lambda i: np.mean(list(doc["configs"][i]["values"].values())))
            params = {p.optuna_name: (1 - author[p.name] if p.complement else author[p.name])
                      for p in spec.search if p.name in author}
            sides = {"author's recipe": spec.trial_config(params),
                     f"hpo (trial {doc['configs'][best]['trial']} of {len(doc['configs'])} exported)":
                         read_configs(out)[best]}
            scores = {}
            for side, config in sides.items():
                df = retrain(config, seeds=a.seeds)
                scores[side] = {c: (df[f"test_{c}"].mean(), df[f"test_{c}"].std()) for c in OBJECTIVE_COLUMNS}
                lines.append(f"{name:<20}{side:<44}" + "".join(
                    f"{f'{m:.4f} +- {s:.4f}':>22}" for m, s in scores[side].values()))
            (ours, theirs) = (list(scores.values())[1], list(scores.values())[0])
            diff = {c: ours[c][0] - theirs[c][0] for c in OBJECTIVE_COLUMNS}
            lines.append(f"{name:<20}{'hpo - author':<44}" + "".join(f"{diff[c]:>+22.4f}" for c in OBJECTIVE_COLUMNS))
            objs = [o.name for o in spec.objectives]
            verdicts.append(f"{name}: hpo ahead on " + (", ".join(o for o in objs if diff[o] > 0) or "neither")
                            + f" of its objectives ({', '.join(objs)})")
    text = "\n".join(lines + [""] + verdicts)
    print(text)
    (REPO / "bench" / "seeds.txt").write_text(f"# python bench/seeds.py --n-trials {a.n_trials} --seeds {a.seeds}\n"
                                              f"{text}\n")


if __name__ == "__main__":
    main()
