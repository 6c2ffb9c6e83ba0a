"""`hpo launch` starts Ray on a thread (hpo.tune.ray_start) while it reads the study; what the
launch does meanwhile must not touch Ray."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from hpo.spec import load_spec
from hpo.tune import launch as launch_mod
from hpo.tune.outcome import DETAILS
from hpo.tune.ray_start import RayStart
from hpo.views import notes
from conftest import write_study



class SlowRayStart(RayStart):
    """Ray coming up after the study is read, as on a busy 2-core machine; notes when `wait`
    returned."""

    def __init__(self, events: list[str]) -> None:
        self.events = events
        super().__init__()

    def _init(self, kwargs: dict) -> None:
        time.sleep(2.0)
        super()._init(kwargs)

    def wait(self) -> None:
        super().wait()
        self.events.append("ray up")


def test_the_searcher_is_built_only_once_ray_is_up(tmp_path: Path, monkeypatch) -> None:
    # Tune's Searcher records a Ray usage tag when built; `ray.init`'s last step iterates over
    # those tags on RayStart's thread without a lock, and a launch whose searcher was built in
    # that moment died with "dictionary changed size during iteration"
    events: list[str] = []
    built = launch_mod.StudySearch.__init__

    def init(self, *args, **kwargs) -> None:
        events.append("searcher built")
        built(self, *args, **kwargs)

    def noop_trial(config: dict, spec) -> None:
        from ray import tune

        tune.report({"minority_f1": 0.5, "macro_acc": 0.5, DETAILS: json.dumps({})})

    monkeypatch.setattr(launch_mod.StudySearch, "__init__", init)
    write = notes._write

    def write_note(study, text: str, digest: str) -> None:  # the new study's note: after its first trial is asked
        events.append(f"note written, {len(study.get_trials(deepcopy=False))} trial(s) asked")
        write(study, text, digest)

    monkeypatch.setattr(notes, "_write", write_note)
    spec = load_spec(write_study(tmp_path / "spaces", "ray_start", budget={"n_trials": 1, "max_concurrent": 1}))
    result = launch_mod.launch(spec, f"sqlite:///{tmp_path / 'studies.db'}", quiet=True, trial_fn=noop_trial,
                               ray_start=SlowRayStart(events), artifact_dir=tmp_path / "artifacts")
    assert events == ["ray up", "searcher built", "note written, 1 trial(s) asked"]
    assert result.ran == 1 and result.failed == 0
