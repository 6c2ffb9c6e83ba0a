"""Everything a GPU has to confirm about hpo's GPU path, in one command, each step under its own
timeout (together under 8 minutes), ending in one summary table.

    python bench/gpu_check.py              # on a machine with a CUDA GPU; a CPU machine: "no GPU", exit 0
    python bench/gpu_check.py --dry-run    # the steps and their timeouts, anywhere

Steps, in order:
1. the CUDA tests: every graph-step variant captures (no fallback), trains as eager within bf16
   tolerance, replays with no host sync (tests/train/test_graph_step.py), and the losses on CUDA;
2. bench/throughput.py on CUDA: ResNet-32 at batch 128 and 512 in each mode (eager, compile,
   graph, compile+graph; the trial's own optimiser), timm ResNet-50 at 224 px eager (bf16,
   channels_last) against compile;
3. host syncs per training step of a real trial on the default path (and with `cuda_graph`):
   torch's sync debug mode counts them;
4. bench/gpu_share.py: 1, 2 and 4 trials per GPU through the real `hpo launch`;
5. a real `hpo launch` of search_spaces/cifar10_lt_ldam.yaml on CIFAR-10 files generated here
   (torchvision's pickle layout, digits tiled to 5000 / 1000 images per class) at
   `resources.gpu: 0.25`, four trials at once.

The summary goes to stdout and to --summary (bench/gpu_check.txt); each step's full output to a
log file in --out. What the numbers decide (the defaults of `train.cuda_graph` and
`train.compile` per model family) is docs/gpu.md's.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
BUDGET_S = 480  # the whole check, worst case: the sum of the steps' timeouts stays under it


class Step(NamedTuple):
    name: str
    argv: list[str]
    timeout_s: int
    json_out: str | None = None  # a throughput step's --json file, read for the summary


def throughput(name: str, timeout_s: int, *args: str) -> Step:
    out = f"{name}.json"
    return Step(name, [PY, "bench/throughput.py", "--device", "cuda", "--no-writeups", "--json", out, *args],
                timeout_s, out)


STEPS = [
    Step("cuda tests", [PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/train/test_graph_step.py",
                        "tests/train/test_losses.py", "-k", "cuda"], 55),
    throughput("resnet32 b128", 75, "--model", "cifar_resnet32", "--images", "25600", "--batch", "128",
               "--modes", "eager,compile,graph,compile+graph"),
    throughput("resnet32 b512", 55, "--model", "cifar_resnet32", "--images", "25600", "--batch", "512",
               "--modes", "eager,compile,graph,compile+graph"),
    throughput("resnet50 224", 75, "--model", "timm", "--arch", "resnet50", "--image-size", "224", "--images",
               "1536", "--batch", "64", "--modes", "eager,compile"),
    Step("host syncs", [PY, "bench/gpu_check.py", "--step", "syncs"], 30),
    Step("gpu share", [PY, "bench/gpu_share.py", "--per-class", "1000", "--epochs", "3"], 95),
    Step("launch ldam", [PY, "bench/gpu_check.py", "--step", "launch"], 65),
]


def run_step(step: Step, out: Path) -> dict[str, Any]:
    """One step in a fresh process from the repository root, killed at its timeout; its output
    goes to out/NAME.log."""
    log = out / f"{step.name.replace(' ', '_')}.log"
    argv = [str(out / a) if step.json_out and a == step.json_out else a for a in step.argv]
    t0 = time.perf_counter()
    with open(log, "w") as f:
        try:
            rc = subprocess.run(argv, cwd=REPO, stdout=f, stderr=subprocess.STDOUT, timeout=step.timeout_s).returncode
            status = "ok" if rc == 0 else f"failed (rc {rc})"
        except subprocess.TimeoutExpired:
            status = f"timeout ({step.timeout_s} s)"
    return {"step": step.name, "status": status, "seconds": time.perf_counter() - t0,
            "result": result(step, out, log.read_text(errors="replace")), "log": str(log)}


def result(step: Step, out: Path, text: str) -> str:
    """The line the summary shows for a step: a throughput step's figures, a RESULT line, or the
    last lines of its output."""
    if step.json_out and (out / step.json_out).exists():
        r = json.loads((out / step.json_out).read_text())
        return ", ".join(f"{mode} {ips:,.0f}" + (f" [{r['graph'][mode]}]" if r["graph"].get(mode, "-") != "-" else "")
                         for mode, ips in r["images_per_s"].items()) + " img/s"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    tagged = [line[len("RESULT: "):] for line in lines if line.startswith("RESULT: ")]
    return " | ".join(tagged or lines[-4:])[:400]


def table(device: str, rows: list[dict[str, Any]]) -> str:
    width = max(len(r["step"]) for r in rows)
    lines = [f"bench/gpu_check.py on {device}", f"{'step':<{width}}  {'status':<16}{'s':>6}  result"]
    lines += [f"{r['step']:<{width}}  {r['status']:<16}{r['seconds']:>6.0f}  {r['result']}" for r in rows]
    lines.append(f"total {sum(r['seconds'] for r in rows):.0f} s; logs in {Path(rows[0]['log']).parent}")
    return "\n".join(lines)


def cifar_files(root: Path, train_per_class: int, test_per_class: int) -> Path:
    """ROOT/cifar-10-batches-py in torchvision's pickle layout: scikit-learn's digits as 32x32
    RGB, tiled to the counts asked."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    d = load_digits()
    x = F.interpolate(torch.tensor(d.images, dtype=torch.float32)[:, None] / 16.0, size=32, mode="bilinear")
    x = (x.repeat(1, 3, 1, 1) * torch.tensor([1.0, 0.7, 0.4])[:, None, None] * 255).to(torch.uint8).numpy()

    def rows(per_class: int) -> tuple[np.ndarray, list[int]]:
        take = np.concatenate([np.resize(np.flatnonzero(d.target == k), per_class) for k in range(10)])
        take = np.random.default_rng(0).permutation(take)
        return x[take].reshape(len(take), -1), d.target[take].tolist()

    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True, exist_ok=True)
    data, labels = rows(train_per_class)
    for b, chunk in enumerate(np.array_split(np.arange(len(labels)), 5), start=1):
        with open(base / f"data_batch_{b}", "wb") as f:
            pickle.dump({b"data": data[chunk], b"labels": [labels[i] for i in chunk]}, f)
    data, labels = rows(test_per_class)
    with open(base / "test_batch", "wb") as f:
        pickle.dump({b"data": data, b"labels": labels}, f)
    with open(base / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [f"c{k}".encode() for k in range(10)]}, f)
    return root


def ldam_study(folder: Path, name: str, root: Path, epochs: int, **changes: Any) -> Path:
    """search_spaces/cifar10_lt_ldam.yaml on the generated files, `epochs` epochs."""
    import yaml

    raw = yaml.safe_load((REPO / "search_spaces" / "cifar10_lt_ldam.yaml").read_text())
    raw["study"] = name
    raw["data"]["params"] = {"root": str(root), "download": False, "verify": False}  # generated, not torchvision's files
    raw["train"]["epochs"] = epochs
    raw.update(changes)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def count_syncs(root: Path) -> None:
    """Host syncs per training step of one real trial (cifar10_lt_ldam's defaults, DRW on), on the
    default path and with `train.cuda_graph`: torch's sync debug mode warns at each one inside
    `train_epoch`; the epoch's own index copy and its closing loss read are two of them."""
    import torch

    from hpo.spec import load_spec
    from hpo.train import loop

    spec = load_spec(ldam_study(root / "spaces", "syncs", cifar_files(root / "cifar", 500, 100), 2))
    real = loop.train_epoch
    for graph in (False, True):
        counted: list[tuple[int, int]] = []

        def train_epoch(*args: Any, **kw: Any) -> float:
            order, batch = args[4], args[5]
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                torch.cuda.set_sync_debug_mode("warn")
                try:
                    return real(*args, **kw)
                finally:
                    torch.cuda.set_sync_debug_mode("default")
                    counted.append((sum("synchroniz" in str(w.message) for w in caught), math.ceil(len(order) / batch)))

        loop.train_epoch = train_epoch
        cfg = spec.trial_config({"C": 0.5, "drw_start": 0.5, "lr": 0.1, "batch_size": 128})
        cfg["train"]["cuda_graph"] = graph
        final = loop.run(cfg)
        syncs, steps = map(sum, zip(*counted))
        print(f"RESULT: cuda_graph {graph}: {syncs} host syncs in {steps} steps ({syncs / steps:.2f} per step), "
              f"graph {final['cuda_graph']}")
    loop.train_epoch = real


def launch_ldam(root: Path) -> None:
    """The real `hpo launch` of cifar10_lt_ldam at resources.gpu 0.25: four trials at once."""
    import optuna

    folder = root / "spaces"
    ldam_study(folder, "gpu_check_ldam", cifar_files(root / "cifar", 5000, 1000), 2,
               budget={"n_trials": 4, "max_concurrent": 4})
    url = f"sqlite:///{root / 'hpo.db'}"
    t0 = time.perf_counter()
    r = subprocess.run([PY, "-m", "hpo.cli", "launch", "--study", "gpu_check_ldam", "--spaces-dir", str(folder),
                        "--storage", url], cwd=root, capture_output=True, text=True)
    print(r.stdout[-3000:], r.stderr[-3000:], sep="\n")
    trials = optuna.load_study(study_name="gpu_check_ldam", storage=url).trials
    done = [t for t in trials if t.state.name == "COMPLETE"]
    devices = sorted({str(t.user_attrs.get("device")) for t in done})
    peak = max((t.user_attrs.get("gpu_mem_peak_mb", 0) for t in done), default=0)
    print(f"RESULT: hpo launch exit {r.returncode} in {time.perf_counter() - t0:.0f} s; {len(done)}/{len(trials)} "
          f"COMPLETE on {', '.join(devices)}; peak {peak:.0f} MB per trial")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="list the steps and their timeouts")
    ap.add_argument("--out", type=Path, help="folder for the logs (default: a new temporary one)")
    ap.add_argument("--summary", type=Path, default=REPO / "bench" / "gpu_check.txt")
    ap.add_argument("--step", choices=("syncs", "launch"), help=argparse.SUPPRESS)  # steps run in their own process
    a = ap.parse_args()
    if a.dry_run:
        for s in STEPS:
            print(f"{s.name:<16}{s.timeout_s:>5} s  {' '.join(s.argv[1:])}")
        print(f"{'total':<16}{sum(s.timeout_s for s in STEPS):>5} s at most (budget {BUDGET_S} s)")
        return
    import torch

    if not torch.cuda.is_available():
        print("no GPU: torch sees no CUDA device, so nothing is checked here (run this where a GPU is)")
        return
    if a.step:
        with tempfile.TemporaryDirectory(prefix=f"hpo-gpu-check-{a.step}-") as tmp:
            (count_syncs if a.step == "syncs" else launch_ldam)(Path(tmp))
        return
    out = a.out or Path(tempfile.mkdtemp(prefix="hpo-gpu-check-"))
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    rows = []
    for step in STEPS:
        rows.append(run_step(step, out))
        print(f"{step.name}: {rows[-1]['status']} in {rows[-1]['seconds']:.0f} s", flush=True)
    text = table(f"{torch.cuda.get_device_name(0)} (torch {torch.__version__})", rows)
    print(text)
    a.summary.write_text(text + "\n")


if __name__ == "__main__":
    main()
