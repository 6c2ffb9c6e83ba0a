"""optuna-dashboard on a study `hpo launch` made, opened in headless Chromium."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest

from conftest import REPO, hpo, write_study


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# flags a sandboxed root CI needs; without the background-networking ones Chromium keeps
# dialling Google on a closed network
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--virtual-time-budget=15000"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_served(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"dashboard exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)  # polling for readiness, not waiting on luck
    raise AssertionError(f"{url} not served within {timeout}s")


def chromium(args: list[str], profile: Path) -> str:
    r = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


@pytest.fixture(scope="module")
def launched(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("dash")
    write_study(root / "spaces", "dash", train={"epochs": 2}, budget={"n_trials": 2, "max_concurrent": 2})
    url = f"sqlite:///{root / 'd.db'}"
    r = hpo("launch", "--study", "dash", "--spaces-dir", str(root / "spaces"), "--storage", url,
            "--artifacts", str(root / "artifacts"), cwd=root)
    assert r.returncode == 0, r.stdout + r.stderr
    return root, url


def test_trials_carry_their_artifacts_and_logits_and_the_study_a_note(launched: tuple[Path, str]) -> None:
    import optuna_dashboard
    from optuna.artifacts import get_all_artifact_meta

    root, url = launched
    study = optuna.load_study(study_name="dash", storage=url)
    for t in study.trials:
        names = sorted(m.filename for m in get_all_artifact_meta(t, storage=study._storage))
        assert names == ["confusion_matrix.png", "logits.npz", "per_class_metrics.csv", "training_curve.png"]
    assert len(list((root / "artifacts").iterdir())) == 8
    note = optuna_dashboard.get_note(study)
    assert "| 9 | 9 | 2 |" in note and "long tail exp, ratio 50" in note  # the class-count table


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM and not os.environ.get("HPO_REQUIRE_BROWSER"),
                    reason="chromium is not installed (.ci/run installs it)")
def test_dashboard_renders_the_study_objectives_and_artifacts_in_chromium(launched: tuple[Path, str],
                                                                        tmp_path: Path) -> None:
    assert CHROMIUM, "HPO_REQUIRE_BROWSER is set but chromium is missing"
    root, url = launched
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "hpo.cli", "dashboard", "--storage", url, "--port", str(port),
                             "--artifacts", str(root / "artifacts"), "--study", "dash"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_served(f"{base}/api/studies", proc)
        study_id = optuna.load_study(study_name="dash", storage=url)._study_id
        page = chromium(["--dump-dom", f"{base}/dashboard/studies/{study_id}"], tmp_path / "p1")
        assert "dash" in page and "minority_f1" in page and "macro_acc" in page
        trials = chromium(["--dump-dom", f"{base}/dashboard/studies/{study_id}/trials"], tmp_path / "p2")
        assert "confusion_matrix.png" in trials and "training_curve.png" in trials
        shot = tmp_path / "dashboard.png"
        chromium(["--window-size=1400,1000", f"--screenshot={shot}", f"{base}/dashboard/studies/{study_id}"],
                 tmp_path / "p3")
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_non_loopback_host_is_served_only_with_a_warning(launched: tuple[Path, str]) -> None:
    _, url = launched
    proc = subprocess.Popen([sys.executable, "-m", "hpo.cli", "dashboard", "--storage", url, "--host", "0.0.0.0",
                             "--port", str(free_port())], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stderr.readline()
        assert "WARNING: serving on 0.0.0.0" in first and "no authentication" in first
    finally:
        proc.terminate()
        proc.wait(timeout=10)
