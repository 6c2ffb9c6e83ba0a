"""The storage a launch's searcher asks through: Optuna's RDB storage, with the trials its
sampler reads fetched lean and kept.

Every `study.ask` reads the study's trials (`get_all_trials`): Optuna's WAITING queue, then the
sampler's history. Optuna's own cache (`_CachedStorage`, which Optuna puts over an RDBStorage)
loads each trial whole the first time, user attributes included; an hpo trial carries its
config, per-class metrics and confusion matrix there, so on a long study the first ask of a
launch spends its time in ORM rows and JSON. Here a finished trial is read
once, without user attributes (no sampler reads them), through hpo.study.optuna_seam; unfinished
trials are read again at each call, as Optuna's cache does. A trial read alone (`get_trial`,
three times an ask and tell) is read whole, user attributes too, by the same plain queries,
which are lighter than Optuna's ORM; every write goes to the RDB storage unchanged. Only
`get_all_trials` leaves user attributes out.

A long study can also be shown to the sampler through a window (`sampler.window` in the study
file): the last N finished trials, plus every COMPLETE trial on the Pareto front of the whole
study (kept exact as trials arrive, so a good old trial is never forgotten), plus every
unfinished one. A Gaussian process's cost grows with the trials it sees, so `gp` looks at a
window of 500 by default, where TPE sees every trial (figures: docs/benchmarks.md,
bench/storage_scale.py --sampler-cost).
"""
from __future__ import annotations

import copy
import threading
from datetime import datetime
from collections.abc import Container, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.storages import BaseStorage, RDBStorage
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from hpo.study import optuna_seam, pareto
from hpo.study.coordination import ATTR_OWNER


class _Seen:
    """One study's trials as last read: finished ones are final, unfinished ones are re-read."""

    def __init__(self) -> None:
        self.trials: dict[int, FrozenTrial] = {}  # by number
        self.unfinished: set[int] = set()  # trial ids
        self.last_finished = -1  # trial id: every trial up to it was read once finished or is in `unfinished`
        self.front: list[FrozenTrial] = []  # COMPLETE trials no other COMPLETE one dominates


class SamplerStorage(BaseStorage):
    """`backend` for everything, but `get_all_trials`: lean and cached, through a window of the
    last `window` finished trials and the front when `window` is over 0 (see the module)."""

    def __init__(self, backend: RDBStorage, window: int = 0, owner: str | None = None) -> None:
        """`owner`: the launcher id each trial this storage creates carries from its first row on
        (hpo.study.coordination.ATTR_OWNER), in the same transaction."""
        self.backend, self.window, self.owner = backend, window, owner
        self._seen: dict[int, _Seen] = {}
        self._lock = threading.Lock()
        self._directions: dict[int, list[StudyDirection]] = {}  # fixed at creation; asked several times an ask

    @property
    def engine(self) -> Any:
        return self.backend.engine

    def get_all_trials(self, study_id: int, deepcopy: bool = True,
                       states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        trials = [t for t in self._read(study_id) if states is None or t.state in states]
        return copy.deepcopy(trials) if deepcopy else trials

    def warm(self, study_name: str, heads: list[optuna_seam.Row] | None = None) -> None:
        """Read the study's trials now, so that the first ask reads only what changed since (the
        launch calls this while Ray starts: hpo.tune.ray_start). `heads`: the study's
        `optuna_seam.heads`, when the caller has them (the launch reads them for its progress line)."""
        self._read(self.get_study_id_from_name(study_name), heads)

    def _read(self, study_id: int, heads: list[optuna_seam.Row] | None = None) -> list[FrozenTrial]:
        with self._lock:
            first = study_id not in self._seen
            seen = self._seen.setdefault(study_id, _Seen())
            also = self._first_window(study_id, seen, heads) if self.window and first else seen.unfinished
            done = []
            for trial in optuna_seam.sampler_trials(self.backend, study_id, seen.last_finished, also):
                seen.trials[trial.number] = trial
                if trial.state.is_finished():
                    seen.unfinished.discard(optuna_seam.trial_id(trial))
                    seen.last_finished = max(seen.last_finished, optuna_seam.trial_id(trial))
                    done.append(trial)
                else:
                    seen.unfinished.add(optuna_seam.trial_id(trial))
            trials = [t for _, t in sorted(seen.trials.items())]
            return self._through_window(study_id, seen, done, trials) if self.window else trials

    def _first_window(self, study_id: int, seen: _Seen, heads: list[optuna_seam.Row] | None) -> set[int]:
        """The first read through a window: ids and values of every trial, then (the caller) only
        the trials the window shows, whole: the last `window` finished ones, the front, the
        unfinished ones. Every other finished trial can never be shown again (the window only moves
        on; a dominated trial stays dominated), so it is passed over for good and never read whole
        (figures: docs/benchmarks.md)."""
        heads = optuna_seam.heads(self.backend, study_id) if heads is None else heads
        finished = [h for h in heads if h.state.is_finished()]
        if len(finished) <= self.window:
            return seen.unfinished  # every trial is shown: read them all
        complete = [h for h in finished if h.state == TrialState.COMPLETE and h.values]
        front = pareto.nondominated(complete, pareto.signs(self.get_study_directions(study_id)))
        seen.last_finished = max(h.trial_id for h in finished)
        return ({h.trial_id for h in finished[-self.window:]} | {h.trial_id for h in front}
                | {h.trial_id for h in heads if not h.state.is_finished()})

    def _through_window(self, study_id: int, seen: _Seen, new: list[FrozenTrial],
                        trials: list[FrozenTrial]) -> list[FrozenTrial]:
        complete = [t for t in new if t.state == TrialState.COMPLETE]
        if complete:  # a trial off the front never comes back onto it: the front of front + new is exact
            seen.front = pareto.nondominated(seen.front + complete, pareto.signs(self.get_study_directions(study_id)))
        finished = [t.number for t in trials if t.state.is_finished()]
        if len(finished) <= self.window:
            return trials
        keep = set(finished[-self.window:]) | {t.number for t in seen.front}
        return [t for t in trials if t.number in keep or not t.state.is_finished()]

    # everything else: the RDB storage itself
    def create_new_study(self, directions: Sequence[StudyDirection], study_name: str | None = None) -> int:
        return self.backend.create_new_study(directions, study_name)

    def delete_study(self, study_id: int) -> None:
        self.backend.delete_study(study_id)

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        self.backend.set_study_user_attr(study_id, key, value)

    def set_study_system_attr(self, study_id: int, key: str, value: Any) -> None:
        self.backend.set_study_system_attr(study_id, key, value)

    def get_study_id_from_name(self, study_name: str) -> int:
        return self.backend.get_study_id_from_name(study_name)

    def get_study_name_from_id(self, study_id: int) -> str:
        return self.backend.get_study_name_from_id(study_id)

    def get_study_directions(self, study_id: int) -> list[StudyDirection]:
        if study_id not in self._directions:
            self._directions[study_id] = self.backend.get_study_directions(study_id)
        return list(self._directions[study_id])

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        return self.backend.get_study_user_attrs(study_id)

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        return self.backend.get_study_system_attrs(study_id)

    def get_all_studies(self) -> list[optuna.study.StudySummary | Any]:
        return self.backend.get_all_studies()

    def set_trial_param(self, trial_id: int, param_name: str, param_value_internal: float,
                        distribution: BaseDistribution) -> None:
        self.backend.set_trial_param(trial_id, param_name, param_value_internal, distribution)

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        if template_trial is None and self.owner is not None:
            # born owned: a launcher killed while its sampler works (seconds, with GP) leaves a
            # trial the next launch sweeps at once, not one without an owner that waits out a
            # stale heartbeat (coordination._orphans)
            template_trial = FrozenTrial(
                number=-1, state=TrialState.RUNNING, value=None, values=None, datetime_start=datetime.now(),
                datetime_complete=None, params={}, distributions={}, user_attrs={ATTR_OWNER: self.owner},
                system_attrs={}, intermediate_values={}, trial_id=-1)
        trial_id = self.backend.create_new_trial(study_id, template_trial)
        with self._lock:
            self._seen.setdefault(study_id, _Seen()).unfinished.add(trial_id)  # read at the next call
        return trial_id

    def get_trial_id_from_study_id_trial_number(self, study_id: int, trial_number: int) -> int:
        return self.backend.get_trial_id_from_study_id_trial_number(study_id, trial_number)

    def set_trial_state_values(self, trial_id: int, state: TrialState, values: Sequence[float] | None = None) -> bool:
        return self.backend.set_trial_state_values(trial_id, state=state, values=values)

    def set_trial_intermediate_value(self, trial_id: int, step: int, intermediate_value: float) -> None:
        self.backend.set_trial_intermediate_value(trial_id, step, intermediate_value)

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        self.backend.set_trial_user_attr(trial_id, key, value)

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        self.backend.set_trial_system_attr(trial_id, key, value)

    def get_trial(self, trial_id: int) -> FrozenTrial:
        return optuna_seam.trial(self.backend, trial_id)  # whole, user attributes too

    def get_trial_user_attrs(self, trial_id: int) -> dict[str, Any]:
        return self.backend.get_trial_user_attrs(trial_id)

    def get_trial_system_attrs(self, trial_id: int) -> dict[str, Any]:
        return self.backend.get_trial_system_attrs(trial_id)

    def get_best_trial(self, study_id: int) -> FrozenTrial:
        return self.backend.get_best_trial(study_id)

    def remove_session(self) -> None:
        self.backend.remove_session()
