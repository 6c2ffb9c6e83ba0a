"""Ray started on a thread while the launch gets ready.

`ray.init` on a fresh machine is ~3 s of mostly waiting on 2 cores: the GCS, the raylet and
Ray's API server start as processes and register. The launch meanwhile imports Tune, Optuna
and scikit-learn, checks the data and opens the study (~2.5 s), so `hpo launch` starts Ray
first (right after the study file is validated) and joins it when Tune needs it: the first
trial is asked ~2 s sooner (bench/storage_scale.py times it). `ray.init` allows a thread; the
one thing it sets only from the main thread, a SIGTERM handler that exits through `sys.exit`
so Ray shuts down cleanly, is set here from the main thread instead.
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from hpo.errors import UserError
from hpo.tune import RAY_DIR
from hpo.tune.ray_seam import ENV, set_ray_log_level


class RayStart:
    """`ray.init` on a thread (nothing, when Ray is already up in this process); `wait` waits for
    it and raises what it raised, `stop` shuts down the Ray it started."""

    def __init__(self, address: str | None = None, verbose: bool = False) -> None:
        for k, v in ENV.items():
            os.environ.setdefault(k, v)
        # with `compile: true`, Inductor's compiled kernels go to one on-disk cache under storage/
        # that every worker of the machine reads: a model compiles once, not once per worker
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str((RAY_DIR.parent / "inductor").resolve()))
        import ray

        self.error: BaseException | None = None
        self.address = address
        if not verbose:  # before init: it logs its start-up at INFO
            set_ray_log_level(logging.ERROR)
        self._thread: threading.Thread | None = None
        self._ready, self._release = threading.Event(), threading.Event()
        self._used = False  # set by `wait`: Tune needed this Ray
        self.external = ray.is_initialized()  # the caller's Ray (bench/overhead.py, tests): used, not stopped
        if self.external:
            self._ready.set()
            return
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(signum))
        kwargs = {"address": address, "include_dashboard": False, "configure_logging": True,
                  "logging_level": logging.INFO if verbose else logging.ERROR, "log_to_driver": verbose}
        self._thread = threading.Thread(target=self._init, args=(kwargs,), daemon=True, name="hpo-ray-init")
        self._thread.start()

    def _init(self, kwargs: dict) -> None:
        import ray

        try:
            ray.init(**kwargs)
        except BaseException as exc:  # noqa: BLE001 - raised again in the main thread by `wait`
            self.error = exc
        finally:
            self._ready.set()
        # Ray's own processes die with the thread that started them (they are started with a
        # parent-death signal, which follows the parent *thread*): this thread lives until `stop`
        self._release.wait()
        if not self._used and ray.is_initialized():
            ray.shutdown()  # the launch ended before it needed Ray

    def wait(self) -> None:
        """Block until Ray is up (raises what `ray.init` raised)."""
        self._used = True
        self._ready.wait()
        if isinstance(self.error, (ConnectionError, RuntimeError, ValueError)) and self.address:
            raise UserError(f"--ray-address {self.address[:200]}: no Ray cluster to join there "
                            f"({type(self.error).__name__}: {str(self.error)[:200]}); start one with "
                            "`ray start --head`, or leave the flag out") from None
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        """Shut down the Ray started here. A launch that ends before it needed Ray (bad data, a
        storage that refuses writes) does not wait for Ray's start to finish: the thread shuts
        it down when it is up, and the Ray processes started so far are ended here. Ray's
        agents are the raylet's children: the parent-death signal that ends the raylet with
        this process does not reach them, and they would run on."""
        import ray

        if self._thread is None:
            return
        if self._used:
            self._ready.wait()
            if ray.is_initialized():
                ray.shutdown()
        self._release.set()
        if self._used:
            self._thread.join()
            return
        set_ray_log_level(logging.CRITICAL + 1)  # Ray logs the ends of the processes it waits on or shuts down
        _become_subreaper()  # an agent its ending raylet leaves behind becomes ours, so the next sweep finds it
        deadline = time.monotonic() + 3.0
        end_ray_processes()
        while _ray_descendants() and time.monotonic() < deadline:  # a start under way may start more meanwhile
            time.sleep(0.2)
            end_ray_processes()


def _become_subreaper() -> None:
    """Linux: orphaned descendants (a Ray agent whose raylet was just ended) are re-parented to this
    process rather than to init, where no sweep of this process's descendants would see them."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _ray_process(argv: list[str]) -> bool:
    """A process of Ray's own: its GCS, raylet, Python services (dashboard, log monitor) and the
    agents and workers, which name themselves `ray::...`."""
    return bool(argv) and (argv[0].startswith("ray::") or Path(argv[0]).name in ("raylet", "gcs_server")
                           or any(f"{os.sep}ray{os.sep}" in arg for arg in argv[1:3]))  # python [-u] SCRIPT


def _ray_descendants() -> list[int]:
    """Ray's processes among this process's descendants (children of children included), from /proc."""
    parent: dict[int, int] = {}
    argv: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            parent[int(entry.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
            argv[int(entry.name)] = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except (OSError, ValueError, IndexError):  # gone meanwhile, or not ours to read
            continue
    found, frontier = [], [os.getpid()]
    while frontier:
        children = [pid for pid, ppid in parent.items() if ppid in frontier]
        found += children
        frontier = children
    return [pid for pid in found if _ray_process(argv.get(pid, []))]


def end_ray_processes(grace_s: float = 0.5) -> None:
    """SIGTERM to every Ray process this one started, SIGKILL to those alive after `grace_s` (the
    raylet and an agent shut down over seconds; a Ray no trial ran on has nothing to save).
    Linux only (/proc); elsewhere Ray's processes end as they did before."""
    if not Path("/proc/self/stat").exists():
        return
    pids = _ray_descendants()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while pids and time.monotonic() < deadline:
        time.sleep(0.05)
        pids = [pid for pid in pids if _alive(pid)]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Running, and not a zombie waiting to be reaped (what a SIGTERM'd child of ours becomes)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def cluster_resources(address: str) -> dict[str, float]:
    """What the Ray cluster at `address` offers, read by a short-lived connection (`hpo check`)."""
    import ray

    for k, v in ENV.items():
        os.environ.setdefault(k, v)
    try:
        ray.init(address=address, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UserError(f"--ray-address {address[:200]}: no Ray cluster to join there ({type(exc).__name__}: "
                        f"{str(exc)[:200]}); start one with `ray start --head`, or leave the flag out") from None
    try:
        return dict(ray.cluster_resources())
    finally:
        ray.shutdown()
