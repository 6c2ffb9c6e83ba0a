"""The study note optuna-dashboard shows above a study: what was searched, on which data."""
from __future__ import annotations

from typing import TYPE_CHECKING

import optuna
import yaml

from hpo.spec import StudySpec

if TYPE_CHECKING:
    from hpo.train.splits import Splits


def markdown(spec: StudySpec, splits: "Splits") -> str:
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


def save(study: optuna.Study, spec: StudySpec, splits: "Splits") -> None:
    import optuna_dashboard

    optuna_dashboard.save_note(study, markdown(spec, splits))
