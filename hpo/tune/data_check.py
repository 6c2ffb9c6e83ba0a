"""The launch's data check (hpo.train.preflight.check_study) in a process of its own.

The check loads the data set and splits it with scikit-learn; in the driver, scikit-learn's
import alone was ~1 s of CPU on the launch's critical path, beside Ray's start and the driver's
own imports of Tune and Optuna (bench/storage_scale.py times the launch). Started first, in a
fresh interpreter running `main` below (not multiprocessing: its spawn would run the caller's
main script again, and a fork copies a process whose Ray start runs on a thread), the check runs beside them and
sends back only what the driver needs (`DataSummary`: labels and class names) or the error it
raised, which the driver raises as its own: bad data still ends the launch with exit 2 and the
same message. Spec and answer travel pickled over the child's stdin / stdout, between two
processes of this package; whatever the check prints goes to stderr.
"""
from __future__ import annotations

import pickle
import signal
import subprocess
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hpo.spec import StudySpec
    from hpo.train.preflight import DataSummary

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # the folder holding `hpo`, for the child's imports


class DataCheck:
    """`check_study(spec)` running in a child process from construction; `result` waits for it."""

    def __init__(self, spec: StudySpec) -> None:
        # this package's folder last on the child's path: found where the driver found it (a
        # checkout run in place, too), without putting it ahead of the standard library
        code = f"import sys; sys.path.append({_PACKAGE_ROOT!r}); from hpo.tune.data_check import main; main()"
        self._proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self._proc.stdin is not None
        with self._proc.stdin:
            self._proc.stdin.write(pickle.dumps(spec))

    def result(self) -> DataSummary:
        """The checked data's summary; raises what the check raised (UserError: bad input)."""
        assert self._proc.stdout is not None
        answer = self._proc.stdout.read()
        self._proc.wait()
        if not answer:
            raise RuntimeError(f"the data check process ended without an answer (exit code {self._proc.returncode}); "
                               "run `hpo check --study NAME` to see the check in this process")
        ok, value = pickle.loads(answer)
        if ok:
            return value
        raise value

    def stop(self) -> None:
        """End the check if it still runs (the launch ended before it needed the data)."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()


def _check(spec: StudySpec) -> tuple[bool, object]:
    from hpo.errors import UserError
    from hpo.train.preflight import DataSummary, check_study

    try:
        return True, DataSummary.of(check_study(spec))
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

