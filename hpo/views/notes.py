"""The study note optuna-dashboard shows above a study: what was searched, on which data."""
from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import optuna
import yaml

from hpo.spec import StudySpec

if TYPE_CHECKING:
    from hpo.train.preflight import DataSummary
    from hpo.train.splits import Splits

ATTR_NOTE = "hpo_note"  # study attribute: digest of the note hpo last wrote


def markdown(spec: StudySpec, splits: "Splits | DataSummary") -> str:
    data = spec.sections["data"]
    from hpo.train.splits import profile as applied

    lt = {**data["longtail"], "profile": applied(data)}
    profile = "none (the data's own counts)" if lt["profile"] == "none" else f"{lt['profile']}, ratio {lt['ratio']}"
    rows = "\n".join(f"| {i} | {name} | {n} |" for i, (name, n) in enumerate(zip(splits.class_names, splits.class_counts)))
    k, repeats = int(data["split"]["folds"]), int(data["split"]["repeats"])
    folded = "" if k < 2 else (
        f"\n**k-fold objectives**: each trial trains {k * repeats} models ({k} stratified folds of the "
        f"{len(splits.train.y) + len(splits.val.y)} non-test images{f', drawn {repeats} times' if repeats > 1 else ''}) "
        "and reports each objective's mean over the folds; the trial attributes `fold_values` (each fold's "
        "value) and `fold_std` (their standard deviation) show how much one split would have moved it.\n")
    return f"""# {spec.name}

{spec.description}

Objectives: {", ".join(f"**{o.name}** ({o.direction})" for o in spec.objectives)}.
Data: `{data['name']}`, long tail {profile}; {len(splits.train.y)} training, {len(splits.val.y)} validation,
{len(splits.test.y)} test images (the test split is never scored by a trial).
{folded}
| class | name | training images |
| --- | --- | --- |
{rows}

Study file `{spec.path}`:

```yaml
{yaml.safe_dump(dict(spec.raw), sort_keys=False).strip()}
```
"""


def save(study: optuna.Study, spec: StudySpec, splits: "Splits | DataSummary") -> None:
    """Write the note when its text changed since the last launch (its digest is kept on the
    study): optuna-dashboard's note API imports Optuna's importance module and with it all of
    scikit-learn, ~1 s of a relaunch's start otherwise. A note edited in the dashboard stays
    until the study file or the data changes."""
    text = markdown(spec, splits)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    if study.user_attrs.get(ATTR_NOTE) == digest:
        return
    import optuna_dashboard

    optuna_dashboard.save_note(study, text)
    study.set_user_attr(ATTR_NOTE, digest)
