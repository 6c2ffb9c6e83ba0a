"""One training run from a trial config: data -> model -> loss -> epochs -> validation metrics.

The data set lives on the trial's device as one tensor; batches are drawn by index, so the
rebalancing sampler costs an index permutation, not a DataLoader. The same code runs on CPU
(tests) and CUDA (bf16 autocast, selected by device).
"""
from __future__ import annotations

import gc
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Generator, Iterator

import numpy as np
import torch

from hpo.spec.schema import METRICS
from hpo.train import device_data, faults, losses, models, optim
from hpo.train.augment import kornia_pipeline
from hpo.train.device_data import DeviceData, DeviceSplits, View, keep_on_host, to_device
from hpo.train.graph_step import GraphStep, unsupported
from hpo.train.label_smoothing import LabelSmoothing
from hpo.train.metrics import adjust, evaluate, softmax
from hpo.train.rebalance import epoch_indices
from hpo.train.schedules import Schedule
from hpo.train.splits import Splits

Report = Callable[[dict[str, Any]], None]
SCALARS = METRICS  # the per-epoch values a trial reports


class TrialFailure(Exception):
    """A trial that cannot give meaningful values; `reason` is a short code stored on the trial."""

    def __init__(self, reason: str, **details: Any) -> None:
        self.reason, self.details = reason, details
        super().__init__(f"{reason} {details}" if details else reason)


def set_threads(cpu: float) -> None:
    """Intra-op threads for a trial given `cpu` cores (at least one)."""
    torch.set_num_threads(max(1, int(cpu)))


# what one process holds on its GPU outside the caching allocator's cap (the CUDA context, the
# cuDNN and cuBLAS handles and workspaces): an allowance, not a measurement of any one card
CONTEXT_MB = 1024


def memory_fraction(share: float, total_bytes: float) -> float:
    """The allocator cap of a trial given `share` of a GPU: its share less one process's
    context, which the cap does not count, so n trials at 1/n fit on the card together (never
    below half the share: on a small card the allowance would eat it)."""
    if not 0 < share < 1:
        return 1.0
    return max(share - CONTEXT_MB * 2**20 / total_bytes, share / 2)


def share_gpu(share: float, device: torch.device) -> float:
    """A trial given a fraction of a GPU may allocate that fraction of its memory, no more: four
    trials at 0.25 cannot starve each other. Returns the cap (1.0: the whole GPU). Peak usage
    is reported as gpu_mem_peak_mb."""
    cap = memory_fraction(share, torch.cuda.get_device_properties(device).total_memory)
    if cap < 1:
        torch.cuda.set_per_process_memory_fraction(cap, device)
    torch.cuda.reset_peak_memory_stats(device)
    return cap


def pick_device(train_cfg: dict[str, Any], gpu_share: float) -> torch.device:
    want = train_cfg["device"]
    if want == "cuda" or (want == "auto" and gpu_share > 0):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if want == "cuda":
            raise RuntimeError("train.device is 'cuda' but torch sees no CUDA device")
    return torch.device("cpu")


def compiled(model: torch.nn.Module, mode: str | bool, device: torch.device) -> torch.nn.Module:
    """torch.compile for the full training batches only when asked (`compile: true`); `auto`
    stays eager until a GPU run sets it per model family (docs/gpu.md). The short last batch and
    evaluation run the plain model: another shape would compile the model again."""
    return torch.compile(model) if mode is True else model


def train_epoch(model: torch.nn.Module, criterion: torch.nn.Module, opt: torch.optim.Optimizer,
                train: DeviceData, order: np.ndarray, batch_size: int, view: View,
                graph: GraphStep | None = None, short_model: torch.nn.Module | None = None) -> float:
    """One pass over `order` (training indices, rebalanced); returns the mean loss. bf16 autocast on
    CUDA; the loss is summed on the device so no step waits for the GPU. The last batch may be
    short: every image of the epoch trains (with a long tail it may be the rare class); it runs
    on `short_model` when given (the plain model under a compiled `model`). With `graph`, full
    batches go through it (hpo.train.graph_step) and a short one runs here."""
    model.train()
    device = train.device
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    idx_all = torch.as_tensor(order, device=device)  # one copy per epoch; batches slice it on the device
    host_all = torch.as_tensor(order) if train.on_host else None  # a set on the host gathers there
    total = torch.zeros((), device=device)
    for i in range(0, len(order), batch_size):
        idx = idx_all[i:i + batch_size]
        host_idx = None if host_all is None else host_all[i:i + batch_size]
        if graph is not None and len(idx) == batch_size:
            total += graph.step(idx, host_idx) * len(idx)
            continue
        net = model if len(idx) == batch_size or short_model is None else short_model
        with autocast:
            loss = criterion(net(train.batch(idx, view, host_idx)), train.y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.detach() * len(idx)
    return float(total) / max(len(order), 1)


@torch.no_grad()
def logits(model: torch.nn.Module, data: DeviceData, view: View, batch: int = 1024) -> np.ndarray:
    """Float32 logits of every image in split order, in bf16 autocast on CUDA; one host copy at
    the end, not one per batch."""
    model.eval()
    idx, host = torch.arange(len(data.y), device=data.device), torch.arange(len(data.y))
    autocast = torch.autocast(data.device.type, dtype=torch.bfloat16, enabled=data.device.type == "cuda")
    with autocast:
        out = [model(data.batch(idx[i:i + batch], view, host[i:i + batch])).float() for i in range(0, len(idx), batch)]
    return torch.cat(out).cpu().numpy()


def predict(model: torch.nn.Module, data: DeviceData, view: View) -> np.ndarray:
    return logits(model, data, view).argmax(1)


@dataclass
class Parts:
    """What one run trains: the model, the one the steps call (maybe compiled), the loss as
    trained (label smoothing on), the loss itself (its DRW switch), optimiser and schedule."""

    model: torch.nn.Module
    step_model: torch.nn.Module
    train_loss: torch.nn.Module
    criterion: losses.ImbalanceLoss
    opt: torch.optim.Optimizer
    schedule: Schedule
    backbone: list[torch.nn.Parameter]
    graph: GraphStep | None = None  # `train.cuda_graph` on CUDA: full batches replay one captured step
    graph_state: str = "off"  # without `graph`, what the trial records: off, or why the step runs eager


def build(config: dict[str, Any], splits: Splits, device: torch.device) -> Parts:
    """The parts of a run from a resolved trial config."""
    tcfg, lcfg, mcfg = config["train"], config["loss"], config["model"]
    counts = splits.class_counts
    model = models.build(mcfg["name"], num_classes=len(counts), in_chans=splits.train.x.shape[1],
                         **{k: v for k, v in mcfg.items() if k != "name"}).to(device)
    # on the model's device: its class weights, margins and offsets are read there at every step
    criterion = losses.build(lcfg["name"], counts, **{k: v for k, v in lcfg.items() if k != "name"}).to(device)
    models.adapt_head(model, cosine=criterion.needs_cosine_head, bias_init=criterion.head_bias_init)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    head = models.head(model)
    opt = optim.build(model, head, tcfg)
    head_ids = {id(p) for p in head.parameters()}
    return Parts(model, compiled(model, tcfg["compile"], device), LabelSmoothing(criterion, tcfg["label_smoothing"]),
                 criterion, opt, Schedule(opt, config["schedule"], int(tcfg["epochs"])),
                 [p for p in model.parameters() if id(p) not in head_ids])


def views(config: dict[str, Any], dev: DeviceSplits, model: torch.nn.Module) -> tuple[View, View]:
    """(training view, evaluation view): the pretrained weights' normalisation when there are
    some, else the training set's; the training view adds the augmentation."""
    spec = models.input_spec(model)
    base = dev.view(spec.mean, spec.std, spec.size)
    tcfg = config["train"]
    x = dev.splits.train.x
    side = spec.size or x.shape[-1]
    gen = torch.Generator(device=dev.train.device).manual_seed(int(tcfg["seed"]))
    pipeline = kornia_pipeline(tcfg["augment"], x.shape[1], (side, side), dev.train.device)
    train = View(base.mean, base.std, base.size, tcfg["augment"], gen, pipeline)
    return train, base


def run(config: dict[str, Any], report: Report | None = None, splits: Splits | None = None,
        with_test: bool = False) -> dict[str, Any]:
    """Train from `config` (StudySpec.trial_config) and return the final validation metrics.

    `report` is called after every epoch but the last with that epoch's validation metrics
    (Ray Tune's report in a trial); the caller reports the returned final metrics itself.
    The test split is evaluated only with `with_test`, which trials never set.
    """
    return _drive([training(config, splits, with_test)], report, int(config["train"]["epochs"]))[0]


def run_folds(config: dict[str, Any], report: Report | None = None, with_test: bool = False) -> dict[str, Any]:
    """k-fold objectives (`data.split.folds`): one model per fold of the non-test pool, trained in
    lockstep, so each epoch's report (what MO-ASHA decides on) is the mean over the folds so far.
    The result's metrics are the fold means; `fold_values` / `fold_std` keep each metric per fold
    and its spread; per-class metrics and the stored validation logits are the out-of-fold ones."""
    from hpo.train.splits import folds, prepare

    parts = folds(config["data"], prepare(config["data"]))
    # the folds train side by side, each with its own copy of its data: the budget counts all k
    finals = _drive([training(config, s, with_test, copies=len(parts)) for s in parts], report,
                    int(config["train"]["epochs"]))
    return _combine(config, parts, finals)


def _drive(runs: list[Iterator[dict[str, Any]]], report: Report | None, epochs: int) -> list[dict[str, Any]]:
    """Advance the training runs an epoch at a time, together; report the mean of their rows."""
    finals: list[dict[str, Any]] = [{} for _ in runs]
    while True:
        rows = []
        for i, r in enumerate(runs):
            try:
                rows.append(next(r))
            except StopIteration as done:
                finals[i] = done.value
        if not rows:
            return finals
        if report is not None and rows[0]["epoch"] < epochs:
            # the folds run in lockstep, each one's seconds counted from its own start: the trial's are the longest
            report({k: rows[0]["epoch"] if k == "epoch" else
                    float((np.max if k == "seconds" else np.mean)([row[k] for row in rows])) for k in rows[0]})


def _combine(config: dict[str, Any], parts: list[Splits], finals: list[dict[str, Any]]) -> dict[str, Any]:
    out = dict(finals[0])
    out["fold_values"] = {m: [float(f[m]) for f in finals] for m in SCALARS}
    out["fold_std"] = {m: float(np.std(v)) for m, v in out["fold_values"].items()}
    out.update({m: float(np.mean(v)) for m, v in out["fold_values"].items()})
    out["train_loss"] = float(np.mean([f["train_loss"] for f in finals]))
    out["seconds"] = float(max(f["seconds"] for f in finals))  # lockstep folds: each counts the others' epochs too
    val = np.concatenate([f["logits"]["val"] for f in finals])
    y_val = np.concatenate([s.val.y for s in parts])
    oof = evaluate(y_val, val.astype(np.float64).argmax(1), out["class_counts"], config["minority"],
                   parts[0].class_names, **config["metrics"])
    out.update(per_class=oof["per_class"], confusion=oof["confusion"])
    test = np.mean([f["logits"]["test"].astype(np.float32) for f in finals], axis=0)  # the folds' mean logits
    out["logits"] = {**finals[0]["logits"], "val": val, "y_val": y_val, "test": test.astype(np.float16)}
    if "test" in finals[0]:
        out["test"] = {m: float(np.mean([f["test"][m] for f in finals])) for m in SCALARS}
    return out


def training(config: dict[str, Any], splits: Splits | None = None, with_test: bool = False,
             copies: int = 1) -> Generator[dict[str, Any], None, dict[str, Any]]:
    """One model's training, an epoch at a time: yields each epoch's row, returns the final
    metrics. `copies`: how many such runs hold their data on the device side by side (folds)."""
    t0 = time.perf_counter()
    tcfg = config["train"]
    device = pick_device(tcfg, float(config["resources"]["gpu"]))
    cap = share_gpu(float(config["resources"]["gpu"]), device) if device.type == "cuda" else 1.0
    if splits is not None:
        on_host = keep_on_host(splits, device, tcfg["data_memory_mb"], cap, copies)
        dev, cached = to_device(splits, device, on_host), False
    else:
        dev, cached = device_data.load(config["data"], device, tcfg["data_memory_mb"], cap)
    splits, t_data = dev.splits, time.perf_counter() - t0
    torch.manual_seed(tcfg["seed"])
    rng = np.random.default_rng(tcfg["seed"])
    p = build(config, splits, device)
    train_view, eval_view = views(config, dev, p.model)
    if tcfg["cuda_graph"] and device.type == "cuda":
        reason = unsupported(p.opt)
        if reason:
            p.graph_state = f"eager: {reason}"
        else:
            p.graph = GraphStep(p.step_model, p.train_loss, p.opt, dev.train, train_view, int(tcfg["batch_size"]),
                                capture=True, weighted=p.criterion)
    epochs, counts = int(tcfg["epochs"]), splits.class_counts

    kept: dict[str, np.ndarray] = {}  # the last logits of each split scored

    def scores(part: str) -> dict[str, Any]:
        kept[part] = logits(p.model, getattr(dev, part), eval_view)
        adjusted = adjust(kept[part], counts, tcfg["posthoc_tau"])
        return evaluate(getattr(splits, part).y, adjusted.argmax(1), counts, config["minority"], splits.class_names,
                        **config["metrics"], probs=softmax(adjusted))

    curve: list[dict[str, float]] = []
    for epoch in range(1, epochs + 1):
        p.criterion.start_epoch(epoch - 1, epochs)
        for param in p.backbone:  # a linear probe first: only the head trains for freeze_epochs
            param.requires_grad_(epoch > tcfg["freeze_epochs"])
        order = epoch_indices(splits.train.y, config["rebalance"], rng, epoch - 1, epochs)
        train_loss = _epoch(p, dev, order, int(tcfg["batch_size"]), train_view, epoch)
        m = scores("val")
        p.schedule.step(m)
        row = {"epoch": epoch, "train_loss": train_loss, **{k: v for k, v in m.items() if k in SCALARS},
               **_costs(p.model, device, t0)}  # MO-ASHA reads the costs at a rung (monotone constraints)
        curve.append(row)
        if not math.isfinite(row["train_loss"]):  # a diverged model's metrics would mean nothing
            raise TrialFailure("non_finite_loss", epoch=epoch)
        yield row
    final = scores("val")
    final.update(epoch=epochs, train_loss=curve[-1]["train_loss"], class_counts=counts,
                 class_names=list(splits.class_names), device=str(device), seconds=time.perf_counter() - t0,
                 data_seconds=t_data, data_cached=cached, data_loads=device_data.stats["loads"], curve=curve,
                 data_on_host=dev.train.on_host, cuda_graph=_graph_state(p),
                 n_params=_costs(p.model, device, t0)["n_params"])  # a cost a constraint may bound
    test = scores("test")  # scored for `hpo train` only; a trial keeps its logits, nothing that chooses reads them
    if with_test:
        final["test"] = test
    return _kept(final, kept, splits, p.model, tcfg["keep"], device)


def _costs(model: torch.nn.Module, device: torch.device, t0: float) -> dict[str, Any]:
    """What the trial has cost so far: seconds since it started, its model's parameters, and on
    CUDA the peak memory; the first and last only grow, the parameters never change."""
    out: dict[str, Any] = {"seconds": time.perf_counter() - t0, "n_params": sum(t.numel() for t in model.parameters())}
    if device.type == "cuda":
        out["gpu_mem_peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def _kept(final: dict[str, Any], kept: dict[str, np.ndarray], splits: Splits, model: torch.nn.Module, keep: str,
          device: torch.device) -> dict[str, Any]:
    """What a trial stores beside its values: float16 logits (split order), weights if asked, GPU peak."""
    f16 = np.finfo(np.float16).max  # a diverged model's logits are clipped to float16's range, not inf
    final["logits"] = {"val": kept["val"].clip(-f16, f16).astype(np.float16),
                       "test": kept["test"].clip(-f16, f16).astype(np.float16),
                       "y_val": splits.val.y, "y_test": splits.test.y}
    if keep == "weights":
        from safetensors.torch import save

        final["weights"] = save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()})
    if device.type == "cuda":
        final["gpu_mem_peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return final


def _graph_state(p: Parts) -> str:
    """`off`; `captured N` (graphs captured: 1, more after a DRW switch or an unfreeze); or why the
    step ran eager (`eager: ...`)."""
    if p.graph is None:
        return p.graph_state
    return f"eager: {p.graph.fallback}" if p.graph.fallback else f"captured {p.graph.captures}"


def _epoch(p: Parts, dev: DeviceSplits, order: np.ndarray, batch_size: int, view: View, epoch: int) -> float:
    try:
        faults.maybe_fail(epoch, p.model)
        return train_epoch(p.step_model, p.train_loss, p.opt, dev.train, order, batch_size, view, p.graph,
                           short_model=p.model)
    except torch.cuda.OutOfMemoryError:
        pass
    # freed outside the `except` block: the exception's traceback keeps the step's frames, and
    # every tensor they reference, alive until the block ends
    release(p, dev.train.device)
    raise TrialFailure("oom", epoch=epoch)


def release(p: Parts, device: torch.device) -> None:
    """Free what an out-of-memory trial holds so the next trial on the GPU starts clean: the
    graph first (its memory pool holds the gradients and activations, and it references the
    model and the optimiser), then the model, the optimiser and the schedule that holds it."""
    if p.graph is not None:
        p.graph.release()
    p.graph = p.model = p.step_model = p.opt = p.schedule = None  # type: ignore[assignment]
    p.backbone = []
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
