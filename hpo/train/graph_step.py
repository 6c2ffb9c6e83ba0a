"""The training step replayed as one CUDA graph (`train.cuda_graph: true`).

A small model's step on a GPU is launch-bound: most of its time goes to launching kernels, not
to arithmetic. One graph replay launches the whole step at once: the batch gather and the uint8
crop / flip, forward, loss, backward and the optimiser step (docs/gpu.md has the measurements).

What a captured step needs, and how it gets it here:
- fixed shapes: only full batches replay; the epoch's last, shorter batch runs eager, so every
  image of the epoch trains once (with a long tail the left-over images may be the rare class);
- inputs in fixed buffers: the batch's indices are copied into one index tensor the graph reads;
- values that change between epochs as device tensors updated in place: the learning rate of
  each parameter group becomes a 1-element tensor that torch's schedulers `fill_`; Adam's and
  AdamW's step count lives on the device (`capturable`); SGD must be the fused kernel, since
  the foreach one reads a tensor learning rate back to the host;
- what changes the step's structure re-captures it: the loss's class weights (DRW switches them
  on, as another tensor) and which parameters train (`freeze_epochs`);
- randomness: the augmentation's generator is registered with the graph, so each replay draws
  new crops and flips;
- warm-up: a few eager steps on a side stream (real batches, counted in the epoch) before the
  capture, as torch's whole-network capture recipe does (cuDNN picks its kernels, the
  optimiser creates its momentum buffers).

Two input stages cannot be captured: the kornia stage (some of its augmentations pick the images
to change by a data-dependent mask) and a data set kept in host memory (each batch is copied
in). With either, the step is *staged*: the input stage runs eager and writes the batch into a
fixed input buffer, and the graph replays from there (forward, loss, backward, optimiser step):
the launch-bound part is still one replay.

A step that cannot be captured (an operation that syncs with the host) falls back to eager for
the rest of the run, and the trial records why (`cuda_graph: eager: ...`); the thread is put back
on the stream it was on, since torch leaves it on the capture stream when `capture_end` fails.
Every CUDA call a capture makes goes through `Cuda`, so tests on a machine without a GPU run
the same capture, replay and fallback logic against a CPU stand-in
(tests/train/test_graph_step.py), and `capture=False` runs the very same step function eagerly.
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Callable

import torch

from hpo.train.device_data import DeviceData, View

WARMUP_STEPS = 3


# torch's optimisers whose step takes its learning rate as a device tensor and can be captured
CAPTURABLE = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW)


def unsupported(opt: torch.optim.Optimizer) -> str | None:
    """Why this run's step cannot be a graph, or None."""
    if type(opt) not in CAPTURABLE:
        names = ", ".join(c.__name__ for c in CAPTURABLE)
        return f"optimizer {type(opt).__name__}: a captured step takes {names}"
    if isinstance(opt, torch.optim.SGD) and not all(g.get("fused") for g in opt.param_groups):
        return "optimizer SGD without fused=True: its foreach step reads the learning rate on the host"
    return None


def lr_as_tensors(opt: torch.optim.Optimizer, device: torch.device) -> None:
    """Each group's learning rate as a 1-element tensor on the device: torch's schedulers then
    change it in place (`fill_`), which a captured step sees."""
    for group in opt.param_groups:
        if not isinstance(group["lr"], torch.Tensor):
            group["lr"] = torch.tensor(float(group["lr"]), device=device)


class Cuda:
    """The CUDA calls a captured step makes, in one place."""

    def new_graph(self) -> Any:
        return torch.cuda.CUDAGraph()

    def capture(self, graph: Any, fn: Callable[[], torch.Tensor]) -> torch.Tensor:
        with torch.cuda.graph(graph):
            return fn()

    def current_stream(self, device: torch.device) -> Any:
        return torch.cuda.current_stream(device)

    def set_stream(self, stream: Any) -> None:
        torch.cuda.set_stream(stream)

    def side_stream(self, device: torch.device) -> AbstractContextManager:
        return torch.cuda.stream(torch.cuda.Stream(device))

    def wait(self, waiting: Any, on: Any) -> None:
        waiting.wait_stream(on)

    def synchronize(self, device: torch.device) -> None:
        torch.cuda.synchronize(device)


class GraphStep:
    """`step(idx, host_idx)` trains on the batch `idx` (full batches only; `host_idx` the same
    indices on the host, for a data set kept there) and returns its loss as a device tensor,
    valid until the next step."""

    def __init__(self, model: torch.nn.Module, criterion: torch.nn.Module, opt: torch.optim.Optimizer,
                 train: DeviceData, view: View, batch_size: int, capture: bool,
                 weighted: torch.nn.Module | None = None, cuda: Cuda | None = None) -> None:
        """`criterion` is the loss as trained; `weighted` the module whose `weight` DRW swaps
        (the imbalance loss under label smoothing; default: `criterion`)."""
        self.model, self.criterion, self.opt, self.train, self.view = model, criterion, opt, train, view
        self.weighted = criterion if weighted is None else weighted
        self.capture, self.fallback, self.cuda = capture, None, cuda or Cuda()
        self.idx = torch.zeros(batch_size, dtype=torch.long, device=train.device)
        # staged: the input stage (host copy, kornia) runs eager into `x` / `y`, the graph reads them
        self.staged = train.on_host or view.pipeline is not None
        self.x: torch.Tensor | None = None  # allocated at the first batch: its shape is the view's
        self.y = torch.zeros(batch_size, dtype=train.y.dtype, device=train.device)
        self.graph: Any = None
        self.key: tuple | None = None
        self.loss: torch.Tensor | None = None
        self.warm = 0
        self.captures = 0
        lr_as_tensors(opt, train.device)
        if capture and train.device.type == "cuda":  # Adam / AdamW keep their step count on the
            for group in opt.param_groups:  # device, where a replay advances it
                if "capturable" in group:
                    group["capturable"] = True

    def _body(self) -> torch.Tensor:
        """Forward, loss, backward, optimiser step on the batch in `self.idx`: what is captured."""
        device = self.train.device
        x, y = (self.x, self.y) if self.staged else (self.train.batch(self.idx, self.view), self.train.y[self.idx])
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = self.criterion(self.model(x), y)
        loss.backward()
        self.opt.step()
        return loss.detach()

    def _structure(self) -> tuple:
        """What a captured graph depends on beyond its buffers: the class weights the loss uses
        and the parameters that train."""
        weight = getattr(self.weighted, "weight", None)
        return id(weight), tuple(p.requires_grad for p in self.model.parameters())

    def step(self, idx: torch.Tensor, host_idx: torch.Tensor | None = None) -> torch.Tensor:
        self.idx.copy_(idx)
        if self.staged:
            x = self.train.batch(idx, self.view, host_idx)
            if self.x is None:
                self.x = torch.empty_like(x)  # channels_last kept: the layout the graph was captured with
            self.x.copy_(x)
            self.y.copy_(self.train.y[idx])
        if not self.capture or self.fallback is not None:
            return self._eager()
        if self._structure() != self.key:  # DRW switched on, or the backbone unfroze: capture anew
            self.key, self.graph, self.warm = self._structure(), None, 0
        if self.graph is not None:
            self.graph.replay()
            return self.loss
        if self.warm < WARMUP_STEPS:
            self.warm += 1
            return self._on_side_stream(self._eager)
        return self._capture()

    def release(self) -> None:
        """Drop the graph and its buffers (the graph's memory pool holds the gradients and the
        activations): what an out-of-memory trial frees before giving its memory back."""
        self.graph = self.loss = self.x = None
        self.model = self.opt = self.criterion = self.weighted = None  # type: ignore[assignment]

    def _eager(self) -> torch.Tensor:
        self.opt.zero_grad(set_to_none=True)
        return self._body()

    def _on_side_stream(self, fn: Callable[[], torch.Tensor]) -> torch.Tensor:
        device, cuda = self.train.device, self.cuda
        main = cuda.current_stream(device)
        with cuda.side_stream(device):
            cuda.wait(cuda.current_stream(device), main)
            out = fn()
            side = cuda.current_stream(device)
        cuda.wait(main, side)
        return out

    def _capture(self) -> torch.Tensor:
        stream = self.cuda.current_stream(self.train.device)
        try:
            graph = self.cuda.new_graph()
            if self.view.gen is not None and not self.staged:
                graph.register_generator_state(self.view.gen)  # each replay draws new crops and flips
            self.opt.zero_grad(set_to_none=True)  # the gradients are allocated in the graph's pool
            loss = self.cuda.capture(graph, self._body)
        except Exception as exc:  # noqa: BLE001 - a step torch cannot capture trains eager instead
            return self._fall_back(exc, stream)
        self.graph, self.loss = graph, loss
        self.captures += 1
        graph.replay()  # capturing records the step; this replay runs it on the batch
        return self.loss

    def _fall_back(self, exc: Exception, stream: Any) -> torch.Tensor:
        """Eager from now on, on the stream the step started on: a failed `capture_end` leaves
        the thread on the capture stream, and every later step (and trial, in a reused worker)
        would run there."""
        self.cuda.set_stream(stream)
        self.fallback = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"
        self.graph = self.loss = None
        self.cuda.synchronize(self.train.device)
        return self._eager()
