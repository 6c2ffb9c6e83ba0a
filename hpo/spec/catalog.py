"""The registered names and their declared options, read without importing torch or Ray.

`catalog.json` beside this file is written from the registries themselves (`make catalog`,
i.e. `python -m hpo.catalog_build`); tests/spec/test_catalog.py fails when the two differ, so a
study file is always validated against what the factories were registered with.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Mapping

from hpo.errors import UserError, unknown_name
from hpo.spec.options import Option

PATH = Path(__file__).with_name("catalog.json")

# registry kinds, as they appear in messages ("unknown loss 'x'; known: ...")
LOSS, MODEL, DATA, REBALANCE, OPTIMIZER, SCHEDULE, SAMPLER, SCHEDULER = (
    "loss", "model", "data set", "rebalancing method", "optimizer", "schedule", "sampler", "scheduler")
KINDS = (LOSS, MODEL, DATA, REBALANCE, OPTIMIZER, SCHEDULE, SAMPLER, SCHEDULER)


@lru_cache(maxsize=1)
def _load() -> dict[str, dict[str, dict[str, Option]]]:
    raw = json.loads(PATH.read_text())
    return {kind: {name: {k: Option.from_json(o) for k, o in entry["options"].items()}
                   for name, entry in raw[kind].items()} for kind in KINDS}


def names(kind: str) -> tuple[str, ...]:
    return tuple(_load()[kind])


def options(kind: str, name: str) -> Mapping[str, Option]:
    entries = _load()[kind]
    if name not in entries:
        raise UserError(unknown_name(kind, name, list(entries)))
    return entries[name]

