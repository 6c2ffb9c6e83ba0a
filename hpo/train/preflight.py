"""What a launch checks once, in the driver, before any trial: the data loads and splits, the
minority classes exist, a timm architecture is known. Bad input fails here (exit 2), not in
every trial."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hpo.errors import UserError
from hpo.spec import StudySpec
from hpo.train.metrics import resolve_minority
from hpo.train.splits import Splits, check_folds, prepare


@dataclass(frozen=True)
class Labels:
    y: np.ndarray


@dataclass(frozen=True)
class DataSummary:
    """The data a trial trains on as the launch's driver needs it (the class table, the study's
    data record and note): each part's labels and the class names, no images. What
    hpo.tune.data_check sends back from its process; read like `Splits`."""

    train: Labels
    val: Labels
    test: Labels
    class_names: tuple[str, ...]

    @classmethod
    def of(cls, splits: Splits) -> "DataSummary":
        return cls(Labels(splits.train.y), Labels(splits.val.y), Labels(splits.test.y), tuple(splits.class_names))

    @property
    def class_counts(self) -> list[int]:
        return np.bincount(self.train.y, minlength=len(self.class_names)).tolist()


def check_study(spec: StudySpec) -> Splits:
    cfg = spec.trial_config({})  # the fixed part, every default filled in
    splits = prepare(cfg["data"])
    check_folds(cfg["data"], splits)  # a k that cannot work fails here, not in every trial
    minority = resolve_minority(spec.minority, splits.class_counts, splits.class_names)  # checks names
    if not minority and "minority_f1" in spec.metric_names:
        raise UserError(f"{spec.path}: no class has fewer training images than the mean "
                        f"(counts {splits.class_counts}), so minority_f1 is undefined; list the classes to "
                        "watch with `minority: [...]` (indices or names) or cut a long tail with data.longtail")
    _placement(cfg, splits)
    model = cfg["model"]
    if model["name"] == "timm":
        from hpo.train import models

        models.check_timm_arch(model["arch"], where=f"{spec.path}: model.arch")
        if model["pretrained"] or model["weights"]:  # fetch (or find in the cache) once, before any trial
            models.build("timm", num_classes=len(splits.class_counts), in_chans=splits.train.x.shape[1],
                         **{k: v for k, v in model.items() if k != "name"})
    return splits


def check_resources(spec: StudySpec, have: dict[str, float], where: str) -> None:
    """A trial's CPUs and GPUs against what `where` offers (this machine, or the Ray cluster):
    Ray would leave a trial asking for more PENDING forever."""
    for kind, want in (("CPU", spec.cpu), ("GPU", spec.gpu)):
        if want > have.get(kind, 0):
            hint = "; or join a cluster that has them (--ray-address)" if where == "this machine" else ""
            raise UserError(f"{spec.path}: resources.{kind.lower()} = {want:g} per trial, but {where} has "
                            f"{have.get(kind, 0):g} {kind}(s); lower resources.{kind.lower()} to at most "
                            f"{have.get(kind, 0):g}{hint}")


def machine_resources(spec: StudySpec) -> dict[str, float]:
    """What a local Ray started here offers; torch is imported only when the study asks for a GPU."""
    from hpo.train.machine import Machine

    return Machine.here(gpus=spec.gpu > 0).resources()


def _placement(cfg: dict, splits: Splits) -> None:
    """Say at launch when the data set will not fit on the trial's device (judged from this machine)."""
    device = cfg["train"]["device"]
    if device == "cpu" or (device == "auto" and not float(cfg["resources"]["gpu"])):
        return  # CPU trials keep the data in host memory anyway; and the driver skips torch's import (2 s)
    import torch

    from hpo.train.device_data import keep_on_host
    from hpo.train.loop import memory_fraction, pick_device

    share = float(cfg["resources"]["gpu"])
    try:
        device = pick_device(cfg["train"], share)
    except RuntimeError:  # the driver has no GPU; the workers will
        return
    # the trial's own cap and copies (k folds hold k copies), so the check says what the trial will do
    cap = memory_fraction(share, torch.cuda.get_device_properties(device).total_memory) if device.type == "cuda" else 1.0
    keep_on_host(splits, device, cfg["train"]["data_memory_mb"], cap, max(1, int(cfg["data"]["split"]["folds"])))


def class_table(spec: StudySpec, splits: Splits | DataSummary) -> str:
    """Per-class train / val / test counts (after the long-tail cut), minority classes marked."""
    import pandas as pd

    k = len(splits.class_names)
    minority = set(resolve_minority(spec.minority, splits.class_counts, splits.class_names))
    table = pd.DataFrame({part: np.bincount(getattr(splits, part).y, minlength=k) for part in ("train", "val", "test")},
                         index=pd.Index(list(splits.class_names), name="class"))
    table["minority"] = ["yes" if i in minority else "" for i in range(k)]
    return table.to_string()


def summary(spec: StudySpec, splits: Splits) -> str:
    """What `hpo check` prints: the data a trial trains on and what the study searches."""
    def describe(p) -> str:  # noqa: ANN001 - a Param
        what = (f"choices {list(p.choices)}" if p.type == "categorical" else
                f"{p.type} [{p.low:g}, {p.high:g}]{' log' if p.log else ''}{' as 1 - value' if p.complement else ''}")
        when = " when " + " or ".join(", ".join(f"{k} in {list(v)}" for k, v in alt) for alt in p.when) if p.when else ""
        return f"  {p.name}: {what}{when}"

    from hpo.train.splits import profile

    data = spec.sections["data"]
    lines = [f"study {spec.name!r} ({spec.path}): OK", f"data: {data['name']}, long tail: {profile(data)}"
             + ("" if profile(data) == "none" else f", ratio {data['longtail']['ratio']}"), class_table(spec, splits),
             f"searched ({len(spec.search)}):", *map(describe, spec.search),
             "objectives: " + ", ".join(f"{o.name} ({o.direction})" for o in spec.objectives),
             f"budget: {spec.n_trials} trials, {spec.max_concurrent} at a time, {spec.cpu:g} CPU / {spec.gpu:g} GPU each"]
    return "\n".join(lines)
