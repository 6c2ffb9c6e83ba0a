"""Studies on a real SQLite file: created once, resumed by name, refused when the spec changed."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import SPACES
from hpo.errors import UserError
from hpo.spec import parse_spec
from hpo.study import storage as st


def spec(**search: dict) -> object:
    raw = yaml.safe_load((SPACES / "cb_focal_beta.yaml").read_text())
    raw["search"].update(search)
    return parse_spec(raw, "cb_focal_beta.yaml")


def test_create_then_resume_keeps_trials_and_records_objectives(sqlite_url: str) -> None:
    storage = st.open_storage(sqlite_url)
    study = st.open_study(spec(), storage)
    study.add_trial(__import__("optuna").trial.create_trial(values=[0.5, 0.6]))
    again = st.open_study(spec(), st.open_storage(sqlite_url))
    assert len(again.trials) == 1 and again.metric_names == ["minority_f1", "macro_acc"]
    assert again.user_attrs[st.ATTR_OBJECTIVES][0] == {"name": "minority_f1", "direction": "maximize"}
    assert st.load_study(storage, "cb_focal_beta").study_name == "cb_focal_beta"


def test_resume_with_other_choices_is_refused_showing_the_difference(sqlite_url: str) -> None:
    st.open_study(spec(), st.open_storage(sqlite_url))
    with pytest.raises(UserError, match=r"batch_size: was .*16, 32, 64.*now .*16, 32"):
        st.open_study(spec(batch_size={"choices": [16, 32]}), st.open_storage(sqlite_url))


def test_unknown_study_and_missing_folder_are_user_errors(tmp_path: Path, sqlite_url: str) -> None:
    with pytest.raises(UserError, match=r"no study 'nope'"):
        st.load_study(st.open_storage(sqlite_url), "nope")
    with pytest.raises(UserError, match=r"does not exist; create it first"):
        st.open_storage(f"sqlite:///{tmp_path / 'no' / 'such.db'}")


def test_a_password_never_reaches_a_message() -> None:
    assert "s3cret" not in st.redact("postgresql://u:s3cret@localhost/db")
