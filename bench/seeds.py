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
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml

# SHAPES and write_groups are also what bench/pretrained.py imports from here
from _common import REPO, SHAPES, add_out, hpo, no_goal, recorded, write_groups  # noqa: F401

OBJECTIVE_COLUMNS = ("minority_f1", "macro_acc", "g_mean")
GOAL = no_goal("does the search beat the write-ups' hand-tuned recipes on data of their shapes?")


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
    add_out(ap, "seeds")
    a = ap.parse_args()
    with recorded(a.out, GOAL):
        run(a)


def run(a: argparse.Namespace) -> None:
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
    print("\n".join(lines + [""] + verdicts))


if __name__ == "__main__":
    main()
