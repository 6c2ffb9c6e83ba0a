"""This machine as a launch sees it: the cores this process may use and the CUDA devices with
their memory. What a local Ray cluster started here offers trials; `hpo check`, `hpo init` and the
launch's resource check read it without starting Ray."""
from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Gpu:
    name: str
    memory_mb: int


@dataclass(frozen=True)
class Machine:
    cpus: int
    gpus: tuple[Gpu, ...] = ()

    @classmethod
    def here(cls, gpus: bool = True) -> "Machine":
        """With `gpus=False` torch is not imported and no GPU is listed: for studies that ask for none."""
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return cls(cpus, _cuda_devices() if gpus else ())

    def resources(self) -> dict[str, float]:
        """In Ray's terms: what `ray.cluster_resources()` of a local cluster would hold."""
        return {"CPU": float(self.cpus), "GPU": float(len(self.gpus))}

    def describe(self) -> str:
        gpus = ", ".join(f"{g.name} ({g.memory_mb / 1024:.0f} GiB)" for g in self.gpus) or "no CUDA GPU"
        return f"{self.cpus} CPU core(s), {gpus}"


def _cuda_devices() -> tuple[Gpu, ...]:
    import torch

    if not torch.cuda.is_available():
        return ()
    props = [torch.cuda.get_device_properties(i) for i in range(torch.cuda.device_count())]
    return tuple(Gpu(p.name, p.total_memory // 2**20) for p in props)


def step_seconds(model: dict, classes: int, in_chans: int, size: int, batch: int, steps: int = 3) -> tuple[float, float]:
    """(seconds per training step, seconds to build the model) of `model` at `size` px and `batch`
    images on this machine's fastest device, AdamW, random weights (the step costs the same)."""
    import time

    import torch

    from hpo.train import models

    device = "cuda" if torch.cuda.is_available() else "cpu"
    t0 = time.perf_counter()
    params = {k: v for k, v in model.items() if k not in ("name", "pretrained", "weights")}
    net = models.build(model["name"], num_classes=classes, in_chans=in_chans, **params).to(device)
    built = time.perf_counter() - t0
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    x = torch.randn(batch, in_chans, size, size, device=device)
    y = torch.randint(0, classes, (batch,), device=device)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()

    step()  # the first step allocates and picks kernels
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps, built
