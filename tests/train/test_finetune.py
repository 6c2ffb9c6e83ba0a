"""Fine-tuning controls in a real (tiny) run: optimisers, head / backbone learning rates, a frozen
backbone, label smoothing, and data kept on the host over its memory budget."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from conftest import SPACES
from hpo.spec import load_spec
from hpo.train import loop, models, optim
from hpo.train.label_smoothing import LabelSmoothing
from hpo.train.losses import build as build_loss


def config(**train: object) -> dict:
    cfg = load_spec(SPACES / "cb_focal_beta.yaml").trial_config({})
    cfg["train"].update({"epochs": 2, "batch_size": 64, **train})
    cfg["model"]["width"] = 8
    return cfg


@pytest.mark.parametrize("name", optim.OPTIMIZERS.names())
def test_every_optimiser_trains_with_head_and_backbone_groups(name: str) -> None:
    model = models.build("small_cnn", num_classes=3, in_chans=1, width=4)
    head = models.head(model)
    opt = optim.build(model, head, {"optimizer": name, "lr": 0.1, "weight_decay": 1e-4, "backbone_lr_mult": 0.1,
                                    **optim.OPTIMIZERS.with_defaults(name, {})})
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.1, 0.01])
    assert {id(p) for p in opt.param_groups[0]["params"]} == {id(p) for p in head.parameters()}
    before = [p.detach().clone() for p in model.parameters()]
    F.cross_entropy(model(torch.randn(4, 1, 8, 8)), torch.tensor([0, 1, 2, 0])).backward()
    opt.step()
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))


def test_freeze_epochs_train_only_the_head_first(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[loop.Parts] = []
    real_build = loop.build
    monkeypatch.setattr(loop, "build", lambda *a: built.append(real_build(*a)) or built[-1])
    torch.manual_seed(0)
    first = {k: v.detach().clone() for k, v in models.build("small_cnn", num_classes=10, in_chans=1,
                                                             width=8).state_dict().items()}
    loop.run(config(freeze_epochs=2, seed=0))  # run() seeds torch with train.seed before building
    model = built[0].model
    assert torch.equal(model[0][0].weight, first["0.0.weight"])  # the backbone never moved
    assert not torch.equal(models.head(model).weight, first["7.weight"])  # the head did


def test_label_smoothing_of_ce_is_torchs_and_applies_to_any_loss() -> None:
    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(8, 5, generator=g), torch.randint(0, 5, (8,), generator=g)
    smoothed = LabelSmoothing(build_loss("ce", [10] * 5), 0.1)
    assert float(smoothed(logits, y)) == pytest.approx(float(F.cross_entropy(logits, y, label_smoothing=0.1)), rel=1e-5)
    focal = LabelSmoothing(build_loss("focal", [10] * 5, gamma=2.0), 0.2)
    assert torch.isfinite(focal(logits, y))


def test_data_over_its_memory_budget_stays_on_the_host_and_trains_the_same() -> None:
    on_device = loop.run(config())
    loop.device_data._cache.clear()
    on_host = loop.run(config(data_memory_mb=0.001))
    assert (on_device["data_on_host"], on_host["data_on_host"]) == (False, True)
    assert on_host["curve"][-1]["train_loss"] == pytest.approx(on_device["curve"][-1]["train_loss"])


def test_a_run_with_step_schedule_warmup_augmentation_and_adamw() -> None:
    cfg = config(optimizer="adamw", lr=1e-3, label_smoothing=0.1, backbone_lr_mult=0.5)
    cfg["train"].pop("momentum")
    cfg["schedule"] = {"name": "step", "warmup_epochs": 1, "milestones": [0.5], "factor": 0.1}
    cfg["train"]["augment"].update(magnitude=0.3, crop_padding=1, flip=True)
    out = loop.run(cfg)
    assert 0 <= out["macro_acc"] <= 1 and len(out["curve"]) == 2
