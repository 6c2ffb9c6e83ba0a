"""Several launchers, one study: who owns a RUNNING trial, who may start the next one.

Optuna's heartbeat only works under `study.optimize`; Ray drives Optuna by ask / tell, so hpo
keeps its own record. Each `hpo launch` registers itself on the study (a user attribute
`hpo_launcher:<id>` with host, pid and a heartbeat refreshed every few seconds) and stamps the
trials it asks for with its id. A launcher is alive while its heartbeat is fresh and, on its
own host, while its pid exists. At start, a launch sweeps RUNNING trials whose launcher is gone:
each becomes FAIL (`fail_reason: launcher_lost`) and its parameters are enqueued once more.
It also deletes the records of launchers that stopped, or that are dead for over a day
(`prune`), so a study launched thousands of times does not carry thousands of attributes into
every liveness check.

The budget is study-wide and checked before every new trial, under a PostgreSQL advisory lock
when the storage is PostgreSQL, so concurrent launchers never start more trials than the budget
leaves: the slot counts COMPLETE plus RUNNING trials of live launchers.
"""
from __future__ import annotations

import contextlib
import datetime
import os
import socket
import threading
import time
import uuid
import warnings
import zlib
from typing import Any, Iterator

import optuna
import sqlalchemy as sa
from optuna.trial import TrialState

from hpo.study import optuna_seam
from hpo.study.storage import ATTR_FAIL_REASON

ATTR_LAUNCHER_PREFIX = "hpo_launcher:"
ATTR_OWNER = "hpo_launcher"
ATTR_RETRY_OF = "hpo_retry_of"
HEARTBEAT_S = 5.0
STALE_AFTER_S = float(os.environ.get("HPO_STALE_AFTER_S", 60))  # a silent launcher is gone after this
PRUNE_AFTER_S = 24 * 3600.0  # a dead launcher's record is deleted once its heartbeat is this old


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def launcher_alive(info: dict[str, Any], now: float | None = None) -> bool:
    if info.get("stopped"):
        return False
    if now is None:
        now = time.time()
    if info.get("host") == socket.gethostname() and not _pid_alive(int(info.get("pid", -1))):
        return False  # same machine, process gone: no need to wait for the heartbeat to age
    return now - float(info.get("heartbeat", 0)) < STALE_AFTER_S


def launchers(study: optuna.Study) -> dict[str, dict[str, Any]]:
    return launchers_in(study.user_attrs)


def launchers_in(study_user_attrs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{launcher id: its record} from a study's user attributes."""
    return {k[len(ATTR_LAUNCHER_PREFIX):]: v for k, v in study_user_attrs.items() if k.startswith(ATTR_LAUNCHER_PREFIX)}


def prune(study: optuna.Study, now: float | None = None) -> int:
    """Delete the records of launchers that stopped (they ended cleanly: nothing to wait for) or
    are dead and silent for over PRUNE_AFTER_S (a crashed one stays a day, for `hpo status` to
    show); returns how many. A RUNNING trial such a launcher left behind is still swept: its
    owner is not alive. So a study relaunched a thousand times carries one stopped record, not a
    thousand, into every liveness check."""
    now = time.time() if now is None else now
    gone = [ATTR_LAUNCHER_PREFIX + k for k, v in launchers(study).items()
            if v.get("stopped") or (not launcher_alive(v, now) and now - float(v.get("heartbeat", 0)) > PRUNE_AFTER_S)]
    if gone:
        optuna_seam.delete_study_user_attrs(study, gone)
    return len(gone)


class Launcher:
    """This launch's registration on the study, kept fresh by a daemon thread."""

    def __init__(self, study: optuna.Study) -> None:
        self.study, self.id = study, uuid.uuid4().hex[:12]
        try:
            self.pruned = prune(study)
        except sa.exc.SQLAlchemyError as exc:  # housekeeping: the launch goes on without it
            self.pruned = 0
            warnings.warn(f"hpo: old launcher records not pruned: {type(exc).__name__}: {exc}", stacklevel=2)
        self._stop = threading.Event()
        self._beat()
        # read after writing our own record: of two launchers starting together, at least one
        # then sees the other (and seeds its sampler apart from it)
        self.others_alive = [k for k, v in launchers(study).items() if k != self.id and launcher_alive(v)]
        self._thread = threading.Thread(target=self._run, daemon=True, name="hpo-heartbeat")
        self._thread.start()

    def _beat(self, stopped: bool = False) -> None:
        info = {"host": socket.gethostname(), "pid": os.getpid(), "heartbeat": time.time(), "stopped": stopped}
        self.study.set_user_attr(ATTR_LAUNCHER_PREFIX + self.id, info)

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            with contextlib.suppress(Exception):  # a missed beat is retried; it must not kill the launch
                self._beat()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=HEARTBEAT_S)
        with contextlib.suppress(Exception):
            self._beat(stopped=True)


def sweep(study: optuna.Study) -> list[int]:
    """FAIL the RUNNING trials of launchers that are gone and enqueue their params once more.
    Returns the numbers of the trials swept."""
    storage, swept = optuna_seam.storage_of(study), []
    for t in _orphans(study):
        try:
            storage.set_trial_user_attr(optuna_seam.trial_id(t), ATTR_FAIL_REASON, "launcher_lost")
            storage.set_trial_state_values(optuna_seam.trial_id(t), state=TrialState.FAIL)
        except (RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
            continue  # another launcher swept it first
        swept.append(t.number)
        if ATTR_RETRY_OF not in t.user_attrs and t.params:  # once: a retry that dies stays dead
            study.enqueue_trial(t.params, user_attrs={ATTR_RETRY_OF: t.number}, skip_if_exists=False)
    return swept


def _orphans(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """RUNNING trials whose launcher is gone, read in SQL: `study.get_trials(states=RUNNING)` would
    first load every trial of the study into Optuna's cache (14 s at 10,000 trials)."""
    alive = {k for k, v in launchers(study).items() if launcher_alive(v)}
    running = optuna_seam.rows(study, (TrialState.RUNNING,))
    owners = optuna_seam.user_attrs(study, running, keys=[ATTR_OWNER])
    unowned = [r for r in running if owners.get(r.number, {}).get(ATTR_OWNER) is None]
    # a launcher's new trials carry their owner from their first row (sampler_storage); one without
    # is a queued trial a launcher has just taken and not stamped yet (sweeping it would fail a live
    # launcher's trial under it), or one whose launcher died in between, or one written by another
    # tool: it counts as orphaned once it is older than a stale heartbeat
    since = optuna_seam.started(study, unowned)
    cutoff = datetime.datetime.now() - datetime.timedelta(seconds=STALE_AFTER_S)
    stale = {r.number for r in unowned if since.get(r.number) is None or since[r.number] < cutoff}
    owned = [r for r in running if r not in unowned and owners[r.number][ATTR_OWNER] not in alive]
    return optuna_seam.frozen(study, [r for r in running if r.number in stale or r in owned])


def orphaned(study: optuna.Study) -> list[int]:
    """Numbers of the RUNNING trials whose launcher is gone (what the next sweep will fail)."""
    return [t.number for t in _orphans(study)]


def counts(study: optuna.Study) -> tuple[int, int]:
    """(COMPLETE trials, RUNNING trials of live launchers), read fresh in SQL: three small
    queries, where Optuna's cached storage would re-read the unfinished trials whole, twice."""
    alive = {k for k, v in launchers(study).items() if launcher_alive(v)}
    complete = optuna_seam.counts_by_state(study).get(TrialState.COMPLETE.name, 0)
    return complete, sum(owner in alive for owner in optuna_seam.running_owners(study, ATTR_OWNER))


@contextlib.contextmanager
def budget_lock(storage: optuna.storages.RDBStorage, study_name: str) -> Iterator[None]:
    """Serialise "count, then ask" across launchers. PostgreSQL: an advisory lock per study.
    Other back-ends: nothing (SQLite is for one launcher; `hpo launch` warns otherwise)."""
    engine = storage.engine
    if engine.dialect.name != "postgresql":
        yield
        return
    key = zlib.crc32(f"hpo:{study_name}".encode())
    with engine.connect() as conn:
        conn.exec_driver_sql(f"SELECT pg_advisory_lock({key})")
        try:
            yield
        finally:
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({key})")
            conn.commit()
