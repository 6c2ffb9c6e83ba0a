"""`hpo launch`: one Tuner run of a study on Ray Tune.

StudySearch (the study in SQL, define-by-run space, every objective) behind a
ConcurrencyLimiter; function trials with per-trial resources and reused actors. Only the driver
writes to the study; workers train and report.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import optuna
import ray
from ray import tune
from ray.tune.search import ConcurrencyLimiter

from hpo.errors import UserError, storage_failure
from hpo.spec import StudySpec
from hpo.study import constraints, coordination, optuna_seam, settings, trust
from hpo.study.sampler_storage import SamplerStorage
from hpo.study import storage as st
from hpo.study.space import DefineByRun, build_sampler
from hpo.study import warm_start
from hpo.tune import RAY_DIR
from hpo.tune.data_check import DataCheck
from hpo.tune.mo_asha import SCHEDULERS
from hpo.tune import ray_seam
from hpo.tune.ray_start import RayStart
from hpo.tune.searcher import StudySearch
from hpo.train import preflight
from hpo.tune.trainable import trainable
from hpo.views import artifacts, notes
from hpo.views.progress import Progress

Echo = Callable[[str], None]

FAIL_STORAGE = "storage_failure"  # a trial hpo ended because the storage refused a write
FAIL_INTERRUPTED = "interrupted"  # a trial in flight when the launch got SIGINT (Ctrl-C)


class _QuietStorageFailures(logging.Filter):
    """Tune logs a searcher's failed write as an ERROR with the whole SQLAlchemy traceback, then
    raises it out of `fit`, where the CLI prints it as one line: drop the log record (unless
    --verbose), so a full disk ends the launch with that one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and storage_failure(record.exc_info[1]))


@dataclass(frozen=True)
class LaunchResult:
    study: optuna.Study
    ran: int  # trials this launch started
    failed: int  # of which ended FAIL


@dataclass(frozen=True)
class Options:
    """How to run, beside what the study file says: the `hpo launch` flags."""

    n_trials: int | None = None
    max_concurrent: int | None = None
    ray_address: str | None = None
    verbose: bool = False
    quiet: bool = False
    trial_fn: Callable[..., None] | None = None  # replaces `trainable` (bench/overhead.py: no-op trials)
    artifact_dir: Path | None = None
    allow_changed_settings: bool = False  # relaunch with other fixed settings (hpo.study.settings)
    ray_start: RayStart | None = None  # Ray already starting (hpo.cli begins it before the heavy imports)
    data_check: DataCheck | None = None  # the data check already running (hpo.cli starts it first of all)

    def echo(self, line: str) -> None:
        if not self.quiet:
            print(line)


def launch(spec: StudySpec, url: str, **flags: Any) -> LaunchResult:
    """Run trials until the study has its budget (study-wide) of COMPLETE trials.

    Trials that FAIL are replaced (up to budget.max_failed per launch); RUNNING trials of a
    launcher that is gone are swept first (coordination.sweep). `flags` are `Options` fields.
    """
    opt = Options(**flags)
    data_check = opt.data_check or DataCheck(spec)  # the data loads and splits in its own process
    ray_start = opt.ray_start or RayStart(opt.ray_address, opt.verbose)  # Ray boots while the study is prepared
    try:
        return _launch(spec, url, opt, ray_start, data_check)
    finally:
        data_check.stop()
        ray_start.stop()


def _launch(spec: StudySpec, url: str, opt: Options, ray_start: RayStart, data_check: DataCheck) -> LaunchResult:
    if not opt.verbose:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    splits = constraints.checked(spec, data_check.result())  # every check `hpo check` runs, before the storage
    _check_resources(spec, opt, ray_start)
    storage = st.open_storage(url)
    if data_check.remembered is not None:
        opt.echo(f"data: study config and files unchanged since a check passed ({data_check.record}); "
                 "not checked again (delete that file to check again)")
    opt.echo(f"class counts (train / val / test):\n{preflight.class_table(spec, splits)}")
    existed = spec.name in st.study_names(storage)
    study = st.open_study(spec, storage)
    version = settings.settle(study, spec, opt.allow_changed_settings, settings.data_record(splits, data_check.digest))
    st.record_data(study, splits)  # what the long-tail cut produced, for the dashboard and readers
    note = notes.Later(study, spec, splits)  # written once the first trial is asked (or at the end)
    swept = coordination.sweep(study)
    if swept:
        opt.echo(f"trials {swept} were left RUNNING by a launcher that is gone: marked FAIL (launcher_lost), "
                 "their parameters queued once more")
    budget = opt.n_trials or spec.n_trials
    done = st.n_complete(study)
    opt.echo(f"study {spec.name!r} in {st.redact(url)}: {done} COMPLETE of a budget of {budget}")
    if done >= budget:
        opt.echo("budget already reached; raise --n-trials to run more")
        note.finish()
        return LaunchResult(study, 0, 0)
    launcher = coordination.Launcher(study)
    searcher: StudySearch | None = None
    try:
        if launcher.others_alive and storage.engine.dialect.name == "sqlite":
            opt.echo(f"WARNING: {len(launcher.others_alive)} other launcher(s) are running on study {spec.name!r} "
                     "in this SQLite file; SQLite takes one writer at a time and cannot lock the budget between "
                     "launchers: use PostgreSQL (--storage postgresql://...) for several launchers")
        build_searcher = _searcher(spec, storage, study, launcher, budget, version, opt,
                                   on_first_ask=note.start)  # reads while Ray starts
        with _ray_session(spec, opt, ray_start):
            # built only now: a Tune Searcher records a Ray usage tag as it is built, and the last
            # step of `ray.init` (on RayStart's thread) iterates over those tags without a lock
            searcher = build_searcher()
            seconds = _fit(spec, searcher, opt, budget - st.n_complete(study))
        note.finish()
    except UserError:  # refused before any trial (resources the cluster lacks): leave no empty study
        if not existed and not optuna_seam.counts_by_state(study):
            with contextlib.suppress(KeyError):  # a launcher that started alongside deleted it first
                optuna.delete_study(study_name=spec.name, storage=storage)
        raise
    except KeyboardInterrupt:  # Ctrl-C: the trials in flight end FAIL (interrupted), queued for the next launch
        if searcher is not None:
            _end_unfinished(searcher, opt, FAIL_INTERRUPTED)
        raise
    except Exception as exc:
        if storage_failure(exc) and searcher is not None:
            _end_unfinished(searcher, opt, FAIL_STORAGE)
        raise
    finally:
        note.join()
        launcher.stop()
    study = optuna.load_study(study_name=spec.name, storage=storage)
    _summary(spec, study, searcher, budget, seconds, opt)
    return LaunchResult(study, searcher.n_done, searcher.n_failed)


def _end_unfinished(searcher: StudySearch, opt: Options, reason: str) -> None:
    """After the storage refused a write, or Ctrl-C: no trial stays RUNNING because hpo stopped.
    Interrupted trials are queued again: the next launch runs their parameters first."""
    interrupted = reason == FAIL_INTERRUPTED
    ended, left = searcher.end_unfinished(reason, requeue=interrupted)
    if ended:
        why = "queued again for the next launch" if interrupted else "the storage refused a write"
        opt.echo(f"trials {ended} ended FAIL ({reason}): {why}")
    if left:
        opt.echo(f"trials {left} could not be marked FAIL either: they stay RUNNING under this "
                 "launcher, which `hpo status` shows as gone and the next launch sweeps")


def _searcher(spec: StudySpec, storage: optuna.storages.RDBStorage, study: optuna.Study,
              launcher: coordination.Launcher, budget: int, version: int, opt: Options,
              on_first_ask: Callable[[], None]) -> Callable[[], StudySearch]:
    """Read what the searcher needs (the front for the progress line, the sampler's trials);
    returns the call that builds it, once Ray is up."""
    constraints.settle(study, spec)  # recorded; other constraints than its trials ran under refused
    for line in warm_start.enqueue(study, spec, storage):  # an earlier study's best configs first, once
        opt.echo(line)
    heads = optuna_seam.heads(storage, storage.get_study_id_from_name(spec.name))  # every trial's state and values
    progress = Progress(spec.metric_names, spec.directions, budget,
                        [list(r.values) for r in settings.full_rows(study, heads)],
                        stream=open(os.devnull, "w") if opt.quiet else None)
    sampling = build_sampler(spec, len(heads), launcher.id if launcher.others_alive else None)
    asks = SamplerStorage(storage, sampling.window, owner=launcher.id)  # the study read lean, trials born owned
    asks.warm(spec.name, heads)
    return functools.partial(
        StudySearch,
        space=DefineByRun(spec), metric=spec.metric_names,
        mode=["max" if d == "maximize" else "min" for d in spec.directions], sampler=sampling.sampler,
        study_name=spec.name, storage=asks,
        spec=spec, progress=progress, artifact_store=artifacts.store(opt.artifact_dir or artifacts.artifact_dir()),
        budget=budget, launcher_id=launcher.id, settings_version=version, on_first_ask=on_first_ask,
    )


@contextlib.contextmanager
def _ray_session(spec: StudySpec, opt: Options, ray_start: RayStart) -> Iterator[None]:
    """The Ray started by `ray_start` (local, or the cluster at --ray-address), once it has the
    resources a trial asks for."""
    # Ray warns when the define-by-run call takes over a second; with the GP sampler that call is
    # the model fit (sampling, not training), which is expected
    warnings.filterwarnings("ignore", message="Define-by-run function passed in the `space` argument took")
    ray_start.wait()
    if not opt.verbose:
        ray_seam.set_ray_log_level(logging.ERROR)  # ray.init set its own level on "ray"
        ray_seam.filter_trial_errors(_QuietStorageFailures())
    # checked before the study was opened too; a local Ray can still see fewer cores than the
    # machine has (a container's CPU quota)
    preflight.check_resources(spec, ray.cluster_resources(), "the Ray cluster")
    yield


def _check_resources(spec: StudySpec, opt: Options, ray_start: RayStart) -> None:
    """A trial's resources against this machine, or against the cluster (--ray-address, or a Ray
    this process already runs) once it is up: before the storage is opened."""
    if opt.ray_address or os.environ.get("RAY_ADDRESS") or ray_start.external:  # ray.init joins RAY_ADDRESS too
        ray_start.wait()
        preflight.check_resources(spec, ray.cluster_resources(), "the Ray cluster")
    else:
        preflight.check_resources(spec, preflight.machine_resources(spec), "this machine")


def _fit(spec: StudySpec, searcher: StudySearch, opt: Options, left: int) -> float:
    """Run the Tuner; returns the seconds it took."""
    concurrent = opt.max_concurrent or spec.max_concurrent
    opt.echo(f"running up to {left} trials, {concurrent} at a time, {spec.cpu:g} CPU / {spec.gpu:g} GPU each")
    scheduler = SCHEDULERS.build(spec.scheduler["name"], metrics=spec.metric_names, directions=spec.directions,
                                 max_epochs=int(spec.sections["train"]["epochs"]), constraints=spec.constraints,
                                 **{k: v for k, v in spec.scheduler.items() if k != "name"})
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(opt.trial_fn or trainable, spec=spec),
                            {"cpu": spec.cpu, "gpu": spec.gpu}),
        tune_config=tune.TuneConfig(search_alg=ConcurrencyLimiter(searcher, max_concurrent=concurrent),
                                    scheduler=scheduler, num_samples=-1,  # the searcher ends the run
                                    reuse_actors=True),
        run_config=tune.RunConfig(
            name=spec.name, storage_path=str(RAY_DIR.resolve()), verbose=1 if opt.verbose else 0,
            failure_config=tune.FailureConfig(max_failures=spec.retries, fail_fast=False),
            log_to_file=not opt.verbose,  # trial stdout/stderr go to the experiment folder, not the terminal
        ),
    )
    t0 = time.perf_counter()
    with _sigint_seen() as seen:
        try:
            tuner.fit()
        finally:
            searcher.progress.close()
        interrupted = seen()
    if interrupted:  # Tune ended the run gracefully on Ctrl-C and returned: end it as an interruption
        raise KeyboardInterrupt
    return time.perf_counter() - t0


@contextlib.contextmanager
def _sigint_seen() -> Iterator[Callable[[], bool]]:
    """Whether a SIGINT arrived while Tune ran. Tune's own handler stops the trials cleanly, then
    puts back the handler it found and returns from `fit` as if done: finding our marker handler
    back in place is how the launch learns of it (a second Ctrl-C raises KeyboardInterrupt)."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return

    def marker(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, marker)
    tune_handles = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER", "0") in ("", "0")  # else Ctrl-C reaches marker
    try:
        yield lambda: tune_handles and signal.getsignal(signal.SIGINT) is marker
    finally:
        signal.signal(signal.SIGINT, previous)


def _summary(spec: StudySpec, study: optuna.Study, searcher: StudySearch, budget: int, seconds: float,
             opt: Options) -> None:
    opt.echo(f"done in {seconds:.1f}s: {st.n_complete(study)} COMPLETE of {budget}; "
             f"states {optuna_seam.counts_by_state(study)}")
    if searcher.n_failed:
        opt.echo(f"{searcher.n_failed} trial(s) FAILED; their reasons are in the trial user attribute "
                 f"'{st.ATTR_FAIL_REASON}', their logs under {RAY_DIR.resolve() / spec.name}")
    for line in trust.verdict(study):  # no trial learned anything: say so, and why it may be
        opt.echo(line)
    for line in constraints.verdict(study):  # no trial met the constraints: say so
        opt.echo(line)
    sys.stdout.flush()
