"""A validated study: `StudySpec` (frozen), its searched `Param`s, and the config a trial trains from."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Mapping

from hpo.spec import catalog
from hpo.spec.schema import SECTIONS


@dataclass(frozen=True)
class Param:
    """One searched parameter. `complement` samples (1 - value), e.g. beta via 1 - beta on a log scale."""

    name: str
    section: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()
    complement: bool = False
    # sampled only if one alternative holds; an alternative = ((other param, values it must take), ...)
    when: tuple[tuple[tuple[str, tuple[Any, ...]], ...], ...] = ()
    sub: str | None = None  # a field of a sub-mapping of the section: train.augment.magnitude

    def active(self, taken: Mapping[str, Any]) -> bool:
        return not self.when or any(all(taken.get(k) in vs for k, vs in alt) for alt in self.when)

    @property
    def optuna_name(self) -> str:
        """The name Optuna stores: what the sampler actually models."""
        return f"one_minus_{self.name}" if self.complement else self.name

    @property
    def field(self) -> str:
        """The config field it sets: `loss` is the loss section's selector."""
        return SECTIONS[self.section].selector if self.name == self.section else self.name

    def value(self, sampled: Any) -> Any:
        return 1.0 - sampled if self.complement else sampled


@dataclass(frozen=True)
class Objective:
    name: str
    direction: str  # "maximize" | "minimize"


@dataclass(frozen=True)
class Constraint:
    """A requirement on a recorded metric: `metric` >= `low` (min) or <= `high` (max). `cls`: the
    class (name or index) of a per-class metric (recall, precision, f1), else None."""

    metric: str
    low: float | None = None
    high: float | None = None
    cls: str | int | None = None

    @property
    def label(self) -> str:
        """What was measured, e.g. `recall[bad]`: the key its values are stored under."""
        return self.metric if self.cls is None else f"{self.metric}[{self.cls}]"

    def __str__(self) -> str:
        return f"{self.label} >= {self.low:g}" if self.low is not None else f"{self.label} <= {self.high:g}"

    def violation(self, value: float) -> float:
        """How far `value` misses the bound: <= 0 when met (Optuna's convention for constraints)."""
        return self.low - value if self.low is not None else value - self.high

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"metric": self.metric}
        if self.cls is not None:
            out["class"] = self.cls
        out["min" if self.low is not None else "max"] = self.low if self.low is not None else self.high
        return out


@dataclass(frozen=True)
class WarmStart:
    """Start from the Pareto-best configs of an earlier study (`storage`: None = this one's)."""

    study: str
    top: int = 5
    storage: str | None = None


@dataclass(frozen=True)
class StudySpec:
    name: str
    path: str
    description: str
    sections: Mapping[str, Mapping[str, Any]]  # data, model, train, loss, rebalance, metrics (fixed part)
    minority: tuple[int | str, ...] | None
    search: tuple[Param, ...]
    objectives: tuple[Objective, ...]
    sampler: Mapping[str, Any]
    scheduler: Mapping[str, Any]
    n_trials: int
    max_concurrent: int
    retries: int
    max_failed: int
    cpu: float
    gpu: float
    raw: Mapping[str, Any] = field(repr=False, default_factory=dict)
    constraints: tuple[Constraint, ...] = ()
    warm_start: WarmStart | None = None

    @property
    def metric_names(self) -> list[str]:
        return [o.name for o in self.objectives]

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]

    def fixed_config(self) -> dict[str, Any]:
        """The part of every trial's config that no search parameter changes (a fresh copy)."""
        cfg = {k: copy.deepcopy(dict(v)) for k, v in self.sections.items()}
        cfg["minority"] = list(self.minority) if self.minority is not None else None
        cfg["resources"] = {"cpu": self.cpu, "gpu": self.gpu}
        return cfg

    def trial_config(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Fixed part + sampled params (keyed by Optuna name) -> the config one trial trains from,
        every registered entry's options filled in: exactly what the trial trains."""
        cfg = self.fixed_config()
        for p in self.search:
            if p.optuna_name in params:
                target = cfg[p.section][p.sub] if p.sub else cfg[p.section]
                target[p.field] = p.value(params[p.optuna_name])
        return resolve_entries(cfg)


def resolve_entries(cfg: dict[str, Any]) -> dict[str, Any]:
    """For each section with a selector, keep the chosen entry's options (a fixed section may hold
    options of several searched entries) and fill in the defaults it declares."""
    for name, table in SECTIONS.items():
        if table.selector is None:
            continue
        sec = cfg[name]
        opts = catalog.options(table.kind, sec[table.selector])
        if table.params_in:
            given = sec.get(table.params_in, {})
            sec[table.params_in] = {**{k: o.default for k, o in opts.items() if not o.required}, **given}
            continue
        common = set(table.fields)
        cfg[name] = {k: v for k, v in sec.items() if k in common or k in opts}
        for k, o in opts.items():
            if k not in cfg[name] and not o.required:
                cfg[name][k] = o.default
    return cfg
