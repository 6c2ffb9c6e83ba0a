"""Augmentation on batches of tensors, on the trial's device (no per-sample PIL round trips).

Two stages, in this order:
- on the uint8 batch, index gathers: `random_crop` (zero-pad by p, cut an H x W window at a random
  offset per image, as torchvision's RandomCrop(size, padding=p)) and `hflip` (mirror with
  probability 1/2): the small-image recipe, as fast as a gather;
- on [0, 1] floats, kornia's augmentations with per-sample random parameters: resized crop,
  vertical flip, affine (shift / scale / rotate), colour jitter, per-channel shift, Gaussian blur,
  sharpness, autocontrast. `magnitude` in [0, 1] raises each of them to at least that fraction of
  its strongest setting (STRONGEST), a RandAugment-like policy searchable with one number.

kornia draws from torch's global generator, which the trial seeds: a seed fixes the images. Its
random parameters are drawn on the trial's device (`set_rng_device_and_dtype`): drawn on the CPU,
as kornia does by default, each batch would wait for blocking copies of them to the GPU.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

# the strongest setting of each kornia option: what `magnitude: 1` applies
STRONGEST: dict[str, float] = {"resized_crop": 0.5, "rotate": 30.0, "shift": 0.2, "scale": 0.2, "brightness": 0.4,
                               "contrast": 0.4, "saturation": 0.4, "rgb_shift": 0.1, "blur": 0.5, "sharpness": 0.5,
                               "autocontrast": 0.5}


def random_crop(x: torch.Tensor, padding: int, gen: torch.Generator) -> torch.Tensor:
    if padding <= 0:
        return x
    b, _, h, w = x.shape
    xp = F.pad(x, (padding, padding, padding, padding))
    oy = torch.randint(0, 2 * padding + 1, (b,), generator=gen, device=gen.device).to(x.device)
    ox = torch.randint(0, 2 * padding + 1, (b,), generator=gen, device=gen.device).to(x.device)
    rows = (oy[:, None] + torch.arange(h, device=x.device))[:, :, None]  # (B, H, 1)
    cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, :]  # (B, 1, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    return xp.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)  # gather, back to NCHW


def hflip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    flip = (torch.rand(x.shape[0], generator=gen, device=gen.device) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def augment(x: torch.Tensor, cfg: dict[str, Any], gen: torch.Generator) -> torch.Tensor:
    """The uint8 stage."""
    x = random_crop(x, int(cfg["crop_padding"]), gen)
    return hflip(x, gen) if cfg["flip"] else x


def strengths(cfg: dict[str, Any]) -> dict[str, float]:
    """Each kornia option's strength after `magnitude` (the larger of the two)."""
    m = float(cfg.get("magnitude", 0.0))
    return {k: max(float(cfg.get(k, 0.0)), m * top) for k, top in STRONGEST.items()}


def kornia_pipeline(cfg: dict[str, Any], channels: int, size: tuple[int, int],
                    device: torch.device | None = None) -> torch.nn.Module | None:
    """The float stage for an augment section, or None when it does nothing, drawing its random
    parameters on `device` (default the CPU). Saturation and the per-channel shift need colour:
    grey images skip them."""
    import kornia.augmentation as K

    s, ops = strengths(cfg), []
    if s["resized_crop"] > 0:
        ops.append(K.RandomResizedCrop(size, scale=(1.0 - s["resized_crop"], 1.0)))
    if cfg.get("vflip"):
        ops.append(K.RandomVerticalFlip())
    if s["rotate"] or s["shift"] or s["scale"]:
        ops.append(K.RandomAffine(degrees=s["rotate"], translate=(s["shift"], s["shift"]) if s["shift"] else None,
                                  scale=(1 - s["scale"], 1 + s["scale"]) if s["scale"] else None, p=1.0))
    colour = s["saturation"] if channels == 3 else 0.0
    if s["brightness"] or s["contrast"] or colour:
        ops.append(K.ColorJitter(brightness=s["brightness"], contrast=s["contrast"], saturation=colour, p=1.0))
    if s["rgb_shift"] and channels == 3:
        shift = s["rgb_shift"]
        ops.append(K.RandomRGBShift(r_shift_limit=shift, g_shift_limit=shift, b_shift_limit=shift, p=1.0))
    if s["blur"]:
        ops.append(K.RandomGaussianBlur((3, 3), sigma=(0.1, 2.0), p=s["blur"]))
    if s["sharpness"]:
        ops.append(K.RandomSharpness(sharpness=1.0, p=s["sharpness"]))
    if s["autocontrast"]:
        ops.append(K.RandomAutoContrast(p=s["autocontrast"]))
    for op in ops:
        op.set_rng_device_and_dtype(device or torch.device("cpu"), torch.float32)
    return torch.nn.Sequential(*ops) if ops else None
