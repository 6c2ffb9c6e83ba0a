"""Launcher liveness and the sweep of trials a dead launcher left RUNNING, on a SQLite file."""
from __future__ import annotations

import os
import socket
import time

import optuna

from hpo.study import coordination as co
from hpo.study.storage import open_storage


def test_liveness_by_heartbeat_pid_and_stop() -> None:
    now = time.time()
    me = {"host": socket.gethostname(), "pid": os.getpid(), "heartbeat": now}
    assert co.launcher_alive(me, now)
    assert not co.launcher_alive({**me, "stopped": True}, now)
    assert not co.launcher_alive({**me, "heartbeat": now - co.STALE_AFTER_S - 1}, now)
    assert not co.launcher_alive({**me, "pid": 2 ** 22 + 12345}, now)  # same host, no such process
    assert co.launcher_alive({**me, "host": "elsewhere", "pid": 1}, now)  # other host: the heartbeat decides


def test_sweep_fails_a_dead_launchers_trial_once_and_requeues_its_params(sqlite_url: str) -> None:
    study = optuna.create_study(storage=sqlite_url, directions=["maximize", "maximize"])
    study.set_user_attr(co.ATTR_LAUNCHER_PREFIX + "gone", {"host": "elsewhere", "pid": 1, "heartbeat": 0.0})
    lost = study.ask({"lr": optuna.distributions.FloatDistribution(1e-3, 1.0)})
    lost.set_user_attr(co.ATTR_OWNER, "gone")
    live = co.Launcher(study)
    try:
        mine = study.ask({"lr": optuna.distributions.FloatDistribution(1e-3, 1.0)})
        mine.set_user_attr(co.ATTR_OWNER, live.id)
        assert co.counts(study) == (0, 1)  # only the live launcher's RUNNING trial holds a slot
        assert co.sweep(study) == [lost.number]
        states = {t.number: t.state for t in study.get_trials()}
        assert states[lost.number] == optuna.trial.TrialState.FAIL
        assert states[mine.number] == optuna.trial.TrialState.RUNNING
        queued = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.WAITING]
        assert len(queued) == 1 and queued[0].user_attrs[co.ATTR_RETRY_OF] == lost.number
        assert study.get_trials()[lost.number].user_attrs["fail_reason"] == "launcher_lost"
        assert co.sweep(study) == []  # nothing left to sweep
    finally:
        live.stop()
    assert not co.launcher_alive(co.launchers(study)[live.id])


def test_a_trial_without_an_owner_yet_is_not_swept_until_it_is_stale(sqlite_url: str, monkeypatch) -> None:
    """Between Optuna creating a trial and the launcher stamping its owner, another launcher's
    sweep must not fail it (it did, with two launchers starting together on PostgreSQL: the
    first launcher's next write to its own trial then raised UpdateFinishedTrialError)."""
    study = optuna.create_study(storage=sqlite_url, directions=["maximize", "maximize"])
    in_flight = study.ask()  # no owner attribute yet
    assert co.orphaned(study) == [] and co.sweep(study) == []
    assert study.get_trials()[in_flight.number].state == optuna.trial.TrialState.RUNNING
    monkeypatch.setattr(co, "STALE_AFTER_S", 0.0)  # its launcher died between the ask and the stamp
    assert co.sweep(study) == [in_flight.number]


def test_a_launch_prunes_launchers_dead_for_over_a_day_and_keeps_the_rest(sqlite_url: str) -> None:
    study = optuna.create_study(storage=open_storage(sqlite_url), directions=["maximize", "maximize"])  # WAL: fast writes
    old = time.time() - co.PRUNE_AFTER_S - 60
    storage = study._storage
    for i in range(1000):  # straight to the storage: 1000 study.set_user_attr calls would do the same, slower
        storage.set_study_user_attr(study._study_id, f"{co.ATTR_LAUNCHER_PREFIX}old{i}",
                                    {"host": "elsewhere", "pid": i, "heartbeat": old, "stopped": i % 2 == 0})
    recent = {"host": "elsewhere", "pid": 1, "heartbeat": time.time() - 3600}  # dead an hour: kept
    study.set_user_attr(co.ATTR_LAUNCHER_PREFIX + "ended", {**recent, "stopped": True})  # ended cleanly: pruned
    alive_old = {"host": socket.gethostname(), "pid": os.getpid(), "heartbeat": old}  # pid lives, beat old: dead
    study.set_user_attr(co.ATTR_LAUNCHER_PREFIX + "recent", recent)
    study.set_user_attr(co.ATTR_LAUNCHER_PREFIX + "beating", {"host": "elsewhere", "pid": 1,
                                                              "heartbeat": time.time()})
    study.set_user_attr("class_names", ["a", "b"])  # not a launcher record: never touched
    assert len(co.launchers(study)) == 1003
    live = co.Launcher(study)
    try:
        assert live.pruned == 1001
        again = optuna.load_study(study_name=study.study_name, storage=sqlite_url)  # read back from the file
        assert set(co.launchers(again)) == {"recent", "beating", live.id}
        assert again.user_attrs["class_names"] == ["a", "b"]
        assert co.launcher_alive(co.launchers(again)["beating"]) and co.launcher_alive(co.launchers(again)[live.id])
        study.set_user_attr(co.ATTR_LAUNCHER_PREFIX + "old_again", alive_old)
        assert co.prune(study) == 1 and co.prune(study) == 0
        assert set(co.launchers(study)) == {"recent", "beating", live.id}
    finally:
        live.stop()


def test_a_launcher_joining_a_live_one_sees_it_and_is_seeded_apart(sqlite_url: str) -> None:
    import yaml

    from conftest import SPACES
    from hpo.spec import parse_spec
    from hpo.study.space import build_sampler

    study = optuna.create_study(storage=sqlite_url, directions=["maximize", "maximize"])
    first = co.Launcher(study)
    second = co.Launcher(study)
    try:
        assert first.others_alive == [] and second.others_alive == [first.id]
        assert co.orphaned(study) == []
        raw = yaml.safe_load((SPACES / "cb_focal_beta.yaml").read_text())
        spec = parse_spec({**raw, "sampler": {"name": "random", "seed": 0}}, "x.yaml")

        def first_draw(launcher_id: str | None) -> float:
            return optuna.create_study(sampler=build_sampler(spec, 0, launcher_id).sampler).ask().suggest_float("x", 0, 1)

        assert first_draw(None) == first_draw(None)  # a lone launch is reproducible
        assert first_draw(second.id) != first_draw(None)  # a joining one draws apart
    finally:
        second.stop()
        first.stop()
