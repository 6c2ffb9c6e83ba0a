"""The start of `hpo launch` with and without Ray's worker prestart, side by side in one run.

When a driver connects, Ray's raylet starts one idle Python worker per CPU ahead of need
(`prestart_worker_first_driver`). On a small machine those workers import Ray while the launch
imports Tune, scikit-learn and reads the study, and Tune's trial actors start workers of their
own anyway. hpo/tune/ray_start.py turns the prestart off (`RAY_prestart_worker_first_driver=0`);
this bench measures both settings, alternating, on a copy of the same SQLite study
(bench/_common.py builds it, as for bench/storage_scale.py): seconds from the process start to the first trial asked (a
new row) and to the first trial COMPLETE (one-epoch trials of the cb_focal_beta space, 2 at a
time), median and range over the runs, and the ratio of the medians.

    python bench/launch_start.py --keep /tmp/scale --trials 10 --repeat 5
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
import yaml

from _common import NAME, REPO, add_out, build, copy_study, no_goal, recorded

GOAL = no_goal("does hpo launch ask its first trial sooner with Ray's idle-worker prestart off (hpo's setting) "
               "than on (Ray's default)?")

SETTINGS = {"prestart off (hpo)": "0", "prestart on (Ray's default)": "1"}


def one_launch(db: Path, spaces: Path, work: Path, prestart: str, timeout: float) -> tuple[float, float]:
    """(seconds to the first new trial row, seconds to the first new COMPLETE trial)."""
    copy_study(db, work / "launch.db")
    url = f"sqlite:///{work / 'launch.db'}"
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        def count(where: str) -> int:
            n = conn.exec_driver_sql(f"SELECT COUNT(*) FROM trials WHERE CAST(state AS VARCHAR(16)) {where}").scalar_one()
            conn.commit()  # end the read transaction: the next count sees the launch's writes
            return n

        asked0, done0 = count("!= 'WAITING'"), count("= 'COMPLETE'")
        env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_prestart_worker_first_driver": prestart}
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "hpo.cli", "launch", "--study", NAME, "--spaces-dir", str(spaces),
                                 "--storage", url], cwd=work, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        asked = done = float("nan")  # NaN: not seen (yet)
        try:
            while proc.poll() is None and time.perf_counter() - t0 < timeout:
                if asked != asked and count("!= 'WAITING'") > asked0:
                    asked = time.perf_counter() - t0
                if count("= 'COMPLETE'") > done0:
                    done = time.perf_counter() - t0
                    break
                time.sleep(0.05)
        finally:
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: Ray shuts down cleanly
            proc.wait(timeout=120)
    engine.dispose()
    return asked, done


def summary(label: str, times: list[float]) -> str:
    ok = [t for t in times if t == t]
    if not ok:
        return f"{label}: no run finished"
    return f"{label}: median {statistics.median(ok):.2f} s ({min(ok):.2f} - {max(ok):.2f}, {len(ok)} runs)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=10, help="trials in the study launched on (default: %(default)s)")
    ap.add_argument("--repeat", type=int, default=5, help="launches of each setting (default: %(default)s)")
    ap.add_argument("--keep", type=Path, help="folder of bench/storage_scale.py's SQLite studies (built if missing)")
    ap.add_argument("--timeout", type=float, default=120)
    add_out(ap, "launch_start")
    a = ap.parse_args()
    with recorded(a.out, GOAL):
        run(a)


def run(a: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="hpo-start-") as tmp_name:
        tmp = Path(tmp_name)
        folder = a.keep or tmp
        folder.mkdir(parents=True, exist_ok=True)
        db = folder / f"scale-{a.trials}.db"
        if not db.exists():
            print(f"building {a.trials} trials in {db}: {build(f'sqlite:///{db.resolve()}', a.trials):.1f} s", flush=True)
        spaces = tmp / "spaces"
        spaces.mkdir()
        raw = yaml.safe_load((REPO / "search_spaces" / "cb_focal_beta.yaml").read_text())
        raw.update(study=NAME, budget={"n_trials": 10**7, "max_concurrent": 2})
        raw["train"]["epochs"] = 1
        (spaces / f"{NAME}.yaml").write_text(yaml.safe_dump(raw))
        got: dict[str, list[tuple[float, float]]] = {k: [] for k in SETTINGS}
        for _ in range(a.repeat):  # alternating, so a change in the machine's load hits both alike
            for label, value in SETTINGS.items():
                got[label].append(one_launch(db, spaces, tmp, value, a.timeout))
                print(f"  {label}: first ask {got[label][-1][0]:.2f} s, first COMPLETE {got[label][-1][1]:.2f} s",
                      flush=True)
    print(f"hpo launch on a {a.trials}-trial SQLite study, {a.repeat} launches each, alternating:")
    medians = {}
    for label, runs in got.items():
        for i, what in enumerate(("first ask", "first COMPLETE")):
            print("  " + summary(f"{label:<28} {what:<15}", [r[i] for r in runs]))
            medians[label, what] = statistics.median([r[i] for r in runs if r[i] == r[i]] or [float("nan")])
    off, on = SETTINGS
    for what in ("first ask", "first COMPLETE"):
        print(f"  {what}: prestart on / off = {medians[on, what] / medians[off, what]:.2f}x")


if __name__ == "__main__":
    main()
