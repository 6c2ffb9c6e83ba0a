"""The study note is written when its text changes, not at every launch."""
from __future__ import annotations

from pathlib import Path

import optuna
import optuna_dashboard

from conftest import write_study
from hpo.spec import load_spec
from hpo.train.preflight import DataSummary, check_study
from hpo.views import notes


def test_the_note_is_rewritten_only_when_its_text_changes(tmp_path: Path) -> None:
    spec = load_spec(write_study(tmp_path, "noted"))
    data = DataSummary.of(check_study(spec))
    study = optuna.create_study(directions=["maximize", "maximize"])
    notes.save(study, spec, data)
    assert "# noted" in optuna_dashboard.get_note(study)
    optuna_dashboard.save_note(study, "edited in the dashboard")
    notes.save(study, spec, data)  # a relaunch of the same study file on the same data: left alone
    assert optuna_dashboard.get_note(study) == "edited in the dashboard"
    changed = load_spec(write_study(tmp_path, "noted", description="another description"))
    notes.save(study, changed, data)
    assert "another description" in optuna_dashboard.get_note(study)
