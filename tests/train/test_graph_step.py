"""hpo/train/graph_step.py: the replayed step must train exactly as the plain loop does. On the
CPU the step function runs eagerly from the same buffers (capture=False): same losses and
weights as the plain loop, every image of each epoch once, the learning rate and DRW's class
weights reaching the step, with SGD and AdamW, and staged (a kornia stage, or the data set in host
memory, run eager into the step's input buffer). With CUDA, the captured graph against eager
within bf16 tolerance."""
from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from conftest import SPACES
from hpo.spec import load_spec
from hpo.train import graph_step, loop, models, optim
from hpo.train.device_data import to_device
from hpo.train.rebalance import epoch_indices
from hpo.train.splits import prepare


def config(loss: dict, epochs: int = 3, batch_size: int = 48) -> dict:
    cfg = load_spec(SPACES / "cb_focal_beta.yaml").trial_config({})
    cfg["loss"] = loss
    # a step schedule: the learning rate changes between epochs and must reach the step
    cfg["schedule"] = {**cfg["schedule"], "name": "step", "milestones": [1, 2], "factor": 0.5}
    cfg["train"].update(epochs=epochs, lr=0.05, batch_size=batch_size, augment={**cfg["train"]["augment"],
                                                                               "crop_padding": 1, "flip": True})
    return cfg


class CpuGraph:
    """A captured step on the CPU: capturing records the step function without running it, a
    replay runs it afresh with the gradients unset, as a CUDA graph captured after
    `zero_grad(set_to_none=True)` writes them anew."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model, self.fn, self.out = model, None, torch.zeros(())

    def register_generator_state(self, gen: torch.Generator) -> None:
        pass  # the step draws from the generator itself at each replay

    def replay(self) -> None:
        for param in self.model.parameters():
            param.grad = None
        self.out.copy_(self.fn())


class CpuCuda(graph_step.Cuda):
    """torch.cuda's calls that GraphStep makes, with their semantics, on the CPU: a capture runs
    on its own stream, and a failing `capture_end` (`fail`) raises there and leaves the thread
    on that stream, as `torch.cuda.graph` does."""

    def __init__(self, model: torch.nn.Module, fail: str | None = None) -> None:
        self.model, self.fail, self.stream, self.graphs = model, fail, "main", 0

    def new_graph(self) -> CpuGraph:
        if self.fail == "new_graph":
            raise RuntimeError("CUDA error: out of memory")
        return CpuGraph(self.model)

    def capture(self, graph: CpuGraph, fn) -> torch.Tensor:
        self.stream = "capture"
        graph.fn = fn
        if self.fail == "capture_end":
            raise RuntimeError("CUDA error: operation not permitted when stream is capturing\nmore")
        self.stream, self.graphs = "main", self.graphs + 1
        return graph.out

    def current_stream(self, device: torch.device) -> str:
        return self.stream

    def set_stream(self, stream: str) -> None:
        self.stream = stream

    def side_stream(self, device: torch.device) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def wait(self, waiting: str, on: str) -> None:
        pass

    def synchronize(self, device: torch.device) -> None:
        pass


@dataclass
class Run:
    losses: list[float]
    weights: dict
    seen: list  # per epoch: (indices gathered, the epoch's order)
    step: graph_step.GraphStep | None
    host_indices: list[bool] = field(default_factory=list)  # per host-set gather: host indices given


def train(cfg: dict, device: torch.device, graph: bool, capture: bool = False, on_host: bool = False,
          cuda=None, strict_replays: bool = False) -> Run:
    """Epoch losses, final weights and every index each epoch trained on, through the plain loop
    or through GraphStep. Indices are recorded outside any capture, as device tensors (no host
    sync), when a step is asked for (`step`) or a short batch gathered eagerly; with
    `strict_replays` every step after the first capture runs under
    `torch.cuda.set_sync_debug_mode("error")`, so a host sync inside it fails."""
    splits = prepare(cfg["data"])
    dev = to_device(splits, device, on_host)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    p = loop.build(cfg, splits, device)
    train_view, _ = loop.views(cfg, dev, p.model)
    cuda = cuda(p.model) if callable(cuda) else cuda
    step = graph_step.GraphStep(p.model, p.train_loss, p.opt, dev.train, train_view, cfg["train"]["batch_size"],
                                capture=capture, weighted=p.criterion, cuda=cuda) if graph else None
    run = Run([], {}, [], step)
    recorded: list[torch.Tensor] = []
    in_step = [False]
    batch = dev.train.batch

    def recording_batch(idx: torch.Tensor, view, host_idx=None):
        if dev.train.on_host:
            run.host_indices.append(host_idx is not None)
        if not in_step[0]:  # an eager short batch; a step's batches are recorded by `recording_step`
            recorded.append(idx.clone())
        return batch(idx, view, host_idx)

    dev.train.batch = recording_batch
    if step is not None:
        real_step = step.step

        def recording_step(idx: torch.Tensor, host_idx=None):
            recorded.append(idx.clone())
            in_step[0] = True
            try:
                with sync_check(strict_replays and step.graph is not None and step._structure() == step.key):
                    return real_step(idx, host_idx)
            finally:
                in_step[0] = False

        step.step = recording_step
    epochs = cfg["train"]["epochs"]
    for epoch in range(epochs):
        p.criterion.start_epoch(epoch, epochs)
        order = epoch_indices(splits.train.y, cfg["rebalance"], rng, epoch, epochs)
        recorded.clear()
        run.losses.append(loop.train_epoch(p.model, p.train_loss, p.opt, dev.train, order,
                                           cfg["train"]["batch_size"], train_view, step))
        run.seen.append((torch.cat(recorded).tolist(), order.tolist()))
        p.schedule.step({})
    run.weights = copy.deepcopy(p.model.state_dict())
    return run


@contextlib.contextmanager
def sync_check(on: bool):
    """torch raises on any host sync inside this block (CUDA only)."""
    if not on:
        yield
        return
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


VARIANTS = {  # name: (loss, train section changes, data set in host memory)
    "sgd": ({"name": "ce"}, {}, False),
    "sgd_drw": ({"name": "ldam", "drw_start": 0.5}, {}, False),
    "adamw": ({"name": "ce"}, {"optimizer": "adamw", "lr": 0.003}, False),
    "kornia_staged": ({"name": "ce"}, {"augment": {"rotate": 10.0}}, False),
    "host_staged": ({"name": "ce"}, {}, True),
}


def variant_config(variant: str, batch_size: int = 48) -> tuple[dict, bool]:
    loss, changes, on_host = VARIANTS[variant]
    cfg = config(loss, batch_size=batch_size)
    for key, value in changes.items():
        cfg["train"][key] = {**cfg["train"][key], **value} if isinstance(value, dict) else value
    return cfg, on_host


CPU = torch.device("cpu")


def assert_same_training(run: Run, plain: Run, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    assert np.allclose(run.losses, plain.losses, rtol=rtol, atol=atol)
    for name, value in plain.weights.items():
        if value.is_floating_point():
            assert torch.allclose(run.weights[name].float(), value.float(), rtol=max(rtol, 1e-4), atol=atol), name
    for gathered, order in run.seen:  # every image of the epoch trained once, the short batch too
        assert gathered == order


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_graph_step_trains_as_the_plain_loop(variant: str) -> None:
    cfg, on_host = variant_config(variant)
    n_train = len(prepare(cfg["data"]).train.y)
    assert n_train % cfg["train"]["batch_size"], "the epoch must end on a short batch"
    plain = train(cfg, CPU, graph=False, on_host=on_host)
    assert_same_training(train(cfg, CPU, graph=True, on_host=on_host), plain)
    if on_host:  # a set on the host gathers by host indices: no read-back of device indices per batch
        assert plain.host_indices and all(plain.host_indices)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_captured_and_replayed_steps_train_as_the_plain_loop(variant: str) -> None:
    """The capture logic itself (warm-up, capture, replay, re-capture) against a CPU stand-in for
    torch.cuda's graph calls: the same losses, weights and images as the plain loop, and a graph
    was captured, once more only where DRW switched its class weights on."""
    cfg, on_host = variant_config(variant)
    plain = train(cfg, CPU, graph=False, on_host=on_host)
    run = train(cfg, CPU, graph=True, capture=True, on_host=on_host, cuda=CpuCuda)
    assert run.step.fallback is None
    assert run.step.captures == (2 if variant == "sgd_drw" else 1)  # DRW: once more, at the switch only
    assert_same_training(run, plain)


@pytest.mark.parametrize("fail", ["capture_end", "new_graph"])
def test_a_failed_capture_trains_eager_on_the_stream_it_started_on_and_says_why(fail: str) -> None:
    """torch leaves the thread on the capture stream when `capture_end` fails; the step puts it
    back, trains eager from then on exactly as the plain loop, and the trial's `cuda_graph`
    attribute gives the reason. A failure before the capture (allocating the graph) falls back too."""
    cfg, _ = variant_config("sgd")
    plain = train(cfg, CPU, graph=False)
    cuda: list[CpuCuda] = []
    run = train(cfg, CPU, graph=True, capture=True, cuda=lambda m: cuda.append(CpuCuda(m, fail)) or cuda[0])
    assert cuda[0].stream == "main" and run.step.captures == 0 and run.step.graph is None
    assert run.step.fallback.startswith("RuntimeError: CUDA error: ") and "\n" not in run.step.fallback
    state = loop._graph_state(loop.Parts(*[None] * 7, graph=run.step))
    assert state == f"eager: {run.step.fallback}"
    assert_same_training(run, plain)


def test_a_schedule_changes_the_learning_rate_in_place() -> None:
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [1], gamma=0.5)
    graph_step.lr_as_tensors(opt, torch.device("cpu"))
    lr = opt.param_groups[0]["lr"]
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] is lr and float(lr) == pytest.approx(0.05)  # the tensor a graph reads


def test_what_cannot_be_captured_says_why_and_what_runs_staged() -> None:
    cfg = config({"name": "ce"})
    splits = prepare(cfg["data"])
    dev = to_device(splits, torch.device("cpu"))
    p = loop.build(cfg, splits, torch.device("cpu"))
    view, _ = loop.views(cfg, dev, p.model)
    for name in ("adam", "adamw"):
        assert graph_step.unsupported(optim.build(p.model, models.head(p.model), {
            **cfg["train"], "optimizer": name})) is None, name
    # SGD captures as torch's fused kernel (the trial's on CUDA); the foreach one calls .item() on
    # a tensor learning rate, which a capture cannot
    assert graph_step.unsupported(torch.optim.SGD(p.model.parameters(), lr=0.1, momentum=0.9, fused=True)) is None
    assert "fused" in graph_step.unsupported(torch.optim.SGD(p.model.parameters(), lr=0.1, momentum=0.9))
    nadam = optim.build(p.model, models.head(p.model), {**cfg["train"], "optimizer": "nadam"})
    assert "NAdam" in graph_step.unsupported(nadam) and "AdamW" in graph_step.unsupported(nadam)
    kornia_cfg = copy.deepcopy(cfg)
    kornia_cfg["train"]["augment"]["rotate"] = 10.0
    kornia_view, _ = loop.views(kornia_cfg, dev, p.model)
    host = to_device(splits, torch.device("cpu"), on_host=True)
    staged = {(d is host.train, v is kornia_view): graph_step.GraphStep(p.model, p.train_loss, p.opt, d, v, 8, False)
              .staged for d in (dev.train, host.train) for v in (view, kornia_view)}
    assert staged == {(False, False): False, (False, True): True, (True, False): True, (True, True): True}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_on_cuda_the_captured_step_trains_as_eager_within_bf16_tolerance(variant: str) -> None:
    """Every variant captures (no fallback), replays without a host sync (sync debug mode
    "error" around each step after the capture; the kornia stage's own masks sync, so there
    only the replay is checked) and trains every image of each epoch once, as eager does."""
    cfg, on_host = variant_config(variant, batch_size=32)
    cuda = torch.device("cuda")
    eager = train(cfg, cuda, graph=True, capture=False, on_host=on_host)
    run = train(cfg, cuda, graph=True, capture=True, on_host=on_host, strict_replays=variant != "kornia_staged")
    assert run.step.fallback is None
    assert run.step.captures >= 1
    if variant == "kornia_staged":
        replay = run.step.graph.replay
        with sync_check(True):
            replay()
    assert_same_training(run, eager, rtol=0.05, atol=0.02)
