"""The trial's data on its device, cached per worker process.

Each split is one uint8 tensor (a quarter of float32's memory), on the device when it fits the
memory budget (`train.data_memory_mb`; default a quarter of the memory the trial may allocate:
its share of the GPU, or of RAM on CPU), otherwise in ordinary host memory, each batch gathered
straight into a pinned block and copied asynchronously (`batch`). A batch is gathered by index,
augmented (hpo.train.augment), resized and normalised as the trial's `View` says.

Ray reuses a worker process for the next trial of a study (`reuse_actors`), and module state
survives between them: keeping the last data set here means trials 2..N of a worker skip
loading, splitting and copying to the device. One entry only, so a worker never holds two
data sets on a GPU it shares with other trials.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from hpo.train.augment import augment
from hpo.train.splits import ImageSet, Splits, prepare


@dataclass
class View:
    """How a trial sees its images: normalisation (of [0, 1] pixels), size, and for training the
    uint8 augmentation section, its generator and the kornia stage."""

    mean: torch.Tensor  # (C, 1, 1) on the device
    std: torch.Tensor
    size: int | None = None
    aug: dict[str, Any] | None = None
    gen: torch.Generator | None = None
    pipeline: torch.nn.Module | None = None

    def eval(self) -> "View":
        return View(self.mean, self.std, self.size)


class DeviceData:
    def __init__(self, part: ImageSet, device: torch.device, on_host: bool = False) -> None:
        x = torch.as_tensor(part.x)
        self.on_host = on_host
        # kept on the host unpinned: page-locked memory is scarce, and each trial sharing the
        # machine would lock its own copy of the whole set; only the batches in flight are pinned
        self.x = x if on_host else x.to(device)
        self.y = torch.as_tensor(part.y).to(device)
        self.device = device

    def __len__(self) -> int:
        return len(self.y)

    def batch(self, idx: torch.Tensor, view: View, host_idx: torch.Tensor | None = None) -> torch.Tensor:
        """The images `idx` (device indices) as the view shows them; a set kept on the host
        gathers by `host_idx`, the same indices on the host (reading `idx` back would wait for
        the GPU at every batch)."""
        xb = self._host_batch(idx.cpu() if host_idx is None else host_idx) if self.on_host else self.x[idx]
        if view.aug is not None and view.gen is not None:
            xb = augment(xb, view.aug, view.gen)
        x = xb.float().div_(255.0)
        if view.pipeline is not None:
            x = view.pipeline(x)
        if view.size and x.shape[-1] != view.size:
            x = F.interpolate(x, size=(view.size, view.size), mode="bilinear", antialias=True, align_corners=False)
        x = (x - view.mean) / view.std
        # channels_last is what cuDNN's fastest convolution kernels read; on CPU it only costs a copy
        return x.contiguous(memory_format=torch.channels_last) if x.is_cuda else x

    def _host_batch(self, host_idx: torch.Tensor) -> torch.Tensor:
        """One gather on the host, straight into a pinned block, then an asynchronous copy: the
        host goes on to the next batch while this one travels. torch's pinned-memory cache hands
        the block out again only once its copy has finished."""
        if self.device.type != "cuda":
            return self.x[host_idx]
        out = torch.empty((len(host_idx), *self.x.shape[1:]), dtype=self.x.dtype, pin_memory=True)
        torch.index_select(self.x, 0, host_idx, out=out)
        return out.to(self.device, non_blocking=True)


@dataclass
class DeviceSplits:
    splits: Splits  # the host arrays (class names, counts, labels for metrics)
    train: DeviceData
    val: DeviceData
    test: DeviceData
    mean: torch.Tensor  # the training set's per-channel mean / std of [0, 1] pixels, on the device
    std: torch.Tensor

    def view(self, mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
             size: int | None = None) -> View:
        """A View normalising with `mean` / `std` (pretrained weights' own) or the training set's."""
        if mean is None or std is None:
            return View(self.mean, self.std, size)
        dev = self.mean.device
        return View(torch.tensor(mean, device=dev)[:, None, None], torch.tensor(std, device=dev)[:, None, None], size)


def to_device(splits: Splits, device: torch.device, on_host: bool = False) -> DeviceSplits:
    xtr = torch.as_tensor(splits.train.x).float().div_(255.0)
    mean = xtr.mean(dim=(0, 2, 3))[:, None, None].to(device)
    std = xtr.std(dim=(0, 2, 3))[:, None, None].clamp_min(1e-3).to(device)
    parts = (DeviceData(p, device, on_host) for p in (splits.train, splits.val, splits.test))
    return DeviceSplits(splits, *parts, mean, std)


def default_budget_mb(total_bytes: float, cap: float = 1.0) -> float:
    """A quarter of what the trial may allocate: `cap` (its memory fraction) of `total_bytes`.
    The rest is the model's: weights, gradients, optimiser state, activations."""
    return total_bytes * min(max(cap, 0.0), 1.0) / 4 / 2**20


def budget_mb(device: torch.device, setting: float | None, cap: float = 1.0) -> float:
    """The most a data set may take on `device`: the setting, else a quarter of the trial's cap."""
    if setting is not None:
        return float(setting)
    if device.type == "cuda":
        return default_budget_mb(torch.cuda.get_device_properties(device).total_memory, cap)
    return default_budget_mb(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def keep_on_host(splits: Splits, device: torch.device, setting: float | None, cap: float = 1.0,
                 copies: int = 1) -> bool:
    """True when `copies` of the data set (k folds train side by side, each with its own)
    exceed the budget; says so, since it costs a copy per batch."""
    mb = copies * sum(p.x.nbytes for p in (splits.train, splits.val, splits.test)) / 2**20
    limit = budget_mb(device, setting, cap)
    if mb <= limit:
        return False
    held = f"{copies} copies of " if copies > 1 else ""
    print(f"data: {held}{mb:.0f} MB of images exceed the {limit:.0f} MB budget on {device} (train.data_memory_mb): "
          "kept in host memory, each batch copied asynchronously", file=sys.stderr)
    return True


_cache: dict[str, DeviceSplits] = {}
stats = {"loads": 0, "hits": 0}  # per process; trials report them so tests can see the reuse


def load(data_cfg: dict[str, Any], device: torch.device, memory_mb: float | None = None,
         cap: float = 1.0) -> tuple[DeviceSplits, bool]:
    """The data set of `data_cfg` on `device`, from this process's cache when it is there."""
    key = json.dumps({"data": data_cfg, "device": str(device), "budget": memory_mb, "cap": cap}, sort_keys=True)
    if key in _cache:
        stats["hits"] += 1
        return _cache[key], True
    _cache.clear()  # drop the old data set (and its device memory) before loading the next
    splits = prepare(data_cfg)
    _cache[key] = to_device(splits, device, keep_on_host(splits, device, memory_mb, cap))
    stats["loads"] += 1
    return _cache[key], False
