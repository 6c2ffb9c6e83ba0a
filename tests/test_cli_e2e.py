"""test_cli's end-to-end tests: the real `hpo` command (or Ray) in a subprocess; `make test-fast`
leaves them out (tests/conftest.py marks every test of a *_e2e.py file)."""
from __future__ import annotations

import os
import pty
import socket
import subprocess
import sys
import time
from pathlib import Path
import optuna
import pytest
from optuna.artifacts import FileSystemArtifactStore, get_all_artifact_meta, upload_artifact
from conftest import REPO, SPACES, hpo
from hpo.study import coordination as co
from test_cli import _artifacts, _can_mount_read_only, _make_studies, _names, _ray_processes_of, _read_only_launch, orphan_study  # noqa: F401 - fixtures among them


def test_studies_lists_directions_trials_by_state_and_last_activity(tmp_path: Path) -> None:
    url = _make_studies(tmp_path)
    newest = max(t.datetime_complete or t.datetime_start for t in optuna.load_study(study_name="a", storage=url).trials
                 if t.datetime_start)
    r = hpo("studies", "--storage", url, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"2 studies in {url}"
    assert lines[1].split() == ["study", "directions", "trials", "by", "state", "last", "activity", "live", "launchers"]
    assert lines[2].split() == ["a", "maximize,minimize", "5", "COMPLETE", "3,", "RUNNING", "1,", "WAITING", "1",
                                *newest.isoformat(sep=" ", timespec="seconds").split(), "0"]
    assert lines[3].split()[:5] == ["b", "minimize", "1", "COMPLETE", "1"]
    empty = hpo("studies", "--storage", f"sqlite:///{tmp_path / 'empty.db'}", cwd=tmp_path)
    assert empty.returncode == 0 and empty.stdout.startswith("0 studies in ")


def test_delete_without_a_terminal_needs_yes(tmp_path: Path) -> None:
    url = _make_studies(tmp_path)
    r = hpo("delete", "--study", "a", "--storage", url, cwd=tmp_path)  # stdin: not a terminal
    assert r.returncode == 2 and "pass --yes" in r.stderr
    assert _names(url) == ["a", "b"] and len(list(_artifacts(tmp_path).iterdir())) == 2
    r = hpo("delete", "--study", "nope", "--storage", url, "--yes", cwd=tmp_path)
    assert r.returncode == 2 and "no study 'nope'" in r.stderr


def test_delete_refuses_while_a_live_launcher_holds_the_study(tmp_path: Path) -> None:
    url = _make_studies(tmp_path)
    study = optuna.load_study(study_name="a", storage=url)
    me = {"host": socket.gethostname(), "pid": os.getpid(), "heartbeat": time.time()}  # this test process: alive
    study.set_user_attr(co.ATTR_LAUNCHER_PREFIX + "busy", me)
    r = hpo("delete", "--study", "a", "--storage", url, "--yes", cwd=tmp_path)
    assert r.returncode == 2 and "in use by launcher busy" in r.stderr and _names(url) == ["a", "b"]
    listed = hpo("studies", "--storage", url, cwd=tmp_path).stdout.splitlines()[2]
    assert listed.split()[-1] == "1"  # one live launcher
    study.set_user_attr(co.ATTR_LAUNCHER_PREFIX + "busy", {**me, "stopped": True})
    assert hpo("delete", "--study", "a", "--storage", url, "--yes", cwd=tmp_path).returncode == 0


def test_status_into_a_closed_pipe_ends_without_a_traceback(sqlite_url: str) -> None:
    import subprocess
    import sys

    orphan_study(sqlite_url, n=3000)  # a front longer than the pipe's buffer
    r = subprocess.run(f"{sys.executable} -m hpo.cli status --study orph --storage {sqlite_url} | head -1",
                       shell=True, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.stdout.startswith("study 'orph'") and "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr


def test_a_read_only_sqlite_launch_prints_one_line_and_leaves_no_ray_process(tmp_path: Path) -> None:
    """Ray starts while the launch opens the storage; the launch ends before it needs Ray, with the
    storage's one line (no SQL statement, no warning) and no Ray process of its own left behind
    (tests/tune/test_ray_stop_e2e.py pins the case where the exit lands in the middle of Ray's start)."""
    import uuid

    from conftest import write_study

    if not _can_mount_read_only():
        pytest.skip("needs root and mount namespaces (unshare -m)")
    write_study(tmp_path / "spaces", "early", train={"epochs": 1}, budget={"n_trials": 1, "max_concurrent": 1})
    mark = f"hpo-test-{uuid.uuid4().hex}"
    env = {k: v for k, v in os.environ.items() if k != "HPO_STORAGE"} | {"HPO_TEST_MARK": mark}
    r = _read_only_launch(tmp_path, env)
    assert r.returncode == 1 and "hpo: error: the SQLite storage failed" in r.stderr, r.stdout + r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert "[SQL:" not in r.stdout + r.stderr and "WARNING" not in r.stdout + r.stderr, r.stdout
    time.sleep(1.0)  # what SIGKILL leaves is gone by now; an orphaned agent is not
    assert _ray_processes_of(mark) == []
