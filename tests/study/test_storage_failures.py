"""A storage that takes no writes: a read-only SQLite file is still read by status and export, and
a full disk or a read-only storage ends a command with one line and exit 1, never a traceback."""
from __future__ import annotations

import resource
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, write_study
from test_optuna_seam import make_study

HPO = [sys.executable, "-m", "hpo.cli"]


def read_only_mount_works() -> bool:
    r = subprocess.run(["unshare", "-m", "sh", "-c", "mount --bind /tmp /tmp && mount -o remount,bind,ro /tmp"],
                       capture_output=True)
    return r.returncode == 0


def in_read_only_mount(folder: Path, *cmd: str, cwd: Path) -> subprocess.CompletedProcess:
    """CMD in a private mount namespace where FOLDER is mounted read-only (as root ignores file modes,
    a read-only mount is the honest way to make a file unwritable here)."""
    script = f'mount --bind "{folder}" "{folder}" && mount -o remount,bind,ro "{folder}" && exec "$@"'
    return subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", *cmd], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


@pytest.mark.skipif(not read_only_mount_works(), reason="needs root and mount namespaces (unshare -m)")
@pytest.mark.parametrize("wal", ["live", "checkpointed"])
def test_a_read_only_sqlite_file_is_read_by_status_and_export_and_a_launch_says_why_it_cannot(
        wal: str, tmp_path: Path) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    url = f"sqlite:///{folder / 'hpo.db'}"
    if wal == "live":  # a writer still connected: the last commits are only in hpo.db-wal
        make_study(url, "kept", 30)
    else:  # a finished study copied elsewhere: one file in WAL mode, no -wal / -shm beside it
        make_study(f"sqlite:///{tmp_path / 'src.db'}", "kept", 30)
        with sqlite3.connect(tmp_path / "src.db") as src, sqlite3.connect(folder / "hpo.db") as dst:
            src.backup(dst)
    assert (folder / "hpo.db-wal").exists() == (wal == "live")
    before = sorted(p.name for p in folder.iterdir())
    status = in_read_only_mount(folder, *HPO, "status", "--study", "kept", "--storage", url, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "COMPLETE" in status.stdout
    export = in_read_only_mount(folder, *HPO, "export", "--study", "kept", "--storage", url,
                                "--out", str(tmp_path / "front.yaml"), cwd=tmp_path)
    assert export.returncode == 0, export.stderr
    assert "configs:" in (tmp_path / "front.yaml").read_text()
    write_study(tmp_path / "spaces", "fresh", train={"epochs": 1}, budget={"n_trials": 1, "max_concurrent": 1})
    launch = in_read_only_mount(folder, *HPO, "launch", "--study", "fresh", "--spaces-dir", str(tmp_path / "spaces"),
                                "--storage", url, cwd=tmp_path)
    assert launch.returncode == 1, launch.stdout + launch.stderr
    assert launch.stderr.count("\n") == 1 and "Traceback" not in launch.stderr, launch.stderr
    assert "hpo: error:" in launch.stderr and "writable" in launch.stderr
    assert sorted(p.name for p in folder.iterdir()) == before  # no WAL side files, nothing written


def test_a_full_disk_under_the_storage_ends_the_launch_with_one_line_and_exit_1(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    make_study(url, "kept", 30)
    write_study(tmp_path / "spaces", "fresh", train={"epochs": 1}, budget={"n_trials": 1, "max_concurrent": 1})

    def small_disk() -> None:  # files may not grow past 8 KB: writes fail as on a full disk (EFBIG)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))

    r = subprocess.run([*HPO, "launch", "--study", "fresh", "--spaces-dir", str(tmp_path / "spaces"),
                        "--storage", url], cwd=tmp_path, preexec_fn=small_disk, capture_output=True, text=True,
                       timeout=300, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert "hpo: error:" in r.stderr and ("disk" in r.stderr or "too large" in r.stderr), r.stderr
