"""What the benches share: where their output is recorded and the goal it prints, the `hpo`
command as a subprocess, the digit data of the write-ups' shapes, and a study shaped like hpo's
own (built, copied, launched to its first trial asked).

A bench runs as a script (`python bench/NAME.py`), so Python puts bench/ first on its path and
`import _common` finds this file; tests load it by file (tests/conftest.py's `bench`).
"""
from __future__ import annotations

import datetime
import json
import math
import os
import platform
import random
import shlex
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, TextIO

import numpy as np
import optuna

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"


# --- the recorded output ---------------------------------------------------------------------------

def add_out(ap, name: str) -> None:
    """`--out`: where the run is recorded (default bench/NAME.txt, overwritten; `-`: not recorded)."""
    ap.add_argument("--out", default=str(BENCH / f"{name}.txt"),
                    help=f"the file this run's output is recorded in, overwritten (default: bench/{name}.txt; "
                         "'-': print only, e.g. for a smoke run)")


class _Tee:
    """sys.stdout that also writes to a file."""

    def __init__(self, first: TextIO, second: TextIO) -> None:
        self.first, self.second = first, second

    def write(self, text: str) -> int:
        self.second.write(text)
        return self.first.write(text)

    def flush(self) -> None:
        self.first.flush()
        self.second.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.first, name)


def _revision() -> str:
    r = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True, text=True)
    return r.stdout.strip() or "unknown"


def heading(goal: str) -> str:
    """The command line, the machine, the date and revision, and the goal: a record's first lines."""
    command = shlex.join(["python", os.path.relpath(sys.argv[0], REPO), *sys.argv[1:]])
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    when = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return (f"# {command}\n# {cores} CPU cores ({platform.machine()}, {platform.system()}), {when}, "
            f"revision {_revision()}\ngoal: {goal}")


@contextmanager
def recorded(out: str, goal: str) -> Iterator[None]:
    """Prints the heading with the goal; what the block prints goes to the terminal and, unless
    `out` is '-', to `out`, replaced only when the block finishes (a failed run keeps the last
    record)."""
    if out == "-":
        print(heading(goal), flush=True)
        yield
        return
    path = Path(out).absolute()  # a bench may chdir while it runs
    partial = path.with_name(path.name + ".partial")
    terminal = sys.stdout
    try:
        with open(partial, "w") as f:
            sys.stdout = _Tee(terminal, f)
            print(heading(goal), flush=True)
            yield
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        sys.stdout = terminal
    os.replace(partial, path)
    print(f"recorded in {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")


def no_goal(question: str) -> str:
    """The goal line of a bench that has none: the question it answers."""
    return f"none stated; the question: {question}"


# --- the hpo command and the write-ups' shapes in 8x8 digits ------------------------------------------

def hpo(*args: str, cwd: Path) -> str:
    """`hpo ARGS` in a fresh process from `cwd`; what it printed, or exit with its output."""
    r = subprocess.run([sys.executable, "-m", "hpo.cli", *args], cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"hpo {args[0]} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return r.stdout


# name: (classes as {class name: (digits, images)}, the author's values of the searched parameters)
SHAPES: dict[str, tuple[dict[str, tuple[tuple[int, ...], int]], dict[str, Any]]] = {
    # 591 / 839 / 324 scaled by 1/5; their final loss was recall loss, SGD lr 1e-3, alpha 0.01
    "severity_grading": ({"nil": ((0, 1, 2), 118), "moderate": ((3, 4, 5), 168), "severe": ((6, 7, 8, 9), 65)},
                         {"loss": "recall", "lr": 1e-3, "weight_decay": 1e-2}),
    # 500 / 60 scaled by 1/2; Adam lr 1e-3, their transforms on, the minority grown to 360 (x6 -> threshold)
    "face_mask": ({"with_mask": (tuple(range(9)), 250), "without_mask": ((9,), 30)},
                  {"lr": 1e-3, "flip": True, "rotate": 20.0, "blur": 0.3, "resized_crop": 0.2, "sharpness": 0.3,
                   "autocontrast": 0.3, "magnitude": 1.0, "threshold": 180}),
    # 250 / 50 as they are; AdamW lr 1e-4, weight decay 1e-3, CE, weighted sampler
    "anomaly_detection": ({"good": (tuple(range(9)), 250), "bad": ((9,), 50)},
                          {"method": "weighted_sampler", "loss": "ce", "lr": 1e-4, "weight_decay": 1e-3}),
}


def write_groups(path: Path, classes: dict[str, tuple[tuple[int, ...], int]], seed: int = 0) -> Path:
    """An npz of 8x8 grey digits: each class drawn (seeded, without replacement) from its digits."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images * (255 / 16)).round().astype(np.uint8)  # (N, 8, 8)
    rng = np.random.default_rng(seed)
    idx = [rng.choice(np.flatnonzero(np.isin(digits.target, ds)), n, replace=False) for ds, n in classes.values()]
    y = np.concatenate([np.full(len(i), k) for k, i in enumerate(idx)])
    np.savez(path, x=x[np.concatenate(idx)], y=y, class_names=np.array(list(classes)))
    return path


# --- a study shaped like hpo's own ---------------------------------------------------------------

NAME = "scale"


def cb_focal_beta_spec():
    """search_spaces/cb_focal_beta.yaml, the space the scale study is shaped by."""
    from hpo.spec import load_spec

    return load_spec(REPO / "search_spaces" / "cb_focal_beta.yaml")


def _distributions(spec) -> dict[str, optuna.distributions.BaseDistribution]:
    out: dict[str, optuna.distributions.BaseDistribution] = {}
    for p in spec.search:
        if p.type == "categorical":
            out[p.optuna_name] = optuna.distributions.CategoricalDistribution(list(p.choices))
        elif p.type == "int":
            out[p.optuna_name] = optuna.distributions.IntDistribution(int(p.low), int(p.high), log=p.log)
        else:
            out[p.optuna_name] = optuna.distributions.FloatDistribution(float(p.low), float(p.high), log=p.log)
    return out


def _sample(rng: random.Random, dists: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, d in dists.items():
        if isinstance(d, optuna.distributions.CategoricalDistribution):
            params[name] = rng.choice(d.choices)
        elif isinstance(d, optuna.distributions.IntDistribution):
            params[name] = rng.randint(d.low, d.high)
        elif d.log:
            params[name] = d.low * (d.high / d.low) ** rng.random()
        else:
            params[name] = d.low + (d.high - d.low) * rng.random()
    return params


CLASSES = [str(c) for c in range(10)]
COUNTS = [104, 62, 37, 22, 13, 8, 4, 2, 1, 1]


def _details(rng: random.Random, a: float, b: float) -> dict[str, Any]:
    """What a finished trial stores: the scalars and the per-class details of trainable.py."""
    per_class = {c: {"precision": rng.random(), "recall": rng.random(), "f1": rng.random(), "support": 36,
                     "train_count": n} for c, n in zip(CLASSES, COUNTS)}
    confusion = [[rng.randint(0, 36) for _ in CLASSES] for _ in CLASSES]
    scalars = {"accuracy": b, "macro_acc": b, "minority_f1": a, "g_mean": b * 0.9, "many_shot_acc": b,
               "medium_shot_acc": b, "few_shot_acc": a, "epoch": 15, "train_loss": rng.random(),
               "device": "cpu", "seconds": 20 * rng.random(), "data_seconds": 0.1, "data_cached": True,
               "data_loads": 1, "data_on_host": False, "worker_pid": 4242, "ray_node": "ab" * 28}
    return {**scalars, "per_class": per_class, "class_counts": COUNTS, "class_names": CLASSES,
            "minority": [5, 6, 7, 8, 9], "shot_groups": {"many": [0, 1], "medium": [2, 3, 4], "few": [5, 6, 7, 8, 9]},
            "confusion": confusion}


def _trial(i: int, rng: random.Random, spec, dists) -> optuna.trial.FrozenTrial:
    params = _sample(rng, dists)
    # a good config is good at both objectives, and trades one against the other: fronts of ~10
    skill, trade = rng.gauss(0, 1.0), rng.gauss(0, 1.5)
    a, b = (0.98 / (1 + math.exp(-(skill + sign * trade + rng.gauss(0, 0.3)))) for sign in (1, -1))
    attrs: dict[str, Any] = {"hpo_launcher": "0123456789ab", "config": spec.trial_config(params),
                             "ray_trial_id": f"{i:05d}_{rng.getrandbits(32):08x}"}
    state, values = optuna.trial.TrialState.COMPLETE, [a, b]
    roll = rng.random()
    if roll < 0.03:
        state, values = optuna.trial.TrialState.FAIL, None
        attrs["fail_reason"] = rng.choice(["oom", "non_finite_loss", "worker_error"])
    elif roll < 0.08:
        attrs["hpo_stopped_early"] = rng.randint(1, 14)  # no details: a stopped trial's last report has none
    else:
        attrs.update(_details(rng, a, b))
    return optuna.trial.create_trial(state=state, values=values, params=params, distributions=dists,
                                     user_attrs=attrs)


def build(url: str, n: int, seed: int = 0, batch: int = 500) -> float:
    """A study of n finished trials (+ 2 RUNNING of a gone launcher, 1 WAITING); returns seconds."""
    from hpo.study import optuna_seam
    from hpo.study import storage as st

    t0 = time.perf_counter()
    spec, rng = cb_focal_beta_spec(), random.Random(seed)
    dists = _distributions(spec)
    backing = st.open_storage(url)
    study = optuna.create_study(study_name=NAME, storage=backing, directions=spec.directions)
    study.set_user_attr(st.ATTR_OBJECTIVES, [{"name": o.name, "direction": o.direction} for o in spec.objectives])
    study.set_user_attr(st.ATTR_SEARCH, st.search_signature(spec))
    study.set_user_attr(st.ATTR_SPEC, json.loads(json.dumps(spec.raw, default=str)))
    study.set_user_attr("class_counts", COUNTS)
    study.set_user_attr("class_names", CLASSES)
    study.set_user_attr("split_sizes", {"train": sum(COUNTS), "val": 360, "test": 360})
    study.set_user_attr("hpo_launcher:0123456789ab", {"host": "elsewhere", "pid": 1, "heartbeat": 0.0,
                                                      "stopped": True})
    study.set_user_attr("hpo_launcher:dead00000000", {"host": "elsewhere", "pid": 1, "heartbeat": 0.0})
    through_optuna = min(n, 100)  # these through Optuna's add_trials, the rest by the same rows in bulk
    study.add_trials([_trial(i, rng, spec, dists) for i in range(through_optuna)])
    for start in range(through_optuna, n, batch):
        optuna_seam.add_finished_trials(backing, study,
                                        [_trial(i, rng, spec, dists) for i in range(start, min(n, start + batch))])
    for _ in range(2):
        study.ask().set_user_attr("hpo_launcher", "dead00000000")
    study.enqueue_trial(_sample(rng, dists))
    return time.perf_counter() - t0


def n_asked(url: str, missing: int | None = None) -> int:
    """Trials past WAITING: a new row, or the study's enqueued trial taken (the first ask takes it).
    `missing`: the count while the database or Optuna's tables do not exist yet (else it raises)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql("SELECT COUNT(*) FROM trials WHERE CAST(state AS VARCHAR(16)) != 'WAITING'"
                                        ).scalar_one()
    except sa.exc.OperationalError:  # SQLite: no such table (a launch creates them)
        if missing is None:
            raise
        return missing
    finally:
        engine.dispose()


def copy_study(db: Path, dest: Path) -> None:
    """`db` copied to `dest` for a launch to write to. The launches open SQLite in WAL mode: the
    -wal / -shm files a killed launch left beside `dest` would be read as part of the fresh copy
    ("database disk image is malformed"), so they go first."""
    for suffix in ("-wal", "-shm"):
        Path(f"{dest}{suffix}").unlink(missing_ok=True)
    shutil.copy(db, dest)


def launch_until_asked(code: Path, study: str, spaces: Path, url: str, cwd: Path, timeout: float,
                       at_ask: Callable[[subprocess.Popen, float], Any]) -> tuple[Any, str, int]:
    """Start `hpo launch` of `study` from the `hpo` package in `code`; once it has asked a trial
    (a trial past WAITING that was not there before), call `at_ask(process, seconds since the
    start)`; then interrupt it (Ctrl-C: Ray shuts down cleanly). Returns (what `at_ask` returned,
    or None when no trial was asked within `timeout`; the launch's output; its exit code)."""
    before = n_asked(url, missing=0)
    env = {**os.environ, "PYTHONPATH": str(code), "RAY_USAGE_STATS_ENABLED": "0"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "hpo.cli", "launch", "--study", study, "--spaces-dir", str(spaces),
                             "--storage", url], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    got = None
    while time.perf_counter() - t0 < timeout and proc.poll() is None:
        if n_asked(url, missing=0) > before:
            got = at_ask(proc, time.perf_counter() - t0)
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    try:
        output = proc.communicate(timeout=120)[0]
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output = proc.communicate()[0]
    return got, output, proc.returncode


def extract(rev: str, into: Path) -> Path:
    """The `hpo` package at git revision `rev`, in a folder of its own."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "hpo"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into
