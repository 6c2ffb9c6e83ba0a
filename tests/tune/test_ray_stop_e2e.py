"""A launch that ends before it needs Ray (bad data, a storage error) leaves none of Ray's
processes running, even when it exits in the middle of Ray's start: Ray's agents are children of
its raylet, which the parent-death signal ends, and they are not."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from conftest import REPO


# Ray starting on RayStart's thread; once its agents run, `stop` as an early-ending launch calls
# it, then an exit that skips Ray's atexit shutdown, as a process does that exits while
# `ray.init` is still under way (nothing is initialised yet, so nothing shuts Ray down)
CHILD = r"""
import os, sys, time
from hpo.tune.ray_start import RayStart, _ray_descendants
from pathlib import Path

start = RayStart()
deadline = time.monotonic() + 120
def agent(pid):  # ray::DashboardAgent, or before it renames itself, python [-u] .../agent.py
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"Agent" in argv[0] or any(b"/agent" in a for a in argv[1:3])
def agents():
    return [p for p in _ray_descendants() if agent(p)]
while not agents() and time.monotonic() < deadline:
    time.sleep(0.05)
print("agents", len(agents()), flush=True)
start.stop()
os._exit(0)
"""


def marked(mark: str) -> list[str]:
    """Live processes whose environment carries MARK (the child and all it started)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and mark.encode() in (entry / "environ").read_bytes():
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:80])
        except OSError:  # gone meanwhile; a zombie's environ reads empty
            continue
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc")
def test_stop_of_an_unused_ray_ends_its_agents_too() -> None:
    mark = f"hpo-test-{uuid.uuid4().hex}"
    env = {**os.environ, "HPO_TEST_MARK": mark}
    r = subprocess.run([sys.executable, "-c", CHILD], cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0 and "agents 0" not in r.stdout, r.stdout + r.stderr
    time.sleep(1.0)  # what was killed is reaped by now; an orphaned agent is still running
    assert marked(mark) == []
