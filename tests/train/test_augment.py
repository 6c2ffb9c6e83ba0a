"""Batch augmentation on tensors: each crop is a window of the zero-padded image; flips ~ half."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hpo.train.augment import STRONGEST, augment, hflip, kornia_pipeline, random_crop, strengths


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


# ---- the kornia stage --------------------------------------------------------------------------

OFF = {k: 0.0 for k in STRONGEST} | {"vflip": False, "magnitude": 0.0}
EACH = [{"resized_crop": 0.5}, {"vflip": True}, {"rotate": 30.0}, {"shift": 0.2}, {"scale": 0.2},
        {"brightness": 0.4}, {"contrast": 0.4}, {"saturation": 0.4}, {"rgb_shift": 0.1}, {"blur": 1.0},
        {"sharpness": 1.0}, {"autocontrast": 1.0}, {"magnitude": 0.5}]


def batch(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(16, 3, 16, 16, generator=g) * 0.6 + 0.2  # room for brightness / contrast to move
    return base


@pytest.mark.parametrize("option", EACH, ids=lambda o: next(iter(o)))
def test_each_option_changes_images_keeps_shape_dtype_range_and_is_seeded(option: dict) -> None:
    pipe = kornia_pipeline({**OFF, **option}, channels=3, size=(16, 16))
    assert pipe is not None
    x = batch()
    torch.manual_seed(0)
    a = pipe(x)
    torch.manual_seed(0)
    b = pipe(x)
    assert a.shape == x.shape and a.dtype == torch.float32
    assert float(a.min()) >= -1e-5 and float(a.max()) <= 1 + 1e-5
    assert torch.equal(a, b)  # the trial's seed fixes the augmented images
    changed = (a - x).abs().flatten(1).amax(1) > 1e-4
    assert changed.any(), f"{option} left every image unchanged"


def test_nothing_asked_is_no_pipeline_and_grey_images_skip_colour_ops() -> None:
    assert kornia_pipeline(OFF, channels=3, size=(16, 16)) is None
    assert kornia_pipeline({**OFF, "saturation": 0.4, "rgb_shift": 0.1}, channels=1, size=(16, 16)) is None


def test_magnitude_sets_every_option_to_at_least_its_share_of_the_strongest() -> None:
    s = strengths({**OFF, "magnitude": 0.5, "rotate": 25.0})
    assert s["rotate"] == 25.0 and s["shift"] == pytest.approx(0.1) and s["blur"] == pytest.approx(0.25)


def test_kornia_draws_its_random_parameters_on_the_trials_device() -> None:
    """Each kornia op samples on the device it is given (`meta` stands in for a GPU, for the ops
    whose set-up checks no value of it): drawn on the CPU, kornia's default, every batch would
    wait for copies of them."""
    cfg = {"vflip": True, "rotate": 10.0, "shift": 0.1, "autocontrast": 0.5}
    meta = torch.device("meta")
    pipeline = kornia_pipeline(cfg, 3, (32, 32), meta)
    assert len(pipeline) == 3 and {op.device for op in pipeline} == {meta}
    assert {op.device for op in kornia_pipeline(cfg, 3, (32, 32))} == {torch.device("cpu")}
