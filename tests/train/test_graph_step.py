"""hpo/train/graph_step.py: the replayed step must train exactly as the plain loop does. On the
CPU the step function runs eagerly from the same buffers (capture=False): same losses and
weights as the plain loop, every image of each epoch once, the learning rate and DRW's class
weights reaching the step, with SGD and AdamW, and staged (a kornia stage, or the data set in host
memory, run eager into the step's input buffer). With CUDA, the captured graph against eager
within bf16 tolerance."""
from __future__ import annotations

import copy

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


def train(cfg: dict, device: torch.device, graph: bool, capture: bool = False,
          on_host: bool = False) -> tuple[list[float], dict, list]:
    """Epoch losses, final weights and every index each epoch gathered, through the plain loop
    or through GraphStep."""
    splits = prepare(cfg["data"])
    dev = to_device(splits, device, on_host)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    p = loop.build(cfg, splits, device)
    train_view, _ = loop.views(cfg, dev, p.model)
    step = graph_step.GraphStep(p.model, p.train_loss, p.opt, dev.train, train_view, cfg["train"]["batch_size"],
                                capture=capture, weighted=p.criterion) if graph else None
    seen: list[list[int]] = []
    batch = dev.train.batch

    def recording(idx: torch.Tensor, view):  # which images each gather took
        seen[-1].extend(idx.tolist())
        return batch(idx, view)

    dev.train.batch = recording
    losses = []
    epochs = cfg["train"]["epochs"]
    for epoch in range(epochs):
        p.criterion.start_epoch(epoch, epochs)
        order = epoch_indices(splits.train.y, cfg["rebalance"], rng, epoch, epochs)
        seen.append([])
        losses.append(loop.train_epoch(p.model, p.train_loss, p.opt, dev.train, order, cfg["train"]["batch_size"],
                                       train_view, step))
        seen[-1] = (seen[-1], order.tolist())
        p.schedule.step({})
    return losses, copy.deepcopy(p.model.state_dict()), seen


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


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_graph_step_trains_as_the_plain_loop(variant: str) -> None:
    cfg, on_host = variant_config(variant)
    n_train = len(prepare(cfg["data"]).train.y)
    assert n_train % cfg["train"]["batch_size"], "the epoch must end on a short batch"
    plain_losses, plain_weights, _ = train(cfg, torch.device("cpu"), graph=False, on_host=on_host)
    losses, weights, seen = train(cfg, torch.device("cpu"), graph=True, on_host=on_host)
    assert np.allclose(losses, plain_losses, rtol=1e-5)
    for name, value in plain_weights.items():
        assert torch.allclose(weights[name].float(), value.float(), rtol=1e-4, atol=1e-6), name
    for gathered, order in seen:  # every image of the epoch trained once, the short batch too
        assert gathered == order


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
    for name in ("sgd", "adam", "adamw"):
        assert graph_step.unsupported(optim.build(p.model, models.head(p.model), {
            **cfg["train"], "optimizer": name})) is None, name
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
    cfg, on_host = variant_config(variant, batch_size=32)
    cuda = torch.device("cuda")
    eager_losses, eager_weights, _ = train(cfg, cuda, graph=True, capture=False, on_host=on_host)
    losses, weights, seen = train(cfg, cuda, graph=True, capture=True, on_host=on_host)
    assert np.allclose(losses, eager_losses, rtol=0.05, atol=0.02)
    for name, value in eager_weights.items():
        if value.is_floating_point():
            assert torch.allclose(weights[name].float(), value.float(), rtol=0.05, atol=0.02), name
    for gathered, order in seen:  # a replay gathers inside the graph: the recorder sees the captured steps only
        assert set(gathered) <= set(order)
