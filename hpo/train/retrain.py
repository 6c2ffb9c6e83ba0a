"""`hpo train`: re-train one exported config over several seeds and score it on the test split.

The search picked the config on one seed and the validation split; this says how much of its
score survives other seeds and images the search never saw.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

OBJECTIVES = ("minority_f1", "macro_acc", "accuracy", "g_mean")


def retrain_ensemble(configs: list[dict[str, Any]], seeds: int = 1) -> "pd.DataFrame":
    """Re-train every member of an ensemble export per seed, average their test softmax, score it."""
    import numpy as np
    import pandas as pd

    from hpo.train.metrics import softmax
    from hpo.train import loop
    from hpo.train.metrics import evaluate
    from hpo.train.splits import prepare

    loop.set_threads(configs[0]["resources"]["cpu"])
    splits = prepare(configs[0]["data"])
    records = []
    for i in range(seeds):
        probs, runs = [], []
        for config in configs:
            cfg = copy.deepcopy(config)
            cfg["train"]["seed"] = int(config["train"]["seed"]) + i
            runs.append(loop.run(cfg, splits=splits, with_test=True))
            probs.append(softmax(runs[-1]["logits"]["test"].astype(np.float32)))
        mean = np.mean(probs, axis=0)
        m = evaluate(splits.test.y, mean.argmax(1), splits.class_counts, configs[0]["minority"], probs=mean)
        records.append({"seed": i, **{f"test_{k}": m[k] for k in OBJECTIVES},
                        **{f"member{j}_test_{k}": r["test"][k] for j, r in enumerate(runs) for k in OBJECTIVES[:2]}})
        print(f"seed +{i}: ensemble of {len(configs)}: " + "  ".join(f"test_{k}={m[k]:.4f}" for k in OBJECTIVES[:2]))
    df = pd.DataFrame(records)
    print(df.drop(columns="seed").agg(["mean", "std"]).T.to_string())
    return df


def retrain(config: dict[str, Any], seeds: int = 1, out: str | Path | None = None) -> "pd.DataFrame":
    import pandas as pd
    from hpo.train import loop
    from hpo.train.splits import prepare

    loop.set_threads(config["resources"]["cpu"])
    splits = prepare(config["data"])  # the split depends on data.seed only: load it once
    base = int(config["train"]["seed"])
    records = []
    for i in range(seeds):
        cfg = copy.deepcopy(config)
        cfg["train"]["seed"] = base + i
        r = loop.run(cfg, splits=splits, with_test=True)
        records.append({"seed": base + i, **{f"val_{k}": r[k] for k in OBJECTIVES},
                        **{f"test_{k}": r["test"][k] for k in OBJECTIVES},
                        **{f"test_f1[{c}]": v["f1"] for c, v in r["test"]["per_class"].items()}})
        print(f"seed {base + i}: " + "  ".join(f"{k}={records[-1][k]:.4f}" for k in
                                               ("val_minority_f1", "val_macro_acc", "test_minority_f1", "test_macro_acc")))
    df = pd.DataFrame(records)
    stats = df.drop(columns="seed").agg(["mean", "std"]).T  # std is NaN for one seed: nothing to spread
    stats["mean ± std"] = [f"{m:.4f} ± {sd:.4f}" for m, sd in zip(stats["mean"], stats["std"].fillna(0.0))]
    print(f"\nover {seeds} seed(s):")
    print(stats[["mean ± std"]].to_string())
    if out:
        out = Path(out)
        df.to_csv(out, index=False)
        summary = out.with_name(out.stem + "_summary.csv")
        stats[["mean", "std"]].rename_axis("metric").to_csv(summary)
        print(f"per-seed results: {out}; mean and std: {summary}")
    return df
