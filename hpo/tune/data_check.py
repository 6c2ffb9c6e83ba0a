"""The launch's data check (hpo.train.preflight.check_study) in a process of its own.

The check loads the data set and splits it with scikit-learn; in the driver, scikit-learn's
import alone was ~1 s of CPU on the launch's critical path, beside Ray's start and the driver's
own imports of Tune and Optuna (bench/launch_start.py). Started first, in a fresh process
(spawn: the driver already runs Ray's start on a thread, and a forked copy of a threaded process
is unsafe), the check runs beside them and sends back only what the driver needs
(`DataSummary`: labels and class names) or the error it raised, which the driver raises as its
own: bad data still ends the launch with exit 2 and the same message.
"""
from __future__ import annotations

import multiprocessing as mp
import traceback
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hpo.spec import StudySpec
    from hpo.train.preflight import DataSummary


class DataCheck:
    """`check_study(spec)` running in a child process from construction; `result` waits for it."""

    def __init__(self, spec: StudySpec) -> None:
        ctx = mp.get_context("spawn")
        self._answer, send = ctx.Pipe(duplex=False)
        # daemon: a launch that ends first (a bad storage URL) does not wait for the check at exit
        self._proc = ctx.Process(target=_check, args=(spec, send), name="hpo-data-check", daemon=True)
        self._proc.start()
        send.close()  # the child holds the only sending end: its death reads as EOF here

    def result(self) -> DataSummary:
        """The checked data's summary; raises what the check raised (UserError: bad input)."""
        try:
            ok, value = self._answer.recv()
        except EOFError:
            self._proc.join()
            raise RuntimeError(f"the data check process ended without an answer (exit code {self._proc.exitcode}); "
                               "run `hpo check --study NAME` to see the check in this process") from None
        self._proc.join()
        if ok:
            return value
        raise value

    def stop(self) -> None:
        """End the check if it still runs (the launch ended before it needed the data)."""
        if self._proc.is_alive():
            self._proc.terminate()
        self._proc.join()
        self._answer.close()


def _check(spec: StudySpec, send: Connection) -> None:
    from hpo.errors import UserError
    from hpo.train.preflight import DataSummary, check_study

    try:
        answer: tuple[bool, object] = (True, DataSummary.of(check_study(spec)))
    except UserError as exc:  # as plain UserError: a subclass's own __init__ may not unpickle
        answer = (False, UserError(str(exc)))
    except Exception as exc:  # noqa: BLE001 - a bug or a broken install: its traceback, as text
        answer = (False, RuntimeError(f"the data check failed:\n{''.join(traceback.format_exception(exc))}"))
    send.send(answer)
    send.close()
