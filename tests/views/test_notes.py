"""The study note is written when its text changes, not at every launch."""
from __future__ import annotations

from pathlib import Path

import optuna
import pytest
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


def test_a_later_note_is_written_on_a_thread_once_started_or_at_finish(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load_spec(write_study(tmp_path, "later"))
    data = DataSummary.of(check_study(spec))
    study = optuna.create_study(directions=["maximize", "maximize"])
    note = notes.Later(study, spec, data)
    assert optuna_dashboard.get_note(study) == ""  # nothing written before `start` (the launch's first ask)
    note.start()
    note.finish()
    assert "# later" in optuna_dashboard.get_note(study)
    unchanged = notes.Later(study, spec, data)  # a relaunch: nothing to write, no thread
    unchanged.start()
    assert unchanged._thread is None
    unchanged.finish()

    other = optuna.create_study(directions=["maximize", "maximize"])
    notes.Later(other, spec, data).finish()  # a launch that asked no trial still leaves the note
    assert "# later" in optuna_dashboard.get_note(other)

    def full(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(notes, "_write", full)
    failing = notes.Later(optuna.create_study(directions=["maximize", "maximize"]), spec, data)
    failing.start()
    failing.join()  # a launch ending on another error waits for the write without raising its error
    with pytest.raises(OSError, match="disk full"):
        failing.finish()


def test_the_note_shows_the_constraints_and_how_many_trials_missed_each(tmp_path: Path, sqlite_url: str) -> None:
    """As the report does: the constraint, and the count of full trials that missed it, updated as trials finish."""
    from hpo.study import constraints
    from hpo.study import storage as st

    spec = load_spec(write_study(tmp_path, "bounded", constraints=[{"metric": "macro_acc", "min": 0.5}]))
    data = DataSummary.of(check_study(spec))
    study = st.open_study(spec, st.open_storage(sqlite_url))
    constraints.settle(study, spec)
    notes.save(study, spec, data)
    before = optuna_dashboard.get_note(study)
    assert "- constraints: macro_acc >= 0.5" in before and "missed" not in before  # no trial yet: none to count
    for acc in (0.3, 0.7, 0.2):
        trial = study.ask()
        trial.suggest_float("x", 0, 1)
        for k, v in constraints.record(trial, spec.constraints, {"macro_acc": acc}).items():
            trial.set_user_attr(k, v)
        study.tell(trial, [acc, acc])
    notes.save(study, spec, data)  # a relaunch: the study file is unchanged, the trials are not
    note = optuna_dashboard.get_note(study)
    assert "## Constraints\n\n- constraints: macro_acc >= 0.5\n" in note
    assert "- 2 of 3 COMPLETE trials missed a constraint" in note and "macro_acc >= 0.5: 2" in note
