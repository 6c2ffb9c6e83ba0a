"""A storage that fills up while trials run: the launch ends with one line and exit 1, and the
trials it had started are ended FAIL (storage_failure), not left RUNNING."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from conftest import REPO, write_study


# Ray starts first, with no limit (its object store and logs live elsewhere on a real machine);
# then the driver's files, which are the SQLite storage, its WAL and the Ray experiment folder,
# may not grow past LIMIT bytes: a write past it fails with EFBIG as on a full disk. The study is
# created and trials start well under the limit; the WAL reaches it while they run (measured: the
# first failed write is in trial 0 or 1 for limits from 200 to 500 KB).
DRIVER = """
import os, resource, signal, sys
import ray
ray.init(include_dashboard=False, num_cpus=2, logging_level="ERROR", log_to_driver=False)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an OSError (EFBIG), not a kill
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1])))
from hpo.cli import main
sys.exit(main(sys.argv[2:]))
"""
LIMIT = 300_000


def test_a_disk_that_fills_mid_launch_ends_it_with_one_line_and_no_trial_left_running(tmp_path: Path) -> None:
    write_study(tmp_path / "spaces", "filling", train={"epochs": 2}, budget={"n_trials": 8, "max_concurrent": 2})
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    r = subprocess.run([sys.executable, "-c", DRIVER, str(LIMIT), "launch", "--study", "filling",
                        "--spaces-dir", str(tmp_path / "spaces"), "--storage", url],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "RAY_USAGE_STATS_ENABLED": "0"})
    assert r.returncode == 1, r.stdout + r.stderr
    # Tune's own ERROR log of the failed write (a 60-line traceback) is not shown: one line
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("hpo: error: the SQLite storage failed"), r.stderr
    trials = optuna.load_study(study_name="filling", storage=url).trials
    states = [t.state.name for t in trials]
    assert "RUNNING" not in states, states
    ended = [t.number for t in trials if t.user_attrs.get("fail_reason") == "storage_failure"]
    assert ended and f"trials {ended} ended FAIL (storage_failure)" in r.stdout, (states, r.stdout)
