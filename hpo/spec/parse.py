"""A study file (`search_spaces/NAME.yaml`) or an exported config -> validated values.

Everything a user can get wrong is checked here, once, before Ray or torch start; each error
names the file, the field, the value and the fix (`SpecError`, exit code 2 in the CLI). The
fields come from `hpo.spec.schema`; a registered entry's options (a loss's gamma) from the
catalog, i.e. from the entry's own declaration.
"""
from __future__ import annotations

import dataclasses
import os
import re
import stat
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from hpo.errors import SHOWN_CHARS, SpecError, shown, unknown_name
from hpo.spec import catalog
from hpo.spec.options import Option, Table
from hpo.spec.schema import (BUDGET, CONSTRAINT_COSTS, CONSTRAINT_KEYS, CONSTRAINT_METRICS, METRICS, PARAM_KEYS,
                             PARAM_TYPES, PER_CLASS_METRICS, RESOURCES, SAMPLER, SCHEDULER, SEARCHABLE, SECTIONS,
                             TOP_LEVEL, WARM_START)
from hpo.spec.study import Constraint, Objective, Param, StudySpec, WarmStart, resolve_entries


# a study name: it becomes a file name, a folder name and a database key, so no slashes, no
# newlines, no leading dot (which also rules out `.` and `..`), at most 100 characters
STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
STUDY_NAME_RULE = ("1 to 100 characters from A-Z a-z 0-9 _ . -, starting with a letter or digit "
                   f"(the pattern {STUDY_NAME.pattern})")


class NoAliasLoader(yaml.SafeLoader):
    """yaml's SafeLoader without anchors and aliases (`&a` / `*a`, also what `<<:` merges use):
    a study file has no need for them, and a few lines of nested aliases (a "billion laughs"
    file) expand to billions of nodes. Refused at the first anchor, before anything expands."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(
                None, None, f"YAML anchors and aliases (&{event.anchor[:40]} / *{event.anchor[:40]}) are not allowed "
                "in a study file or an export", event.start_mark)
        return super().compose_node(parent, index)


STUDY_FILE_BYTES = 1 << 20  # a study file is a page of YAML; anything near this is not one


def read_user_file(path: str | Path, field: str, limit: int, fix: str) -> str:
    """The text of a file the user named, read only when it is a regular file inside the folder
    it is named in (a symlink may point within that folder, not out of it: `sp/x.yaml ->
    /etc/shadow` is refused unread), at most `limit` bytes, UTF-8. `fix` says what to give instead."""
    path = Path(path)
    folder = path.parent.resolve()
    real = path.resolve()
    if not real.is_relative_to(folder):
        raise SpecError(str(path), field, str(path), f"a symlink to {real}, outside the folder {folder}; "
                        "not read", fix)
    try:
        # O_NONBLOCK: opening a FIFO does not wait for a writer; O_NOFOLLOW: `real` is resolved already
        with open(os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW), "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise SpecError(str(path), field, str(path), "not a regular file (a folder, a device or a pipe)", fix)
            data = f.read(limit + 1)
    except OSError as exc:
        raise SpecError(str(path), field, str(path), f"cannot read it: {exc.strerror}", fix) from None
    if len(data) > limit:
        raise SpecError(str(path), field, str(path), f"larger than {limit} bytes; not read", fix)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(str(path), field, str(path), f"not UTF-8 text (byte {exc.start})", fix) from None


def yaml_problem(exc: yaml.YAMLError) -> str:
    """What the YAML parser objects to and where, without the lines of the file it quotes."""
    problem = str(getattr(exc, "problem", None) or getattr(exc, "context", None) or type(exc).__name__)
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return (problem if len(problem) <= SHOWN_CHARS else problem[:SHOWN_CHARS] + "...") + where


def load_yaml(text: str, file: str, field: str, fix: str) -> Any:
    """YAML without anchors and aliases; a syntax error names its line and column, not its text."""
    try:
        return yaml.load(text, Loader=NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        fix = "write the values out in full" if "anchors and aliases" in str(exc) else fix
        raise SpecError(file, field, file, f"not valid YAML: {yaml_problem(exc)}", fix) from None


def load_spec(path: str | Path) -> StudySpec:
    path = Path(path)
    if not os.path.lexists(path):
        raise SpecError(str(path), "<file>", str(path), "no such study file",
                        "create it, or pass --spaces-dir pointing at the folder that holds it")
    text = read_user_file(path, "<file>", STUDY_FILE_BYTES, "give a study file (YAML) that lies in the folder")
    raw = load_yaml(text, str(path), "<file>", "")
    if raw is None:
        raise SpecError(str(path), "<file>", str(path), "the study file is empty",
                        "copy one of search_spaces/*.yaml and edit it; a study needs at least a search: section")
    spec = parse_spec(raw, str(path), default_name=path.stem)
    if spec.name != path.stem:  # `hpo status --study NAME` and every later command find it by its file name
        raise SpecError(str(path), "study", spec.name, f"differs from the file name {path.name!r}",
                        f"rename the file to {spec.name}.yaml, or set `study: {path.stem}` (or leave it out)")
    return spec


def find_spec(study: str, spaces_dir: str | Path) -> StudySpec:
    if not isinstance(study, str) or not STUDY_NAME.fullmatch(study):
        raise SpecError(str(spaces_dir), "--study", study, "not a study name", f"a study name is {STUDY_NAME_RULE}")
    path = Path(spaces_dir) / f"{study}.yaml"
    if not os.path.lexists(path):  # what is there but is no study file, load_spec says what it is
        known = sorted(p.stem for p in Path(spaces_dir).glob("*.yaml"))
        raise SpecError(str(path), "--study", study, "no such study file in " + str(spaces_dir),
                        f"known studies there: {', '.join(known) or '(none)'}")
    return load_spec(path)


def parse_spec(raw: Any, file: str, default_name: str = "study") -> StudySpec:
    v = Validator(file)
    if not isinstance(raw, dict):
        raise SpecError(file, "<top level>", raw, "must be a mapping of sections")
    v.known_keys(raw, TOP_LEVEL, "")
    study_name = raw.get("study", default_name)
    if not isinstance(study_name, str) or not STUDY_NAME.fullmatch(study_name):
        v.fail("study", study_name, "not a study name", f"a study name is {STUDY_NAME_RULE}")
    if raw.get("search") is None or raw.get("search") == {}:
        v.fail("search", raw.get("search"), "a study file needs a search: section naming at least one parameter",
               "add e.g. `search: {lr: {low: 1.0e-3, high: 0.3, log: true}}`")
    sections = {name: v.table(name, table, raw.get(name)) for name, table in SECTIONS.items()}
    for name, table in SECTIONS.items():
        if table.selector:  # a searched selector (loss: {choices: [...]}) allows every choice's options
            v.entry_options(name, table, sections[name], searched_choices(raw, name, table, sections[name]))
    search = v.search(raw.get("search") or {}, sections)
    sampler = v.table("sampler", SAMPLER, raw.get("sampler"))
    v.entry_options("sampler", SAMPLER, sampler, (sampler["name"],))
    scheduler = v.table("scheduler", SCHEDULER, raw.get("scheduler"))
    v.entry_options("scheduler", SCHEDULER, scheduler, (scheduler["name"],))
    scheduler = resolve_scheduler(v, scheduler, sections["train"]["epochs"])
    budget = v.table("budget", BUDGET, raw.get("budget"))
    if budget["max_failed"] is None:
        budget["max_failed"] = budget["n_trials"]
    res = v.table("resources", RESOURCES, raw.get("resources"))
    return StudySpec(
        name=study_name, path=file, description=str(raw.get("description", "")), sections=sections,
        minority=v.minority(raw.get("minority")), search=search, objectives=v.objectives(raw.get("objectives")),
        sampler=sampler, scheduler=scheduler, n_trials=budget["n_trials"], max_concurrent=budget["max_concurrent"],
        retries=budget["retries"], max_failed=budget["max_failed"],
        cpu=float(res["cpu"]), gpu=float(res["gpu"]), raw=raw,
        constraints=v.constraints(raw.get("constraints")), warm_start=v.warm_start(raw.get("warm_start"), study_name),
    )


def searched_choices(raw: dict, name: str, table: Table, section: dict[str, Any]) -> tuple[str, ...]:
    """The entries a section's selector may take: its searched choices (the known ones; `search`
    reports the others), else its fixed value. `loss:` searches loss.name, `optimizer:` train.optimizer."""
    body = (raw.get("search") or {}).get(name if table.selector == "name" else table.selector)
    choices = body.get("choices") if isinstance(body, dict) else None
    known = [c for c in choices if c in catalog.names(table.kind)] if isinstance(choices, list) else []
    return tuple(known) or (section[table.selector],)


def resolve_scheduler(v: "Validator", scheduler: dict[str, Any], epochs: int) -> dict[str, Any]:
    opts = catalog.options(catalog.SCHEDULER, scheduler["name"])
    out = {**{k: o.default for k, o in opts.items()}, **scheduler}
    if "grace_epochs" in opts and not 1 <= out["grace_epochs"] < epochs:
        v.fail("scheduler.grace_epochs", out["grace_epochs"], f"must be in 1 .. train.epochs - 1 ({epochs - 1})")
    return out


def validate_config(cfg: Any, file: str, where: str) -> dict[str, Any]:
    """An exported trial config (what `hpo train` re-runs) checked by the study file's rules;
    `where` prefixes every field, e.g. `configs[0]`. Returns it with every default filled in."""
    v = Validator(file, prefix=where + ".")
    if not isinstance(cfg, dict):
        v.fail("", cfg, "must be a mapping of sections (a trial config written by `hpo export`)")
    v.known_keys(cfg, (*SECTIONS, "minority", "resources"), "")
    out = {name: v.table(name, table, cfg.get(name)) for name, table in SECTIONS.items()}
    for name, table in SECTIONS.items():
        if table.selector:
            v.entry_options(name, table, out[name], (out[name][table.selector],))
    out["minority"] = list(v.minority(cfg.get("minority")) or []) or None
    out["resources"] = v.table("resources", RESOURCES, cfg.get("resources"))
    return resolve_entries(out)


def number_hint(value: Any) -> str:
    """Why a number came out as text: YAML 1.1 (PyYAML) reads `1e-3` as a string, since its
    floats need a dot; also quoted numbers and the words yes / no / on / off for booleans."""
    if not isinstance(value, str):
        return ""
    m = re.fullmatch(r"\s*([+-]?[0-9]+)([eE][+-]?[0-9]+)\s*", value)
    if m:
        return f"YAML reads {value} as text, not a number (its floats need a dot): write {m[1]}.0{m[2]}"
    try:
        float(value)
    except ValueError:
        return ""
    return f"write the number without quotes: {value.strip()}"


class Validator:
    """Holds the file name (and a field prefix) so every check can report them."""

    def __init__(self, file: str, prefix: str = "") -> None:
        self.file, self.prefix = file, prefix

    def fail(self, fld: str, value: Any, problem: str, fix: str = "") -> None:
        raise SpecError(self.file, (self.prefix + fld).rstrip("."), value, problem, fix)

    def known_keys(self, d: Any, known: Sequence[str], where: str) -> None:
        if not isinstance(d, dict):
            self.fail(where or "<top level>", d, "must be a mapping")
        for k in d:
            if k not in known:
                self.fail(f"{where}.{k}" if where else str(k), d[k], f"unknown field {shown(k)}",
                          f"known fields{' of ' + where if where else ''}: {', '.join(known)}")

    def check(self, fld: str, value: Any, option: Option) -> Any:
        if value is None and option.default is None:  # "not set" where that is the default
            return None
        problem = option.problem(value)
        if problem:
            self.fail(fld, value, problem, number_hint(value) if option.type in ("number", "int") else
                      "write true or false, without quotes" if option.type == "bool" and isinstance(value, str) else "")
        if option.type in ("path", "file"):  # absolute: Ray moves each trial's working directory
            path = Path(value).expanduser().resolve()
            if option.type == "file" and not path.is_file():
                self.fail(fld, value, f"no such file ({path})", "give the path of an existing local file")
            return str(path)
        return value

    def table(self, where: str, t: Table, d: Any) -> dict[str, Any]:
        """The fields of `t` checked and defaulted. Keys that may be the selected entry's options
        are kept for `entry_options`, which knows which entries may be chosen."""
        d = {} if d is None else d
        if not isinstance(d, dict):
            self.fail(where, d, "must be a mapping")
        out = t.defaults()
        for k, value in d.items():
            f = t.fields.get(k)
            if isinstance(f, Table):
                out[k] = self.table(f"{where}.{k}", f, value)
            elif f is not None:
                out[k] = self.check(f"{where}.{k}", value, f)
            elif k == t.params_in or (t.selector and not t.params_in):
                out[k] = dict(value) if isinstance(value, dict) else value  # resolved paths stay off `raw`
            else:
                known = [*t.fields, *([t.params_in] if t.params_in else [])]
                self.fail(f"{where}.{k}", value, f"unknown field {shown(k)}", f"known fields of {where}: {', '.join(known)}")
        if t.selector and out[t.selector] not in catalog.names(t.kind):
            self.fail(f"{where}.{t.selector}", out[t.selector], unknown_name(t.kind, out[t.selector],
                                                                              catalog.names(t.kind)))
        return out

    def entry_options(self, where: str, t: Table, sec: dict[str, Any], names: Sequence[str]) -> None:
        """The options given beside a selector must belong to one of the entries it may name."""
        given = sec.get(t.params_in) if t.params_in else {k: v for k, v in sec.items() if k not in t.fields}
        at = f"{where}.{t.params_in}" if t.params_in else where
        if not isinstance(given, dict):
            self.fail(at, given, "must be a mapping")
        declared = {n: catalog.options(t.kind, n) for n in names}
        allowed = sorted({k for opts in declared.values() for k in opts})
        for k, value in given.items():
            if k not in allowed:
                listed = sorted({*allowed, *(f for f in t.fields if f != t.selector and not t.params_in)})
                self.fail(f"{at}.{k}", value, f"no {t.kind} of {list(names)} takes parameter {shown(k)}",
                          f"their parameters: {', '.join(listed) or '(none)'}")
            for opts in declared.values():
                if k in opts:
                    given[k] = self.check(f"{at}.{k}", value, opts[k])
        if len(names) == 1:
            for k, o in declared[names[0]].items():
                if o.required and k not in given:
                    self.fail(f"{at}.{k}", None, f"{t.kind} {names[0]!r} needs {k}",
                              f"add `{k}: ...` to {at}")

    def minority(self, minority: Any) -> tuple[int | str, ...] | None:
        if minority is not None and (not isinstance(minority, list) or not minority):
            self.fail("minority", minority, "must be a non-empty list of class indices or names",
                      "e.g. `minority: [7, 8, 9]`, or leave it out for classes below the mean count")
        return tuple(minority) if minority else None

    def _field_for(self, name: str, sections: Mapping[str, Mapping[str, Any]]) -> tuple[str, Option, str | None]:
        """Where a searched parameter lands in the trial config (section, sub-mapping), and how its
        values are checked."""
        for sec in SEARCHABLE:
            t = SECTIONS[sec]
            if name == sec and t.selector:  # `loss:` searches the loss's name
                return sec, t.fields[t.selector], None
            if isinstance(t.fields.get(name), Option):
                return sec, t.fields[name], None
            for sub, f in t.fields.items():  # `magnitude:` searches train.augment.magnitude
                if isinstance(f, Table) and isinstance(f.fields.get(name), Option):
                    return sec, f.fields[name], sub
            for entry in catalog.names(t.kind):
                opts = catalog.options(t.kind, entry)
                if name in opts:
                    return sec, opts[name], None
        searchable = ["loss", *(k for s in SEARCHABLE for k, f in SECTIONS[s].fields.items() if isinstance(f, Option)),
                      *(k for s in SEARCHABLE for f in SECTIONS[s].fields.values() if isinstance(f, Table)
                        for k in f.fields),
                      "model", "schedule",
                      *(k for s in SEARCHABLE for e in catalog.names(SECTIONS[s].kind)
                        for k in catalog.options(SECTIONS[s].kind, e))]
        searchable = list(dict.fromkeys(searchable))  # first mention wins, in section order
        self.fail(f"search.{name}", name, f"unknown search parameter {shown(name)}",
                  f"searchable parameters: {', '.join(searchable)}")
        raise AssertionError  # unreachable

    def search(self, d: Any, sections: Mapping[str, Mapping[str, Any]]) -> tuple[Param, ...]:
        if not isinstance(d, dict):
            self.fail("search", d, "must be a mapping of parameter name -> range or choices")
        params: list[Param] = []
        for name, body in d.items():
            where = f"search.{name}"
            sec, opt, sub = self._field_for(name, sections)
            self.known_keys(body, PARAM_KEYS, where)
            p = dataclasses.replace(self.param(name, sec, opt, body, where), sub=sub)
            for alt in p.when:
                for other, _ in alt:
                    if other not in {q.name for q in params}:
                        self.fail(f"{where}.when", other, "must name a search parameter listed above this one")
            params.append(p)
        self._entry_params_exist(params, sections)
        return tuple(params)

    def _when(self, body: dict, where: str) -> tuple:
        when = body.get("when") or []
        alternatives = when if isinstance(when, list) else [when]  # a list means "any of these"
        for alt in alternatives:
            if not isinstance(alt, dict) or not alt:
                self.fail(f"{where}.when", when, "must be {param: [values]} or a list of such mappings",
                          "e.g. `when: {loss: [ldam]}`")
        return tuple(tuple((k, tuple(v if isinstance(v, list) else [v])) for k, v in alt.items())
                     for alt in alternatives)

    def param(self, name: str, sec: str, opt: Option, body: dict, where: str) -> Param:
        kind = body.get("type") or ("categorical" if "choices" in body else
                                    "int" if isinstance(body.get("low"), int) and isinstance(body.get("high"), int)
                                    and opt.type == "int" else "float")
        self.check(f"{where}.type", kind, Option("str", choices=PARAM_TYPES))
        when = self._when(body, where)
        if kind == "categorical":
            choices = body.get("choices")
            if not isinstance(choices, list) or not choices:
                self.fail(f"{where}.choices", choices, "must be a non-empty list")
            for c in choices:
                self.check(f"{where}.choices", c, opt)
                if sec == name and c not in catalog.names(SECTIONS[sec].kind):
                    self.fail(f"{where}.choices", c, unknown_name(SECTIONS[sec].kind, c, catalog.names(SECTIONS[sec].kind)))
            return Param(name, sec, kind, choices=tuple(choices), when=when)
        bound = Option("int" if kind == "int" else "number")  # finite numbers only (Option.problem)
        for k in ("low", "high"):
            if k not in body:
                self.fail(f"{where}.{k}", None, f"a {kind} parameter needs {k}", f"add `{k}: ...` to {where}")
            self.check(f"{where}.{k}", body[k], bound)
        flags = {k: self.check(f"{where}.{k}", body.get(k, False), Option("bool")) for k in ("log", "complement")}
        low, high, log, complement = body["low"], body["high"], flags["log"], flags["complement"]
        if low >= high:
            self.fail(f"{where}.high", high, f"must be greater than low ({low})")
        if log and low <= 0:
            self.fail(f"{where}.low", low, "must be > 0 on a log scale", "raise low or set log: false")
        if complement and kind != "float":
            self.fail(f"{where}.complement", True, "only float parameters can be complemented")
        self._bounds_fit(name, opt, body, complement, where)
        step = body.get("step")
        if step is not None:
            self.check(f"{where}.step", step, Option("int", low=1) if kind == "int" else Option("number", low=0,
                                                                                                  low_open=True))
        if step is not None and log:
            self.fail(f"{where}.step", step, "step and log cannot be combined (Optuna's rule)")
        return Param(name, sec, kind, low=low, high=high, log=log, step=step, complement=complement, when=when)

    def _bounds_fit(self, name: str, opt: Option, body: dict, complement: bool, where: str) -> None:
        """low and high must be values the searched setting accepts (1 - them, with complement)."""
        for k in ("low", "high"):
            value = 1.0 - body[k] if complement else body[k]
            problem = opt.problem(value)
            if problem and complement:
                self.fail(f"{where}.{k}", body[k], f"complement: {name} = 1 - {body[k]} = {value:g} {problem}",
                          f"with complement: true, low and high bound 1 - {name}")
            if problem:
                self.fail(f"{where}.{k}", body[k], problem)

    def _entry_params_exist(self, params: list[Param], sections: Mapping[str, Mapping[str, Any]]) -> None:
        """A searched option must belong to an entry its section can choose (e.g. C needs ldam)."""
        for p in params:
            t = SECTIONS[p.section]
            if p.name in t.fields or p.name == p.section or p.sub:
                continue
            choices = next((q.choices for q in params if q.section == p.section and q.field == t.selector),
                           (sections[p.section][t.selector],))
            usable = sorted({k for n in choices for k in catalog.options(t.kind, n)} | set(t.fields))
            if p.name not in usable:
                self.fail(f"search.{p.name}", p.name, f"no {t.kind} in {list(choices)} takes {shown(p.name)}",
                          f"their parameters: {', '.join(usable)}")

    def objectives(self, d: Any) -> tuple[Objective, ...]:
        if d is None:
            d = [{"name": "minority_f1", "direction": "maximize"}, {"name": "macro_acc", "direction": "maximize"}]
        if not isinstance(d, list) or not d:
            self.fail("objectives", d, "must be a non-empty list of {name, direction}")
        out = []
        for i, o in enumerate(d):
            self.known_keys(o, ("name", "direction"), f"objectives[{i}]")
            name = o.get("name")
            if name not in METRICS:
                self.fail(f"objectives[{i}].name", name, unknown_name("metric", name, METRICS))
            direction = o.get("direction", "maximize")
            self.check(f"objectives[{i}].direction", direction, Option("str", choices=("maximize", "minimize")))
            out.append(Objective(name, direction))
        if len({o.name for o in out}) != len(out):
            self.fail("objectives", [o.name for o in out], "an objective is listed twice")
        return tuple(out)


    def constraints(self, d: Any) -> tuple[Constraint, ...]:
        """`constraints:` a list of requirements on recorded metrics (hpo.study.constraints)."""
        if d is None:
            return ()
        if not isinstance(d, list):
            self.fail("constraints", d, "must be a list of {metric, min} or {metric, max}",
                      "e.g. `constraints: [{metric: recall, class: bad, min: 0.9}]`")
        out = [self.constraint(c, f"constraints[{i}]") for i, c in enumerate(d)]
        seen = [str(c) for c in out]
        for i, text in enumerate(seen):
            if text in seen[:i]:
                self.fail(f"constraints[{i}]", d[i], f"repeats constraints[{seen.index(text)}]", "give it once")
        return tuple(out)

    def constraint(self, c: Any, where: str) -> Constraint:
        self.known_keys(c, CONSTRAINT_KEYS, where)
        metric = c.get("metric")
        if metric not in CONSTRAINT_METRICS:
            self.fail(f"{where}.metric", metric, unknown_name("metric", metric, CONSTRAINT_METRICS),
                      f"{', '.join(PER_CLASS_METRICS)} also take `class:` (a class name or index)")
        cls = c.get("class")
        if metric in PER_CLASS_METRICS and (isinstance(cls, bool) or not isinstance(cls, (str, int))):
            self.fail(f"{where}.class", cls, f"{metric} is measured per class: name the class",
                      "add e.g. `class: bad` (a class name, or its index)")
        if metric not in PER_CLASS_METRICS and cls is not None:
            self.fail(f"{where}.class", cls, f"{metric} is not a per-class metric",
                      f"per-class metrics: {', '.join(PER_CLASS_METRICS)}; or drop `class:`")
        bounds = [k for k in ("min", "max") if k in c]
        if len(bounds) != 1:
            self.fail(where, c, "needs exactly one of min or max",
                      "e.g. `min: 0.9`; bound a metric from both sides with two constraints")
        key = bounds[0]
        kind = Option("number", low=0) if metric in CONSTRAINT_COSTS else Option("number", low=0, high=1)
        bound = float(self.check(f"{where}.{key}", c[key], kind))
        return Constraint(metric, low=bound if key == "min" else None, high=bound if key == "max" else None, cls=cls)

    def warm_start(self, d: Any, study_name: str) -> WarmStart | None:
        """`warm_start: {study: NAME, top: K, storage: URL}` (hpo.study.warm_start)."""
        if d is None:
            return None
        got = self.table("warm_start", WARM_START, d)
        name = got.get("study")
        if not isinstance(name, str) or not STUDY_NAME.fullmatch(name):
            self.fail("warm_start.study", name, "needs the name of an earlier study",
                      f"a study name is {STUDY_NAME_RULE}")
        if name == study_name:
            self.fail("warm_start.study", name, "is this study itself", "name an earlier, other study")
        return WarmStart(name, int(got["top"]), got["storage"])
