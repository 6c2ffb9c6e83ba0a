"""`hpo studies` and `hpo delete`: what a storage holds, and removing a study with what belongs to it
(its trials' files in the artifact store, its Ray experiment folder)."""
from __future__ import annotations

import datetime as dt
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.artifacts import get_all_artifact_meta

from hpo.errors import UserError
from hpo.study import coordination


@dataclass
class Summary:
    name: str
    directions: list[str]
    counts: dict[str, int]  # trials by state name
    last_activity: dt.datetime | None  # newest datetime_complete / datetime_start of its trials
    live_launchers: int

    @property
    def n_trials(self) -> int:
        return sum(self.counts.values())


def summaries(storage: optuna.storages.BaseStorage) -> list[Summary]:
    out = []
    for s in optuna.get_all_study_summaries(storage, include_best_trial=False):
        sid = storage.get_study_id_from_name(s.study_name)
        trials = storage.get_all_trials(sid, deepcopy=False)
        stamps = [t.datetime_complete or t.datetime_start for t in trials]
        records = coordination.launchers_in(storage.get_study_user_attrs(sid))
        out.append(Summary(s.study_name, [d.name.lower() for d in storage.get_study_directions(sid)],
                           dict(Counter(t.state.name for t in trials)),
                           max((x for x in stamps if x is not None), default=None),
                           sum(coordination.launcher_alive(v) for v in records.values())))
    return out


@dataclass
class Removal:
    """What deleting a study removes."""
    storage: optuna.storages.BaseStorage
    study: optuna.Study
    n_trials: int
    artifact_files: list[Path] = field(default_factory=list)
    ray_dir: Path | None = None


def holders(study: optuna.Study) -> list[str]:
    """The live launchers of the study, as 'id (host HOST, pid PID)'."""
    return [f"{k} (host {v.get('host')}, pid {v.get('pid')})"
            for k, v in coordination.launchers(study).items() if coordination.launcher_alive(v)]


def plan(storage: optuna.storages.BaseStorage, study: optuna.Study, artifact_dir: Path, ray_dir: Path) -> Removal:
    trials = study.get_trials(deepcopy=False)
    metas = get_all_artifact_meta(study) + [m for t in trials
                                            for m in get_all_artifact_meta(t, storage=storage)]
    files = [artifact_dir / m.artifact_id for m in metas if (artifact_dir / m.artifact_id).is_file()]
    folder = ray_dir / study.study_name
    return Removal(storage, study, len(trials), files, folder if folder.is_dir() else None)


def check_free(study: optuna.Study) -> None:
    """UserError (exit 2) while a live launcher holds the study."""
    live = holders(study)
    if live:
        raise UserError(f"study {study.study_name!r} is in use by launcher {', '.join(live)}; stop it first "
                        f"(a launcher that died counts as gone {coordination.STALE_AFTER_S:.0f} s after its "
                        "last heartbeat, at once on its own host)")


def delete(removal: Removal) -> None:
    """The study goes first (refused while a launcher holds it), then its files."""
    study = removal.study
    check_free(study)
    optuna.delete_study(study_name=study.study_name, storage=removal.storage)
    for path in removal.artifact_files:
        path.unlink(missing_ok=True)
    if removal.ray_dir is not None:
        shutil.rmtree(removal.ray_dir)
