"""One training run from a trial config: data -> model -> loss -> epochs -> validation metrics.

The data set lives on the trial's device as one tensor; batches are drawn by index, so the
rebalancing sampler costs an index permutation, not a DataLoader. The same code runs on CPU
(tests) and CUDA (bf16 autocast, selected by device).
"""
from __future__ import annotations

import gc
import math
import time
from typing import Any, Callable

import numpy as np
import torch

from hpo.spec.schema import METRICS
from hpo.train import device_data, faults, losses, models, optim
from hpo.train.device_data import DeviceData, to_device
from hpo.train.metrics import evaluate
from hpo.train.rebalance import epoch_indices
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


def pick_device(train_cfg: dict[str, Any], gpu_share: float) -> torch.device:
    want = train_cfg["device"]
    if want == "cuda" or (want == "auto" and gpu_share > 0):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if want == "cuda":
            raise RuntimeError("train.device is 'cuda' but torch sees no CUDA device")
    return torch.device("cpu")


def compiled(model: torch.nn.Module, mode: str | bool, device: torch.device) -> torch.nn.Module:
    """torch.compile for the training steps when asked (`auto`: on CUDA only; compiling costs
    tens of seconds, which a short CPU trial never wins back). Evaluation runs the plain model."""
    if mode is True or (mode == "auto" and device.type == "cuda"):
        return torch.compile(model)
    return model


def train_epoch(model: torch.nn.Module, criterion: torch.nn.Module, opt: torch.optim.Optimizer,
                train: DeviceData, order: np.ndarray, batch_size: int, aug: dict[str, Any] | None = None,
                gen: torch.Generator | None = None) -> float:
    """One pass over `order` (training indices, rebalanced); returns the mean loss. bf16 autocast on
    CUDA; the loss is summed on the device so no step waits for the GPU."""
    model.train()
    device = train.x.device
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    idx_all = torch.as_tensor(order, device=device)
    total = torch.zeros((), device=device)
    for i in range(0, len(order), batch_size):
        idx = idx_all[i:i + batch_size]
        with autocast:
            loss = criterion(model(train.batch(idx, aug, gen)), train.y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.detach() * len(idx)
    return float(total) / max(len(order), 1)


@torch.no_grad()
def predict(model: torch.nn.Module, data: DeviceData, batch: int = 4096) -> np.ndarray:
    model.eval()
    idx = torch.arange(len(data.y), device=data.x.device)
    out = [model(data.batch(idx[i:i + batch])).argmax(1) for i in range(0, len(idx), batch)]
    return torch.cat(out).cpu().numpy()


def build(config: dict[str, Any], splits: Splits, device: torch.device) -> tuple[
        torch.nn.Module, torch.nn.Module, losses.ImbalanceLoss, torch.optim.Optimizer, Any]:
    """(model, the model the steps call, loss, optimiser, schedule) of a resolved trial config."""
    tcfg, lcfg, mcfg = config["train"], config["loss"], config["model"]
    counts = splits.class_counts
    model = models.build(mcfg["name"], num_classes=len(counts), in_chans=splits.train.x.shape[1],
                         **{k: v for k, v in mcfg.items() if k != "name"}).to(device)
    criterion = losses.build(lcfg["name"], counts, **{k: v for k, v in lcfg.items() if k != "name"})
    models.adapt_head(model, cosine=criterion.needs_cosine_head, bias_init=criterion.head_bias_init)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    opt = optim.build(model, tcfg)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=int(tcfg["epochs"]))
    return model, compiled(model, tcfg["compile"], device), criterion, opt, sched


def run(config: dict[str, Any], report: Report | None = None, splits: Splits | None = None,
        with_test: bool = False) -> dict[str, Any]:
    """Train from `config` (StudySpec.trial_config) and return the final validation metrics.

    `report` is called after every epoch but the last with that epoch's validation metrics
    (Ray Tune's report in a trial); the caller reports the returned final metrics itself.
    The test split is evaluated only with `with_test`, which trials never set.
    """
    t0 = time.perf_counter()
    tcfg = config["train"]
    device = pick_device(tcfg, float(config["resources"]["gpu"]))
    dev, cached = (to_device(splits, device), False) if splits is not None else device_data.load(config["data"], device)
    splits, t_data = dev.splits, time.perf_counter() - t0
    torch.manual_seed(tcfg["seed"])
    rng = np.random.default_rng(tcfg["seed"])
    model, step_model, criterion, opt, sched = build(config, splits, device)
    epochs, counts = int(tcfg["epochs"]), splits.class_counts
    gen = torch.Generator(device=device).manual_seed(int(tcfg["seed"]))

    def scores(part: str) -> dict[str, Any]:
        return evaluate(getattr(splits, part).y, predict(model, getattr(dev, part)), counts, config["minority"],
                        splits.class_names, **config["metrics"])

    curve: list[dict[str, float]] = []
    for epoch in range(1, epochs + 1):
        criterion.start_epoch(epoch - 1, epochs)
        order = epoch_indices(splits.train.y, config["rebalance"], rng, epoch - 1, epochs)
        try:
            faults.maybe_fail(epoch, model)
            train_loss = train_epoch(step_model, criterion, opt, dev.train, order, int(tcfg["batch_size"]),
                                     tcfg["augment"], gen)
        except torch.cuda.OutOfMemoryError:
            # free what this trial holds so the next trial on the GPU starts clean
            model = step_model = opt = None  # drop this trial's tensors before freeing the cache
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
            raise TrialFailure("oom", epoch=epoch) from None
        sched.step()
        row = {"epoch": epoch, "train_loss": train_loss, **{k: v for k, v in scores("val").items() if k in SCALARS}}
        curve.append(row)
        if report is not None and epoch < epochs:
            report(row)
        if not math.isfinite(row["train_loss"]):  # a diverged model's metrics would mean nothing
            raise TrialFailure("non_finite_loss", epoch=epoch)
    final = scores("val")
    final.update(epoch=epochs, train_loss=curve[-1]["train_loss"], class_counts=counts,
                 class_names=list(splits.class_names), device=str(device), seconds=time.perf_counter() - t0,
                 data_seconds=t_data, data_cached=cached, data_loads=device_data.stats["loads"], curve=curve)
    if with_test:
        final["test"] = scores("test")
    return final
