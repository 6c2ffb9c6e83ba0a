"""Batch augmentation on tensors: each crop is a window of the zero-padded image; flips ~ half."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from hpo.train.augment import augment, hflip, random_crop


def test_random_crop_is_a_window_of_the_zero_padded_image() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(1, 255, (64, 3, 8, 8), dtype=torch.uint8)
    out = random_crop(x, 2, g)
    assert out.shape == x.shape and out.dtype == torch.uint8
    padded = F.pad(x, (2, 2, 2, 2))
    offsets = set()
    for i in range(len(x)):
        hits = [(oy, ox) for oy in range(5) for ox in range(5) if torch.equal(out[i], padded[i, :, oy:oy + 8, ox:ox + 8])]
        assert hits, f"image {i} is not a window of its padded original"
        offsets.add(hits[0])
    assert len(offsets) > 10  # offsets vary across the batch


def test_hflip_mirrors_about_half_the_images() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 255, (400, 1, 4, 4), dtype=torch.uint8)
    out = hflip(x, g)
    flipped = sum(torch.equal(o, xi.flip(2)) and not torch.equal(o, xi) for o, xi in zip(out, x))
    kept = sum(torch.equal(o, xi) for o, xi in zip(out, x))
    assert flipped + kept == 400 and 160 < flipped < 240


def test_augment_off_returns_the_batch_unchanged() -> None:
    x = torch.randint(0, 255, (4, 3, 8, 8), dtype=torch.uint8)
    assert torch.equal(augment(x, {"crop_padding": 0, "flip": False}, torch.Generator()), x)
