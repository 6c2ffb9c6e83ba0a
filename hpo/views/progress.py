"""What `hpo launch` shows while it runs: trials complete / running / failed out of the budget,
elapsed time, the Pareto front's size and the best value of each objective.

On a terminal it is one live rich panel; otherwise (CI logs, pipes) one plain line per finished
trial. The Pareto front is kept incrementally: a new point either is dominated by the front or
replaces the points it dominates, so each update costs the front's size, not the study's.
"""
from __future__ import annotations

import sys
import time
from typing import IO, Sequence

from hpo.study.pareto import dominates, signs


class Progress:
    def __init__(self, metrics: Sequence[str], directions: Sequence[str], budget: int,
                 prior_values: Sequence[Sequence[float]] = (), stream: IO[str] | None = None,
                 live: bool | None = None) -> None:
        self.metrics, self.budget = list(metrics), budget
        self.signs = signs(directions)
        self.stream = stream or sys.stdout
        self.started = self.failed = self.stopped_early = 0
        self.prior = self.complete = len(prior_values)  # COMPLETE before this launch count toward the budget
        self.front: list[tuple[float, ...]] = []
        for v in prior_values:
            self._add(tuple(v))
        self.t0 = time.monotonic()
        self.live = None
        if live if live is not None else self.stream.isatty():
            from rich.console import Console
            from rich.live import Live

            self.live = Live(self._panel(), console=Console(file=self.stream), refresh_per_second=4)
            self.live.start()

    def __getstate__(self) -> dict:
        # Ray pickles the searcher (and this with it) into its experiment folder: keep the
        # counts, not the terminal
        return {k: v for k, v in self.__dict__.items() if k not in ("stream", "live")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, stream=sys.stdout, live=None)

    def _add(self, v: tuple[float, ...]) -> None:
        if any(dominates(f, v, self.signs) or f == v for f in self.front):
            return
        self.front = [f for f in self.front if not dominates(v, f, self.signs)] + [v]

    def best(self) -> list[float | None]:
        """Best value of each objective on the front (the front holds every objective's best)."""
        return [s * max(s * f[i] for f in self.front) if self.front else None for i, s in enumerate(self.signs)]

    def summary(self) -> str:
        best = ", ".join(f"{m} {b:.4f}" for m, b in zip(self.metrics, self.best()) if b is not None) or "-"
        running = self.started - (self.complete - self.prior) - self.failed
        elapsed = time.monotonic() - self.t0
        stopped = f", stopped early {self.stopped_early}" if self.stopped_early else ""
        return (f"complete {self.complete}/{self.budget}{stopped}, running {running}, failed {self.failed} | "
                f"Pareto front {len(self.front)} | best {best} | {int(elapsed // 60):02d}:{elapsed % 60:04.1f}")

    def _panel(self):
        from rich.panel import Panel

        return Panel(self.summary(), title="hpo launch", expand=False)

    def trial_started(self) -> None:
        self.started += 1
        self._refresh()

    def trial_finished(self, number: int, state: str, values: Sequence[float] | None, reason: str | None,
                       stopped_at: int | None = None) -> None:
        if values is None:
            self.failed += 1
        else:
            self.complete += 1
            if stopped_at is None:  # partial values of an early-stopped trial stay off the front
                self._add(tuple(values))
            else:
                self.stopped_early += 1
        shown = " ".join(f"{m}={v:.4f}" for m, v in zip(self.metrics, values)) if values is not None else reason
        if stopped_at is not None:
            shown += f" (stopped early at epoch {stopped_at})"
        self.echo(f"trial {number} {state}: {shown}")
        self._refresh()

    def echo(self, line: str) -> None:
        if self.live is not None:
            self.live.console.print(line)
        else:
            print(f"{line}  [{self.summary()}]", file=self.stream, flush=True)

    def _refresh(self) -> None:
        if self.live is not None:
            self.live.update(self._panel())

    def close(self) -> None:
        if self.live is not None:
            self.live.update(self._panel())
            self.live.stop()
