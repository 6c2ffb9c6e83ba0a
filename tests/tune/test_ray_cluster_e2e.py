"""`hpo launch --ray-address` on a real 2-node Ray cluster on loopback, started and stopped here."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from conftest import hpo, write_study


RAY = str(Path(sys.executable).with_name("ray"))
# loopback test cluster: no token auth (a real cluster should use Ray's token auth)
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_cmd(*args: str) -> None:
    r = subprocess.run([RAY, *args], env=ENV, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]


def test_a_study_runs_on_a_two_node_cluster_through_ray_address(tmp_path: Path) -> None:
    port = free_port()
    address = f"127.0.0.1:{port}"
    try:
        ray_cmd("start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=1",
                "--include-dashboard=false", "--disable-usage-stats")
        ray_cmd("start", f"--address={address}", "--node-ip-address=127.0.0.1", "--num-cpus=1",
                "--disable-usage-stats")
        write_study(tmp_path / "spaces", "cluster", train={"epochs": 2}, budget={"n_trials": 4, "max_concurrent": 2})
        url = f"sqlite:///{tmp_path / 'c.db'}"
        r = hpo("launch", "--study", "cluster", "--spaces-dir", str(tmp_path / "spaces"), "--storage", url,
                "--ray-address", address, cwd=tmp_path, env={k: ENV[k] for k in ("RAY_USAGE_STATS_ENABLED",
                                                                                 "RAY_AUTH_MODE")})
        assert r.returncode == 0, r.stdout + r.stderr
        trials = optuna.load_study(study_name="cluster", storage=url).trials
        assert [t.state.name for t in trials] == ["COMPLETE"] * 4
        assert len({t.user_attrs["ray_node"] for t in trials}) == 2  # both nodes trained trials
    finally:
        subprocess.run([RAY, "stop", "--force"], env=ENV, capture_output=True, timeout=120)
