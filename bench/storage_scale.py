"""`hpo status`, `hpo export`, `hpo report` and the start of `hpo launch` (to its first trial
asked) on studies of thousands of trials, as real subprocesses, at 1,000 trials and at N (default 10,000), on SQLite (and on PostgreSQL when
`initdb` / `pg_ctl` exist and `--postgres` is given).

The studies are shaped like hpo's own: the cb_focal_beta space (two objectives, five
parameters), and on each trial what hpo/tune/searcher.py and hpo/tune/trainable.py store:
`config`, the scalars, `per_class`, `class_counts`, `class_names`, `minority`, `shot_groups`,
`confusion`, `ray_trial_id`, the owning launcher; ~5% COMPLETE trials carry `hpo_stopped_early`,
~3% are FAIL with `fail_reason`, two are RUNNING under a launcher that is gone, one is WAITING.
The study carries `hpo_objectives`, `hpo_search`, `hpo_spec`, the data's class counts and two
launcher records. bench/_common.py builds it (`build`).

`--baseline REV` times the same commands from git revision REV of this repository (extracted
to a temp folder) on the same databases in the same run: before / after side by side.

The launch is timed as a relaunch finds the study: with the note and the data check record its
study file's last launch by the same code left (a code from before either has nothing to find).

    python bench/storage_scale.py                                  # 1,000 and 10,000 trials, SQLite
    python bench/storage_scale.py --baseline 55983a0 --timeout 120 # and the code before the fast reads
    python bench/storage_scale.py --sampler-cost                   # seconds per GP / TPE ask, with and without a window

Each mode records its latest run beside this file: bench/storage_scale.txt (SQLite),
bench/storage_scale_postgres.txt (--postgres), bench/storage_scale_sampler.txt (--sampler-cost).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

from _common import (NAME, REPO, build, cb_focal_beta_spec, copy_study, extract, launch_until_asked,
                     recorded)
from _pgserver import PostgresServer, pg_bin

COMMANDS = ("status", "export", "report", "launch")
GOALS = {"status": 2.0, "export": 2.0, "report": 10.0, "launch": 5.0}  # seconds at 10,000 trials
GOAL = ("at 10,000 trials: hpo status <= 2 s, hpo export <= 2 s, hpo report <= 10 s, hpo launch to its first "
        "trial asked <= 5 s (wall seconds of a fresh process)")
SAMPLER_GOAL = ("none stated; the question: how many seconds does a GP / TPE suggestion take on these studies, "
                "with and without sampler.window?")


def _noted(url: str, spec_file: Path) -> None:
    """The study note a launch of `spec_file` leaves (hpo.views.notes), as a relaunch finds it: a
    launch rewrites the note only when its text changed, and the first one of a study pays that."""
    from hpo.spec import load_spec
    from hpo.study import storage as st
    from hpo.train.preflight import DataSummary, check_study
    from hpo.views import notes

    spec = load_spec(spec_file)
    storage = st.open_storage(url)
    notes.save(optuna.load_study(study_name=NAME, storage=storage), spec, DataSummary.of(check_study(spec)))
    storage.engine.dispose()  # no connection of this process stays on a file the next run replaces


# what a passed data check of `code` leaves for the next launch from the same folder
# (hpo.tune.data_check remembers it); a code from before that has nothing to leave
_CHECKED = """import sys
from hpo.spec import load_spec
try:
    from hpo.tune.data_check import RECORDS, DataCheck
except ImportError:
    sys.exit(0)
DataCheck(load_spec(sys.argv[1])).result()
"""


def _checked(code: Path, spec_file: Path, cwd: Path) -> None:
    """The data check record a launch of `spec_file` by `code` from `cwd` leaves, as a relaunch
    with unchanged data finds it (the first launch of a study pays the check)."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    subprocess.run([sys.executable, "-c", _CHECKED, str(spec_file)], cwd=cwd, env=env, check=True,
                   capture_output=True, timeout=300)


def run_launch(code: Path, url: str, out: Path, timeout: float) -> float | None:
    """Seconds from starting `hpo launch` on the study to its first trial asked (a new row in
    Optuna's trials table); then the launch is interrupted (Ctrl-C: Ray shuts down cleanly). On
    SQLite the launch runs on a copy, so the study stays as built; on PostgreSQL each run leaves one
    interrupted trial more."""
    import yaml

    from hpo.study.storage import sqlite_path

    spaces = out / "spaces"
    spaces.mkdir(exist_ok=True)
    raw = yaml.safe_load((REPO / "search_spaces" / "cb_focal_beta.yaml").read_text())
    raw.update(study=NAME, budget={"n_trials": 10**7, "max_concurrent": 1})
    (spaces / f"{NAME}.yaml").write_text(yaml.safe_dump(raw))
    db = sqlite_path(url)
    if db is not None:
        copy_study(db, out / "launch.db")
        url = f"sqlite:///{out / 'launch.db'}"
    _noted(url, spaces / f"{NAME}.yaml")
    _checked(code, spaces / f"{NAME}.yaml", out)
    took, output, returncode = launch_until_asked(code, NAME, spaces, url, out, timeout,
                                                  at_ask=lambda proc, seconds: seconds)
    if took is None and returncode not in (130, -2):
        raise SystemExit(f"hpo launch failed ({code}):\n{output[-3000:]}")
    (out / "stdout.txt").write_text("")  # nothing to compare: the launch is cut short on purpose
    return took


def run_cli(code: Path, command: str, url: str, out: Path, timeout: float) -> float | None:
    """Seconds one `hpo COMMAND` took as a fresh process (None: over the timeout); what it
    printed is left in OUT/stdout.txt."""
    if command == "launch":
        return run_launch(code, url, out, timeout)
    args = {"status": [], "export": ["--out", str(out / "front.yaml")], "report": ["--out", str(out / "report")]}
    env = {**os.environ, "PYTHONPATH": str(code), "MPLBACKEND": "Agg"}
    t0 = time.perf_counter()
    try:
        r = subprocess.run([sys.executable, "-m", "hpo.cli", command, "--study", NAME, "--storage", url,
                            *args[command]], cwd=out, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    took = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"hpo {command} failed ({code}):\n{r.stderr}")
    (out / "stdout.txt").write_text(r.stdout)
    return took


OUTPUTS = {"status": ["stdout.txt"], "export": ["stdout.txt", "front.yaml"],
           "report": ["stdout.txt", "report/per_loss.csv", "report/pareto_front.csv"]}


def same_output(tmp: Path, urls: dict, labels: list[str]) -> None:
    """Before and after printed and wrote the same (status, export file, report tables)?"""
    if len(labels) < 2:
        return
    for backend, size in urls:
        for command, files in OUTPUTS.items():
            outs = [tmp / f"out-{backend}-{size}-{label}-{command}" for label in labels]
            if not all((o / "stdout.txt").exists() for o in outs):
                continue  # timed out
            differ = [f for f in files if len({(o / f).read_text().replace(str(o), "OUT") for o in outs}) > 1]
            print(f"{backend} {size} {command}: " + (f"DIFFERENT {differ}" if differ else "same output before / after"))


def _fmt(times: list[float | None], timeout: float) -> str:
    done = [t for t in times if t is not None]
    if not done:
        return f"> {timeout:.0f}"
    lo, hi = min(done), max(done)
    text = f"{lo:.2f}" if len(done) == 1 or hi - lo < 0.005 else f"{lo:.2f} - {hi:.2f}"
    return text + (" (some > timeout)" if len(done) < len(times) else "")


def _median(times: list[float | None]) -> float | None:
    done = [t for t in times if t is not None]
    return statistics.median(done) if len(done) == len(times) else None


def measure(codes: dict[str, Path], urls: dict[str, str], repeat: int, timeout: float, tmp: Path) -> dict:
    """{(backend, size, code label, command): [seconds or None per repeat]}. Each command runs for
    every code before the next command: the codes are compared minutes apart, not a whole pass,
    and on PostgreSQL (where a launch leaves its interrupted trial in the study) every code's
    status / export / report reads the study as built."""
    results: dict[tuple[str, int, str, str], list[float | None]] = {}
    for (backend, size), url in urls.items():
        for command in COMMANDS:
            for label, code in codes.items():
                out = tmp / f"out-{backend}-{size}-{label}-{command}"
                out.mkdir(exist_ok=True)
                times = []
                for _ in range(repeat):
                    times.append(run_cli(code, command, url, out, timeout))
                    if times[-1] is None:
                        break  # one timeout is enough to know
                results[(backend, size, label, command)] = times
                print(f"  {backend:<10} {size:>6} {label:<8} {command:<7} {_fmt(times, timeout)} s", flush=True)
    return results


def table(results: dict, sizes: list[int], timeout: float) -> None:
    """Seconds per size; growth: from the second-largest study to the largest."""
    keys = sorted({(b, lab) for b, _, lab, _ in results}, key=lambda k: (k[0], k[1] != "after"))
    head = "".join(f"{f'{n} trials (s)':>22}" for n in sizes)
    print(f"\n{'backend':<10} {'code':<7} {'command':<7}{head} {'growth':>8} {'goal':>6}")
    for backend, label in keys:
        for command in COMMANDS:
            cells = [results[(backend, n, label, command)] for n in sizes]
            ma, mb = _median(cells[-2]), _median(cells[-1])
            growth = f"{mb / ma:.1f}x" if ma and mb else "-"
            goal = f"<= {GOALS[command]:.0f}" if label == "after" else ""
            print(f"{backend:<10} {label:<7} {command:<7}" + "".join(f"{_fmt(c, timeout):>22}" for c in cells)
                  + f" {growth:>8} {goal:>6}")
    big = sizes[-1]
    for backend in sorted({b for b, _ in keys}):
        for command in COMMANDS:
            after = _median(results.get((backend, big, "after", command), [None]))
            before = results.get((backend, big, "before", command))
            if before is not None and after:
                mb = _median(before)
                ratio = f"{mb / after:.1f}x (medians {mb:.2f} / {after:.2f} s)" if mb else f"> {timeout / after:.0f}x"
                print(f"{backend} {command} at {big} trials: before / after = {ratio}")


def sampler_cost(urls: dict, sizes: list[int], asks: int = 3) -> None:
    """Seconds per ask (sample the cb_focal_beta space, tell a value) of GP and TPE as hpo runs
    them (hpo.study.sampler_storage), on a copy of each SQLite study, with and without a window."""
    import sqlite3

    from hpo.study import storage as st
    from hpo.study.sampler_storage import SamplerStorage
    from hpo.study.space import SAMPLERS, DefineByRun

    space = DefineByRun(cb_focal_beta_spec())
    print(f"\nsampler cost: seconds per ask (mean of {asks}), the study read through SamplerStorage")
    print(f"{'sampler':<8} {'window':>7}" + "".join(f"{f'{n} trials':>14}" for n in sizes))
    for name, windows in (("tpe", (0,)), ("gp", (0, 500))):
        for window in windows:
            cells = []
            for n in sizes:
                if name == "gp" and not window and n > 1000:  # O(n^3): minutes an ask
                    cells.append("-")
                    continue
                with tempfile.TemporaryDirectory() as tmp:
                    with sqlite3.connect(urls[("sqlite", n)][len("sqlite:///"):]) as src, \
                            sqlite3.connect(f"{tmp}/copy.db") as dst:
                        src.backup(dst)
                    lean = SamplerStorage(st.open_storage(f"sqlite:///{tmp}/copy.db"), window)
                    study = optuna.load_study(study_name=NAME, storage=lean,
                                              sampler=SAMPLERS.build(name, seed=0, window=window).sampler)
                    lean.warm(NAME)
                    study.ask()  # the study's WAITING trial: fixed parameters
                    space(study.ask())  # untimed: GP imports torch at its first fit
                    t0 = time.perf_counter()
                    for _ in range(asks):
                        trial = study.ask()
                        space(trial)
                        study.tell(trial, [0.5, 0.5])
                    cells.append(f"{(time.perf_counter() - t0) / asks:.2f}")
            print(f"{name:<8} {window or 'all':>7}" + "".join(f"{c:>14}" for c in cells), flush=True)


def _analyze(url: str) -> None:
    """VACUUM ANALYZE the freshly built study now, so the server's autovacuum does not run
    during the timings (and the planner has statistics, as on a database in use)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    finally:
        engine.dispose()


def _postgres(tmp: Path):
    if not (pg_bin("initdb") and pg_bin("pg_ctl")):
        print("no initdb / pg_ctl: PostgreSQL skipped")
        return None
    return PostgresServer(password="bench-only").start()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=10_000, help="the large study (default: %(default)s)")
    ap.add_argument("--small", type=int, default=1_000, help="the small study (default: %(default)s)")
    ap.add_argument("--floor", type=int, default=10, help="a tiny study: the fixed cost of each command, "
                    "Python, imports and opening the storage (default: %(default)s trials; 0: skip)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each command (default: %(default)s)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds before a command counts as '> timeout'")
    ap.add_argument("--baseline", metavar="REV", help="also time the hpo package of this git revision")
    ap.add_argument("--postgres", action="store_true", help="also on a PostgreSQL server started on loopback")
    ap.add_argument("--keep", type=Path, help="folder for the SQLite files: built once, reused by later runs")
    ap.add_argument("--sampler-cost", action="store_true", help="only time GP and TPE asks on the SQLite studies")
    ap.add_argument("--out", help="the file this run's output is recorded in, overwritten (default: bench/"
                    "storage_scale.txt, storage_scale_postgres.txt with --postgres, storage_scale_sampler.txt "
                    "with --sampler-cost; '-': print only)")
    a = ap.parse_args()
    mode = "_sampler" if a.sampler_cost else "_postgres" if a.postgres else ""
    with recorded(a.out or str(REPO / "bench" / f"storage_scale{mode}.txt"), SAMPLER_GOAL if a.sampler_cost else GOAL):
        run(a)


def run(a: argparse.Namespace) -> None:
    """The bench as its arguments say: build the studies, time the commands, print the tables."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sizes = ([a.floor] if a.floor else []) + [a.small, a.trials]
    with tempfile.TemporaryDirectory(prefix="hpo-scale-") as tmp_name:
        tmp = Path(tmp_name)
        folder = a.keep or tmp
        folder.mkdir(parents=True, exist_ok=True)
        urls = {}
        for n in sizes:
            path = folder / f"scale-{n}.db"
            urls[("sqlite", n)] = f"sqlite:///{path.resolve()}"
            if not path.exists():
                print(f"building {n} trials in {path}: {build(urls[('sqlite', n)], n):.1f} s", flush=True)
        if a.sampler_cost:
            sampler_cost(urls, sizes)
            return
        codes = {"after": REPO}  # the working tree
        if a.baseline:
            codes["before"] = extract(a.baseline, tmp / "baseline")
        print(f"timing hpo status / export / report (wall seconds of the process) and hpo launch (to its first "
              f"trial asked), {a.repeat} runs each:")
        # SQLite first, with no server running: a PostgreSQL server vacuuming the studies just built
        # would take CPU from the SQLite runs on a small machine
        results = measure(codes, urls, a.repeat, a.timeout, tmp)
        server = _postgres(tmp) if a.postgres else None
        if server is not None:
            try:
                for n in sizes:
                    urls[("postgresql", n)] = server.url().rsplit("/", 1)[0] + f"/scale{n}"
                    subprocess.run([sys.executable, "-c", f"import sqlalchemy as sa; e=sa.create_engine({server.url()!r},"
                                    f"isolation_level='AUTOCOMMIT'); e.connect().exec_driver_sql('CREATE DATABASE scale{n}')"],
                                   check=True)
                    print(f"building {n} trials on PostgreSQL: {build(urls[('postgresql', n)], n):.1f} s", flush=True)
                    _analyze(urls[("postgresql", n)])
                results.update(measure(codes, {k: v for k, v in urls.items() if k[0] == "postgresql"}, a.repeat,
                                       a.timeout, tmp))
            finally:
                server.stop()
        table(results, sizes, a.timeout)
        same_output(tmp, urls, list(codes))
        if a.keep is None:
            shutil.rmtree(tmp / "baseline", ignore_errors=True)


if __name__ == "__main__":
    main()
