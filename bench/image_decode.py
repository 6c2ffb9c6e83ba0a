"""Decoding an image-folder data set on one thread against several, side by side in one run.

hpo/train/sources/decode.py decodes, converts and resizes image files on `decode_threads()` threads
(Pillow lets go of the GIL while it decodes and resizes). The bench writes an image folder shaped
like the write-ups' severity grading (591 / 839 / 324 JPEGs of --source-size px, smooth noise that
compresses like a photo; kept with --keep), then alternates, --repeat times each:

- `read_images` over every file at --image-size px on 1 thread and on N threads (default: every
  core this process may use); the arrays must be equal;
- the launch's data check (hpo/tune/data_check.py: its own process, the long-tail-free split of
  that folder) with OMP_NUM_THREADS=1 and =N, from its start to the driver holding the answer:
  the check is on the first launch's path to its first trial; and the same check as a relaunch
  with unchanged files finds it (remembered: no process, no decoding).

It prints each time, the medians and their ratio.

    python bench/image_decode.py --repeat 3
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from hpo.spec import parse_spec
from hpo.train.sources import decode_threads, read_images
from hpo.tune.data_check import DataCheck

from _common import add_out, no_goal, recorded

GOAL = no_goal("how much do threads speed up decoding an image folder and the launch's data check?")

COUNTS = {"mild": 591, "moderate": 839, "severe": 324}


def write_folder(root: Path, size: int, seed: int = 0) -> list[Path]:
    """ROOT/CLASS/NNNN.jpg, unless the folder already holds them; returns the files, sorted."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for name, n in COUNTS.items():
        folder = root / name
        if folder.is_dir() and len(list(folder.glob("*.jpg"))) == n:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):  # 16x16 noise upsampled: smooth, so it compresses like a photo, not like noise
            small = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(small).resize((size, size), Image.BILINEAR).save(folder / f"{i:04d}.jpg", quality=90)
    return sorted(root.glob("*/*.jpg"))


def time_decode(files: list[Path], image_size: int, threads: int) -> tuple[float, np.ndarray]:
    t0 = time.perf_counter()
    x, _ = read_images(files, image_size, 3, threads=threads)
    return time.perf_counter() - t0, x


def time_check(root: Path, image_size: int, omp: str | None, records: Path | None = None) -> float:
    """Seconds from starting the launch's data check to holding its answer (`records`: where
    passed checks are remembered; None: the check runs)."""
    spec = parse_spec({"data": {"name": "imagefolder", "params": {"root": str(root), "image_size": image_size}},
                       "objectives": [{"name": "macro_acc", "direction": "maximize"}],
                       "search": {"lr": {"low": 1e-3, "high": 0.3, "log": True}}}, "bench", default_name="decode")
    saved = os.environ.pop("OMP_NUM_THREADS", None)
    if omp is not None:
        os.environ["OMP_NUM_THREADS"] = omp  # the check's process inherits it
    try:
        t0 = time.perf_counter()
        summary = DataCheck(spec, records).result()
        took = time.perf_counter() - t0
    finally:
        os.environ.pop("OMP_NUM_THREADS", None)
        if saved is not None:
            os.environ["OMP_NUM_THREADS"] = saved
    assert sum(len(part.y) for part in (summary.train, summary.val, summary.test)) == sum(COUNTS.values())
    return took


def report(title: str, times: dict[str, list[float]]) -> None:
    (a, ta), (b, tb) = times.items()
    print(f"{title}:")
    for name, t in times.items():
        print(f"  {name:>10}: median {statistics.median(t):.2f} s ({', '.join(f'{s:.2f}' for s in t)})")
    print(f"  {a} / {b} = {statistics.median(ta) / statistics.median(tb):.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="the parallel side (default: decode_threads())")
    ap.add_argument("--source-size", type=int, default=320, help="the JPEGs' side in px")
    ap.add_argument("--image-size", type=int, default=224, help="decoded and resized to this side")
    ap.add_argument("--keep", type=Path, default=None, help="write (or reuse) the image folder here")
    add_out(ap, "image_decode")
    args = ap.parse_args()
    with recorded(args.out, GOAL):
        run(args)


def run(args: argparse.Namespace) -> None:
    threads = args.threads or decode_threads()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp) / "severity"
        files = write_folder(root, args.source_size)
        print(f"{len(files)} JPEGs of {args.source_size} px ({sum(f.stat().st_size for f in files) / 2**20:.0f} MiB) "
              f"decoded to {args.image_size} px; {len(os.sched_getaffinity(0))} cores; parallel side: {threads} threads")
        decode: dict[str, list[float]] = {"1 thread": [], f"{threads} threads": []}
        check: dict[str, list[float]] = {"1 thread": [], f"{threads} threads": []}
        remembered: list[float] = []
        for _ in range(args.repeat):
            serial, x1 = time_decode(files, args.image_size, 1)
            parallel, xn = time_decode(files, args.image_size, threads)
            assert np.array_equal(x1, xn), "the threaded decode gave other pixels"
            decode["1 thread"].append(serial)
            decode[f"{threads} threads"].append(parallel)
            check["1 thread"].append(time_check(root, args.image_size, "1"))
            check[f"{threads} threads"].append(time_check(root, args.image_size, str(threads)))
            time_check(root, args.image_size, None, Path(tmp) / "records")  # a launch that passed leaves its record
            remembered.append(time_check(root, args.image_size, None, Path(tmp) / "records"))
            print(f"  decode {serial:.2f} / {parallel:.2f} s; data check {check['1 thread'][-1]:.2f} / "
                  f"{check[f'{threads} threads'][-1]:.2f} s, remembered {remembered[-1]:.3f} s", flush=True)
        report("read_images", decode)
        report("the launch's data check (own process, to its answer)", check)
        print(f"the same check remembered (a relaunch, files unchanged): median {statistics.median(remembered):.3f} s")


if __name__ == "__main__":
    main()
