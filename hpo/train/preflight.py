"""What a launch checks once, in the driver, before any trial: the data loads and splits, the
minority classes exist, a timm architecture is known. Bad input fails here (exit 2), not in
every trial."""
from __future__ import annotations

from hpo.errors import UserError
from hpo.spec import StudySpec
from hpo.train.metrics import resolve_minority
from hpo.train.splits import Splits, prepare


def check_study(spec: StudySpec) -> Splits:
    cfg = spec.trial_config({})  # the fixed part, every default filled in
    splits = prepare(cfg["data"])
    minority = resolve_minority(spec.minority, splits.class_counts, splits.class_names)  # checks names
    if not minority and "minority_f1" in spec.metric_names:
        raise UserError(f"{spec.path}: no class has fewer training images than the mean "
                        f"(counts {splits.class_counts}), so minority_f1 is undefined; list the classes to "
                        "watch with `minority: [...]` (indices or names) or cut a long tail with data.longtail")
    model = cfg["model"]
    if model["name"] == "timm":
        from hpo.train import models

        models.check_timm_arch(model["arch"], where=f"{spec.path}: model.arch")
        if model["pretrained"] or model["weights"]:  # fetch (or find in the cache) once, before any trial
            models.build("timm", num_classes=len(splits.class_counts), in_chans=splits.train.x.shape[1],
                         **{k: v for k, v in model.items() if k != "name"})
    return splits
