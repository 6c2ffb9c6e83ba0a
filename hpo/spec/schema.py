"""The study file's shape: every section, its fields, their types, defaults and checks.

Fields of registered entries (a loss's gamma, a model's width) are not here: they are declared
by the entry's decorator (hpo.spec.registry) and reach the validator through the catalog. A
section with a `selector` (loss.name, rebalance.method, train.optimizer) allows the chosen
entry's options beside the selector.
"""
from __future__ import annotations

from hpo.spec import catalog
from hpo.spec.options import Bool, Fraction, Int, Num, Option, Str, Table

# metric names a study may optimise; all are "higher is better" fractions in [0, 1]
# auroc / average_precision rank by the predicted probability, so no decision threshold enters:
# one-vs-rest for each minority class, averaged (two classes: the minority class is the positive)
METRICS: tuple[str, ...] = ("minority_f1", "macro_acc", "accuracy", "g_mean",
                            "many_shot_acc", "medium_shot_acc", "few_shot_acc", "auroc", "average_precision")

DATA = Table({
    "name": Str("digits"),
    "seed": Int(0, low=0),
    "longtail": Table({
        # auto: exp for the benchmark sources (digits, CIFAR), none for your own data (never cut unasked)
        "profile": Str("auto", ("auto", "exp", "step", "none")),
        "ratio": Num(100, low=1, doc="n_max / n_min"),
        "minority_fraction": Num(0.5, 0, 1, low_open=True, high_open=True,
                                 doc="the share of classes the step profile shrinks"),
    }),
    "split": Table({
        "val": Num(0.2, 0, 1, low_open=True, high_open=True),
        "test": Num(0.2, 0, 1, low_open=True, high_open=True),
        "val_from": Str("test", ("test", "train")),
        # k-fold objectives: one model per fold of the non-test pool, the fold mean reported (0: off)
        "folds": Int(0, low=0, doc="k of stratified k-fold on the non-test pool; 0 = the single split"),
        "repeats": Int(1, low=1, doc="repeated k-fold: the folds drawn this many times, reshuffled"),
    }),
}, selector="name", kind=catalog.DATA, params_in="params")

MODEL = Table({"name": Str("small_cnn")}, selector="name", kind=catalog.MODEL)

TRAIN = Table({
    "epochs": Int(30, low=1),
    "lr": Num(0.05, 0, low_open=True),
    "batch_size": Int(32, low=1),
    "optimizer": Str("sgd"),
    "weight_decay": Num(5e-4, low=0),
    "device": Str("auto", ("auto", "cpu", "cuda")),
    "seed": Int(0, low=0),
    # auto: eager for now; a GPU run sets it per model family (docs/gpu.md)
    "compile": Option("auto_bool", "auto", choices=("auto", True, False),
                      doc="torch.compile the training step; auto = eager until measured per model family"),
    # CUDA only: each full batch replays one captured step (hpo/train/graph_step.py); off by default
    # until a GPU run has measured it (docs/gpu.md)
    "cuda_graph": Bool(False, doc="replay the training step as a CUDA graph (SGD, Adam, AdamW)"),
    # fine-tuning: the classifier head trains at lr, the rest at lr * backbone_lr_mult; for the
    # first freeze_epochs only the head trains (a linear probe)
    "backbone_lr_mult": Num(1.0, 0, low_open=True),
    "freeze_epochs": Int(0, low=0),
    "label_smoothing": Fraction(0.0),
    # what a trial stores beside its values: its validation and test logits always (float16), and
    # with `weights` its final weights (safetensors) too
    "keep": Str("logits", ("logits", "weights")),
    # post-hoc logit adjustment at evaluation (hpo front / export --post-hoc choose it): 0 = off
    "posthoc_tau": Num(0.0),
    # the data set stays on the device while it takes at most this many MB (default: a quarter of
    # the GPU's memory, or of RAM on CPU); a larger one stays in pinned host memory
    "data_memory_mb": Option("number", None, 0, low_open=True),
    "augment": Table({
        # uint8 index gathers, before anything else (torchvision's RandomCrop(padding), HFlip)
        "crop_padding": Int(0, low=0),
        "flip": Bool(False, doc="horizontal flip, probability 1/2"),
        # kornia, per-sample random parameters, on the device
        "vflip": Bool(False, doc="vertical flip, probability 1/2"),
        "resized_crop": Fraction(0.0, doc="RandomResizedCrop down to scale 1 - this; 0 = off"),
        "rotate": Num(0.0, 0, 180, doc="max degrees"),
        "shift": Fraction(0.0, doc="max translation, a fraction of the side"),
        "scale": Fraction(0.0, doc="max zoom in / out, a fraction"),
        "brightness": Fraction(0.0),
        "contrast": Fraction(0.0),
        "saturation": Fraction(0.0, doc="RGB images only"),
        "rgb_shift": Fraction(0.0, doc="max per-channel shift, RGB images only"),
        "blur": Num(0.0, 0, 1, doc="probability of a Gaussian blur (sigma 0.1..2)"),
        "sharpness": Num(0.0, 0, 1, doc="probability of sharpening"),
        "autocontrast": Num(0.0, 0, 1, doc="probability of autocontrast"),
        # one knob for a RandAugment-like policy: every option above (but the flips and crop
        # padding) at least `magnitude` times its strongest setting (hpo.train.augment.STRONGEST)
        "magnitude": Num(0.0, 0, 1),
    }),
}, selector="optimizer", kind=catalog.OPTIMIZER)

SCHEDULE = Table({
    "name": Str("cosine"),
    "warmup_epochs": Int(0, low=0, doc="linear warm-up from lr / (warmup_epochs + 1)"),
}, selector="name", kind=catalog.SCHEDULE)

LOSS = Table({
    "name": Str("ce"),
    # deferred re-weighting, for every loss: from drw_start * epochs on (1.0 = never)
    "drw_start": Num(1.0, 0, 1, doc="a fraction of the epochs"),
    "drw_beta": Fraction(0.9999),
    # how a loss with class weights w reduces its per-sample losses l over a batch (no weights: plain mean)
    "reduction": Str("weighted_mean", ("weighted_mean", "mean"),
                     doc="weighted_mean: sum(w[y] l) / sum(w[y]) (PyTorch, LDAM-DRW); "
                         "mean: mean(w[y] l) (Cui et al. 2019)"),
}, selector="name", kind=catalog.LOSS)

REBALANCE = Table({
    "method": Str("threshold"),
    "start": Num(0.0, 0, 1, doc="deferred rebalancing: the fraction of epochs before it starts"),
}, selector="method", kind=catalog.REBALANCE)

METRICS_GROUPS = Table({  # many / medium / few-shot groups by training count (Liu et al. 2019's 100 / 20)
    "many_above": Int(100, low=0),
    "few_below": Int(20, low=0),
})

# the sections a trial's config is made of, in the order they are validated
SECTIONS: dict[str, Table] = {"data": DATA, "model": MODEL, "train": TRAIN, "schedule": SCHEDULE, "loss": LOSS,
                              "rebalance": REBALANCE, "metrics": METRICS_GROUPS}

SAMPLER = Table({"name": Str("gp"), "seed": Int(0, low=0)}, selector="name", kind=catalog.SAMPLER)
SCHEDULER = Table({"name": Str("none")}, selector="name", kind=catalog.SCHEDULER)
BUDGET = Table({
    "n_trials": Int(12, low=1),
    "max_concurrent": Int(2, low=1),
    "retries": Int(1, low=0, doc="Ray restarts of a trial whose worker died"),
    "max_failed": Option("int", None, low=1, doc="a launch gives up after this many FAIL trials; default n_trials"),
})
RESOURCES = Table({"cpu": Num(1, 0, low_open=True), "gpu": Num(0, low=0)})

# `constraints:` a list of {metric, min | max} (and `class` for a per-class metric), each a
# requirement a trial must meet to count (hpo.study.constraints). What each may bound:
# fractions in [0, 1] (every objective metric, two recall summaries, a class's own metrics) ...
CONSTRAINT_FRACTIONS: tuple[str, ...] = (*METRICS, "minority_recall", "worst_class_recall")
PER_CLASS_METRICS: tuple[str, ...] = ("recall", "precision", "f1")  # these need `class:` (a name or an index)
# ... and a trial's cost: seconds of its run, peak GPU memory in MB (CUDA trials only), its
# model's parameter count
CONSTRAINT_COSTS: tuple[str, ...] = ("seconds", "gpu_mem_peak_mb", "n_params")
CONSTRAINT_METRICS: tuple[str, ...] = (*CONSTRAINT_FRACTIONS, *PER_CLASS_METRICS, *CONSTRAINT_COSTS)
CONSTRAINT_KEYS = ("metric", "class", "min", "max")

# `warm_start:` the first trials of a new study are the best configs of an earlier one (hpo.study.warm_start)
WARM_START = Table({
    "study": Str(doc="the earlier study's name"),
    "top": Int(5, low=1, doc="how many of its Pareto-best trials to start from"),
    "storage": Option("str", None, doc="its database URL; default: this study's storage"),
})

TOP_LEVEL = ("study", "description", *SECTIONS, "minority", "search", "objectives", "constraints", "sampler",
             "scheduler", "budget", "resources", "warm_start")
PARAM_KEYS = ("type", "low", "high", "log", "step", "choices", "complement", "when")
PARAM_TYPES = ("float", "int", "categorical")
# sections whose fields (and whose selected entries' options) `search:` may name, first match wins
SEARCHABLE = ("train", "rebalance", "loss", "model", "schedule")
