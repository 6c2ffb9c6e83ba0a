"""The launch's data check (hpo.train.preflight.check_study) in a process of its own.

The check loads the data set and splits it with scikit-learn, whose import alone is a noticeable
share of the driver's start (bench/storage_scale.py times the launch). Started first, in a fresh
interpreter running `main` below (not multiprocessing: its spawn would run the caller's main
script again, and a fork copies a process whose Ray start runs on a thread), the check runs beside
Ray's start and the driver's imports of Tune and Optuna, and sends back only what the driver
needs (`DataSummary`: labels and class names, and `content_digest`: the data the trials train on,
which the study records so that a relaunch on other data is refused) or the error it raised,
which the driver raises as its own: bad data still ends the launch with exit 2 and the same
message. Spec and answer travel pickled over the child's stdin / stdout, between two processes
of this package; whatever the check prints goes to stderr.

A check that passed is remembered (`storage/data_check/KEY.npz`: labels, class names and the
content digest, read without pickle). KEY digests what the check's answer depends on: the study's
fixed config, its minority classes and objectives, the size and modification time of every file
under each absolute path the config names (an image folder is walked), the versions of
scikit-learn, NumPy and Pillow, and hpo's own source. A relaunch with none of them changed skips
the check (bench/image_decode.py and bench/storage_scale.py time what that saves). A failed check
is never remembered: bad data fails every launch. `hpo check` (in its own process) remembers a
pass too. A study of timm's pretrained weights (`pretrained: true`) is checked every launch
(`rememberable`). Not seen by the key: an image an annotation file lists that changes in place
(its labels come from the annotation file, which is seen). Delete the folder to check again.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import signal
import subprocess
import sys
import traceback
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

if TYPE_CHECKING:
    from hpo.spec import StudySpec
    from hpo.train.preflight import DataSummary
    from hpo.train.splits import Splits

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # the folder holding `hpo`, for the child's imports
RECORDS = Path("storage/data_check")  # checks that passed, beside Tune's storage/ray
KEEP = 64  # records kept, the most recently used
_LIBRARIES = ("scikit-learn", "numpy", "pillow")  # the split and digits; the long-tail draw; which images decode


class DataCheck:
    """`check_study(spec)` running in a child process from construction, unless `records` holds
    the answer of a passed check with the same key (`remembered`); `result` waits for it."""

    def __init__(self, spec: StudySpec, records: Path | None = RECORDS) -> None:
        self.record = _record_path(spec, records)  # where a pass is (or would be) remembered
        remembered = _read(self.record) if self.record is not None else None
        self.remembered = remembered[0] if remembered is not None else None
        self.digest: str | None = remembered[1] if remembered is not None else None  # see `content_digest`
        self._answer = self.remembered  # the summary, once known (`result` reads the process once)
        self._proc: subprocess.Popen | None = None
        if self.remembered is not None:
            return
        # this package's folder last on the child's path: found where the driver found it (a
        # checkout run in place, too), without putting it ahead of the standard library
        code = f"import sys; sys.path.append({_PACKAGE_ROOT!r}); from hpo.tune.data_check import main; main()"
        self._proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self._proc.stdin is not None
        with self._proc.stdin:
            self._proc.stdin.write(pickle.dumps(spec))

    def result(self) -> DataSummary:
        """The checked data's summary; raises what the check raised (UserError: bad input)."""
        if self._answer is not None:
            return self._answer
        assert self._proc is not None and self._proc.stdout is not None
        answer = self._proc.stdout.read()
        self._proc.wait()
        if not answer:
            raise RuntimeError(f"the data check process ended without an answer (exit code {self._proc.returncode}); "
                               "run `hpo check --study NAME` to see the check in this process")
        ok, value = pickle.loads(answer)
        if not ok:
            raise value
        self._answer, self.digest = value
        if self.record is not None:
            _write(self.record, *value)
        return self._answer

    def stop(self) -> None:
        """End the check if it still runs (the launch ended before it needed the data)."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()


def remember(spec: StudySpec, splits: Splits, records: Path = RECORDS) -> None:
    """Record a check of `spec` that passed elsewhere (`hpo check`): the next launch skips it."""
    from hpo.train.preflight import DataSummary

    record = _record_path(spec, records)
    if record is not None:
        _write(record, DataSummary.of(splits), content_digest(splits))


def content_digest(splits: Splits) -> str:
    """What the trials train and are scored on, as one digest: every part's images (decoded,
    resized, cut and split) and labels, and the class names. A study records it, so a relaunch on
    other data is refused (hpo.study.settings), however the files changed: in place, added,
    removed, or an image an annotation file lists."""
    digest = hashlib.sha256(json.dumps(list(splits.class_names)).encode())
    for part in (splits.train, splits.val, splits.test):
        digest.update(json.dumps([list(part.x.shape), str(part.x.dtype), len(part.y)]).encode())
        digest.update(np.ascontiguousarray(part.x).data)
        digest.update(np.ascontiguousarray(part.y, dtype=np.int64).data)
    return digest.hexdigest()[:32]


def _record_path(spec: StudySpec, records: Path | None) -> Path | None:
    """The record of a pass of `spec` under `records`; None: not remembered (see `rememberable`)."""
    return records / f"{record_key(spec)}.npz" if records is not None and rememberable(spec) else None


def rememberable(spec: StudySpec) -> bool:
    """Whether the check's answer follows from what the key sees. Not with `pretrained: true`: the
    check also finds (or fetches) timm's weights in the Hugging Face cache, which an emptied cache
    or HF_HUB_OFFLINE changes without any file the study names changing."""
    model = spec.trial_config({})["model"]
    return not (model["name"] == "timm" and model.get("pretrained"))


def record_key(spec: StudySpec) -> str:
    """The digest of everything a passed check's answer depends on (see the module)."""
    config = spec.trial_config({})  # what check_study reads: the fixed part, defaults filled in
    seen = {"config": config, "minority": spec.minority, "metrics": list(spec.metric_names),
            "files": {path: list(_files(Path(path))) for path in sorted(set(_paths(config)))},
            "libraries": {name: _version(name) for name in _LIBRARIES},
            "hpo": _source_digest()}
    return hashlib.sha256(json.dumps(seen, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _source_digest() -> str:
    """hpo's own code: a change to how data loads, cuts or splits is a change of answer."""
    code = hashlib.sha256()
    for f in sorted(Path(_PACKAGE_ROOT, "hpo").rglob("*.py")):
        code.update(f.read_bytes())
    return code.hexdigest()


def _paths(value: Any) -> Iterator[str]:
    """The absolute paths a config names (the study file's path and file options are made absolute)."""
    if isinstance(value, dict):
        for v in value.values():
            yield from _paths(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _paths(v)
    elif isinstance(value, str) and os.path.isabs(value) and os.path.exists(value):
        yield value


def _files(path: Path) -> Iterator[tuple[str, int, int]]:
    """(path under `path`, size, modification time in ns) of the file, or of each file in the folder."""
    if path.is_file():
        st = path.stat()
        yield "", st.st_size, st.st_mtime_ns
        return
    for folder, dirs, names in os.walk(path, followlinks=True):  # as the sources read: class folders may be links
        dirs.sort()
        for name in sorted(names):
            full = os.path.join(folder, name)
            st = os.stat(full)
            yield os.path.relpath(full, path), st.st_size, st.st_mtime_ns


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _read(record: Path) -> tuple[DataSummary, str] | None:
    """The remembered summary and content digest, or None (no record, or one that cannot be read:
    checked again)."""
    from hpo.train.preflight import DataSummary, Labels

    try:
        with np.load(record, allow_pickle=False) as z:
            summary = DataSummary(*(Labels(z[part].astype(np.int64)) for part in ("train", "val", "test")),
                                  tuple(str(c) for c in z["class_names"]))
            digest = str(z["digest"])
        os.utime(record)  # recently used: kept by _write's pruning
    except Exception:  # noqa: BLE001 - absent, cut short, without a digest, or not ours: checked again
        return None
    return summary, digest


def _write(record: Path, summary: DataSummary, digest: str) -> None:
    """Remember a passed check (written whole, then renamed); keep the KEEP most recently used."""
    part = record.with_suffix(f".{os.getpid()}.part")  # two launchers writing at once each rename a whole file
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        with open(part, "wb") as f:
            np.savez(f, train=summary.train.y, val=summary.val.y, test=summary.test.y,
                     class_names=np.array(summary.class_names, dtype=str), digest=np.array(digest))
        os.replace(part, record)
        old = sorted(record.parent.glob("*.npz"), key=lambda f: f.stat().st_mtime_ns, reverse=True)[KEEP:]
        for f in old:
            f.unlink(missing_ok=True)
    except OSError:  # a read-only or full disk: the next launch checks again, nothing is lost
        with contextlib.suppress(OSError):
            part.unlink(missing_ok=True)


def _check(spec: StudySpec) -> tuple[bool, object]:
    from hpo.errors import UserError
    from hpo.train.preflight import DataSummary, check_study

    try:
        splits = check_study(spec)
        return True, (DataSummary.of(splits), content_digest(splits))
    except UserError as exc:  # as plain UserError: a subclass's own __init__ may not unpickle
        return False, UserError(str(exc))
    except Exception as exc:  # noqa: BLE001 - a bug or a broken install: its traceback, as text
        return False, RuntimeError(f"the data check failed:\n{''.join(traceback.format_exception(exc))}")


def main() -> None:
    # Ctrl-C reaches the whole process group: the driver stops this process itself (`stop`)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # the answer owns stdout
    answer = _check(pickle.loads(sys.stdin.buffer.read()))
    out.write(pickle.dumps(answer))
    out.flush()

