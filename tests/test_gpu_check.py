"""bench/gpu_check.py on a machine without a GPU: it says so and exits 0; its plan fits the time
budget; each step is a real process killed at its own timeout, and the summary reads each
step's figures."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO, bench


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU machine the check runs for real")
def test_without_a_gpu_it_says_no_gpu_and_exits_0() -> None:
    r = subprocess.run([sys.executable, "bench/gpu_check.py"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("no GPU")


def test_every_step_has_its_own_timeout_and_together_they_fit_8_minutes() -> None:
    check = bench("gpu_check")
    assert all(step.timeout_s > 0 for step in check.STEPS)
    assert sum(step.timeout_s for step in check.STEPS) <= check.BUDGET_S <= 8 * 60
    argv = [" ".join(step.argv) for step in check.STEPS]
    for wanted in ("test_graph_step.py", "--batch 128", "--batch 512", "--arch resnet50 --image-size 224",
                   "--step syncs", "gpu_share.py", "--step launch"):
        assert any(wanted in a for a in argv), wanted
    r = subprocess.run([sys.executable, "bench/gpu_check.py", "--dry-run"], cwd=REPO, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and f"{sum(s.timeout_s for s in check.STEPS)} s at most" in r.stdout


def test_a_step_past_its_timeout_is_killed_and_the_summary_says_so(tmp_path: Path) -> None:
    check = bench("gpu_check")
    t0 = time.perf_counter()
    slow = check.run_step(check.Step("slow", [sys.executable, "-c", "import time; time.sleep(60)"], 1), tmp_path)
    assert slow["status"] == "timeout (1 s)" and time.perf_counter() - t0 < 30
    failing = check.run_step(check.Step("failing", [sys.executable, "-c", "print('RESULT: 3 of 4'); exit(3)"], 30),
                             tmp_path)
    assert failing["status"] == "failed (rc 3)" and failing["result"] == "3 of 4"
    (tmp_path / "tp.json").write_text(json.dumps({"images_per_s": {"eager": 7000.4, "graph": 45000},
                                                  "graph": {"eager": "-", "graph": "captured 1"}}))
    line = check.result(check.Step("tp", [], 1, "tp.json"), tmp_path, "")
    assert line == "eager 7,000, graph 45,000 [captured 1] img/s"
    text = check.table("a GPU", [slow, failing])
    assert "timeout (1 s)" in text and "failed (rc 3)" in text and text.startswith("bench/gpu_check.py on a GPU")
