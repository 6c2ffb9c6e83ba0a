"""Models train one step on CPU; heads adapt to the loss; local weights load safely."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hpo.train import losses, models


@pytest.mark.parametrize("name, params, shape", [
    ("small_cnn", {"width": 8}, (1, 8, 8)),
    ("cifar_resnet8", {}, (3, 32, 32)),
    ("cifar_resnet20", {}, (3, 32, 32)),
    ("cifar_resnet32", {}, (3, 32, 32)),
    ("timm", {"arch": "resnet18"}, (3, 32, 32)),
    ("timm", {"arch": "efficientnet_b0"}, (3, 32, 32)),
])
def test_one_training_step_on_cpu(name: str, params: dict, shape: tuple, ) -> None:
    torch.manual_seed(0)
    model = models.build(name, num_classes=10, in_chans=shape[0], **params)
    loss_fn = losses.build("ldam", list(range(100, 0, -10)))
    models.adapt_head(model, cosine=loss_fn.needs_cosine_head)  # the LDAM path: cosine head swapped in
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(4, *shape), torch.randint(0, 10, (4,))
    before = [p.detach().clone() for p in model.parameters()]
    loss = loss_fn(model(x), y)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))


def test_cifar_resnet32_has_the_papers_parameter_count() -> None:
    n = sum(p.numel() for p in models.build("cifar_resnet32", num_classes=10, in_chans=3).parameters())
    assert 0.46e6 < n < 0.47e6


def test_local_weights_load_with_weights_only_and_skip_a_mismatched_head(tmp_path: Path) -> None:
    src = models.build("timm", num_classes=5, in_chans=3, arch="resnet18")
    path = tmp_path / "r18.pth"
    torch.save(src.state_dict(), path)
    dst = models.build("timm", num_classes=10, in_chans=3, arch="resnet18", weights=str(path))
    assert torch.equal(dst.conv1.weight, src.conv1.weight)
    assert dst.fc.weight.shape == (10, 512)  # head for another class count: skipped, not loaded
    assert models.load_weights(dst, str(path)) == ["fc.bias", "fc.weight"]


def test_sigmoid_cb_focal_sets_the_head_bias() -> None:
    model = models.build("small_cnn", num_classes=3, in_chans=1, width=4)
    fn = losses.build("cb_focal", [10, 5, 1], form="sigmoid")
    models.adapt_head(model, bias_init=fn.head_bias_init)
    assert torch.allclose(model[-1].bias, torch.full((3,), fn.head_bias_init))
