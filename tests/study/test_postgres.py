"""PostgreSQL storage with a real server: two launchers share one study's budget exactly, and
the password never shows in output, logs or the Ray experiment folder."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from conftest import hpo, write_study
from pgserver import PostgresServer, pg_bin

SENTINEL = "s3ntinel-Pa55word-7q"

pytestmark = [pytest.mark.postgres, pytest.mark.e2e, pytest.mark.skipif(not pg_bin("initdb") and not os.environ.get("HPO_REQUIRE_POSTGRES"),
                                reason="PostgreSQL server binaries are not installed (.ci/run installs them)")]


@pytest.fixture(scope="module")
def server():
    assert pg_bin("initdb"), "HPO_REQUIRE_POSTGRES is set but initdb is missing"
    pg = PostgresServer(SENTINEL).start()
    yield pg
    pg.stop()


def test_two_launchers_on_one_study_share_its_budget_exactly(server: PostgresServer, tmp_path: Path) -> None:
    write_study(tmp_path / "spaces", "shared", train={"epochs": 2}, budget={"n_trials": 6, "max_concurrent": 2})
    # the password comes from the environment, not the URL
    env = {**os.environ, "HPO_STORAGE": server.url(with_password=False), "HPO_STORAGE_PASSWORD": SENTINEL}
    env.pop("HPO_STORAGE_PASSWORD_FILE", None)
    # create the study first, so both launchers resume it rather than racing to create it
    assert hpo("launch", "--study", "shared", "--spaces-dir", str(tmp_path / "spaces"), "--n-trials", "1",
               cwd=tmp_path, env=env).returncode == 0
    cmd = [sys.executable, "-m", "hpo.cli", "launch", "--study", "shared", "--spaces-dir", str(tmp_path / "spaces")]
    procs = [subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    study = optuna.load_study(study_name="shared", storage=server.url())
    by_state = [t.state.name for t in study.trials]
    assert by_state.count("COMPLETE") == 6 and "RUNNING" not in by_state, by_state
    owners = {t.user_attrs.get("hpo_launcher") for t in study.trials[1:]}
    assert len(owners) == 2, "both launchers ran trials"
    for out in outputs:
        assert SENTINEL not in out and "***" in out  # the URL is shown with the password hidden


def test_password_stays_out_of_logs_ray_folder_and_errors(server: PostgresServer, tmp_path: Path) -> None:
    write_study(tmp_path / "spaces", "secret", train={"epochs": 1}, budget={"n_trials": 2, "max_concurrent": 2})
    pwfile = tmp_path / "pw"
    pwfile.write_text(SENTINEL + "\n")
    env = {"HPO_STORAGE_PASSWORD_FILE": str(pwfile)}
    r = hpo("launch", "--study", "secret", "--spaces-dir", str(tmp_path / "spaces"),
            "--storage", server.url(with_password=False), "--verbose", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    bad = hpo("status", "--study", "secret", "--storage", server.url().replace("127.0.0.1", "127.0.0.2"))
    wrong = hpo("status", "--study", "secret", "--storage", server.url().replace(SENTINEL, SENTINEL + "x"))
    assert bad.returncode == 2 and wrong.returncode == 2
    for text in (r.stdout, r.stderr, bad.stdout, bad.stderr, wrong.stdout, wrong.stderr):
        assert SENTINEL not in text
    leaked = [p for p in (tmp_path / "storage").rglob("*") if p.is_file() and SENTINEL.encode() in p.read_bytes()]
    assert not leaked, leaked
    tmp_ray = Path("/tmp/ray")
    if tmp_ray.exists():  # Ray's session logs of this machine
        leaked = [p for p in tmp_ray.rglob("*.log") if p.is_file() and p.stat().st_size < 50_000_000
                  and SENTINEL.encode() in p.read_bytes()]
        assert not leaked, leaked
