"""The trial's data on its device, cached per worker process.

Each split is one uint8 tensor on the device (a quarter of float32's memory); a batch is
gathered by index, augmented while still uint8, then converted and normalised with the training
mean / std (so crop padding is black, as in torchvision's RandomCrop).

Ray reuses a worker process for the next trial of a study (`reuse_actors`), and module state
survives between them: keeping the last data set here means trials 2..N of a worker skip
loading, splitting and copying to the device. One entry only, so a worker never holds two
data sets on a GPU it shares with other trials.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import torch

from hpo.train.splits import ImageSet, Splits, prepare
from hpo.train.augment import augment


class DeviceData:
    def __init__(self, part: ImageSet, device: torch.device, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.x = torch.as_tensor(part.x).to(device)
        self.y = torch.as_tensor(part.y).to(device)
        self.mean, self.std = mean.to(device), std.to(device)

    def __len__(self) -> int:
        return len(self.y)

    def batch(self, idx: torch.Tensor, aug: dict[str, Any] | None = None,
              gen: torch.Generator | None = None) -> torch.Tensor:
        xb = self.x[idx]
        if aug and gen is not None:
            xb = augment(xb, aug, gen)
        x = (xb.float().div_(255.0) - self.mean) / self.std
        # channels_last is what cuDNN's fastest convolution kernels read; on CPU it only costs a copy
        return x.contiguous(memory_format=torch.channels_last) if x.is_cuda else x


@dataclass
class DeviceSplits:
    splits: Splits  # the host arrays (class names, counts, labels for metrics)
    train: DeviceData
    val: DeviceData
    test: DeviceData


def to_device(splits: Splits, device: torch.device) -> DeviceSplits:
    xtr = torch.as_tensor(splits.train.x).float().div_(255.0)
    mean = xtr.mean(dim=(0, 2, 3))[:, None, None]
    std = xtr.std(dim=(0, 2, 3))[:, None, None].clamp_min(1e-3)
    return DeviceSplits(splits, *(DeviceData(p, device, mean, std) for p in (splits.train, splits.val, splits.test)))


_cache: dict[str, DeviceSplits] = {}
stats = {"loads": 0, "hits": 0}  # per process; trials report them so tests can see the reuse


def load(data_cfg: dict[str, Any], device: torch.device) -> tuple[DeviceSplits, bool]:
    """The data set of `data_cfg` on `device`, from this process's cache when it is there."""
    key = json.dumps({"data": data_cfg, "device": str(device)}, sort_keys=True)
    if key in _cache:
        stats["hits"] += 1
        return _cache[key], True
    _cache.clear()  # drop the old data set (and its device memory) before loading the next
    _cache[key] = to_device(prepare(data_cfg), device)
    stats["loads"] += 1
    return _cache[key], False
