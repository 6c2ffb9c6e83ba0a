"""The searcher Ray Tune asks for each trial's parameters: OptunaSearch on the study in SQL,
plus the study-wide budget, the trial's record (config, metrics, artifacts) and hpo's outcome rule."""
from __future__ import annotations

import json
import pickle
from typing import Any, Callable

from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from hpo.spec import StudySpec
from hpo.study import constraints, coordination, optuna_seam
from hpo.study import storage as st
from hpo.study.settings import ATTR_TRIAL_VERSION
from hpo.tune import ray_seam
from hpo.tune.outcome import DETAILS, decide
from hpo.views import artifacts
from hpo.views.progress import Progress


class StudySearch(OptunaSearch):
    """OptunaSearch that keeps the study-wide budget across launchers, stores what a trial
    trained and measured, and never lets a broken result leave a trial RUNNING."""

    def __init__(self, *args: Any, spec: StudySpec, progress: Progress, artifact_store: Any, budget: int,
                 launcher_id: str, settings_version: int = 0, on_first_ask: Callable[[], None] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec, self.progress, self.artifact_store = spec, progress, artifact_store
        self.budget, self.launcher_id = budget, launcher_id
        self.n_done = self.n_failed = 0
        self.settings_version = settings_version  # hpo.study.settings: the fixed settings this launch trains under
        self.on_first_ask = on_first_ask  # called once, after the launch's first trial is asked

    def __getstate__(self) -> dict:
        # Ray pickles the searcher into its experiment folder (tuner.pkl, searcher state). The
        # storage, the study and its trials carry the database URL and password, and the
        # database already holds all of it: leave them out.
        return ray_seam.picklable_state(self, leave_out=("on_first_ask",))

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__getstate__(), f)

    def suggest(self, trial_id: str) -> dict | str | None:
        if trial_id in ray_seam.asked(self):
            return super().suggest(trial_id)
        if self.n_failed >= self.spec.max_failed:
            return Searcher.FINISHED  # the space or the machine is broken: stop burning trials
        with coordination.budget_lock(ray_seam.ot_storage(self), ray_seam.study_name(self)):
            complete, running = coordination.counts(ray_seam.ot_study(self))
            if complete >= self.budget:
                return Searcher.FINISHED
            if complete + running >= self.budget:
                return None  # the running trials may still fill the budget: ask again later
            config = super().suggest(trial_id)
            ray_seam.asked(self)[trial_id].set_user_attr(coordination.ATTR_OWNER, self.launcher_id)
        self.progress.trial_started()
        if self.on_first_ask is not None:
            self.on_first_ask, first = None, self.on_first_ask
            first()
        return config

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        asked, told = ray_seam.asked(self), ray_seam.told(self)
        if trial_id in told or trial_id not in asked:
            return
        ot_trial = asked[trial_id]
        outcome = decide(result, error, self.metric)
        attrs = {st.ATTR_CONFIG: self.spec.trial_config(ot_trial.params), "ray_trial_id": trial_id}
        if self.settings_version:  # readers take a trial without it as version 0
            attrs[ATTR_TRIAL_VERSION] = self.settings_version
        if outcome.stopped_at is not None:
            attrs[st.ATTR_STOPPED_EARLY] = outcome.stopped_at
        if result and DETAILS in result:
            attrs.update(json.loads(result[DETAILS]))
        if outcome.reason:
            attrs[st.ATTR_FAIL_REASON] = outcome.reason
        if outcome.state.name == "COMPLETE":  # told before its values: the sampler learns the feasible region
            attrs.update(constraints.record(ot_trial, self.spec.constraints, {**(result or {}), **attrs}))
        self._store_artifacts(ot_trial, result)
        # one transaction for all of them (a dozen on a trained trial) rather than one each
        optuna_seam.set_user_attrs(ot_trial, attrs)
        self.n_failed += outcome.failed
        ray_seam.ot_study(self).tell(ot_trial, outcome.values, state=outcome.state)
        told.add(trial_id)
        self.n_done += 1
        self.progress.trial_finished(ot_trial.number, outcome.state.name, outcome.values, outcome.reason,
                                     outcome.stopped_at)

    def end_unfinished(self, reason: str, requeue: bool = False) -> tuple[list[int], list[int]]:
        """After a storage failure ends the launch: mark the trials this launcher asked for and never
        told as FAIL with `reason`, so no trial stays RUNNING because hpo itself stopped. Best effort,
        as the storage has just refused a write: returns (numbers ended, numbers it could not end);
        those stay RUNNING under a launcher that is gone, which `hpo status` shows and the next
        launch sweeps. With `requeue` their parameters are queued once more, for the next launch."""
        from optuna.trial import TrialState

        st.release_log_space(ray_seam.ot_storage(self))  # SQLite: the WAL's space first, or this write fails too
        ended: list[int] = []
        left: list[int] = []
        study, told = ray_seam.ot_study(self), ray_seam.told(self)
        for trial_id, ot_trial in ray_seam.asked(self).items():
            if trial_id in told:
                continue
            try:
                ot_trial.set_user_attr(st.ATTR_FAIL_REASON, reason)
                study.tell(ot_trial, state=TrialState.FAIL)
                ended.append(ot_trial.number)
                if requeue and ot_trial.params and coordination.ATTR_RETRY_OF not in ot_trial.user_attrs:
                    study.enqueue_trial(ot_trial.params, user_attrs={coordination.ATTR_RETRY_OF: ot_trial.number},
                                        skip_if_exists=False)
            except Exception:  # noqa: BLE001 - still full: leave it to the sweep, say so
                left.append(ot_trial.number)
        return ended, left

    def _store_artifacts(self, ot_trial: Any, result: dict | None) -> None:
        if not (result and result.get(artifacts.RESULT_KEY)):
            return
        try:
            artifacts.upload(result[artifacts.RESULT_KEY], ot_trial, self.artifact_store)
        except Exception as exc:  # noqa: BLE001 - a full disk must not lose the trial's values
            self.progress.echo(f"warning: trial {ot_trial.number}: artifacts not stored: {exc}")
