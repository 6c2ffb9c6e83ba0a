"""StudySpec.search -> an Optuna define-by-run function, and the study's sampler.

Define-by-run (rather than a fixed distribution dict) is what lets a parameter exist only
when another takes certain values (`when:`), e.g. LDAM's C only when loss == ldam.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Callable

import optuna

from hpo.spec import Param, StudySpec, catalog
from hpo.spec.options import Int
from hpo.spec.registry import Registry


def suggest(trial: optuna.Trial, p: Param) -> Any:
    if p.type == "categorical":
        return trial.suggest_categorical(p.optuna_name, list(p.choices))
    if p.type == "int":
        return trial.suggest_int(p.optuna_name, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
    return trial.suggest_float(p.optuna_name, float(p.low), float(p.high), step=p.step, log=p.log)


class DefineByRun:
    """What OptunaSearch calls once per new trial to sample its parameters.

    A class rather than a closure: Ray pickles the searcher (and this with it) into the
    experiment folder.
    """

    def __init__(self, spec: StudySpec) -> None:
        self.search = spec.search

    def __call__(self, trial: optuna.Trial) -> None:
        taken: dict[str, Any] = {}
        for p in self.search:
            # a conditional parameter is skipped (not sampled, not stored) unless its parents match
            if p.active(taken):
                taken[p.name] = p.value(suggest(trial, p))


@dataclass(frozen=True)
class Sampling:
    """A study's sampler and how many finished trials it sees (0: all; hpo.study.sampler_storage)."""

    sampler: optuna.samplers.BaseSampler
    window: int = 0


SAMPLERS: Registry[Callable[..., Sampling]] = Registry(catalog.SAMPLER, fixed=("seed",))
_WINDOW = "the sampler sees the last N finished trials plus the Pareto front (0: every trial)"


# GP is the study-file default: on the digits-LT bench it reached random search's hypervolume
# sooner than TPE and NSGA-II (bench/search_efficiency.py). A GP's cost grows with the trials it
# sees: a window of 500 by default (bench/storage_scale.py --sampler-cost; docs/benchmarks.md).
@SAMPLERS.register("gp", window=Int(500, low=0, doc=_WINDOW))
def gp(seed: int, window: int) -> Sampling:
    """Gaussian-process Bayesian optimisation (Optuna's GPSampler)."""
    return Sampling(optuna.samplers.GPSampler(seed=seed), window)


# TPE's cost grows linearly with the trials it sees: every trial by default (docs/benchmarks.md)
@SAMPLERS.register("tpe", window=Int(0, low=0, doc=_WINDOW))
def tpe(seed: int, window: int) -> Sampling:
    """Multivariate tree-structured Parzen estimator."""
    # constant liar: a RUNNING trial counts as a poor result, so concurrent trials spread out
    return Sampling(optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True), window)


# no window: NSGA-II picks its parents by generation from every trial; random search reads none
@SAMPLERS.register("nsga2")
def nsga2(seed: int) -> Sampling:
    """NSGA-II genetic algorithm."""
    return Sampling(optuna.samplers.NSGAIISampler(seed=seed))


@SAMPLERS.register("random")
def random(seed: int) -> Sampling:
    """Independent uniform draws."""
    return Sampling(optuna.samplers.RandomSampler(seed=seed))


def build_sampler(spec: StudySpec, n_existing_trials: int, launcher_id: str | None = None) -> Sampling:
    """The study's sampler, seeded for this launch, and its window.

    A resumed study re-seeded with the same seed would replay the same random start-up draws and
    repeat parameters already tried; offsetting by the trial count keeps a lone launch
    reproducible given the study's state. A launcher joining others (`launcher_id` given) also
    mixes in its own id: two launchers seeded alike would draw the same parameters.
    """
    seed = int(spec.sampler["seed"]) + n_existing_trials
    if launcher_id is not None:
        seed = (seed + zlib.crc32(launcher_id.encode())) % 2**31
    opts = {k: v for k, v in spec.sampler.items() if k not in ("name", "seed")}
    return SAMPLERS.build(spec.sampler["name"], seed=seed, **opts)
