"""Ray Tune orchestration: the one module that knows Ray.

One `hpo launch` = one Tuner run: OptunaSearch (the study in SQL, define-by-run space, both
objectives) behind a ConcurrencyLimiter, function trials with per-trial resources and reused
actors. Only the driver writes to the study; workers just train and report.
"""
from __future__ import annotations

import json
import logging
import math
import os
import pickle
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import optuna

from hpo import artifacts, coordination, notes
from hpo import storage as st
from hpo.progress import Progress
from hpo.space import DefineByRun, build_sampler
from hpo.errors import UserError
from hpo.spec import StudySpec

if TYPE_CHECKING:
    from hpo.train.data import Splits

Echo = Callable[[str], None]
DETAILS = "hpo_details"  # result key carrying a trial's per-class metrics to the driver
FAILED = "hpo_failed"  # result key set when the trial caught its own exception

# Ray's telemetry, its web UI and per-trial JSON/CSV/TensorBoard loggers: none is needed here,
# and the loggers alone cost ~35 ms per trial on 2 cores (DESIGN.md).
_RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
            "RAY_AIR_NEW_OUTPUT": "0", "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "1e9"}


def _make_searcher_class():  # Ray is imported lazily; so is the class that extends it
    from ray.tune.search import Searcher
    from ray.tune.search.optuna import OptunaSearch

    class StudySearch(OptunaSearch):
        """OptunaSearch that keeps the study-wide budget across launchers, stores what a trial
        trained and measured, and never lets a broken result leave a trial RUNNING.

        Stock OptunaSearch tells COMPLETE with the last values even when the trial errored,
        and only logs a warning (leaving the trial RUNNING) when a value is NaN.
        """

        def __init__(self, *args: Any, spec: StudySpec, progress: Progress, artifact_store: Any, budget: int,
                     launcher_id: str, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.spec, self.progress, self.artifact_store = spec, progress, artifact_store
            self.budget, self.launcher_id = budget, launcher_id
            self.n_done = self.n_failed = 0

        def __getstate__(self) -> dict:
            # Ray pickles the searcher into its experiment folder (tuner.pkl, searcher state).
            # The storage, the study and its trials carry the database URL and password, and
            # the database already holds all of it: leave them out.
            return {k: v for k, v in self.__dict__.items() if k not in ("_storage", "_ot_study", "_ot_trials")}

        def save(self, checkpoint_path: str) -> None:
            with open(checkpoint_path, "wb") as f:
                pickle.dump(self.__getstate__(), f)

        def suggest(self, trial_id: str) -> dict | str | None:
            if trial_id in self._ot_trials:
                return super().suggest(trial_id)
            if self.n_failed >= self.spec.max_failed:
                return Searcher.FINISHED  # the space or the machine is broken: stop burning trials
            with coordination.budget_lock(self._storage, self._study_name):
                complete, running = coordination.counts(self._ot_study)
                if complete >= self.budget:
                    return Searcher.FINISHED
                if complete + running >= self.budget:
                    return None  # the running trials may still fill the budget: ask again later
                config = super().suggest(trial_id)
                self._ot_trials[trial_id].set_user_attr(coordination.ATTR_OWNER, self.launcher_id)
            self.progress.trial_started()
            return config

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            if trial_id in self._completed_trials or trial_id not in self._ot_trials:
                return
            ot_trial = self._ot_trials[trial_id]
            values = [result.get(m) for m in self.metric] if result else None
            ot_trial.set_user_attr(st.ATTR_CONFIG, self.spec.trial_config(ot_trial.params))
            ot_trial.set_user_attr("ray_trial_id", trial_id)
            state, reason, stopped_at = optuna.trial.TrialState.COMPLETE, None, None
            if error:  # the worker died or Ray gave up on it: no reason of ours reached the driver
                state, reason, values = optuna.trial.TrialState.FAIL, "worker_error", None
            elif result and result.get(FAILED):
                state, values = optuna.trial.TrialState.FAIL, None
                reason = json.loads(result[DETAILS])[st.ATTR_FAIL_REASON]
            elif values is None or any(v is None or not math.isfinite(v) for v in values):
                state, reason, values = optuna.trial.TrialState.FAIL, f"non_finite_objective {values}", None
            elif DETAILS not in result:
                # only a trial's last report carries DETAILS: the scheduler stopped this one. Its
                # values are partial; it stays COMPLETE (as Ray reports it) but is marked, and
                # export / status / report leave it out
                stopped_at = int(result.get("epoch", 0))
                ot_trial.set_user_attr(st.ATTR_STOPPED_EARLY, stopped_at)
            if result and DETAILS in result:
                for key, value in json.loads(result[DETAILS]).items():
                    ot_trial.set_user_attr(key, value)
            if result and result.get(artifacts.RESULT_KEY):
                try:
                    artifacts.upload(result[artifacts.RESULT_KEY], ot_trial, self.artifact_store)
                except Exception as exc:  # noqa: BLE001 - a full disk must not lose the trial's values
                    self.progress.echo(f"warning: trial {ot_trial.number}: artifacts not stored: {exc}")
            if reason:
                ot_trial.set_user_attr(st.ATTR_FAIL_REASON, reason)
            self.n_failed += state == optuna.trial.TrialState.FAIL
            self._ot_study.tell(ot_trial, values, state=state)
            self._completed_trials.add(trial_id)
            self.n_done += 1
            self.progress.trial_finished(ot_trial.number, state.name, values, reason, stopped_at)

    return StudySearch


def trainable(config: dict[str, Any], spec: StudySpec) -> None:
    """A Ray Tune function trial: sampled params -> full config -> train -> report.

    An exception is reported as a result carrying its reason rather than raised: the study
    records FAIL with that reason, and the reused worker stays alive for the next trial.
    """
    import ray
    import torch
    from ray import tune

    from hpo.train import loop

    torch.set_num_threads(max(1, int(spec.cpu)))  # don't let each trial grab every core
    cfg = spec.trial_config(config)
    try:
        final = loop.run(cfg, report=tune.report)
    except Exception as exc:  # noqa: BLE001 - any trial failure must end as FAIL, not stop the study
        traceback.print_exc()  # into the trial's log under storage/ray/STUDY/
        details = getattr(exc, "details", {})
        reason = getattr(exc, "reason", f"{type(exc).__name__}: {exc}")
        # Ray insists every result carries the objectives: NaN, which the driver turns into FAIL
        tune.report({**{m: float("nan") for m in spec.metric_names}, FAILED: 1,
                     DETAILS: json.dumps({**details, st.ATTR_FAIL_REASON: reason}, default=str)})
        return
    scalars = {k: v for k, v in final.items() if isinstance(v, (int, float, str))}
    scalars["worker_pid"] = os.getpid()  # with data_cached / data_loads: shows a worker's reuse
    scalars["ray_node"] = ray.get_runtime_context().get_node_id()
    # nested values (per-class metrics) travel as one JSON string: Ray flattens nested dicts
    details = {k: final[k] for k in ("per_class", "class_counts", "class_names", "minority", "shot_groups",
                                     "confusion")}
    try:
        files = artifacts.render(final)
    except Exception:  # noqa: BLE001 - plots are a convenience; the values are what counts
        traceback.print_exc()
        files = ""
    tune.report({**scalars, DETAILS: json.dumps({**scalars, **details}), artifacts.RESULT_KEY: files})


def check_before_trials(spec: StudySpec) -> "Splits":
    """Bad data or an unknown timm architecture fail here, once, not in every trial."""
    from hpo.train import data

    from hpo.train.metrics import resolve_minority

    splits = data.prepare(spec.fixed_config()["data"])
    minority = resolve_minority(spec.minority, splits.class_counts, splits.class_names)  # checks names
    if not minority and "minority_f1" in spec.metric_names:
        raise UserError(f"{spec.path}: no class has fewer training images than the mean "
                        f"(counts {splits.class_counts}), so minority_f1 is undefined; list the classes to "
                        "watch with `minority: [...]` (indices or names) or cut a long tail with data.longtail")
    if spec.sections["model"]["name"] == "timm":
        from hpo.train.models import check_timm_arch

        check_timm_arch(spec.sections["model"].get("arch", "resnet18"), where=f"{spec.path}: model.arch")
    return splits


def _scheduler(spec: StudySpec) -> Any:
    if spec.scheduler["name"] != "mo_asha":
        return None  # Tune's default: every trial runs all its epochs
    from hpo.scheduler import ray_scheduler

    return ray_scheduler(spec.metric_names, spec.directions, int(spec.sections["train"]["epochs"]),
                         int(spec.scheduler["grace_epochs"]), int(spec.scheduler["eta"]))


@dataclass(frozen=True)
class LaunchResult:
    study: optuna.Study
    ran: int  # trials this launch started
    failed: int  # of which ended FAIL


def launch(spec: StudySpec, url: str, n_trials: int | None = None, max_concurrent: int | None = None,
           ray_address: str | None = None, verbose: bool = False, quiet: bool = False,
           trial_fn: Callable[..., None] | None = None, artifact_dir: Path | None = None) -> LaunchResult:
    """Run trials until the study has `n_trials` (study-wide) COMPLETE trials.

    Trials that FAIL are replaced (up to budget.max_failed per launch); RUNNING trials of a
    launcher that is gone are swept first (coordination.sweep). `trial_fn` replaces the training function (same signature as `trainable`): bench/overhead.py
    uses it to time the service around trials that do nothing.
    """
    echo: Echo = (lambda line: None) if quiet else print
    if not verbose:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = st.open_storage(url)
    splits = check_before_trials(spec)
    study = st.open_study(spec, storage)
    # what the long-tail cut produced, for the dashboard and for readers of the study
    study.set_user_attr("class_counts", splits.class_counts)
    study.set_user_attr("class_names", list(splits.class_names))
    study.set_user_attr("split_sizes", {"train": len(splits.train.y), "val": len(splits.val.y),
                                        "test": len(splits.test.y)})
    notes.save(study, spec, splits)
    swept = coordination.sweep(study)
    if swept:
        echo(f"trials {swept} were left RUNNING by a launcher that is gone: marked FAIL (launcher_lost), "
             "their parameters queued once more")
    budget = n_trials or spec.n_trials
    done = st.n_complete(study)
    echo(f"study {spec.name!r} in {st.redact(url)}: {done} COMPLETE of a budget of {budget}")
    if done >= budget:
        echo("budget already reached; raise --n-trials to run more")
        return LaunchResult(study, 0, 0)

    launcher = coordination.Launcher(study)
    try:
        return _run(spec, url, storage, study, launcher, budget, max_concurrent, ray_address, verbose, quiet,
                    echo, trial_fn, artifact_dir)
    finally:
        launcher.stop()


def _run(spec: StudySpec, url: str, storage: optuna.storages.RDBStorage, study: optuna.Study,
         launcher: coordination.Launcher, budget: int, max_concurrent: int | None, ray_address: str | None,
         verbose: bool, quiet: bool, echo: Echo, trial_fn: Callable[..., None] | None,
         artifact_dir: Path | None) -> LaunchResult:
    if launcher.others_alive and storage.engine.dialect.name == "sqlite":
        echo(f"WARNING: {len(launcher.others_alive)} other launcher(s) are running on study {spec.name!r} in "
             "this SQLite file; SQLite takes one writer at a time and cannot lock the budget between "
             "launchers: use PostgreSQL (--storage postgresql://...) for several launchers")
    for k, v in _RAY_ENV.items():
        os.environ.setdefault(k, v)
    import ray
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter

    concurrent = max_concurrent or spec.max_concurrent
    prior = [t.values for t in st.full_trials(study)]
    progress = Progress(spec.metric_names, spec.directions, budget, prior,
                        stream=open(os.devnull, "w") if quiet else None)
    searcher = _make_searcher_class()(
        space=DefineByRun(spec), metric=spec.metric_names,
        mode=["max" if d == "maximize" else "min" for d in spec.directions],
        sampler=build_sampler(spec, len(study.trials)), study_name=spec.name, storage=storage,
        spec=spec, progress=progress, artifact_store=artifacts.store(artifact_dir or artifacts.artifact_dir()),
        budget=budget, launcher_id=launcher.id,
    )
    # Ray warns when the define-by-run call takes over a second; with the GP sampler that call is
    # the model fit (sampling, not training), which is expected
    warnings.filterwarnings("ignore", message="Define-by-run function passed in the `space` argument took")
    level = logging.INFO if verbose else logging.ERROR
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=ray_address, include_dashboard=False, logging_level=level, log_to_driver=verbose,
                 configure_logging=True)
    if not verbose:
        for name in ("ray", "ray.tune", "ray.train", "ray.air"):
            logging.getLogger(name).setLevel(logging.ERROR)
    have = ray.cluster_resources()
    for kind, want in (("CPU", spec.cpu), ("GPU", spec.gpu)):
        if want > have.get(kind, 0):  # Ray would leave every trial PENDING, forever
            if started_here:
                ray.shutdown()
            raise UserError(f"{spec.path}: resources.{kind.lower()} = {want:g} per trial, but the Ray cluster "
                            f"has {have.get(kind, 0):g} {kind}(s); lower it, or join a cluster that has them "
                            "(--ray-address)")
    t0 = time.perf_counter()
    echo(f"running up to {budget - st.n_complete(study)} trials, {concurrent} at a time, "
         f"{spec.cpu:g} CPU / {spec.gpu:g} GPU each")
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(trial_fn or trainable, spec=spec), {"cpu": spec.cpu, "gpu": spec.gpu}),
        tune_config=tune.TuneConfig(search_alg=ConcurrencyLimiter(searcher, max_concurrent=concurrent),
                                    scheduler=_scheduler(spec), num_samples=-1,  # the searcher ends the run
                                    reuse_actors=True),
        run_config=tune.RunConfig(
            name=spec.name, storage_path=str(Path("storage/ray").resolve()), verbose=1 if verbose else 0,
            failure_config=tune.FailureConfig(max_failures=spec.retries, fail_fast=False),
            log_to_file=not verbose,  # trial stdout/stderr go to the experiment folder, not the terminal
        ),
    )
    try:
        tuner.fit()
    finally:
        progress.close()
        if started_here:
            ray.shutdown()
    study = optuna.load_study(study_name=spec.name, storage=storage)
    echo(f"done in {time.perf_counter() - t0:.1f}s: {st.n_complete(study)} COMPLETE of {budget}; "
         f"states {st.counts_by_state(study)}")
    if searcher.n_failed:
        echo(f"{searcher.n_failed} trial(s) FAILED; their reasons are in the trial user attribute "
             f"'{st.ATTR_FAIL_REASON}', their logs under {Path('storage/ray').resolve() / spec.name}")
    sys.stdout.flush()
    return LaunchResult(study, searcher.n_done, searcher.n_failed)
