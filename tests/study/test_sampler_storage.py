"""hpo/study/sampler_storage.py: the storage a launch asks through must give Optuna's samplers
exactly what Optuna's own storage gives them (all but user attributes), read each finished
trial once, and leave every write and every one-trial read to Optuna."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpo.study import optuna_seam
from hpo.study import storage as st
from hpo.study.sampler_storage import SamplerStorage
from test_optuna_seam import DISTS, make_study, url  # noqa: F401 - url: the SQLite / PostgreSQL fixture

optuna.logging.set_verbosity(optuna.logging.WARNING)
FIELDS = ("number", "state", "values", "params", "distributions", "system_attrs", "intermediate_values",
          "datetime_start", "datetime_complete", "_trial_id")


def _study(url: str, name: str) -> optuna.Study:
    """test_optuna_seam's study (user attributes, FAIL, an infinite value, RUNNING, WAITING), plus
    what only samplers read: a PRUNED trial with intermediate values and system attributes."""
    make_study(url, f"{name}-other", 10)  # another study in the same storage: its rows must not leak in
    study = make_study(url, name)
    trial = study.ask(DISTS)
    storage = study._storage  # Trial.report refuses a multi-objective study; the storage takes them
    storage.set_trial_intermediate_value(trial._trial_id, 1, 0.3)
    storage.set_trial_intermediate_value(trial._trial_id, 2, float("nan"))
    storage.set_trial_system_attr(trial._trial_id, "nsga2:generation", 3)
    study.tell(trial, state=TrialState.PRUNED)  # it took the study's WAITING trial: queue another
    study.enqueue_trial({"lr": 0.02})
    return study


def _fields(trial: optuna.trial.FrozenTrial) -> tuple:
    return tuple(str(getattr(trial, f)) for f in FIELDS)  # str: NaN == NaN


def test_every_trial_reads_as_optunas_but_for_user_attributes(url: str) -> None:
    study = _study(url, "lean")
    lean = SamplerStorage(st.open_storage(url))
    study_id = lean.get_study_id_from_name("lean")
    theirs = study._storage.get_all_trials(study_id, deepcopy=False)
    ours = lean.get_all_trials(study_id)
    assert [_fields(t) for t in ours] == [_fields(t) for t in theirs]
    assert any(t.user_attrs for t in theirs) and not any(t.user_attrs for t in ours)
    for state in TrialState:
        assert [t.number for t in lean.get_all_trials(study_id, states=(state,))] == \
            [t.number for t in theirs if t.state == state]
    # a trial read alone is read whole, user attributes too, as Optuna reads it
    for trial in theirs:
        one = lean.get_trial(trial._trial_id)
        assert _fields(one) == _fields(trial) and one.user_attrs == trial.user_attrs
    with pytest.raises(KeyError):
        lean.get_trial(10**9)


def test_finished_trials_are_read_once_and_unfinished_ones_again(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    study = _study(url, "incremental")
    lean = SamplerStorage(st.open_storage(url))
    study_id = lean.get_study_id_from_name("incremental")
    calls: list[tuple[int, list[int]]] = []
    read = optuna_seam.sampler_trials

    def counted(storage, sid, newer_than, also=()):
        calls.append((newer_than, sorted(also)))
        return read(storage, sid, newer_than, also)

    monkeypatch.setattr(optuna_seam, "sampler_trials", counted)
    first = lean.get_all_trials(study_id)
    running = [t for t in first if not t.state.is_finished()]
    assert calls[-1] == (-1, [])
    last_finished = max(t._trial_id for t in first if t.state.is_finished())
    # a RUNNING trial finishes elsewhere; a new one starts
    study.tell(running[0].number, [0.4, 0.1])
    new = study.ask()
    second = lean.get_all_trials(study_id)
    assert calls[-1] == (last_finished, sorted(t._trial_id for t in running))
    by_number = {t.number: t for t in second}
    assert by_number[running[0].number].state == TrialState.COMPLETE
    assert by_number[new.number].state == TrialState.RUNNING
    assert [_fields(t) for t in second] == [_fields(t) for t in study._storage.get_all_trials(study_id, deepcopy=False)]


def test_tpe_asks_the_same_parameters_through_either_storage(url: str, tmp_path: Path) -> None:
    """Same study, same seed: TPE (multivariate, constant liar: it reads RUNNING trials too) draws
    the same parameters through SamplerStorage as through Optuna's storage, WAITING trial first."""
    if not url.startswith("sqlite"):
        pytest.skip("the study is copied as a file")
    _study(url, "same")
    drawn = []
    for i, lean in enumerate((False, True)):
        copy = tmp_path / f"copy{i}.db"
        with sqlite3.connect(st.sqlite_path(url)) as src, sqlite3.connect(copy) as dst:
            src.backup(dst)  # the write-ahead log's pages too
        storage = st.open_storage(f"sqlite:///{copy}")
        study = optuna.load_study(study_name="same", storage=SamplerStorage(storage) if lean else storage,
                                  sampler=optuna.samplers.TPESampler(seed=3, multivariate=True, constant_liar=True,
                                                                     n_startup_trials=5))
        params = []
        for k in range(12):
            trial = study.ask()
            params.append({name: trial.suggest_float(name, d.low, d.high, log=d.log) if isinstance(
                d, optuna.distributions.FloatDistribution) else trial.suggest_categorical(name, d.choices)
                if isinstance(d, optuna.distributions.CategoricalDistribution) else trial.suggest_int(name, d.low, d.high)
                for name, d in DISTS.items()})
            if k % 3:  # some stay RUNNING: the liar's input
                study.tell(trial, [params[-1]["lr"], params[-1]["threshold"] / 60])
        drawn.append(params)
    assert drawn[0][0]["lr"] == 0.02  # the study's WAITING trial came first, with its fixed value
    assert drawn[0] == drawn[1]


def test_a_window_shows_the_last_finished_trials_the_whole_front_and_every_unfinished_one(
        url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from hpo.study import pareto

    study = _study(url, "window")
    lean = SamplerStorage(st.open_storage(url), window=5)
    study_id = lean.get_study_id_from_name("window")
    sgn = pareto.signs(study.directions)
    whole: list[int] = []  # trials read whole (params, attributes): only those the window shows
    read = optuna_seam.sampler_trials
    monkeypatch.setattr(optuna_seam, "sampler_trials", lambda *a: whole.extend(t.number for t in read(*a)) or read(*a))

    def expected() -> list[int]:
        every = study._storage.get_all_trials(study_id, deepcopy=False)
        finished = [t for t in every if t.state.is_finished()]
        complete = [t for t in finished if t.state == TrialState.COMPLETE]
        front = {t.number for t in complete if not any(pareto.dominates(o.values, t.values, sgn) for o in complete)}
        return sorted({t.number for t in finished[-5:]} | front | {t.number for t in every if not t.state.is_finished()})

    assert len(study.trials) > 40 and [t.number for t in lean.get_all_trials(study_id)] == expected()
    assert sorted(whole) == expected()  # the first read passed over the trials it will never show
    given = SamplerStorage(st.open_storage(url), window=5)  # the launch hands over the heads it has read
    given.warm("window", optuna_seam.heads(given.backend, study_id))
    assert [t.number for t in given.get_all_trials(study_id)] == expected()
    # new trials arrive: one that dominates the whole front, then ten ordinary ones; the window
    # moves, the old front leaves it (dominated), the new best stays however old it gets
    best = study.ask()
    study.tell(best, [1.0, -1.0])
    for _ in range(10):
        study.tell(study.ask(), [0.1, 0.9])
    shown = [t.number for t in lean.get_all_trials(study_id)]
    assert shown == expected() and best.number in shown
    assert [t.number for t in lean.get_all_trials(study_id, states=(TrialState.COMPLETE,))] == \
        [n for n in expected() if study.trials[n].state == TrialState.COMPLETE]


def test_a_launchers_trials_are_born_owned_and_swept_at_once_when_it_is_killed_mid_ask(url: str) -> None:
    """A launcher SIGKILLed while its sampler works (Optuna has created the trial's row, no
    parameter yet) leaves a trial that names its owner from its first row on: the next launch
    sweeps it at once, instead of leaving an ownerless RUNNING trial for a stale heartbeat."""
    from hpo.study import coordination as co

    study = make_study(url, "born")
    dead = "deadlauncher"
    study.set_user_attr(co.ATTR_LAUNCHER_PREFIX + dead, {"host": "elsewhere", "pid": 1, "heartbeat": 0.0})
    asks = optuna.load_study(study_name="born", storage=SamplerStorage(st.open_storage(url), owner=dead))
    asks.ask()  # takes the study's WAITING trial: a queued trial is not created, its owner is stamped later
    trial = asks.ask()  # a new row: what the launcher had written when it was killed
    got = optuna.load_study(study_name="born", storage=url).trials[trial.number]
    assert got.state == TrialState.RUNNING and got.user_attrs == {co.ATTR_OWNER: dead} and not got.params
    assert trial.number in co.orphaned(study)
    assert [t.number for t in asks.trials] == list(range(trial.number + 1))  # numbered as Optuna numbers them
