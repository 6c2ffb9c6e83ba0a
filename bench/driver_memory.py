"""Memory of the `hpo launch` driver on a data set of 224-px images: this working tree beside an
older revision, in one run.

The driver used to load the data set for its check and keep it for the whole launch; since the
check runs in a process of its own (hpo/tune/data_check.py) the driver holds only the labels.
The data set is an .npz of N random 3x224x224 uint8 images in three classes shaped like the
severity grading of the write-ups (591 / 839 / 324 by default: 252 MiB of pixels). Each launch
runs to its first trial asked; then the bench reads the driver's peak resident memory (VmHWM in
/proc) and interrupts it. Codes alternate, `--repeat` launches each; the ratio of the medians is
printed.

    python bench/driver_memory.py --baseline 9063637 --repeat 2
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np
import yaml

from _common import REPO, add_out, extract, launch_until_asked, no_goal, recorded

GOAL = no_goal("how much memory does the hpo launch driver hold on a 1,754-image folder, against --baseline?")

NAME = "memory"


def write_data(path: Path, counts: list[int], size: int = 224, seed: int = 0) -> int:
    """The .npz of the study; returns its pixel bytes."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(counts)), counts)
    x = rng.integers(0, 256, size=(len(y), 3, size, size), dtype=np.uint8)
    np.savez(path, x=x, y=y, class_names=np.array(["mild", "moderate", "severe"][:len(counts)]))
    return x.nbytes


def peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def one_launch(code: Path, spaces: Path, work: Path, timeout: float) -> float:
    """Peak MB of the driver process when its first trial is asked (a fresh study each time)."""
    for f in work.glob("memory.db*"):
        f.unlink()
    peak, output, _ = launch_until_asked(code, NAME, spaces, f"sqlite:///{work / 'memory.db'}", work, timeout,
                                         at_ask=lambda proc, seconds: peak_mb(proc.pid))
    if peak is None:
        raise SystemExit(f"hpo launch ({code}) asked no trial in {timeout:g} s:\n{output[-3000:]}")
    return peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", metavar="REV", required=True, help="the git revision to compare with")
    ap.add_argument("--counts", default="591,839,324", help="images per class (default: %(default)s)")
    ap.add_argument("--repeat", type=int, default=2, help="launches of each code (default: %(default)s)")
    ap.add_argument("--timeout", type=float, default=180)
    add_out(ap, "driver_memory")
    a = ap.parse_args()
    with recorded(a.out, GOAL):
        run(a)


def run(a: argparse.Namespace) -> None:
    counts = [int(c) for c in a.counts.split(",")]
    with tempfile.TemporaryDirectory(prefix="hpo-memory-") as tmp_name:
        tmp = Path(tmp_name)
        nbytes = write_data(tmp / "severity.npz", counts)
        raw = yaml.safe_load((REPO / "search_spaces" / "cb_focal_beta.yaml").read_text())
        raw.update(study=NAME, budget={"n_trials": 10, "max_concurrent": 1},
                   data={"name": "npz", "params": {"file": str(tmp / "severity.npz")}, "split": {"val": 0.2, "test": 0.2}})
        spaces = tmp / "spaces"
        spaces.mkdir()
        (spaces / f"{NAME}.yaml").write_text(yaml.safe_dump(raw))
        codes = {"after": REPO, "before": extract(a.baseline, tmp / "baseline")}
        print(f"hpo launch on {sum(counts)} images of 3x224x224 ({nbytes / 2**20:.0f} MiB of pixels), to the first "
              f"trial asked: the driver's peak resident memory, {a.repeat} launches each, alternating", flush=True)
        peaks: dict[str, list[float]] = {label: [] for label in codes}
        for _ in range(a.repeat):
            for label, code in codes.items():
                peaks[label].append(one_launch(code, spaces, tmp, a.timeout))
                print(f"  {label:<7} {peaks[label][-1]:7.0f} MB", flush=True)
        for label, values in peaks.items():
            print(f"{label:<7} ({codes[label] if label == 'after' else a.baseline}): median {statistics.median(values):.0f} MB "
                  f"({min(values):.0f} - {max(values):.0f})")
        print(f"before / after = {statistics.median(peaks['before']) / statistics.median(peaks['after']):.2f}x")


if __name__ == "__main__":
    main()
