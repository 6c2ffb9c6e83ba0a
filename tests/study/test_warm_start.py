"""Warm starts on real SQLite studies: an earlier study's Pareto-best configs queued as the first
trials, fitted to this space (clipped, skipped or left to the sampler, a line each), once."""
from __future__ import annotations

import optuna
import pytest

from hpo.errors import UserError
from hpo.spec import parse_spec
from hpo.study import storage as st
from hpo.study import warm_start

DIST = {"lr": optuna.distributions.FloatDistribution(1e-4, 1.0, log=True),
        "loss": optuna.distributions.CategoricalDistribution(["ce", "focal", "ldam"]),
        "gamma": optuna.distributions.FloatDistribution(0.0, 5.0)}


def earlier(url: str) -> optuna.Study:
    """Trials 0-2 on the front (best first by the first objective: 0, 1, 2), trial 3 dominated."""
    study = optuna.create_study(study_name="earlier", storage=url, directions=["maximize", "maximize"])
    for params, values in [({"lr": 0.5, "loss": "focal", "gamma": 4.0}, [0.9, 0.1]),
                           ({"lr": 0.01, "loss": "ldam", "gamma": 1.0}, [0.6, 0.6]),
                           ({"lr": 0.001, "loss": "ce", "gamma": 2.0}, [0.2, 0.9]),
                           ({"lr": 0.02, "loss": "ce", "gamma": 2.0}, [0.1, 0.1])]:
        study.add_trial(optuna.trial.create_trial(params=params, distributions=DIST, values=values))
    return study


def spec(**extra: object) -> object:
    raw = {"study": "later", "search": {"loss": {"choices": ["ce", "focal"]}, "lr": {"low": 1.0e-3, "high": 0.1,
                                                                                      "log": True},
                                        "gamma": {"low": 0.0, "high": 3.0, "when": {"loss": ["focal"]}}},
           "warm_start": {"study": "earlier", "top": 3}, **extra}
    return parse_spec(raw, "later.yaml", default_name="later")


def test_front_configs_queued_clipped_or_skipped_with_a_line_each(sqlite_url: str) -> None:
    earlier(sqlite_url)
    storage = st.open_storage(sqlite_url)
    later = optuna.create_study(study_name="later", storage=storage, directions=["maximize", "maximize"])
    lines = warm_start.enqueue(later, spec(), storage)
    assert lines[0] == "warm start: trial 0 of 'earlier' queued (lr 0.5 clipped to 0.1; gamma 4 clipped to 3)"
    assert lines[1] == "warm start: trial 1 of 'earlier' skipped: loss = 'ldam' is not among ['ce', 'focal']"
    # gamma is searched only under focal here: the ce config does not carry it
    assert lines[2] == "warm start: trial 2 of 'earlier' queued (not used here, dropped: gamma)"
    waiting = later.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert [t.user_attrs[warm_start.ATTR_TRIAL] for t in waiting] == ["earlier#0", "earlier#2"]
    assert [t.system_attrs["fixed_params"] for t in waiting] == [{"loss": "focal", "lr": 0.1, "gamma": 3.0},
                                                                {"loss": "ce", "lr": 0.001}]
    assert later.user_attrs[warm_start.ATTR_STUDY] == {"study": "earlier", "queued": [0, 2], "skipped": [1]}

    # the first ask runs the first queued config
    trial = later.ask()
    assert trial.suggest_categorical("loss", ["ce", "focal"]) == "focal"
    assert trial.suggest_float("lr", 1e-3, 0.1, log=True) == 0.1


def test_a_relaunch_does_not_queue_them_again(sqlite_url: str) -> None:
    earlier(sqlite_url)
    storage = st.open_storage(sqlite_url)
    later = optuna.create_study(study_name="later", storage=storage, directions=["maximize", "maximize"])
    assert warm_start.enqueue(later, spec(), storage)
    assert warm_start.enqueue(later, spec(), storage) == []
    assert len(later.get_trials(states=(optuna.trial.TrialState.WAITING,))) == 2


def test_a_missing_earlier_study_and_a_flag_naming_this_one_are_refused(sqlite_url: str) -> None:
    storage = st.open_storage(sqlite_url)
    later = optuna.create_study(study_name="later", storage=storage, directions=["maximize", "maximize"])
    with pytest.raises(UserError, match="no study 'earlier'"):
        warm_start.enqueue(later, spec(), storage)
    with pytest.raises(UserError, match="--warm-start 'later'"):
        warm_start.from_flag(spec(), "later")
    assert warm_start.from_flag(spec(), "other").warm_start.study == "other"
    assert warm_start.from_flag(spec(), "other").warm_start.top == 3


def test_the_spec_refuses_a_warm_start_from_itself() -> None:
    with pytest.raises(UserError, match="warm_start.study.*is this study itself"):
        spec(warm_start={"study": "later"})


def test_configs_that_fit_to_the_same_one_are_queued_once(sqlite_url: str) -> None:
    """Trials 0 and 1 differ only in what this space does not search (or clips): one is queued."""
    study = optuna.create_study(study_name="earlier", storage=sqlite_url, directions=["maximize", "maximize"])
    for lr, values in [(0.5, [0.9, 0.1]), (0.7, [0.1, 0.9])]:
        study.add_trial(optuna.trial.create_trial(params={"lr": lr, "loss": "ce"}, distributions={k: DIST[k] for k in ("lr", "loss")},
                                                  values=values))
    storage = st.open_storage(sqlite_url)
    later = optuna.create_study(study_name="later", storage=storage, directions=["maximize", "maximize"])
    lines = warm_start.enqueue(later, spec(), storage)
    assert lines[1] == "warm start: trial 1 of 'earlier' skipped: once fitted, the same config as trial 0"
    assert len(later.get_trials(states=(optuna.trial.TrialState.WAITING,))) == 1
