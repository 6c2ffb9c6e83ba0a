"""hpo/study/optuna_seam.py reads and writes Optuna's RDB tables with plain SQL: its tables and
columns must exist, every reader must give what Optuna's own API gives for the same study, and
every write must leave what Optuna's calls leave. The fronts, counts, hypervolume history,
export document and report tables and importances (`study_of_trials`) built on it must equal
those computed from `study.get_trials` (rebuilt here)."""
from __future__ import annotations

import math
import os
import random
from collections import Counter
from pathlib import Path

import optuna
import pytest
import sqlalchemy as sa
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from hpo.study import coordination as co
from hpo.study import export, optuna_seam, pareto, trust
from hpo.study import storage as st
from hpo.views import report
from pgserver import PostgresServer, pg_bin

optuna.logging.set_verbosity(optuna.logging.WARNING)
OBJECTIVES = [{"name": "minority_f1", "direction": "maximize"}, {"name": "ece", "direction": "minimize"}]
DISTS = {"lr": FloatDistribution(1e-4, 1.0, log=True), "gamma": FloatDistribution(0.0, 3.0),
         "batch_size": CategoricalDistribution([16, 32, 64]), "threshold": IntDistribution(0, 60),
         "loss": CategoricalDistribution(["ce", "focal", "ldam"])}


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=[
    pytest.mark.postgres, pytest.mark.skipif(not pg_bin("initdb"), reason="no PostgreSQL server binaries")])])
def url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('optuna_seam') / 'hpo.db'}"
        return
    pg = PostgresServer("optuna_seam-test").start()
    yield pg.url()
    pg.stop()


def _trial(rng: random.Random, i: int) -> optuna.trial.FrozenTrial:
    params = {"lr": 10 ** rng.uniform(-4, 0), "gamma": rng.uniform(0, 3), "batch_size": rng.choice([16, 32, 64]),
              "threshold": rng.randint(0, 60), "loss": rng.choice(["ce", "focal", "ldam"])}
    dists = dict(DISTS)
    if params["loss"] == "ce":  # a conditional parameter: absent on some trials
        del params["gamma"], dists["gamma"]
    attrs = {st.ATTR_CONFIG: {"loss": {"name": params["loss"]}, "optim": {"lr": params["lr"]}},
             "per_class": {"0": {"f1": rng.random()}}, "confusion": [[1, 2], [3, 4]], co.ATTR_OWNER: "gone"}
    values = [round(rng.random(), 2), round(rng.random(), 2)]  # rounded: ties and equal points happen
    state = TrialState.COMPLETE
    if i % 9 == 4:
        attrs[st.ATTR_STOPPED_EARLY] = 3
        values = [1.0, 0.0]  # would dominate everything: must stay out of the front
    elif i % 11 == 7:
        state, values, attrs[st.ATTR_FAIL_REASON] = TrialState.FAIL, None, "oom"
    elif i == 14:
        values = [0.5, -math.inf]  # Optuna stores an infinity as a value type, not a number
    return optuna.trial.create_trial(state=state, values=values, params=params, distributions=dists, user_attrs=attrs)


def make_study(url: str, name: str, n: int = 60) -> optuna.Study:
    study = optuna.create_study(study_name=name, storage=st.open_storage(url), directions=["maximize", "minimize"])
    study.set_user_attr(st.ATTR_OBJECTIVES, OBJECTIVES)
    study.set_user_attr(co.ATTR_LAUNCHER_PREFIX + "gone", {"host": "elsewhere", "pid": 1, "heartbeat": 0.0})
    rng = random.Random(name)
    study.add_trials([_trial(rng, i) for i in range(n)])
    study.ask().set_user_attr(co.ATTR_OWNER, "gone")  # an orphan
    study.ask()  # RUNNING, no owner attribute
    study.enqueue_trial({"lr": 0.01})  # WAITING
    return study


@pytest.fixture(scope="module")
def studies(url: str) -> tuple[optuna.Study, optuna.Study]:
    """The study under test, and another in the same storage (whose rows must not leak in)."""
    other = make_study(url, "other", 20)
    study = make_study(url, "main")
    return optuna.load_study(study_name="main", storage=st.open_storage(url)), other


# --- the same answers, from study.get_trials ---------------------------------------------------

def old_full(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if st.ATTR_STOPPED_EARLY not in t.user_attrs]


def old_front(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    sgn, trials = pareto.signs(study.directions), old_full(study)
    best = [t for t in trials if not any(pareto.dominates(o.values, t.values, sgn) for o in trials if o is not t)]
    return sorted(best, key=lambda t: (-sgn[0] * t.values[0], t.number))


def old_history(study: optuna.Study) -> list[tuple[int, float]]:
    sgn = pareto.signs(study.directions)
    ref = [0.0 if s > 0 else 1.0 for s in sgn]
    points, out = [], []
    for t in old_full(study):
        points.append(t.values)
        out.append((t.number, pareto.hypervolume(points, sgn, ref)))
    return out


def old_document(study: optuna.Study, url: str) -> dict:
    names = st.objective_names(study)
    rows = [{"trial": t.number, "values": dict(zip(names, t.values)), "params": dict(t.params),
             "config": t.user_attrs.get(st.ATTR_CONFIG)} for t in old_front(study)]
    return {"study": study.study_name, "storage": st.redact(url),
            "objectives": study.user_attrs.get(st.ATTR_OBJECTIVES), "configs": rows}


# --- the schema --------------------------------------------------------------------------------

def test_the_tables_and_columns_optuna_seam_reads_exist_in_optunas_schema(url: str, studies) -> None:
    inspector = sa.inspect(st.open_storage(url).engine)
    for table, columns in optuna_seam.SCHEMA.items():
        assert table in inspector.get_table_names(), f"Optuna's RDB schema has no table {table!r} any more"
        have = {c["name"] for c in inspector.get_columns(table)}
        assert set(columns) <= have, f"Optuna's table {table!r} lost columns {set(columns) - have}"


def test_the_study_is_read_through_sql(studies) -> None:
    study, _ = studies
    assert optuna_seam.rdb(study) is not None  # else every test below compares Optuna with itself


# --- each reader against Optuna's API ------------------------------------------------------------

def test_rows_counts_and_attribute_holders_equal_optunas(studies) -> None:
    study, _ = studies
    trials = study.get_trials(deepcopy=False)
    assert [(r.number, r.state, r.values) for r in optuna_seam.rows(study)] == \
        [(t.number, t.state, None if t.values is None else tuple(t.values)) for t in trials]
    assert optuna_seam.rows(study, (TrialState.FAIL,)) == [r for r in optuna_seam.rows(study) if r.state == TrialState.FAIL]
    assert optuna_seam.counts_by_state(study) == dict(Counter(t.state.name for t in trials))
    assert optuna_seam.numbers_with_attr(study, st.ATTR_STOPPED_EARLY) == \
        {t.number for t in trials if st.ATTR_STOPPED_EARLY in t.user_attrs}
    assert any(r.values and -math.inf in r.values for r in optuna_seam.rows(study))
    running = [t for t in trials if t.state == TrialState.RUNNING]
    assert sorted(map(str, optuna_seam.running_owners(study, co.ATTR_OWNER))) == \
        sorted(str(t.user_attrs.get(co.ATTR_OWNER)) for t in running) == ["None", "gone"]


def test_params_attributes_and_frozen_trials_equal_optunas(studies) -> None:
    study, _ = studies
    trials = study.get_trials(deepcopy=False)
    rows = optuna_seam.rows(study)
    got = optuna_seam.params(study, rows)
    assert {n: (list(p.items()), d) for n, (p, d) in got.items()} == \
        {t.number: (list(t.params.items()), t.distributions) for t in trials}  # same order too
    assert optuna_seam.user_attrs(study, rows) == {t.number: t.user_attrs for t in trials}
    assert optuna_seam.user_attrs(study, rows[:3], keys=[st.ATTR_CONFIG]) == \
        {t.number: {st.ATTR_CONFIG: t.user_attrs[st.ATTR_CONFIG]} for t in trials[:3]}
    for f, t in zip(optuna_seam.frozen(study, rows), trials):
        assert (f.number, f.state, f.values, f.params, f.distributions, f.user_attrs) == \
            (t.number, t.state, t.values, t.params, t.distributions, t.user_attrs)


def test_orphans_are_read_in_sql_without_loading_every_trial(studies, monkeypatch: pytest.MonkeyPatch) -> None:
    study, _ = studies
    alive = {k for k, v in co.launchers(study).items() if co.launcher_alive(v)}
    slow = [t.number for t in study.get_trials(states=(TrialState.RUNNING,)) if t.user_attrs.get(co.ATTR_OWNER) not in alive]
    fresh = optuna.load_study(study_name=study.study_name, storage=study._storage)  # noqa: SLF001 - an empty cache

    def load_all(*args, **kwargs):
        raise AssertionError("a sweep or status read every trial through Optuna's cache")

    monkeypatch.setattr(type(fresh._storage), "get_all_trials", load_all)  # noqa: SLF001
    monkeypatch.setattr(co, "STALE_AFTER_S", 0.0)  # 61, without an owner, counts once it is older than this
    assert co.orphaned(fresh) == slow == [60, 61]  # 61 has no owner at all


# --- fronts, history, export, report: as before -------------------------------------------------

def test_front_equals_the_old_front_and_leaves_stopped_trials_out(studies) -> None:
    study, _ = studies
    new, old = pareto.front(study), old_front(study)
    assert [(t.number, t.values, t.params, t.user_attrs) for t in new] == \
        [(t.number, t.values, t.params, t.user_attrs) for t in old]
    assert not any(st.ATTR_STOPPED_EARLY in t.user_attrs for t in new) and len(new) >= 2


def test_hypervolume_history_equals_the_old_one(studies) -> None:
    study, _ = studies
    new, old = pareto.hypervolume_history(study), old_history(study)
    assert [n for n, _ in new] == [n for n, _ in old]
    assert [h for _, h in new] == pytest.approx([h for _, h in old], rel=1e-12, abs=1e-15)


def test_export_document_equals_the_old_one(studies, url: str) -> None:
    study, _ = studies
    assert export.document(study, url) == trust.annotate(old_document(study, url), study)  # + trust signals


def test_report_tables_and_importance_equal_the_old_ones(studies, tmp_path: Path) -> None:
    study, _ = studies
    names = st.objective_names(study)
    old = [{"loss": t.user_attrs[st.ATTR_CONFIG]["loss"]["name"], **dict(zip(names, t.values))} for t in old_full(study)]
    table = report.per_loss_table(study)
    for loss in ("ce", "focal", "ldam"):
        mine = [r["minority_f1"] for r in old if r["loss"] == loss]
        assert table.loc[loss, "trials"] == len(mine) and table.loc[loss, "minority_f1 best"] == max(mine)
    # importance reads an in-memory copy of the COMPLETE trials' params and values: same numbers
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct = {n: optuna.importance.get_param_importances(study, target=lambda t, i=i: t.values[i])
                  for i, n in enumerate(names)}
    assert report.importances(study) == (direct, [])
    report.write_report(study, tmp_path)
    assert (tmp_path / "pareto_front.csv").read_text().splitlines()[1].startswith(str(old_front(study)[0].number))


def test_an_in_memory_study_gives_the_same_answers_through_optunas_api(studies) -> None:
    study, _ = studies
    mem = optuna.create_study(directions=study.directions)
    mem.set_user_attr(st.ATTR_OBJECTIVES, OBJECTIVES)
    mem.add_trials([t for t in study.get_trials() if t.state.is_finished()])
    assert optuna_seam.rdb(mem) is None
    assert [t.number for t in pareto.front(mem)] == [t.number for t in pareto.front(study)]
    assert pareto.hypervolume_history(mem) == pareto.hypervolume_history(study)
    assert optuna_seam.counts_by_state(mem) == {k: v for k, v in optuna_seam.counts_by_state(study).items()
                                             if k in ("COMPLETE", "FAIL")}


# --- the algorithms behind them -----------------------------------------------------------------

def _hv_recursive(points: list[tuple[float, ...]], ref: list[float]) -> float:
    """pareto._hv before its 2-D sweep: slices along the last objective, recursively."""
    if not points:
        return 0.0
    if len(ref) == 1:
        return max(p[0] for p in points) - ref[0]
    levels = sorted({p[-1] for p in points}, reverse=True) + [ref[-1]]
    return sum(_hv_recursive([p[:-1] for p in points if p[-1] >= hi], ref[:-1]) * (hi - lo)
               for hi, lo in zip(levels, levels[1:]))


@pytest.mark.parametrize("seed", range(20))
def test_nondominated_and_the_2d_hypervolume_equal_brute_force(seed: int) -> None:
    rng = random.Random(seed)
    sgn = [rng.choice([1, -1]) for _ in range(rng.choice([2, 3]))]

    class P:
        def __init__(self, values: tuple[float, ...]) -> None:
            self.values = values

    pts = [P(tuple(round(rng.random(), 1) for _ in sgn)) for _ in range(rng.randint(0, 40))]
    brute = [p for p in pts if not any(pareto.dominates(o.values, p.values, sgn) for o in pts if o is not p)]
    assert pareto.nondominated(pts, sgn) == brute
    flat = [tuple(rng.random() for _ in range(2)) for _ in range(rng.randint(1, 30))]
    assert pareto._hv(flat, [0.0, 0.0]) == _hv_recursive(flat, [0.0, 0.0])  # bit for bit


# --- the bulk writer writes what Optuna writes ------------------------------------------------------

def test_trials_added_in_bulk_read_back_as_optunas_add_trials(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'b.db'}"
    backing = st.open_storage(url)
    rng = random.Random(0)
    trials = [_trial(rng, i) for i in range(30) if i != 14]  # the bulk writer writes finite values only
    a = optuna.create_study(study_name="a", storage=backing, directions=["maximize", "minimize"])
    b = optuna.create_study(study_name="b", storage=backing, directions=["maximize", "minimize"])
    a.add_trials(trials)
    optuna_seam.add_finished_trials(backing, b, trials)

    def seen(s: optuna.Study) -> list:
        return [(t.number, t.state, t.values, t.params, t.distributions, t.user_attrs, t.datetime_start,
                 t.datetime_complete) for t in s.get_trials()]

    assert seen(b) == seen(a)


def test_many_trials_are_read_by_one_study_wide_query_with_the_same_result(studies, monkeypatch) -> None:
    study, _ = studies
    rows = optuna_seam.rows(study)
    few = (optuna_seam.params(study, rows), optuna_seam.user_attrs(study, rows[::2]))
    monkeypatch.setattr(optuna_seam, "CHUNK", 5)  # 4 x 5 < the trials asked for: the study-wide branch
    assert (optuna_seam.params(study, rows), optuna_seam.user_attrs(study, rows[::2])) == few


def test_set_user_attrs_writes_what_optunas_calls_write_in_one_go(url: str) -> None:
    storage = st.open_storage(url)
    ours = optuna.create_study(study_name="attrs-ours", storage=storage, directions=["maximize", "minimize"])
    theirs = optuna.create_study(study_name="attrs-theirs", storage=storage, directions=["maximize", "minimize"])
    attrs = {"config": {"loss": {"name": "focal", "gamma": 2.0}}, "confusion": [[1, 2], [3, 4]], "n": 3,
             "reason": "oom", "none": None, "flag": True}
    a, b = ours.ask(), theirs.ask()
    a.set_user_attr("n", 1)  # an earlier value of a key is replaced, as Optuna replaces it
    b.set_user_attr("n", 1)
    optuna_seam.set_user_attrs(a, attrs)
    for key, value in attrs.items():
        b.set_user_attr(key, value)
    ours.tell(a, [0.5, 0.5])
    theirs.tell(b, [0.5, 0.5])
    fresh = optuna.load_study(study_name="attrs-ours", storage=st.open_storage(url))
    assert fresh.trials[0].user_attrs == optuna.load_study(study_name="attrs-theirs", storage=storage).trials[0].user_attrs
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):  # a finished trial refuses, as in Optuna
        optuna_seam.set_user_attrs(a, {"late": 1})
    memory = optuna.create_study(directions=["maximize", "minimize"])  # no RDB: Optuna's own calls
    trial = memory.ask()
    optuna_seam.set_user_attrs(trial, attrs)
    assert memory.trials[0].user_attrs == attrs


def test_study_user_attrs_are_deleted_by_key(url: str) -> None:
    study = optuna.create_study(study_name="attrs-delete", storage=st.open_storage(url))
    for key in ("keep", "drop1", "drop2"):
        study.set_user_attr(key, {"v": key})
    other = optuna.create_study(study_name="attrs-delete-other", storage=st.open_storage(url))
    other.set_user_attr("drop1", 1)
    optuna_seam.delete_study_user_attrs(study, ["drop1", "drop2"])
    assert optuna.load_study(study_name="attrs-delete", storage=st.open_storage(url)).user_attrs == {"keep": {"v": "keep"}}
    assert other.user_attrs == {"drop1": 1}  # another study's attribute of that name stays
