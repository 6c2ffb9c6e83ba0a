"""The one module that uses Optuna's private API and its SQL schema (checked on Optuna 5.0.0,
SQLAlchemy 2.1.9: requirements.lock). tests/test_layout.py fails on a private attribute of an
Optuna object used anywhere else, so an Optuna upgrade has one file to check, and
tests/study/test_optuna_seam.py to run against it.

Private API: a study's storage (`storage_of`, under Optuna's cache: `rdb`), a trial's row id
(`trial_id`), and an `optuna.Study` whose `get_trials` answers with given trials
(`study_of_trials`: what Optuna's importance evaluators read of a study).

Reads: `study.get_trials()` builds each trial whole: its params, values, user and system
attributes and intermediate values. An hpo trial carries its config, per-class metrics and
confusion matrix as user attributes, so on a 10,000-trial study that is seconds of SQL and JSON,
for a Pareto front that needs two numbers a trial. The readers here fetch what is asked for:
states and values of every trial (`rows`), attributes and params only for the trials named
(`user_attrs`, `params`, `frozen`), counts by state in SQL (`counts_by_state`), and the trials a
sampler reads (`sampler_trials`, `trial`: hpo.study.sampler_storage).

Writes go through Optuna's API but for three, each with a test that it writes what Optuna's
calls write: several user attributes of a running trial in one transaction (`set_user_attrs`:
the per-trial launch overhead goal of docs/benchmarks.md), deleting study user attributes
(`delete_study_user_attrs`: Optuna has no call for it, and a study relaunched many times would
carry every launcher's record), and finished trials added in bulk (`add_finished_trials`: the
benches' 10,000-trial studies, which Optuna's `add_trials` writes in minutes).

Tables and columns are those of Optuna's schema (`SCHEMA`); the encodings are Optuna's own: a
state or a value type by its enum name, a parameter as its internal float plus its distribution
as JSON (decoded with Optuna's public `json_to_distribution`), an attribute as JSON. A study in
any other storage (in memory, journal) is read and written through Optuna's API.
"""
from __future__ import annotations

import copy
import datetime
import functools
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

import optuna
import sqlalchemy as sa
from optuna.trial import FrozenTrial, TrialState

SCHEMA: dict[str, tuple[str, ...]] = {
    "studies": ("study_id", "study_name"),
    "trials": ("trial_id", "number", "study_id", "state", "datetime_start", "datetime_complete"),
    "trial_values": ("trial_value_id", "trial_id", "objective", "value", "value_type"),
    "trial_params": ("param_id", "trial_id", "param_name", "param_value", "distribution_json"),
    "trial_user_attributes": ("trial_user_attribute_id", "trial_id", "key", "value_json"),
    "study_user_attributes": ("study_user_attribute_id", "study_id", "key", "value_json"),
    "trial_system_attributes": ("trial_system_attribute_id", "trial_id", "key", "value_json"),
    "trial_intermediate_values": ("trial_intermediate_value_id", "trial_id", "step", "intermediate_value",
                                  "intermediate_value_type"),
}
_TYPES = {"datetime_start": sa.DateTime(), "datetime_complete": sa.DateTime()}  # SQLite keeps them as text
_T = {name: sa.table(name, *(sa.column(c, _TYPES.get(c)) for c in cols)) for name, cols in SCHEMA.items()}
CHUNK = 500  # ids per IN (...): SQLite allows 999 bound parameters per statement
_INF = {"INF_POS": float("inf"), "INF_NEG": float("-inf"), "NAN": float("nan")}


@dataclass(frozen=True)
class Row:
    """A trial reduced to what fronts and counts need."""

    number: int
    state: TrialState
    values: tuple[float, ...] | None
    trial_id: int | None = None  # the RDB row's id (None when read through Optuna's API)


def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage a study reads and writes through (Optuna has no public accessor)."""
    return study._storage


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """A trial's row id in its storage, what the storage's own calls take (not its number)."""
    return trial._trial_id


def rdb(study: optuna.Study) -> optuna.storages.RDBStorage | None:
    """The study's RDB storage (under Optuna's cache or hpo's SamplerStorage), or None: then the
    readers use Optuna's API."""
    storage = storage_of(study)
    storage = getattr(storage, "_backend", None) or getattr(storage, "backend", None) or storage
    return storage if isinstance(storage, optuna.storages.RDBStorage) else None


def _in_study(study: optuna.Study) -> sa.ColumnElement[bool]:
    trials, studies = _T["trials"], _T["studies"]
    return trials.c.study_id == sa.select(studies.c.study_id).where(
        studies.c.study_name == study.study_name).scalar_subquery()


def _states(query: sa.Select, states: Iterable[TrialState] | None) -> sa.Select:
    # cast: PostgreSQL keeps the state as an enum type of its own, which no text parameter equals
    state = sa.cast(_T["trials"].c.state, sa.String)
    return query if states is None else query.where(state.in_([s.name for s in states]))


def rows(study: optuna.Study, states: Iterable[TrialState] | None = None) -> list[Row]:
    """Number, state and values of every trial (of these states), in trial-number order."""
    states = None if states is None else tuple(states)
    storage = rdb(study)
    if storage is None:
        return [Row(t.number, t.state, None if t.values is None else tuple(t.values))
                for t in study.get_trials(deepcopy=False, states=states)]
    return _rows(storage, _in_study(study), states)


def heads(storage: optuna.storages.RDBStorage, study_id: int) -> list[Row]:
    """`rows` of study `study_id`, trial ids included: what hpo.study.sampler_storage's window
    needs to pick the few trials it reads whole."""
    return _rows(storage, _T["trials"].c.study_id == study_id, None)


def _rows(storage: optuna.storages.RDBStorage, in_study: sa.ColumnElement[bool],
          states: tuple[TrialState, ...] | None) -> list[Row]:
    trials, values = _T["trials"], _T["trial_values"]
    with storage.engine.connect() as conn:
        head = conn.execute(_states(sa.select(trials.c.trial_id, trials.c.number, trials.c.state)
                                    .where(in_study), states)).all()
        got: dict[int, list[float]] = {}
        for tid, value, kind in conn.execute(_states(
                sa.select(values.c.trial_id, values.c.value, values.c.value_type)
                .join(trials, trials.c.trial_id == values.c.trial_id).where(in_study)
                .order_by(values.c.trial_id, values.c.objective), states)).all():
            got.setdefault(tid, []).append(value if kind == "FINITE" else _INF[kind])
    state_of = {s.name: s for s in TrialState}
    out = [Row(number, state_of[state], tuple(v) if (v := got.get(tid)) else None, tid) for tid, number, state in head]
    return sorted(out, key=lambda r: r.number)


def counts_by_state(study: optuna.Study) -> dict[str, int]:
    """{state name: trials}, counted by the database."""
    storage = rdb(study)
    if storage is None:
        return dict(Counter(t.state.name for t in study.get_trials(deepcopy=False)))
    trials = _T["trials"]
    with storage.engine.connect() as conn:
        return dict(conn.execute(sa.select(trials.c.state, sa.func.count()).where(_in_study(study))
                                 .group_by(trials.c.state)).all())


def running_owners(study: optuna.Study, key: str) -> list[Any]:
    """The user attribute `key` of each RUNNING trial (None where absent), in one query: the
    per-trial budget check's read (hpo.study.coordination.counts)."""
    storage = rdb(study)
    if storage is None:
        return [t.user_attrs.get(key) for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
    trials, attrs = _T["trials"], _T["trial_user_attributes"]
    owner = sa.outerjoin(trials, attrs, sa.and_(attrs.c.trial_id == trials.c.trial_id, attrs.c.key == key))
    query = _states(sa.select(attrs.c.value_json).select_from(owner).where(_in_study(study)), (TrialState.RUNNING,))
    with storage.engine.connect() as conn:
        return [None if v is None else json.loads(v) for v in conn.execute(query).scalars()]


def numbers_with_attr(study: optuna.Study, key: str) -> set[int]:
    """Numbers of the trials (any state) that carry the user attribute `key`."""
    storage = rdb(study)
    if storage is None:
        return {t.number for t in study.get_trials(deepcopy=False) if key in t.user_attrs}
    trials, attrs = _T["trials"], _T["trial_user_attributes"]
    has = sa.exists().where(attrs.c.trial_id == trials.c.trial_id, attrs.c.key == key)  # Optuna's (trial_id, key) index
    with storage.engine.connect() as conn:
        return set(conn.execute(sa.select(trials.c.number).where(_in_study(study), has)).scalars())


def started(study: optuna.Study, of: Sequence[Row]) -> dict[int, Any]:
    """{number: datetime_start} of these trials (naive local time, as Optuna stores it)."""
    storage = rdb(study)
    if storage is None:
        wanted = {r.number for r in of}
        return {t.number: t.datetime_start for t in study.get_trials(deepcopy=False) if t.number in wanted}
    t, ids = _T["trials"], _ids(of)
    out: dict[int, Any] = {}
    with storage.engine.connect() as conn:
        for chunk in _chunks(sorted(ids)):
            for tid, start in conn.execute(sa.select(t.c.trial_id, t.c.datetime_start).where(t.c.trial_id.in_(chunk))):
                out[ids[tid]] = start
    return out


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    for i in range(0, len(ids), CHUNK):
        yield list(ids[i:i + CHUNK])


def _ids(of: Sequence[Row]) -> dict[int, int]:
    """{trial_id: number} of these rows."""
    return {r.trial_id: r.number for r in of if r.trial_id is not None}


def user_attrs(study: optuna.Study, of: Sequence[Row], keys: Sequence[str] | None = None) -> dict[int, dict[str, Any]]:
    """{number: {key: value}} of the user attributes of these trials (only `keys`, if given)."""
    storage = rdb(study)
    if storage is None:
        wanted = {r.number for r in of}
        return {t.number: {k: v for k, v in t.user_attrs.items() if keys is None or k in keys}
                for t in study.get_trials(deepcopy=False) if t.number in wanted}
    attrs, ids = _T["trial_user_attributes"], _ids(of)
    out: dict[int, dict[str, Any]] = {n: {} for n in ids.values()}
    query = sa.select(attrs.c.trial_id, attrs.c.key, attrs.c.value_json)
    if keys is not None:
        query = query.where(attrs.c.key.in_(list(keys)))
    with storage.engine.connect() as conn:
        for where in _id_filters(study, attrs.c.trial_id, sorted(ids)):
            for tid, key, value in conn.execute(query.where(where).order_by(attrs.c.trial_user_attribute_id)):
                if tid in ids:
                    out[ids[tid]][key] = json.loads(value)
    return out


def _id_filters(study: optuna.Study, column: sa.ColumnElement[Any], ids: list[int]) -> list[sa.ColumnElement[bool]]:
    """WHERE clauses selecting rows of these trial ids: IN (...) in chunks for a few, the whole
    study (the caller drops the others) for many: one query instead of dozens."""
    if len(ids) <= 4 * CHUNK:
        return [column.in_(chunk) for chunk in _chunks(ids)]
    trials = _T["trials"]
    return [column.in_(sa.select(trials.c.trial_id).where(_in_study(study)))]


@functools.lru_cache(maxsize=256)
def _distribution(text: str) -> optuna.distributions.BaseDistribution:
    return optuna.distributions.json_to_distribution(text)


def params(study: optuna.Study, of: Sequence[Row]) -> dict[int, tuple[dict[str, Any], dict[str, Any]]]:
    """{number: (params, distributions)} of these trials, params in the order Optuna gives them."""
    storage = rdb(study)
    if storage is None:
        wanted = {r.number for r in of}
        return {t.number: (dict(t.params), dict(t.distributions))
                for t in study.get_trials(deepcopy=False) if t.number in wanted}
    p, ids = _T["trial_params"], _ids(of)
    out: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {n: ({}, {}) for n in ids.values()}
    with storage.engine.connect() as conn:
        for where in _id_filters(study, p.c.trial_id, sorted(ids)):
            for tid, name, value, text in conn.execute(
                    sa.select(p.c.trial_id, p.c.param_name, p.c.param_value, p.c.distribution_json)
                    .where(where).order_by(p.c.param_id)):
                if tid not in ids:
                    continue
                dist = _distribution(text)
                values, dists = out[ids[tid]]
                values[name], dists[name] = dist.to_external_repr(value), dist
    return out


def frozen(study: optuna.Study, of: Sequence[Row], attrs: bool = True) -> list[FrozenTrial]:
    """These trials as FrozenTrials with their values, params and (with `attrs`) user attributes;
    system attributes, intermediate values and datetimes are left empty."""
    if rdb(study) is None:
        by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
        return [by_number[r.number] for r in of]
    got_params = params(study, of)
    got_attrs = user_attrs(study, of) if attrs else {}
    return [FrozenTrial(number=r.number, state=r.state, value=None, values=None if r.values is None else list(r.values),
                        datetime_start=None, datetime_complete=None, params=got_params[r.number][0],
                        distributions=got_params[r.number][1], user_attrs=got_attrs.get(r.number, {}),
                        system_attrs={}, intermediate_values={}, trial_id=r.trial_id or -1)
            for r in of]


def sampler_trials(storage: optuna.storages.RDBStorage, study_id: int, newer_than: int,
                   also: Iterable[int] = ()) -> list[FrozenTrial]:
    """The trials of study `study_id` whose id is over `newer_than` or in `also`, whole but for
    their user attributes: what a sampler and `study.ask` read (states, values, params, system
    attributes, intermediate values, datetimes), in id order. hpo.study.sampler_storage serves
    the launch's asks from these: the user attributes (config, per-class metrics, confusion
    matrix) are most of a trial's bytes, and no sampler reads them."""
    t = _T["trials"]
    picked = sa.or_(t.c.trial_id > newer_than, *(t.c.trial_id.in_(chunk) for chunk in _chunks(sorted(set(also)))))
    return _whole(storage, sa.and_(t.c.study_id == study_id, picked), with_user_attrs=False)


def trial(storage: optuna.storages.RDBStorage, trial_id: int) -> FrozenTrial:
    """One trial, whole, as Optuna's `get_trial` gives it (KeyError when there is none): a few
    plain queries where Optuna's ORM takes 3-5 ms, and `study.ask` / `tell` read it three times."""
    got = _whole(storage, _T["trials"].c.trial_id == trial_id, with_user_attrs=True)
    if not got:
        raise KeyError("Record does not exist.")
    return got[0]


def _whole(storage: optuna.storages.RDBStorage, where: sa.ColumnElement[bool], with_user_attrs: bool) -> list[FrozenTrial]:
    """The trials `where` selects, in id order, with everything Optuna stores on a trial (user
    attributes only `with_user_attrs`)."""
    t, v, p = _T["trials"], _T["trial_values"], _T["trial_params"]
    ids = sa.select(t.c.trial_id).where(where)
    state_of = {s.name: s for s in TrialState}

    def attrs(table: sa.TableClause, order: sa.ColumnElement[Any]) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        for tid, key, value in conn.execute(sa.select(table.c.trial_id, table.c.key, table.c.value_json)
                                            .where(table.c.trial_id.in_(ids)).order_by(order)).all():
            out.setdefault(tid, {})[key] = json.loads(value)
        return out

    with storage.engine.connect() as conn:
        head = conn.execute(sa.select(t.c.trial_id, t.c.number, sa.cast(t.c.state, sa.String), t.c.datetime_start,
                                      t.c.datetime_complete).where(where).order_by(t.c.trial_id)).all()
        if not head:
            return []
        values: dict[int, list[float]] = {}
        for tid, value, kind in conn.execute(sa.select(v.c.trial_id, v.c.value, v.c.value_type)
                                             .where(v.c.trial_id.in_(ids)).order_by(v.c.trial_id, v.c.objective)).all():
            values.setdefault(tid, []).append(value if kind == "FINITE" else _INF[kind])
        params: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
        for tid, name, value, text in conn.execute(
                sa.select(p.c.trial_id, p.c.param_name, p.c.param_value, p.c.distribution_json)
                .where(p.c.trial_id.in_(ids)).order_by(p.c.param_id)).all():
            dist = _distribution(text)
            got, dists = params.setdefault(tid, ({}, {}))
            got[name], dists[name] = dist.to_external_repr(value), dist
        system = attrs(_T["trial_system_attributes"], _T["trial_system_attributes"].c.trial_system_attribute_id)
        user = attrs(_T["trial_user_attributes"], _T["trial_user_attributes"].c.trial_user_attribute_id) \
            if with_user_attrs else {}
        iv, steps = _T["trial_intermediate_values"], {}
        for tid, step, value, kind in conn.execute(
                sa.select(iv.c.trial_id, iv.c.step, iv.c.intermediate_value, iv.c.intermediate_value_type)
                .where(iv.c.trial_id.in_(ids)).order_by(iv.c.trial_id, iv.c.step)).all():
            steps.setdefault(tid, {})[step] = value if kind == "FINITE" else _INF[kind]
    out = []
    for tid, number, state, start, complete in head:
        got, dists = params.get(tid, ({}, {}))
        out.append(FrozenTrial(number=number, state=state_of[state], value=None, values=values.get(tid),
                               datetime_start=start, datetime_complete=complete, params=got, distributions=dists,
                               user_attrs=user.get(tid, {}), system_attrs=system.get(tid, {}),
                               intermediate_values=steps.get(tid, {}), trial_id=tid))
    return out


def set_user_attrs(trial: optuna.Trial, attrs: dict[str, Any]) -> None:
    """User attributes of one unfinished trial, written in one transaction: Optuna writes one a
    transaction, and a finished hpo trial stores ten or more. As Optuna
    does: a key the trial has already is replaced, a finished trial refuses
    (UpdateFinishedTrialError), values are stored as JSON. Outside an RDB storage: Optuna's calls."""
    storage = rdb(trial.study)
    if storage is None:
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return
    if not attrs:
        return
    tid, trials, ua = trial_id(trial), _T["trials"], _T["trial_user_attributes"]
    with storage.engine.begin() as conn:
        state = conn.execute(sa.select(sa.cast(trials.c.state, sa.String)).where(trials.c.trial_id == tid)
                             ).scalar_one()
        if TrialState[state].is_finished():
            raise optuna.exceptions.UpdateFinishedTrialError(
                f"Trial#{trial.number} has already finished and can not be updated.")
        conn.execute(sa.delete(ua).where(ua.c.trial_id == tid, ua.c.key.in_(list(attrs))))
        conn.execute(sa.insert(ua), [{"trial_id": tid, "key": k, "value_json": json.dumps(v)}
                                     for k, v in attrs.items()])


def delete_study_user_attrs(study: optuna.Study, keys: Sequence[str]) -> None:
    """Delete these user attributes of the study (Optuna has no call for it), in one transaction.
    A study outside an RDB storage keeps them."""
    storage, attrs = rdb(study), _T["study_user_attributes"]
    if storage is None:
        return
    study_id = sa.select(_T["studies"].c.study_id).where(_T["studies"].c.study_name == study.study_name).scalar_subquery()
    with storage.engine.begin() as conn:
        for chunk in _chunks(list(keys)):
            conn.execute(sa.delete(attrs).where(attrs.c.study_id == study_id, attrs.c.key.in_(chunk)))


def add_finished_trials(storage: optuna.storages.RDBStorage, study: optuna.Study,
                        trials: Sequence[FrozenTrial]) -> None:
    """`study.add_trials(trials)` for finished trials with finite values, as a few multi-row
    INSERTs: the rows Optuna writes for them (trials, trial_values, trial_params,
    trial_user_attributes), encoded as it encodes them. Optuna writes each attribute in a
    statement of its own, which makes a 10,000-trial study for the benches a matter of minutes."""
    meta = sa.MetaData()  # reflected: PostgreSQL keeps the state as an enum type of its own
    meta.reflect(storage.engine, only=["trials", "trial_values", "trial_params", "trial_user_attributes"])
    t, study_id, utc = meta.tables, storage.get_study_id_from_name(study.study_name), datetime.timezone.utc
    with storage.engine.begin() as conn:
        first = conn.execute(sa.select(sa.func.count()).select_from(t["trials"])
                             .where(t["trials"].c.study_id == study_id)).scalar_one()
        conn.execute(sa.insert(t["trials"]), [
            {"number": first + i, "study_id": study_id, "state": tr.state.name,
             "datetime_start": tr.datetime_start.astimezone(utc).replace(tzinfo=None),
             "datetime_complete": tr.datetime_complete.astimezone(utc).replace(tzinfo=None)}
            for i, tr in enumerate(trials)])
        ids = dict(conn.execute(sa.select(t["trials"].c.number, t["trials"].c.trial_id).where(
            t["trials"].c.study_id == study_id, t["trials"].c.number >= first)).all())
        values, params, attrs = [], [], []
        for i, tr in enumerate(trials):
            tid = ids[first + i]
            values += [{"trial_id": tid, "objective": k, "value": v, "value_type": "FINITE"}
                       for k, v in enumerate(tr.values or [])]
            params += [{"trial_id": tid, "param_name": name, "param_value": d.to_internal_repr(tr.params[name]),
                        "distribution_json": optuna.distributions.distribution_to_json(d)}
                       for name, d in tr.distributions.items()]
            attrs += [{"trial_id": tid, "key": k, "value_json": json.dumps(v)} for k, v in tr.user_attrs.items()]
        for table, data in (("trial_values", values), ("trial_params", params), ("trial_user_attributes", attrs)):
            if data:
                conn.execute(sa.insert(t[table]), data)


class _GivenTrials(optuna.Study):
    """An empty in-memory study with given directions whose `get_trials` answers with given
    trials (of one state)."""

    def __init__(self, directions: list[Any], trials: list[FrozenTrial], state: TrialState) -> None:
        storage = optuna.storages.InMemoryStorage()
        verbosity = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created in memory" line
        try:
            name = optuna.create_study(storage=storage, directions=directions).study_name
        finally:
            optuna.logging.set_verbosity(verbosity)
        super().__init__(study_name=name, storage=storage)
        self._given, self._state = trials, state

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[FrozenTrial]:
        if states is not None and self._state not in states:
            return []
        return [copy.deepcopy(t) for t in self._given] if deepcopy else list(self._given)


def study_of_trials(directions: list[Any], trials: list[FrozenTrial],
                    state: TrialState = TrialState.COMPLETE) -> optuna.Study:
    """A study that reads as these trials (all of `state`) and nothing else: all that Optuna's
    importance evaluators read of a study. It relies on their reading it through `get_trials`
    only, which tests/study/test_optuna_seam.py checks against the real study's importances."""
    return _GivenTrials(directions, trials, state)
