"""How long does `hpo init` take on a folder of a real user's size?

A 2-class folder of 2,000 64-px JPEGs (1,800 / 200) is written once; `hpo init` then runs on it
as a user runs it (a fresh process: imports, the folder's survey, this machine, the weights
probe, one measured training step), `--repeat` times, each into a new study file.

    python bench/init_speed.py              # writes bench/init_speed.txt
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import REPO, add_out, recorded

GOAL = "hpo init on a 2,000-image folder under 10 s on this machine (the median of the runs)"


def folder(root: Path, counts: dict[str, int], side: int = 64) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(root / cls / f"{i}.jpg")
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    add_out(ap, "init_speed")
    a = ap.parse_args()
    with recorded(a.out, GOAL), tempfile.TemporaryDirectory() as tmp:
        data = folder(Path(tmp) / "parts", {"good": 1800, "bad": 200})
        seconds = []
        for i in range(a.repeat):
            t0 = time.perf_counter()
            r = subprocess.run([sys.executable, "-m", "hpo.cli", "init", "--data", str(data), "--name", f"parts{i}",
                                "--spaces-dir", str(Path(tmp) / "spaces")], cwd=REPO, capture_output=True, text=True)
            seconds.append(time.perf_counter() - t0)
            if r.returncode:
                raise SystemExit(r.stdout + r.stderr)
            print(f"run {i}: {seconds[-1]:.1f} s")
        print(r.stdout.strip())
        print(f"hpo init, 2,000 images: median {statistics.median(seconds):.1f} s "
              f"(runs {', '.join(f'{s:.1f}' for s in seconds)}); goal met: {statistics.median(seconds) < 10}")


if __name__ == "__main__":
    main()
