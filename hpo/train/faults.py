"""Test-only fault injection, so the resilience tests can break real trials on purpose.

HPO_FAULT="KIND_once:EPOCH:MARKER" breaks the first trial (in any process) that reaches EPOCH
(1-based) while the file MARKER does not exist, creating MARKER so retries and later trials run
clean. KIND: `kill` (SIGKILL the worker, as the OOM killer would), `nan` (NaN weights, so the
loss goes NaN for real), `oom` (raise torch.cuda.OutOfMemoryError). Several faults, comma
separated, each with its own marker, break one trial each: one launch tests them all. Unset in
normal use.
"""
from __future__ import annotations

import os
import signal
from pathlib import Path

import torch


def maybe_fail(epoch: int, model: torch.nn.Module) -> None:
    for spec in filter(None, os.environ.get("HPO_FAULT", "").split(",")):
        kind, at, marker = spec.split(":", 2)
        if epoch != int(at) or Path(marker).exists():
            continue
        Path(marker).touch()
        if kind == "kill_once":
            os.kill(os.getpid(), signal.SIGKILL)
        elif kind == "nan_once":
            with torch.no_grad():
                next(model.parameters()).fill_(float("nan"))
        elif kind == "oom_once":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated by HPO_FAULT)")
        return  # one fault at a time
