"""A study file (`search_spaces/NAME.yaml`) -> a validated, frozen `StudySpec`.

Everything a user can get wrong is checked here, once, before Ray or torch start; each error
names the file, the field, the value and the fix (`SpecError`, exit code 2 in the CLI).

A study file has fixed sections (data, model, train, loss, rebalance) and a `search` section
whose keys are parameter names (`lr`, `batch_size`, `beta`, ...). A sampled value overrides
the fixed value of the same name; `trial_config(params)` gives the full, plain-dict config a
trial (and later `hpo train`) runs from.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from hpo import catalog
from hpo.errors import SpecError
from hpo.fields import (DATA_PARAMS, NUM, PARAM_CHECKS, PARAM_KEYS, PARAM_TYPES, REQUIRED_DATA_PARAMS,
                        SECTIONS, TOP_LEVEL, Check, Field, non_negative, one_of, positive)


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

    def active(self, taken: Mapping[str, Any]) -> bool:
        return not self.when or any(all(taken.get(k) in vs for k, vs in alt) for alt in self.when)

    @property
    def optuna_name(self) -> str:
        """The name Optuna stores: what the sampler actually models."""
        return f"one_minus_{self.name}" if self.complement else self.name

    def value(self, sampled: Any) -> Any:
        return 1.0 - sampled if self.complement else sampled


@dataclass(frozen=True)
class Objective:
    name: str
    direction: str  # "maximize" | "minimize"


@dataclass(frozen=True)
class StudySpec:
    name: str
    path: str
    description: str
    sections: Mapping[str, Mapping[str, Any]]  # data, model, train, loss, rebalance (fixed part)
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
        """Fixed part + sampled params (keyed by Optuna name) -> the config one trial trains from."""
        cfg = self.fixed_config()
        for p in self.search:
            if p.optuna_name in params:
                value = p.value(params[p.optuna_name])
                cfg[p.section]["name" if p.name == "loss" else p.name] = value
        # the fixed loss section may hold parameters for several searched losses: keep the chosen one's
        takes = {"name", *catalog.LOSSES[cfg["loss"]["name"]], *catalog.LOSS_COMMON}
        cfg["loss"] = {k: v for k, v in cfg["loss"].items() if k in takes}
        return cfg


def load_spec(path: str | Path) -> StudySpec:
    path = Path(path)
    if not path.is_file():
        raise SpecError(str(path), "<file>", str(path), "no such study file",
                        "create it, or pass --spaces-dir pointing at the folder that holds it")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise SpecError(str(path), "<file>", str(path), f"not valid YAML: {exc}") from exc
    return parse_spec(raw, str(path), default_name=path.stem)


def find_spec(study: str, spaces_dir: str | Path) -> StudySpec:
    path = Path(spaces_dir) / f"{study}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in Path(spaces_dir).glob("*.yaml"))
        raise SpecError(str(path), "--study", study, "no such study file in " + str(spaces_dir),
                        f"known studies there: {', '.join(known) or '(none)'}")
    return load_spec(path)


def parse_spec(raw: Any, file: str, default_name: str = "study") -> StudySpec:
    v = _Validator(file)
    if not isinstance(raw, dict):
        raise SpecError(file, "<top level>", raw, "must be a mapping of sections")
    v.known_keys(raw, TOP_LEVEL, "")
    sections = {name: v.section(name, raw.get(name) or {}) for name in SECTIONS}
    v.named_params(sections["model"], "model", [sections["model"]["name"]], catalog.MODELS, ())
    v.data_section(sections["data"])
    v.train_augment(sections["train"])
    if sections["model"].get("weights"):
        sections["model"]["weights"] = v.existing_path("model.weights", sections["model"]["weights"])
    search = v.search(raw.get("search") or {}, sections)
    loss_names = next((p.choices for p in search if p.name == "loss"), (sections["loss"]["name"],))
    v.named_params(sections["loss"], "loss", loss_names, catalog.LOSSES, catalog.LOSS_COMMON)
    objectives = v.objectives(raw.get("objectives"))
    # GP is the default: on the digits-LT bench it beat TPE and random search (bench/search_efficiency.py)
    sampler = v.mapping(raw.get("sampler") or {}, "sampler", {"name": "gp", "seed": 0})
    v.check("sampler.name", sampler["name"], str, one_of(catalog.SAMPLERS, "sampler"))
    v.check("sampler.seed", sampler["seed"], int, non_negative)
    scheduler = v.mapping(raw.get("scheduler") or {}, "scheduler", {"name": "none", "grace_epochs": 1, "eta": 3})
    v.check("scheduler.name", scheduler["name"], str, one_of(("none", "mo_asha"), "scheduler"))
    if scheduler["name"] == "mo_asha":
        epochs = sections["train"]["epochs"]
        v.check("scheduler.grace_epochs", scheduler["grace_epochs"], int,
                lambda g: None if 1 <= g < epochs else f"must be in 1 .. train.epochs - 1 ({epochs - 1})")
        v.check("scheduler.eta", scheduler["eta"], int, lambda e: None if e >= 2 else "must be >= 2")
    budget = v.mapping(raw.get("budget") or {}, "budget",
                       {"n_trials": 12, "max_concurrent": 2, "retries": 1, "max_failed": None})
    v.check("budget.n_trials", budget["n_trials"], int, positive)
    v.check("budget.max_concurrent", budget["max_concurrent"], int, positive)
    v.check("budget.retries", budget["retries"], int, non_negative)  # restarts of a trial whose worker died
    if budget["max_failed"] is None:  # a launch gives up after this many FAIL trials (a broken space)
        budget["max_failed"] = budget["n_trials"]
    v.check("budget.max_failed", budget["max_failed"], int, positive)
    res = v.mapping(raw.get("resources") or {}, "resources", {"cpu": 1, "gpu": 0})
    v.check("resources.cpu", res["cpu"], NUM, positive)
    v.check("resources.gpu", res["gpu"], NUM, non_negative)
    minority = raw.get("minority")
    if minority is not None and (not isinstance(minority, list) or not minority):
        raise SpecError(file, "minority", minority, "must be a non-empty list of class indices or names",
                        "e.g. `minority: [7, 8, 9]`, or leave it out for classes below the mean count")
    name = raw.get("study", default_name)
    v.check("study", name, str, lambda s: None if s and "/" not in s else "must be a plain name")
    return StudySpec(
        name=name, path=file, description=str(raw.get("description", "")), sections=sections,
        minority=tuple(minority) if minority else None, search=search, objectives=objectives,
        sampler=sampler, scheduler=scheduler, n_trials=budget["n_trials"], max_concurrent=budget["max_concurrent"],
        retries=budget["retries"], max_failed=budget["max_failed"],
        cpu=float(res["cpu"]), gpu=float(res["gpu"]), raw=raw,
    )


class _Validator:
    """Holds the file name so every check can report it."""

    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, fld: str, value: Any, problem: str, fix: str = "") -> None:
        raise SpecError(self.file, fld, value, problem, fix)

    def known_keys(self, d: Mapping, known: tuple[str, ...] | list[str], where: str) -> None:
        if not isinstance(d, dict):
            self.fail(where or "<top level>", d, "must be a mapping")
        for k in d:
            if k not in known:
                self.fail(f"{where}.{k}" if where else str(k), d[k], f"unknown field {k!r}",
                          f"known fields{' of ' + where if where else ''}: {', '.join(known)}")

    def check(self, fld: str, value: Any, kind: type | tuple, check: Check | None) -> None:
        # bool is an int in Python; a `true` where a number belongs is a typo, not 1
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kind):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            self.fail(fld, value, f"must be of type {names}")
        problem = check(value) if check else None
        if problem:
            self.fail(fld, value, problem)

    def mapping(self, d: Any, where: str, defaults: dict[str, Any]) -> dict[str, Any]:
        self.known_keys(d, list(defaults), where)
        return {**defaults, **d}

    def section(self, name: str, d: Any) -> dict[str, Any]:
        fields = SECTIONS[name]
        if not isinstance(d, dict):
            self.fail(name, d, "must be a mapping")
        out = {k: copy.deepcopy(f.default) for k, f in fields.items()}
        for k, value in d.items():
            f = fields.get(k) or (PARAM_CHECKS.get(k) if name in ("loss", "model") else None)
            if f is None:
                self.fail(f"{name}.{k}", value, f"unknown field {k!r}",
                          f"known fields of {name}: {', '.join(fields)}")
            self.check(f"{name}.{k}", value, f.kind, f.check)
            out[k] = value
        return out

    def named_params(self, sec: dict[str, Any], where: str, names: Sequence[str],
                     table: Mapping[str, tuple[str, ...]], common: tuple[str, ...]) -> None:
        """Fixed parameters beside `name` must belong to one of the (possibly searched) names."""
        allowed = sorted({a for n in names for a in table[n]} | set(common))
        for k in sec:
            if k != "name" and k not in allowed:
                self.fail(f"{where}.{k}", sec[k], f"no {where} of {list(names)} takes parameter {k!r}",
                          f"their parameters: {', '.join(allowed) or '(none)'}")

    def data_section(self, d: dict[str, Any]) -> None:
        lt = self.mapping(d["longtail"], "data.longtail", {"profile": "exp", "ratio": 100, "minority_fraction": 0.5})
        self.check("data.longtail.profile", lt["profile"], str, one_of(catalog.LONGTAIL_PROFILES))
        self.check("data.longtail.ratio", lt["ratio"], NUM,
                   lambda r: None if r >= 1 else "must be >= 1 (n_max / n_min)")
        self.check("data.longtail.minority_fraction", lt["minority_fraction"], NUM,
                   lambda f: None if 0 < f < 1 else "must be in (0, 1): the share of classes the step profile shrinks")
        split = self.mapping(d["split"], "data.split", {"val": 0.2, "test": 0.2, "val_from": "test"})
        self.check("data.split.val_from", split["val_from"], str, one_of(catalog.VAL_FROM))
        for k in ("val", "test"):
            self.check(f"data.split.{k}", split[k], NUM,
                       lambda x: None if 0 < x < 1 else "must be a fraction in (0, 1)")
        if split["val"] + split["test"] >= 0.9:
            self.fail("data.split", split, "val + test leave less than 10% for training",
                      "lower data.split.val or data.split.test")
        d["longtail"], d["split"] = lt, split
        name, params = d["name"], d["params"]
        allowed = catalog.DATASETS[name]
        for k, value in params.items():
            if k not in allowed:
                self.fail(f"data.params.{k}", value, f"data set {name!r} takes no parameter {k!r}",
                          f"parameters of {name}: {', '.join(allowed) or '(none)'}")
            self.check(f"data.params.{k}", value, DATA_PARAMS[k].kind, DATA_PARAMS[k].check)
        for k in REQUIRED_DATA_PARAMS.get(name, ()):
            if k not in params:
                self.fail(f"data.params.{k}", None, f"data set {name!r} needs {k}",
                          f"add `params: {{{k}: PATH}}` under data")
        for k in catalog.DATA_PATH_PARAMS:
            if k in params:  # relative to where hpo runs; absolute because Ray moves each trial's cwd
                params[k] = str(Path(params[k]).expanduser().resolve())

    def train_augment(self, t: dict[str, Any]) -> None:
        aug = self.mapping(t["augment"], "train.augment", {"crop_padding": 0, "flip": False})
        self.check("train.augment.crop_padding", aug["crop_padding"], int, non_negative)
        self.check("train.augment.flip", aug["flip"], bool, None)
        t["augment"] = aug

    def existing_path(self, fld: str, value: str) -> str:
        path = Path(value).expanduser().resolve()
        if not path.is_file():
            self.fail(fld, value, f"no such file ({path})", "give the path of a local weights file, or leave it out")
        return str(path)

    def _field_for(self, name: str, sections: dict[str, dict[str, Any]]) -> tuple[str, Field]:
        """Where a searched parameter lands in the trial config, and how its values are checked."""
        if name == "loss":
            return "loss", SECTIONS["loss"]["name"]
        for sec in ("train", "rebalance"):
            if name in SECTIONS[sec]:
                return sec, SECTIONS[sec][name]
        if name in PARAM_CHECKS:
            return ("model" if name in catalog.MODELS[sections["model"]["name"]] else "loss"), PARAM_CHECKS[name]
        searchable = ["loss", *SECTIONS["train"], *SECTIONS["rebalance"], *PARAM_CHECKS]
        self.fail(f"search.{name}", name, f"unknown search parameter {name!r}",
                  f"searchable parameters: {', '.join(searchable)}")
        raise AssertionError  # unreachable

    def search(self, d: Any, sections: dict[str, dict[str, Any]]) -> tuple[Param, ...]:
        if not isinstance(d, dict):
            self.fail("search", d, "must be a mapping of parameter name -> range or choices")
        params: list[Param] = []
        for name, body in d.items():
            where = f"search.{name}"
            sec, fld = self._field_for(name, sections)
            self.known_keys(body, PARAM_KEYS, where)
            p = self.param(name, sec, fld, body, where)
            for alt in p.when:
                for other, _ in alt:
                    if other not in {q.name for q in params}:
                        self.fail(f"{where}.when", other, "must name a search parameter listed above this one")
            params.append(p)
        self._loss_params_exist(params, sections)
        return tuple(params)

    def param(self, name: str, sec: str, fld: Field, body: dict, where: str) -> Param:
        kind = body.get("type") or ("categorical" if "choices" in body else
                                    "int" if isinstance(body.get("low"), int) and isinstance(body.get("high"), int)
                                    and fld.kind is int else "float")
        self.check(f"{where}.type", kind, str, one_of(PARAM_TYPES))
        when = body.get("when") or []
        alternatives = when if isinstance(when, list) else [when]  # a list means "any of these"
        for alt in alternatives:
            if not isinstance(alt, dict) or not alt:
                self.fail(f"{where}.when", when, "must be {param: [values]} or a list of such mappings",
                          "e.g. `when: {loss: [ldam]}`")
        when_t = tuple(tuple((k, tuple(v if isinstance(v, list) else [v])) for k, v in alt.items())
                       for alt in alternatives)
        if kind == "categorical":
            choices = body.get("choices")
            if not isinstance(choices, list) or not choices:
                self.fail(f"{where}.choices", choices, "must be a non-empty list")
            for c in choices:
                self.check(f"{where}.choices", c, fld.kind, fld.check)
            return Param(name, sec, kind, choices=tuple(choices), when=when_t)
        for k in ("low", "high"):
            if k not in body:
                self.fail(f"{where}.{k}", None, f"a {kind} parameter needs {k}", f"add `{k}: ...` to {where}")
            self.check(f"{where}.{k}", body[k], int if kind == "int" else NUM, None)
        low, high, log = body["low"], body["high"], bool(body.get("log", False))
        if low >= high:
            self.fail(f"{where}.high", high, f"must be greater than low ({low})")
        if log and low <= 0:
            self.fail(f"{where}.low", low, "must be > 0 on a log scale", "raise low or set log: false")
        complement = bool(body.get("complement", False))
        if complement:
            if kind != "float":
                self.fail(f"{where}.complement", True, "only float parameters can be complemented")
            for k in ("low", "high"):  # the value the trial gets is 1 - bound
                problem = fld.check(1.0 - body[k]) if fld.check else None
                if problem:
                    self.fail(f"{where}.{k}", body[k], f"complement: {name} = 1 - {body[k]} = {1.0 - body[k]:g} {problem}",
                              f"with complement: true, low and high bound 1 - {name}")
        else:
            for k in ("low", "high"):
                self.check(f"{where}.{k}", body[k], fld.kind if kind == "float" else int, fld.check)
        step = body.get("step")
        if step is not None and log:
            self.fail(f"{where}.step", step, "step and log cannot be combined (Optuna's rule)")
        return Param(name, sec, kind, low=low, high=high, log=log, step=step, complement=complement,
                     when=when_t)

    def _loss_params_exist(self, params: list[Param], sections: dict[str, dict[str, Any]]) -> None:
        loss_choices = next((p.choices for p in params if p.name == "loss"), (sections["loss"]["name"],))
        usable = {a for n in loss_choices for a in catalog.LOSSES[n]} | set(catalog.LOSS_COMMON)
        for p in params:
            if p.section == "loss" and p.name != "loss" and p.name not in usable:
                self.fail(f"search.{p.name}", p.name, f"no loss in {list(loss_choices)} takes {p.name!r}",
                          f"their parameters: {', '.join(sorted(usable)) or '(none)'}")

    def objectives(self, d: Any) -> tuple[Objective, ...]:
        if d is None:
            d = [{"name": "minority_f1", "direction": "maximize"}, {"name": "macro_acc", "direction": "maximize"}]
        if not isinstance(d, list) or not d:
            self.fail("objectives", d, "must be a non-empty list of {name, direction}")
        out = []
        for i, o in enumerate(d):
            self.known_keys(o, ("name", "direction"), f"objectives[{i}]")
            self.check(f"objectives[{i}].name", o.get("name"), str, one_of(catalog.METRICS, "metric"))
            direction = o.get("direction", "maximize")
            self.check(f"objectives[{i}].direction", direction, str, one_of(("maximize", "minimize")))
            out.append(Objective(o["name"], direction))
        if len({o.name for o in out}) != len(out):
            self.fail("objectives", [o.name for o in out], "an objective is listed twice")
        return tuple(out)

