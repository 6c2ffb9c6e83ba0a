"""Crashes: a launcher SIGKILLed mid-study, a worker killed mid-trial, a NaN loss, a GPU
out-of-memory. Every trial ends in exactly one final state and the study reaches its budget."""
from __future__ import annotations

import pytest

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna

from conftest import hpo, write_study


States = optuna.trial.TrialState


def states(url: str, name: str) -> list[str]:
    try:
        return [t.state.name for t in optuna.load_study(study_name=name, storage=url).trials]
    except KeyError:  # the study is not created yet
        return []


def test_relaunch_after_sigkill_sweeps_running_trials_and_fills_the_budget(tmp_path: Path) -> None:
    write_study(tmp_path / "spaces", "kill", train={"epochs": 20}, budget={"n_trials": 4, "max_concurrent": 2})
    url = f"sqlite:///{tmp_path / 'k.db'}"
    args = [sys.executable, "-m", "hpo.cli", "launch", "--study", "kill", "--spaces-dir", str(tmp_path / "spaces"),
            "--storage", url]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # poll the study until one trial is done and others run
        now = states(url, "kill")
        if "COMPLETE" in now and "RUNNING" in now:
            break
        assert proc.poll() is None, "the launcher ended before it could be killed"
        time.sleep(0.2)
    else:
        raise AssertionError(f"never saw COMPLETE and RUNNING trials together: {states(url, 'kill')}")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    os.killpg(proc.pid, signal.SIGKILL)  # and the Ray processes it had started, so they free the CPUs
    left_running = [t.number for t in optuna.load_study(study_name="kill", storage=url).trials
                    if t.state == States.RUNNING]
    assert left_running, "the kill should leave RUNNING trials behind"

    r = hpo("launch", "--study", "kill", "--spaces-dir", str(tmp_path / "spaces"), "--storage", url, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "left RUNNING by a launcher that is gone" in r.stdout
    trials = optuna.load_study(study_name="kill", storage=url).trials
    assert not [t for t in trials if t.state == States.RUNNING]
    complete = [t for t in trials if t.state == States.COMPLETE]
    assert len(complete) == 4
    for n in left_running:
        assert trials[n].state == States.FAIL and trials[n].user_attrs["fail_reason"] == "launcher_lost"
    retries = [t for t in trials if "hpo_retry_of" in t.user_attrs]
    # each once; a trial killed before its first parameter was drawn has nothing to retry
    assert sorted(t.user_attrs["hpo_retry_of"] for t in retries) == sorted(n for n in left_running if trials[n].params)
    for t in retries:  # the retry fixes every parameter the lost trial had drawn (a kill between
        # Optuna's ask and the last suggest leaves fewer; the rest are sampled afresh)
        lost = trials[t.user_attrs["hpo_retry_of"]].params
        assert lost.items() <= t.params.items()
    params = [json.dumps(t.params, sort_keys=True) for t in complete]
    assert len(set(params)) == len(params)  # no repeats among COMPLETE trials


def fault_study(tmp_path: Path, name: str, fault: str, **budget: int) -> tuple[subprocess.CompletedProcess, str]:
    write_study(tmp_path / "spaces", name, train={"epochs": 3},
                budget={"n_trials": 3, "max_concurrent": 1, **budget})
    url = f"sqlite:///{tmp_path / (name + '.db')}"
    r = hpo("launch", "--study", name, "--spaces-dir", str(tmp_path / "spaces"), "--storage", url, cwd=tmp_path,
            env={"HPO_FAULT": fault})
    return r, url


def test_a_worker_killed_mid_trial_is_retried_and_the_study_completes(tmp_path: Path) -> None:
    marker = tmp_path / "killed_once"
    r, url = fault_study(tmp_path, "wkill", f"kill_once:2:{marker}", retries=1)
    assert r.returncode == 0, r.stdout + r.stderr
    assert marker.exists()  # a worker really died
    assert states(url, "wkill") == ["COMPLETE"] * 3  # Ray restarted that trial; Optuna saw one outcome


def test_oom_nan_and_a_kill_past_the_retry_limit_each_end_one_trial_as_fail_and_the_study_goes_on(
        tmp_path: Path) -> None:
    """One launch, three faults, one trial each (faults.py): a GPU out-of-memory at epoch 1, a NaN
    loss at epoch 2, a worker SIGKILLed at epoch 3 with no retry left."""
    faults = ",".join(f"{kind}_once:{epoch}:{tmp_path / kind}" for kind, epoch in (("oom", 1), ("nan", 2), ("kill", 3)))
    r, url = fault_study(tmp_path, "faults", faults, retries=0, max_failed=4)
    assert r.returncode == 0, r.stdout + r.stderr
    assert all((tmp_path / kind).exists() for kind in ("oom", "nan", "kill"))  # each fault fired
    trials = optuna.load_study(study_name="faults", storage=url).trials
    assert [t.state for t in trials[:3]] == [States.FAIL] * 3
    assert [(t.user_attrs["fail_reason"], t.user_attrs.get("epoch")) for t in trials[:3]] == [
        ("oom", 1), ("non_finite_loss", 2), ("worker_error", None)]
    assert [t.state for t in trials[3:]] == [States.COMPLETE] * 3  # each replaced: the budget is met


def test_a_second_launcher_on_a_sqlite_study_is_warned_to_use_postgresql(tmp_path: Path) -> None:
    write_study(tmp_path / "spaces", "two", train={"epochs": 20}, budget={"n_trials": 2, "max_concurrent": 1})
    url = f"sqlite:///{tmp_path / 't.db'}"
    args = [sys.executable, "-m", "hpo.cli", "launch", "--study", "two", "--spaces-dir", str(tmp_path / "spaces"),
            "--storage", url]
    first = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while "RUNNING" not in states(url, "two"):
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.2)
    second = hpo("launch", "--study", "two", "--spaces-dir", str(tmp_path / "spaces"), "--storage", url, cwd=tmp_path)
    out = first.communicate(timeout=300)[0]
    assert first.returncode == 0 and second.returncode == 0, out + second.stdout + second.stderr
    assert "1 other launcher(s) are running" in second.stdout and "PostgreSQL" in second.stdout
    assert "other launcher" not in out  # the first launcher was alone when it started


def test_ctrl_c_ends_trials_in_flight_as_interrupted_exits_130_and_a_relaunch_fills_the_budget_exactly(
        tmp_path: Path) -> None:
    """SIGINT to the launch's process group (what Ctrl-C in a terminal sends): the trial in flight
    ends FAIL with reason `interrupted` and its parameters queued, nothing stays RUNNING, exit 130;
    the relaunch runs the queued parameters first and stops at the budget's COMPLETE count."""
    write_study(tmp_path / "spaces", "intr", train={"epochs": 20}, budget={"n_trials": 2, "max_concurrent": 1})
    url = f"sqlite:///{tmp_path / 'i.db'}"
    args = [sys.executable, "-m", "hpo.cli", "launch", "--study", "intr", "--spaces-dir", str(tmp_path / "spaces"),
            "--storage", url]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 240
    while "RUNNING" not in states(url, "intr") and time.monotonic() < deadline:
        time.sleep(0.3)
    assert "RUNNING" in states(url, "intr")
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "ended FAIL (interrupted)" in out and "hpo: interrupted" in out
    trials = optuna.load_study(study_name="intr", storage=url).trials
    assert [t.state for t in trials] == [States.FAIL, States.WAITING]  # the interrupted one, queued again
    assert trials[0].user_attrs["fail_reason"] == "interrupted"
    again = hpo("launch", "--study", "intr", "--spaces-dir", str(tmp_path / "spaces"), "--storage", url, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    trials = optuna.load_study(study_name="intr", storage=url).trials
    assert [t.state for t in trials] == [States.FAIL, States.COMPLETE, States.COMPLETE]
    assert trials[1].params == trials[0].params  # the queued parameters ran first
