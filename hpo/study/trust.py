"""Trust signals: what to doubt in a study's front before re-training from it.

- Bound edges: a searched number most of whose Pareto-best trials (more than half of those that
  sampled it) sit within `EDGE` (5 %) of a bound of its range, measured on the log scale where the
  parameter is log, is named with that bound: the best value may lie outside the range. Categorical
  parameters are not checked. The ranges are read from the distributions Optuna stores with each
  trial, so no study file is needed. A bound past which the catalog accepts no value (gamma's 0,
  say) is named as such: the range cannot widen there. A complemented parameter (`complement: true`,
  1 - value sampled) is named with the bounds its study file gives, which bound 1 - value.
- Chance verdict: when no finished trial beats a guess. The noise rule: two standard errors of a
  binomial proportion on the validation split. Any predictor that ignores its input scores a macro
  accuracy of 1/K in expectation; the standard error of a macro accuracy measured on n_c validation
  images per class is sqrt(sum_c p (1 - p) / n_c) / K with p = 1/K (sqrt(p (1 - p) / n) on a
  balanced split of n images). A minority class c guessed uniformly scores F1 = 2 pi_c p / (pi_c + p)
  (precision its share pi_c of the validation split, recall p); the guess's minority F1 is the mean
  over the minority classes, its standard error sqrt(f (1 - f) / n_min) on the n_min validation
  images of those classes. A trial is at chance when its macro accuracy is at most 1/K plus two
  standard errors and its minority F1 at most the guess's plus two standard errors.
- Identical points: front trials with the same objective values are one point; the first trial
  (lowest number) is kept and the others are listed as its duplicates.
- Support: how many finished trials the front was chosen from, how many are Pareto-best.
- Re-train spread: `hpo train --config EXPORT` records the test objectives' mean and standard
  deviation over its seeds in EXPORT_STEM.retrain.json beside the export file; a later `hpo export`
  to the same path shows them for the trials still on the front.

Pure functions over an optuna.Study and its trials (optuna and pandas only).
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Hashable, Sequence, TypeVar

import optuna
from optuna.distributions import CategoricalDistribution

from hpo.study import optuna_seam, pareto, settings
from hpo.study import storage as st

EDGE = 0.05  # "at a bound": within this fraction of the range's width
NOISE_SE = 2.0  # "within noise": within this many standard errors
COMPLEMENT = "one_minus_"  # the prefix of a complemented parameter's Optuna name (hpo.spec.Param.optuna_name)
RETRAIN_SUFFIX = ".retrain.json"
T = TypeVar("T")


# --- identical points ---------------------------------------------------------------------------

def collapse(items: Sequence[T], key: Callable[[T], Hashable],
             number: Callable[[T], int]) -> tuple[list[T], dict[int, list[int]]]:
    """Items with equal keys are one: the first of each is kept, in order; returns the kept items
    and {kept number: [numbers of its duplicates]}."""
    first: dict[Hashable, T] = {}
    duplicates: dict[int, list[int]] = {}
    for item in items:
        k = key(item)
        if k in first:
            duplicates.setdefault(number(first[k]), []).append(number(item))
        else:
            first[k] = item
    return list(first.values()), duplicates


def collapse_rows(rows: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[int, list[int]]]:
    """`collapse` for export rows ({"trial", "values", ...}), best first as `hpo.study.export.rows` sorts
    them: identical values are sorted by trial number, so the kept trial is the lowest-numbered."""
    return collapse(rows, lambda r: tuple(r["values"].values()), lambda r: r["trial"])


def collapsed_line(duplicates: dict[int, list[int]]) -> str:
    """"N identical points collapsed: ..." naming which trials each kept trial stands for."""
    n = sum(len(d) for d in duplicates.values())
    shown = "; ".join(f"{', '.join(map(str, d))} as {k}" for k, d in list(duplicates.items())[:10])
    more = "; ..." if len(duplicates) > 10 else ""
    return f"{n} identical point{'s' if n != 1 else ''} collapsed (trials with the same objective values: {shown}{more})"


# --- bound edges --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Edge:
    """Pareto-best trials at one bound of a searched parameter, in the study file's terms."""

    param: str
    side: str  # "lower" | "upper"
    bound: float
    count: int
    of: int
    widenable: bool = True

    def line(self) -> str:
        head = f"{self.param}: {self.count} of {self.of} Pareto-best trials at the {self.side} bound {self.bound:g} " \
               f"(within {EDGE:.0%})"
        if self.widenable:
            return f"{head}: widen the range"
        return f"{head}: the range cannot widen past {self.bound:g} (the catalog's check of {self.param.split()[0]})"


def _position(value: float, dist: Any) -> float:
    """Where `value` sits in the distribution's range: 0 at low, 1 at high (log scale if log)."""
    lo, hi, v = float(dist.low), float(dist.high), float(value)
    if dist.log:
        lo, hi, v = math.log(lo), math.log(hi), math.log(v)
    return (v - lo) / (hi - lo)


def _beyond(dist: Any, side: str) -> float:
    """A value just past the bound on `side` (Optuna's terms): a millionth of the range's width,
    one for an integer. Any value past it refused by the catalog means the range cannot widen."""
    lo, hi = float(dist.low), float(dist.high)
    up = side == "upper"
    if dist.log:
        step = (hi / lo) ** 1e-6
        value = hi * step if up else lo / step
    else:
        value = hi + 1e-6 * (hi - lo) if up else lo - 1e-6 * (hi - lo)
    if isinstance(dist, optuna.distributions.IntDistribution):
        bound = hi if up else lo
        value = int(max(value, bound + 1) if up else min(value, bound - 1))
    return value


def _option(name: str) -> Any:
    """The catalog's declaration of searched parameter `name` (as hpo.spec.parse resolves it), or None."""
    from hpo.spec import catalog
    from hpo.spec.options import Option, Table
    from hpo.spec.schema import SEARCHABLE, SECTIONS

    for sec in SEARCHABLE:
        t = SECTIONS[sec]
        if isinstance(t.fields.get(name), Option):
            return t.fields[name]
        for f in t.fields.values():
            if isinstance(f, Table) and isinstance(f.fields.get(name), Option):
                return f.fields[name]
        for entry in catalog.names(t.kind) if t.kind else ():
            if name in catalog.options(t.kind, entry):
                return catalog.options(t.kind, entry)[name]
    return None


def _edge(optuna_name: str, dist: Any, side: str, count: int, of: int) -> Edge:
    """The edge as the study file states it: a complemented parameter's low and high bound 1 - it."""
    complement = optuna_name.startswith(COMPLEMENT)
    name = optuna_name[len(COMPLEMENT):] if complement else optuna_name
    past = _beyond(dist, side)
    option = _option(name)
    widenable = option is None or option.problem(1.0 - past if complement else past) is None
    label = f"{name} (searched as 1 - {name})" if complement else name
    return Edge(label, side, float(dist.high if side == "upper" else dist.low), count, of, widenable)


def edges(trials: Sequence[optuna.trial.FrozenTrial]) -> list[Edge]:
    """Searched numbers for which most of `trials` (the Pareto-best ones) that sampled them sit within
    EDGE of one bound of the range they were sampled from (a front's one end at a bound is a trade-off's
    end; most of it there says the range cut the search off)."""
    seen: dict[str, Any] = {}
    for t in trials:
        for name, dist in t.distributions.items():
            if not isinstance(dist, CategoricalDistribution) and dist.high > dist.low:
                seen.setdefault(name, dist)  # hpo refuses a resumed study whose ranges changed kind
    out = []
    for name, dist in seen.items():
        pos = [_position(t.params[name], t.distributions[name]) for t in trials if name in t.params]
        for side, near in (("lower", [p <= EDGE for p in pos]), ("upper", [p >= 1 - EDGE for p in pos])):
            if 2 * sum(near) > len(pos):
                out.append(_edge(name, dist, side, sum(near), len(pos)))
    return out


# --- chance verdict -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Chance:
    """What guessing scores on this validation split, and the noise around it."""

    k: int
    n_val: int
    macro: float
    macro_se: float
    f1: float | None  # a uniform guess's minority F1 (None: no minority class in the validation split)
    f1_se: float

    @property
    def macro_limit(self) -> float:
        return self.macro + NOISE_SE * self.macro_se

    @property
    def f1_limit(self) -> float | None:
        return None if self.f1 is None else self.f1 + NOISE_SE * self.f1_se


def chance(supports: Sequence[int], minority: Sequence[int]) -> Chance:
    """Guessing's scores on a validation split of `supports` images per class (see the module's noise rule)."""
    present = [n for n in supports if n > 0]  # a class absent from validation has no recall (metrics.evaluate)
    k, n = len(supports), sum(supports)
    p = 1.0 / k
    macro_se = math.sqrt(sum(p * (1 - p) / c for c in present)) / len(present) if present else 0.0
    shares = [supports[c] / n for c in minority if 0 <= c < k and supports[c] > 0]
    if not shares:
        return Chance(k, n, p, macro_se, None, 0.0)
    f1 = sum(2 * s * p / (s + p) for s in shares) / len(shares)
    n_min = sum(supports[c] for c in minority if 0 <= c < k)
    return Chance(k, n, p, macro_se, f1, math.sqrt(f1 * (1 - f1) / n_min))


def _best(study: optuna.Study, full: Sequence[optuna_seam.Row], metric: str) -> float | None:
    """The best value of `metric` over the full trials: from their values when it is an objective,
    else from the metric each trial stores as a user attribute."""
    names = st.objective_names(study)
    if metric in names:
        got = [r.values[names.index(metric)] for r in full]
    else:
        got = [a.get(metric) for a in optuna_seam.user_attrs(study, full, keys=[metric]).values()]
    got = [float(v) for v in got if isinstance(v, (int, float)) and math.isfinite(v)]
    return max(got) if got else None


def _split(study: optuna.Study, row: optuna_seam.Row) -> tuple[list[int], list[int], dict[str, Any]] | None:
    """Validation images per class, the minority classes and the config of a trial (`row`)."""
    counts = study.user_attrs.get("class_counts")
    if not isinstance(counts, list) or len(counts) < 2:
        return None
    attrs = optuna_seam.user_attrs(study, [row], keys=["per_class", "minority", st.ATTR_CONFIG]).get(row.number, {})
    per_class = attrs.get("per_class")
    if isinstance(per_class, dict) and len(per_class) == len(counts):
        supports = [int(v.get("support", 0)) for v in per_class.values()]
    else:
        n_val = (study.user_attrs.get("split_sizes") or {}).get("val")
        if not n_val:
            return None
        supports = [n_val // len(counts)] * len(counts)
    minority = attrs.get("minority")  # the class indices metrics.evaluate resolved
    if not isinstance(minority, list) or not all(isinstance(c, int) for c in minority):
        minority = [i for i, c in enumerate(counts) if c < sum(counts) / len(counts)]  # evaluate's default
    return supports, minority, attrs.get(st.ATTR_CONFIG) or {}


def verdict(study: optuna.Study, full: Sequence[optuna_seam.Row] | None = None) -> list[str]:
    """Lines saying that no finished trial beats chance, with the likely causes; [] when one does,
    or when the study says too little to judge (no finished trial, no class counts)."""
    full = settings.full_rows(study) if full is None else full
    split = _split(study, full[0]) if full else None
    macro = _best(study, full, "macro_acc") if split else None
    if split is None or macro is None:
        return []
    supports, minority, config = split
    guess = chance(supports, minority)
    f1 = _best(study, full, "minority_f1")
    if macro > guess.macro_limit or (f1 is not None and guess.f1_limit is not None and f1 > guess.f1_limit):
        return []
    noise = f"±{NOISE_SE * guess.macro_se:.3f} on {guess.n_val} validation images"
    head = (f"No trial beats chance: the best macro accuracy of {len(full)} finished trials, {macro:.3f}, is within "
            f"noise of 1/{guess.k} = {guess.macro:.3f} ({noise})")
    if f1 is not None and guess.f1 is not None:
        head += f", and the best minority F1, {f1:.3f}, within noise of a guess's {guess.f1:.3f}"
    return [head + ".", _causes(study, full, config)]


def _causes(study: optuna.Study, full: Sequence[optuna_seam.Row], config: dict[str, Any]) -> str:
    _, dists = optuna_seam.params(study, full[:1]).get(full[0].number, ({}, {}))
    lr = dists.get("lr")
    train, model = config.get("train") or {}, (config.get("model") or {}).get("name", "?")
    lr_text = f"lr searched over {lr.low:g}..{lr.high:g}" if hasattr(lr, "low") else f"lr {train.get('lr', '?')}"
    return (f"Likely causes: the learning-rate range ({lr_text}: too high diverges, too low never leaves the start), "
            f"too few epochs (train.epochs = {train.get('epochs', '?')}), the model ({model}: too large for the "
            "images, or untrained where pretrained weights were meant), or the data (labels, class folders, too few "
            "images per class; `hpo check --study NAME` shows what the trials train on).")


# --- everything together ------------------------------------------------------------------------

@dataclass(frozen=True)
class Signals:
    """A study's trust signals, read once."""

    finished: int
    pareto_best: int
    duplicates: dict[int, list[int]] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    verdict: list[str] = field(default_factory=list)

    def support_line(self) -> str:
        return f"the front: {self.pareto_best} Pareto-best of {self.finished} finished trials"

    def warnings(self) -> list[str]:
        """Bound edges and the chance verdict: what the dashboard note carries."""
        return [e.line() for e in self.edges] + self.verdict

    def lines(self, collapsed: bool = True) -> list[str]:
        """Everything (but the collapsed points, unless `collapsed`), for the status and the report;
        [] before any trial finished."""
        if not self.finished:
            return []
        shown = [collapsed_line(self.duplicates)] if collapsed and self.duplicates else []
        return [self.support_line()] + shown + self.warnings()


def signals(study: optuna.Study, full: Sequence[optuna_seam.Row] | None = None,
            include_infeasible: bool = False) -> Signals:
    """The study's trust signals, over the front the caller shows (feasible trials only unless
    `include_infeasible`); `full`: its `settings.full_rows`, when the caller has them."""
    full = settings.full_rows(study) if full is None else full
    best = pareto.front_rows(study, full, include_infeasible)
    kept, duplicates = collapse(best, lambda r: r.values, lambda r: r.number)
    return Signals(len(full), len(best), duplicates, edges(optuna_seam.frozen(study, kept, attrs=False)),
                   verdict(study, full))


# --- re-train spread ----------------------------------------------------------------------------

def retrain_path(export: str | Path) -> Path:
    """Where `hpo train` records the re-training of an export's configs: beside it."""
    export = Path(export)
    return export.with_name(export.stem + RETRAIN_SUFFIX)


def _export_origin(export: Path, index: int) -> tuple[str, int] | None:
    """(study, trial number) of config `index` of an hpo export, or None (an ensemble, a hand-written file)."""
    import pandas as pd
    import yaml

    if export.suffix.lower() == ".csv":
        table = pd.read_csv(export)
        if not {"study", "trial"} <= set(table.columns) or index >= len(table):
            return None
        return str(table["study"][index]), int(table["trial"][index])
    doc = json.loads(export.read_text()) if export.suffix.lower() == ".json" else yaml.safe_load(export.read_text())
    rows = doc.get("configs") if isinstance(doc, dict) else None
    row = rows[index] if isinstance(rows, list) and index < len(rows) else None
    if not isinstance(row, dict) or not isinstance(row.get("trial"), int) or doc.get("post_hoc"):
        return None  # a post-hoc export holds one trial at several tau: a trial number does not name a config
    return str(doc.get("study")), row["trial"]


def spread(results: Any) -> dict[str, Any]:
    """{seeds, test: {metric: {mean, std}}} of `hpo.train.retrain.retrain`'s per-seed table (std None: one seed)."""
    cols = [c for c in results.columns if c.startswith("test_") and "[" not in c]
    stats = {c[len("test_"):]: {"mean": float(results[c].mean()),
                                "std": None if len(results) < 2 else float(results[c].std())} for c in cols}
    return {"seeds": int(len(results)), "test": stats}


def record_retrain(export: str | Path, index: int, results: Any) -> Path | None:
    """Record the re-training of config `index` of an export beside it (atomically; a trial re-trained
    again replaces its record); None when the config does not name a study's trial."""
    export = Path(export)
    origin = _export_origin(export, index)
    if origin is None:
        return None
    study, trial = origin
    path = retrain_path(export)
    record = json.loads(path.read_text()) if path.is_file() else {}
    if not isinstance(record, dict) or record.get("study") != study or not isinstance(record.get("trials"), dict):
        record = {"study": study, "trials": {}}
    record["trials"][str(trial)] = spread(results)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump(record, f, indent=2)
    os.replace(tmp, path)
    return path


def retrained(export: str | Path, study: str) -> dict[int, dict[str, Any]]:
    """{trial number: spread} recorded beside an export of `study` ({} when none is)."""
    path = retrain_path(export)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):  # none yet, or a half-edited file: nothing to show
        return {}
    if not isinstance(record, dict) or record.get("study") != study or not isinstance(record.get("trials"), dict):
        return {}
    return {int(k): v for k, v in record["trials"].items() if str(k).isdigit() and isinstance(v, dict)}


def spread_line(trial: int, got: dict[str, Any], metrics: Sequence[str]) -> str:
    parts = [f"{m} {s['mean']:.4f}" + (f" ± {s['std']:.4f}" if s.get("std") is not None else "")
             for m, s in got.get("test", {}).items() if m in metrics]
    seeds = got.get("seeds", "?")
    return f"trial {trial} re-trained over {seeds} seed{'s' if seeds != 1 else ''} (test split): " + ", ".join(parts) + \
        (" (one seed: no spread yet; run `hpo train --seeds N`)" if seeds == 1 else "")


# --- the export document ------------------------------------------------------------------------

def annotate(doc: dict[str, Any], study: optuna.Study, out: str | Path | None = None) -> dict[str, Any]:
    """The export document with its front's identical points collapsed (the kept row lists the others
    in `identical_trials`), each row's re-train spread (`retrain`) when one is recorded beside `out`,
    and a `trust` block: support, collapsed points, warnings."""
    rows, duplicates = collapse_rows(doc["configs"])
    got = retrained(out, study.study_name) if out is not None else {}
    for r in rows:
        if r["trial"] in duplicates:
            r["identical_trials"] = duplicates[r["trial"]]
        if r["trial"] in got:
            r["retrain"] = got[r["trial"]]
    found = signals(study)
    doc["configs"] = rows
    doc["trust"] = {"finished_trials": found.finished, "pareto_best": found.pareto_best,
                    "identical_collapsed": sum(len(d) for d in duplicates.values()),
                    "warnings": found.warnings()}
    return doc


def export_lines(doc: dict[str, Any]) -> list[str]:
    """What `hpo export` prints below its "wrote" line, from the document it wrote."""
    trust = doc.get("trust") or {}
    if not trust:
        return []
    lines = [f"from {trust['finished_trials']} finished trials: {trust['pareto_best']} Pareto-best" +
             (f", {trust['identical_collapsed']} identical point{'s' if trust['identical_collapsed'] != 1 else ''} "
              "collapsed" if trust["identical_collapsed"] else "")]
    metrics = [o["name"] for o in doc.get("objectives") or []] or None
    for r in doc["configs"]:
        if "retrain" in r:
            lines.append(spread_line(r["trial"], r["retrain"], metrics or list(r["retrain"].get("test", {}))))
    return lines + list(trust.get("warnings", []))
