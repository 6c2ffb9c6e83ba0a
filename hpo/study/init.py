"""`hpo init`: a study file fitted to an image folder and to this machine, with the reasons.

The choices are plain functions of what was found (the folder's survey, the machine, which
weights can be had, a measured training step): `plan` returns the study as a dict and one line
of reason per choice; `render` writes it as a commented YAML file that `hpo check` accepts.
Defaults for a CPU come from bench/pretrained.py (docs/benchmarks.md).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import yaml

# a class with fewer images than this gets k-fold validation: a 20% validation split would hold
# under 20 of its images, and its F1 would move by 0.05 or more with one image
KFOLD_BELOW = 100
KFOLDS = 3
SMALL_SIDE = 32  # images this small (8x8 digits upsampled): bench/pretrained.py's small_cnn matched ImageNet
TRIALS = (6, 60)  # the fewest trials worth a search, and a ceiling for a first study


@dataclass(frozen=True)
class Recipe:
    """How a backbone is trained and what is searched around it."""

    model: dict[str, Any]
    size: int  # images are decoded at this square
    epochs: int
    batch_size: int
    lr: tuple[float, float]
    pretrained: bool
    freeze_epochs: int = 0
    backbone_lr_mult: tuple[float, float] | None = None


@dataclass(frozen=True)
class Machine:
    cpus: int
    gpus: int
    described: str


@dataclass(frozen=True)
class Data:
    root: str
    counts: dict[str, int]  # class -> images over every split
    median_side: int
    grey: bool
    unreadable: int
    presplit: bool  # ROOT/{train,val,test}/CLASS


@dataclass
class Plan:
    doc: dict[str, Any]
    why: list[str] = field(default_factory=list)  # one line per choice, printed and written as comments
    minutes: float = 0.0


def cpu_recipe(model: dict[str, Any], pretrained: bool, side: int) -> Recipe:
    """The recipe bench/pretrained.py chose for a pretrained backbone on a CPU (docs/benchmarks.md);
    from scratch, hpo's small CNN at up to 32 px."""
    if pretrained:
        return Recipe(model, 32, 12, 32, (3e-4, 3e-2), True, 0, (0.1, 1.0))
    return Recipe({"name": "small_cnn", "width": 32}, max(8, min(side, 32)), 20, 32, (3e-4, 3e-2), False)


def gpu_recipe(model: dict[str, Any], pretrained: bool, side: int) -> Recipe:
    """A pretrained backbone at the resolution its weights were trained at; from scratch, a CIFAR
    ResNet at up to 64 px."""
    if pretrained:
        return Recipe(model, 224, 12, 64, (1e-4, 3e-2), True, 1, (0.01, 1.0))
    return Recipe({"name": "cifar_resnet20"}, max(16, min(side, 64)), 30, 128, (3e-4, 3e-2), False)


def _search(recipe: Recipe) -> dict[str, Any]:
    lo, hi = recipe.lr
    space: dict[str, Any] = {"lr": {"low": lo, "high": hi, "log": True}}
    if recipe.backbone_lr_mult:
        space["backbone_lr_mult"] = {"low": recipe.backbone_lr_mult[0], "high": recipe.backbone_lr_mult[1], "log": True}
    space["weight_decay"] = {"low": 1.0e-5, "high": 1.0e-2, "log": True}
    space["loss"] = {"choices": ["ce", "weighted_ce", "focal", "balanced_softmax"]}
    space["gamma"] = {"low": 0.5, "high": 3.0, "when": {"loss": ["focal"]}}
    space["method"] = {"choices": ["none", "weighted_sampler"]}
    return space


def _split(data: Data, why: list[str]) -> dict[str, Any]:
    name, n = min(data.counts.items(), key=lambda kv: (kv[1], kv[0]))
    split: dict[str, Any] = {"val": 0.2, "test": 0.2}
    if n < KFOLD_BELOW and not data.presplit:
        split["folds"] = KFOLDS
        why.append(f"validation: {KFOLDS}-fold on the non-test images: the smallest class {name!r} has {n} "
                   f"images (< {KFOLD_BELOW}), so one 20% validation split would score it on ~{round(0.2 * n)}; "
                   "each trial trains 3 times and reports the mean")
    else:
        why.append(f"validation: one stratified 20% split (the smallest class {name!r} has {n} images)")
    return split


def trial_seconds(data: Data, recipe: Recipe, folds: int, step_s: float, start_s: float) -> float:
    """A trial's time from one measured training step: epochs of train steps plus evaluation
    (a forward pass, about a third of a step), once per fold, plus the trial's start."""
    n = sum(data.counts.values())
    pool = 0.8 * n  # what is not test
    train, val = (pool * (folds - 1) / folds, pool / folds) if folds else (0.6 * n, 0.2 * n)
    epoch = math.ceil(train / recipe.batch_size) * step_s + math.ceil(val / recipe.batch_size) * step_s / 3
    return max(folds, 1) * (recipe.epochs * epoch + start_s)


def _fit_budget(data: Data, recipe: Recipe, folds: int, step_s: float, start_s: float, seconds: float,
                why: list[str]) -> tuple[Recipe, int, float]:
    """(recipe, trials, seconds per trial): as many trials as fit in `seconds` of trial time; when
    not even the fewest worth a search fit, fewer epochs (down to 3), and it says so."""
    per_trial = trial_seconds(data, recipe, folds, step_s, start_s)
    fit = int(seconds // per_trial)
    if fit < TRIALS[0] and recipe.epochs > 3:
        epochs = max(3, int(recipe.epochs * fit / TRIALS[0]))
        why.append(f"epochs: {epochs} instead of {recipe.epochs}, so that {TRIALS[0]} trials fit the time asked")
        recipe = replace(recipe, epochs=epochs)
        per_trial = trial_seconds(data, recipe, folds, step_s, start_s)
        fit = int(seconds // per_trial)
    return recipe, int(min(TRIALS[1], max(TRIALS[0], fit))), per_trial


def plan(name: str, data: Data, machine: Machine, backbone: tuple[dict[str, Any], bool, str],
         step: Callable[[Recipe], tuple[float, float]], minutes: float) -> Plan:
    """`backbone`: (model section, pretrained?, why); `step(recipe)`: (seconds per training step,
    seconds to start a trial) measured on this machine."""
    model, pretrained, model_why = backbone
    recipe = (gpu_recipe if machine.gpus else cpu_recipe)(model, pretrained, data.median_side)
    p = Plan({}, [f"machine: {machine.described}", model_why])
    if pretrained and not machine.gpus and data.median_side <= SMALL_SIDE:
        p.why.append(f"note: images this small (median side {data.median_side} px): in bench/pretrained.py a small "
                     "CNN from scratch matched the pretrained network at a fraction of its time; "
                     "`hpo init --no-pretrained` writes that study")
    p.why.append(f"input: {recipe.size} px, {'1 channel (every image is grey)' if data.grey else '3 channels'} "
                 f"(the images' median shorter side is {data.median_side} px"
                 + (f"; {data.unreadable} unreadable file(s) skipped" if data.unreadable else "") + ")")
    split = _split(data, p.why)
    smallest = min(data.counts.items(), key=lambda kv: (kv[1], kv[0]))[0]
    p.why.append(f"minority: [{smallest}], the smallest class ({data.counts[smallest]} images); minority_f1 is its F1")
    step_s, start_s = step(recipe)
    concurrent = max(1, machine.gpus)
    recipe, n_trials, per_trial = _fit_budget(data, recipe, split.get("folds", 0), step_s, start_s,
                                              minutes * 60 * concurrent, p.why)
    p.minutes = n_trials * per_trial / concurrent / 60
    p.why.append(f"budget: {n_trials} trials, {concurrent} at a time, {recipe.epochs} epochs, ~{per_trial:.0f} s "
                 f"each (a training step of {recipe.batch_size} images took {step_s * 1000:.0f} ms here): about "
                 f"{p.minutes:.0f} min (asked: {minutes:g} min; `budget.n_trials` scales it)")
    p.doc = _doc(name, data, machine, recipe, split, smallest, n_trials, concurrent)
    return p


def _doc(name: str, data: Data, machine: Machine, recipe: Recipe, split: dict, smallest: str, n_trials: int,
         concurrent: int) -> dict[str, Any]:
    lo, hi = recipe.lr
    train: dict[str, Any] = {"epochs": recipe.epochs, "batch_size": recipe.batch_size, "optimizer": "adamw",
                             "lr": round(math.sqrt(lo * hi), 6), "freeze_epochs": recipe.freeze_epochs,
                             "augment": {"flip": True}, "device": "auto", "seed": 0}
    gpu = 1 if machine.gpus else 0
    cpu = max(1, machine.cpus // concurrent)
    return {
        "study": name,
        "description": f"written by hpo init for {data.root}: {len(data.counts)} classes, "
                       f"{'pretrained ' if recipe.pretrained else ''}{recipe.model.get('arch', recipe.model['name'])}",
        "data": {"name": "imagefolder", "params": {"root": data.root, "image_size": recipe.size,
                                                   "channels": 1 if data.grey else 3},
                 "longtail": {"profile": "none"}, "split": split},
        "minority": [smallest],
        "model": recipe.model,
        "train": train,
        "schedule": {"name": "cosine"},
        "loss": {"name": "ce"},
        "rebalance": {"method": "none"},
        "search": _search(recipe),
        "objectives": [{"name": "minority_f1", "direction": "maximize"},
                       {"name": "macro_acc", "direction": "maximize"}],
        "sampler": {"name": "gp", "seed": 0},
        "budget": {"n_trials": n_trials, "max_concurrent": concurrent},
        "resources": {"cpu": cpu, "gpu": gpu},
    }


COMMENTS = {
    "data": "your folder as it is (no long-tail cut); the test split is never scored during the search",
    "model": "see the reasons above",
    "train": "AdamW at the middle of the searched lr range; flips on (remove them if orientation carries the class)",
    "search": "the searched parameters; a bound the best trials sit on is named by `hpo status` and `hpo export`",
    "objectives": "the two numbers traded off: the smallest class's F1 and the mean per-class recall",
    "budget": "trials that finish in about the time above on this machine",
    "resources": "what one trial takes of this machine",
}


def render(p: Plan, command: str) -> str:
    """The study file: a header of what was found and chosen, then each section with a comment."""
    def one_line(text: str) -> str:  # a folder or argument holding a newline must not end the comment
        return " ".join(text.splitlines())

    name = p.doc["study"]
    head = [f"# written by `{one_line(command)}`", *(f"#   {one_line(line)}" for line in p.why),
            f"# check it with `hpo check --study {name}`; run it with `hpo launch --study {name}`", ""]
    body = []
    for key, value in p.doc.items():
        if key in COMMENTS:
            body.append(f"\n# {COMMENTS[key]}")
        flow = None if isinstance(value, (dict, list)) else False  # leaves in flow style; a scalar stays `key: value`
        body.append(yaml.safe_dump({key: value}, sort_keys=False, default_flow_style=flow, width=110).rstrip())
    return "\n".join(head) + "\n".join(body) + "\n"
