"""Studies on a real SQLite file: created once, resumed by name, refused when the spec changed."""
from __future__ import annotations

import socket
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


def test_a_study_created_by_another_launcher_between_the_check_and_the_create_is_resumed(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two launchers started together on a new study: both see no study, one creates it; the
    other's create fails (DuplicatedStudyError) and it resumes the study, checks included."""
    first = st.open_study(spec(), st.open_storage(sqlite_url))
    monkeypatch.setattr(st, "study_names", lambda storage: [])  # the name check ran before the create
    second = st.open_study(spec(), st.open_storage(sqlite_url))
    assert second._study_id == first._study_id
    with pytest.raises(UserError, match=r"batch_size: was"):
        st.open_study(spec(batch_size={"choices": [16, 32]}), st.open_storage(sqlite_url))


def test_unknown_study_and_missing_folder_are_user_errors(tmp_path: Path, sqlite_url: str) -> None:
    with pytest.raises(UserError, match=r"no study 'nope'"):
        st.load_study(st.open_storage(sqlite_url), "nope")
    with pytest.raises(UserError, match=r"does not exist; create it first"):
        st.open_storage(f"sqlite:///{tmp_path / 'no' / 'such.db'}")


def test_a_password_never_reaches_a_message() -> None:
    assert "s3cret" not in st.redact("postgresql://u:s3cret@localhost/db")


SENTINEL = "Zq9-sentinel-pw"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again on leaving: nothing listens there


@pytest.mark.parametrize("url", [
    f"postgresql://u:{SENTINEL}@localhost/db",
    f"postgresql://u@localhost/db?password={SENTINEL}",
    f"postgresql://u@localhost/db?sslmode=require&PassWord={SENTINEL}",
    f"postgresql://u@localhost/db?password={SENTINEL}&password={SENTINEL}2",
])
def test_redact_hides_a_password_in_userinfo_and_in_the_query(url: str) -> None:
    shown = st.redact(url)
    assert SENTINEL not in shown and "***" in shown and "localhost/db" in shown


def test_redact_keeps_other_query_parameters() -> None:
    assert st.redact(f"postgresql://u@h/db?sslmode=require&password={SENTINEL}") == \
        "postgresql://u@h/db?password=***&sslmode=require"


@pytest.mark.parametrize("form", ["userinfo", "query"])
def test_unreachable_server_error_never_shows_the_password(form: str) -> None:
    port = closed_port()
    url = (f"postgresql://hpo:{SENTINEL}@127.0.0.1:{port}/hpo" if form == "userinfo"
           else f"postgresql://hpo@127.0.0.1:{port}/hpo?password={SENTINEL}")
    with pytest.raises(UserError) as err:
        st.open_storage(url)
    assert "storage: cannot open" in str(err.value) and f"127.0.0.1:{port}" in str(err.value)
    assert SENTINEL not in str(err.value), str(err.value)


def test_scrub_removes_a_query_password_from_a_drivers_message() -> None:
    url = f"postgresql://u@h/db?password={SENTINEL}%21"
    assert st.scrub(f"auth failed for password '{SENTINEL}!' ({SENTINEL}%21)", url) == "auth failed for password '***' (***)"


def test_a_bad_url_from_the_environment_never_shows_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(st.ENV_VAR, f"postgresql://u@h:notaport/db?password={SENTINEL}")
    with pytest.raises(UserError) as err:
        st.resolve_url()
    assert SENTINEL not in str(err.value) and "not a SQLAlchemy URL" in str(err.value)


# --- passwords with the characters URLs give meaning to: @ : / % ---

PASSWORDS = {"at": "p@ssw0rd!x", "colon": "pa:ss:w0rd", "slash": "pa/ss/w0rd", "percent": "pa%ss%w0rd",
             "all": "a@b:c/d%e-w0rd"}


def _parts(pw: str) -> list[str]:
    """The password and every piece of it a parser might split off (none may show)."""
    import re

    return [pw, *(p for p in re.split(r"[@:/%]", pw) if len(p) >= 3)]


@pytest.mark.parametrize("written", ["raw", "encoded"])
@pytest.mark.parametrize("kind", PASSWORDS)
def test_redact_hides_a_password_with_url_characters_whole(kind: str, written: str) -> None:
    """The user info ends at the last `@`: `admin:p@ssw0rd!x@host` shows as `admin:***@host`."""
    from urllib.parse import quote

    pw = PASSWORDS[kind] if written == "raw" else quote(PASSWORDS[kind], safe="")
    shown = st.redact(f"postgresql://admin:{pw}@db.example:5432/hpo?sslmode=require")
    assert shown == "postgresql://admin:***@db.example:5432/hpo?sslmode=require", shown
    for part in _parts(PASSWORDS[kind]):
        assert part not in shown


@pytest.mark.parametrize("kind", PASSWORDS)
def test_an_unencoded_at_in_the_password_is_refused_with_the_fix_and_others_pass(
        kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLAlchemy ends the password at its first `@` and would connect to host `ssw0rd!x@host`."""
    url = f"postgresql://admin:{PASSWORDS[kind]}@db.example/hpo"
    if "@" not in PASSWORDS[kind]:
        assert st.resolve_url(url) == url  # `:` `/` `%` are read as written
        return
    with pytest.raises(UserError) as err:
        st.resolve_url(url)
    message = str(err.value)
    assert "postgresql://admin:***@db.example/hpo" in message and "unencoded '@'" in message
    assert "as %40" in message and st.PASSWORD_ENV in message
    assert not [part for part in _parts(PASSWORDS[kind]) if part in message], message


@pytest.mark.parametrize("kind", PASSWORDS)
def test_unreachable_server_error_never_shows_a_password_with_url_characters(kind: str) -> None:
    from urllib.parse import quote

    port = closed_port()
    url = f"postgresql://hpo:{quote(PASSWORDS[kind], safe='')}@127.0.0.1:{port}/hpo"
    with pytest.raises(UserError) as err:
        st.open_storage(url)
    assert "storage: cannot open postgresql://hpo:***@127.0.0.1" in str(err.value)
    assert not [part for part in _parts(PASSWORDS[kind]) if part in str(err.value)], str(err.value)


def test_scrub_masks_the_password_as_a_whole_token_not_inside_words() -> None:
    """A one-letter password (or SQLAlchemy's reading `p` of `p@ssw0rd!x`) is not masked inside
    `psycopg.OperationalError`, and the rest of the password is masked where it shows."""
    assert st.scrub("(psycopg.OperationalError) password 'p' was refused", "postgresql://u:p@h/db") == \
        "(psycopg.OperationalError) password '***' was refused"
    text = 'psycopg.OperationalError: could not translate host name "ssw0rd!x@host" to address'
    assert st.scrub(text, "postgresql://admin:p@ssw0rd!x@host/db") == \
        'psycopg.OperationalError: could not translate host name "***@host" to address'


# --- commands that only read a SQLite file never create it ---

def test_open_storage_for_reading_refuses_a_missing_sqlite_file_and_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=rf"storage: no SQLite file {tmp_path / 'typo.db'}; nothing to read"):
        st.open_storage(f"sqlite:///{tmp_path / 'typo.db'}", create=False)
    assert list(tmp_path.iterdir()) == []
