"""PostgreSQL storage with a real server: two launchers share one study's budget exactly and draw
different parameters, and the password, in any of the four forms hpo takes it, never shows in
output, errors, export files, logs or the Ray experiment folder."""
from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import optuna
import pytest

from conftest import hpo, write_study
from pgserver import PostgresServer, pg_bin

SENTINEL = "s3ntinel-Pa55word-7q"

pytestmark = [pytest.mark.postgres, pytest.mark.skipif(not pg_bin("initdb") and not os.environ.get("HPO_REQUIRE_POSTGRES"),
                                reason="PostgreSQL server binaries are not installed (.ci/run installs them)")]


@pytest.fixture(scope="module")
def server():
    assert pg_bin("initdb"), "HPO_REQUIRE_POSTGRES is set but initdb is missing"
    pg = PostgresServer(SENTINEL).start()
    yield pg
    pg.stop()


def test_two_launchers_started_together_on_a_new_study_share_its_budget_exactly(server: PostgresServer,
                                                                              tmp_path: Path) -> None:
    write_study(tmp_path / "spaces", "shared", train={"epochs": 2}, budget={"n_trials": 6, "max_concurrent": 2})
    # the password comes from the environment, not the URL
    env = {**os.environ, "HPO_STORAGE": server.url(with_password=False), "HPO_STORAGE_PASSWORD": SENTINEL}
    env.pop("HPO_STORAGE_PASSWORD_FILE", None)
    # both start on a study that does not exist yet: one creates it, the other finds it created
    cmd = [sys.executable, "-m", "hpo.cli", "launch", "--study", "shared", "--spaces-dir", str(tmp_path / "spaces")]
    procs = [subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    study = optuna.load_study(study_name="shared", storage=server.url())
    by_state = [t.state.name for t in study.trials]
    assert by_state.count("COMPLETE") == 6 and "RUNNING" not in by_state, by_state
    owners = {t.user_attrs.get("hpo_launcher") for t in study.trials}
    assert len(owners) == 2, "both launchers ran trials"
    # concurrent launchers draw different parameters (seeded apart, running trials told to the
    # sampler): no two trials share a value of a continuous parameter
    for param in ("lr", "gamma", "weight_decay"):
        values = [t.params[param] for t in study.trials]
        assert len(set(values)) == len(values), (param, values)
    for out in outputs:
        assert SENTINEL not in out and "***" in out  # the URL is shown with the password hidden


def test_launchers_opening_a_new_database_at_the_same_instant_all_open_it(server: PostgresServer,
                                                                          tmp_path: Path) -> None:
    """Optuna creates its tables and types on an empty database; processes doing it at once
    collide (a unique violation on pg_type: 8 of 20 opens failed before hpo retried). Four
    processes, released together by a file, open one new database each round."""
    import sqlalchemy as sa

    admin = sa.create_engine(server.url(), isolation_level="AUTOCOMMIT")
    for round_ in range(2):
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE fresh{round_}")
        url = server.url().rsplit("/", 1)[0] + f"/fresh{round_}"
        go = tmp_path / f"go{round_}"
        prog = ("import os, sys, time\nfrom hpo.study.storage import open_storage\nprint('ready', flush=True)\n"
                f"while not os.path.exists({str(go)!r}): time.sleep(0.001)\nopen_storage({url!r})")
        procs = [subprocess.Popen([sys.executable, "-c", prog], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(4)]
        for p in procs:  # every process has imported hpo and waits
            assert p.stdout.readline() == "ready\n"
        go.touch()
        errors = [p.communicate(timeout=60)[1] for p in procs]
        assert [p.returncode for p in procs] == [0] * 4, errors
    admin.dispose()


def password_form(form: str, server: PostgresServer, tmp_path: Path) -> tuple[str, dict[str, str]]:
    """The storage URL and environment that give the password in FORM (the four ways hpo takes one)."""
    bare = server.url(with_password=False)
    if form == "url":  # postgresql://user:PASSWORD@host/db
        return server.url(), {}
    if form == "query":  # postgresql://user@host/db?password=PASSWORD (libpq reads it there too)
        return f"{bare}?password={SENTINEL}", {}
    if form == "env":
        return bare, {"HPO_STORAGE_PASSWORD": SENTINEL}
    pwfile = tmp_path / "pw"  # form == "file": a docker-secrets style file
    pwfile.write_text(SENTINEL + "\n")
    return bare, {"HPO_STORAGE_PASSWORD_FILE": str(pwfile)}


def leaks(folder: Path) -> list[Path]:
    """Files under FOLDER holding the password, the password file itself aside."""
    return [p for p in folder.rglob("*") if p.is_file() and p.name != "pw" and p.stat().st_size < 50_000_000
            and SENTINEL.encode() in p.read_bytes()]


FORMS = ("url", "query", "env", "file")


def test_password_stays_out_of_output_exports_logs_ray_folder_and_errors(server: PostgresServer,
                                                                         tmp_path: Path) -> None:
    """One launch with the password in the URL (the form most at risk of landing in Ray's folder
    and logs; the two-launcher test launches with it in the environment); status, export and the
    two failures (an unreachable host, a wrong password) in each of the four forms."""
    name = "secret"
    write_study(tmp_path / "spaces", name, train={"epochs": 1}, budget={"n_trials": 1, "max_concurrent": 1})
    url, env = password_form("url", server, tmp_path)
    r = hpo("launch", "--study", name, "--spaces-dir", str(tmp_path / "spaces"), "--storage", url, "--verbose",
            cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr

    def in_form(form: str) -> list[subprocess.CompletedProcess]:
        url, env = password_form(form, server, tmp_path)
        status = hpo("status", "--study", name, "--storage", url, cwd=tmp_path, env=env)
        front = tmp_path / f"front_{form}.yaml"
        export = hpo("export", "--study", name, "--storage", url, "--out", str(front), cwd=tmp_path, env=env)
        assert status.returncode == 0 and export.returncode == 0, form + status.stderr + export.stderr
        assert "***" in front.read_text() or form in ("env", "file")  # the storage line, hidden
        # errors: an unreachable host, and a wrong password given in the same form
        bad = hpo("status", "--study", name, "--storage", url.replace("127.0.0.1", "127.0.0.2"), cwd=tmp_path, env=env)
        wrong_url = url.replace(SENTINEL, SENTINEL + "x")
        wrong_env = {k: v.replace(SENTINEL, SENTINEL + "x") for k, v in env.items()}
        if form == "file":
            (tmp_path / "pw").write_text(SENTINEL + "x\n")
        wrong = hpo("status", "--study", name, "--storage", wrong_url, cwd=tmp_path, env=wrong_env)
        assert bad.returncode == 2 and wrong.returncode == 2, form + bad.stderr + wrong.stderr
        return [status, export, bad, wrong]

    outputs = [r]
    with ThreadPoolExecutor(2) as pool:  # 16 commands, two at a time: each is mostly one core's imports
        for got in pool.map(in_form, FORMS):
            outputs += got
    for out in outputs:
        assert SENTINEL not in out.stdout + out.stderr
    assert not leaks(tmp_path), leaks(tmp_path)  # storage/ray, storage/artifacts, the export files
    tmp_ray = Path("/tmp/ray")
    if tmp_ray.exists():  # Ray's session logs of this machine
        logs = [p for p in tmp_ray.rglob("*.log") if p.is_file() and p.stat().st_size < 50_000_000
                and SENTINEL.encode() in p.read_bytes()]
        assert not logs, logs


def test_a_read_only_postgresql_database_is_read_by_status_and_export_and_a_launch_says_why_not(
        server: PostgresServer, tmp_path: Path) -> None:
    import sqlalchemy as sa

    from test_optuna_seam import make_study

    admin = sa.create_engine(server.url().replace("postgresql://", "postgresql+psycopg://"),
                             isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql("CREATE DATABASE readonly")
    url = server.url().rsplit("/", 1)[0] + "/readonly"
    make_study(url, "kept", 30)
    with admin.connect() as conn:  # every later session of this database takes no writes
        conn.exec_driver_sql("ALTER DATABASE readonly SET default_transaction_read_only = on")
    admin.dispose()
    status = hpo("status", "--study", "kept", "--storage", url, cwd=tmp_path)
    export = hpo("export", "--study", "kept", "--storage", url, "--out", str(tmp_path / "front.yaml"), cwd=tmp_path)
    assert status.returncode == 0 and "COMPLETE" in status.stdout, status.stderr
    assert export.returncode == 0 and "configs:" in (tmp_path / "front.yaml").read_text(), export.stderr
    write_study(tmp_path / "spaces", "fresh", train={"epochs": 1}, budget={"n_trials": 1, "max_concurrent": 1})
    launch = hpo("launch", "--study", "fresh", "--spaces-dir", str(tmp_path / "spaces"), "--storage", url, cwd=tmp_path)
    assert launch.returncode == 1, launch.stdout + launch.stderr
    assert launch.stderr.count("\n") == 1 and "Traceback" not in launch.stderr, launch.stderr
    assert "hpo: error: the PostgreSQL database is read-only" in launch.stderr, launch.stderr
    assert optuna.get_all_study_names(storage=url) == ["kept"]  # nothing was created


# the characters a URL gives meaning to, in a real role's password: written percent-encoded in the
# URL they work; an unencoded `@` is refused before any connection (SQLAlchemy would read the host
# as `ssw0rd...@127.0.0.1`); none of the password, nor any piece of it, is ever shown
ODD_PASSWORD = "p@ss:w0rd/x%y-Zq9odd"
ODD_PARTS = [ODD_PASSWORD, "ss:w0rd", "w0rd/x", "x%y", "y-Zq9odd", "Zq9odd"]


def test_a_password_with_at_colon_slash_and_percent_works_encoded_and_never_shows(server: PostgresServer,
                                                                                 tmp_path: Path) -> None:
    import sqlalchemy as sa
    from urllib.parse import quote

    from test_optuna_seam import make_study

    admin = sa.create_engine(server.url().replace("postgresql://", "postgresql+psycopg://"),
                             isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql("CREATE DATABASE odd")
        conn.exec_driver_sql("CREATE ROLE odd LOGIN PASSWORD '" + ODD_PASSWORD.replace("%", "%%") + "'")  # psycopg: %% is %
        conn.exec_driver_sql("GRANT ALL ON DATABASE odd TO odd")
    with sa.create_engine(server.url().replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0] + "/odd",
                          isolation_level="AUTOCOMMIT").connect() as conn:
        conn.exec_driver_sql("GRANT ALL ON SCHEMA public TO odd")
    admin.dispose()
    where = f"127.0.0.1:{server.port}/odd"
    encoded = f"postgresql://odd:{quote(ODD_PASSWORD, safe='')}@{where}"
    make_study(encoded, "kept", 5)
    runs = {
        "encoded": hpo("status", "--study", "kept", "--storage", encoded, cwd=tmp_path),
        "query": hpo("status", "--study", "kept", "--storage",
                     f"postgresql://odd@{where}?password={quote(ODD_PASSWORD, safe='')}", cwd=tmp_path),
        "env": hpo("status", "--study", "kept", "--storage", f"postgresql://odd@{where}", cwd=tmp_path,
                   env={"HPO_STORAGE_PASSWORD": ODD_PASSWORD}),
        "raw": hpo("status", "--study", "kept", "--storage", f"postgresql://odd:{ODD_PASSWORD}@{where}", cwd=tmp_path),
        "wrong": hpo("status", "--study", "kept", "--storage", encoded.replace("Zq9odd", "Zq9odd-x"), cwd=tmp_path),
    }
    for form in ("encoded", "query", "env"):
        assert runs[form].returncode == 0 and "COMPLETE" in runs[form].stdout, form + runs[form].stderr
    assert runs["raw"].returncode == 2 and "unencoded '@'" in runs["raw"].stderr and "%40" in runs["raw"].stderr
    assert f"postgresql://odd:***@{where}" in runs["raw"].stderr, runs["raw"].stderr
    assert runs["wrong"].returncode == 2 and "password authentication failed" in runs["wrong"].stderr
    for form, r in runs.items():
        shown = r.stdout + r.stderr
        assert not [part for part in ODD_PARTS if part in shown], (form, shown)
