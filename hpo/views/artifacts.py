"""Per-trial artifacts: rendered in the trial's worker, shipped in its result, stored by the
driver in Optuna's artifact store, where optuna-dashboard lists them on the trial's page.

The worker renders (matplotlib is slow enough that the driver should not do it for every trial)
and sends bytes rather than paths, so a worker on another machine of a Ray cluster works too.
"""
from __future__ import annotations

import base64
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from hpo.study.storage import LOGITS

ENV_VAR = "HPO_ARTIFACTS"
DEFAULT_DIR = Path("storage/artifacts")
RESULT_KEY = "hpo_artifacts"  # result key: JSON {file name: base64 bytes}


def artifact_dir(flag: str | None = None, create: bool = True) -> Path:
    """--artifacts flag, else $HPO_ARTIFACTS, else ./storage/artifacts (absolute: Ray moves cwd)."""
    path = Path(flag or os.environ.get(ENV_VAR) or DEFAULT_DIR).expanduser().resolve()
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def store(path: Path):  # -> optuna.artifacts.FileSystemArtifactStore
    from optuna.artifacts import FileSystemArtifactStore

    return FileSystemArtifactStore(str(path))


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def confusion_png(confusion: list[list[int]], names: list[str]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cm = np.asarray(confusion, dtype=float)
    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)  # row-normalised: recall on the diagonal
    k = len(names)
    fig, ax = plt.subplots(figsize=(max(4, 0.5 * k + 2), max(3.5, 0.5 * k + 1.5)))
    im = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set(xticks=range(k), yticks=range(k), xlabel="predicted", ylabel="true",
           title="validation confusion (row-normalised)")
    ax.set_xticklabels(names, rotation=90 if k > 10 else 0)
    ax.set_yticklabels(names)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if rates[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    return _png(fig)


def curve_png(curve: list[dict[str, float]]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in curve]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    a.plot(epochs, [r["train_loss"] for r in curve])
    a.set(xlabel="epoch", ylabel="training loss", title="loss")
    for key in ("minority_f1", "macro_acc"):
        b.plot(epochs, [r[key] for r in curve], label=key)
    b.set(xlabel="epoch", ylim=(0, 1), title="validation")
    b.legend()
    fig.tight_layout()
    return _png(fig)


def per_class_csv(per_class: dict[str, dict[str, float]]) -> bytes:
    import pandas as pd

    return pd.DataFrame(per_class).T.rename_axis("class").to_csv().encode()




def logits_npz(arrays: dict[str, Any]) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def render(final: dict[str, Any]) -> str:
    """The trial's artifacts as the JSON string the worker puts in its last result."""
    files = {"confusion_matrix.png": confusion_png(final["confusion"], final["class_names"]),
             "training_curve.png": curve_png(final["curve"]),
             "per_class_metrics.csv": per_class_csv(final["per_class"]),
             LOGITS: logits_npz(final["logits"])}
    if final.get("weights"):
        files["weights.safetensors"] = final["weights"]
    return json.dumps({name: base64.b64encode(data).decode() for name, data in files.items()})


def upload(encoded: str, trial: Any, artifact_store: Any) -> list[str]:
    """Store each shipped file as an artifact of `trial` (an optuna Trial); returns the names."""
    from optuna.artifacts import upload_artifact

    names = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in json.loads(encoded).items():
            path = Path(tmp) / name
            path.write_bytes(base64.b64decode(data))
            upload_artifact(artifact_store=artifact_store, file_path=str(path), study_or_trial=trial)
            names.append(name)
    return names
