"""The artifact maps the front ends show: the reference map is the paper's, the blind estimate
agrees with it far better than chance, and the display curve is fixed."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch

from ldl_video import Upscaler, load_model
from ldl_video.artifacts import blind_artifact_map, local_variance, reference_artifact_map, to_display
from ldl_video.ldl import artifact_map
from ldl_video.ldl import local_variance as papers_local_variance
from ldl_video.resample import resize

IMAGES = ("camera", "astronaut", "moon", "coffee", "brick", "text")


def _ground_truth(name: str, size: int = 96) -> torch.Tensor:
    image = getattr(skimage.data, name)()
    y, x = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
    crop = torch.from_numpy(np.ascontiguousarray(image[y : y + size, x : x + size])).float() / 255
    return crop[None, None].expand(-1, 3, -1, -1) if crop.ndim == 2 else crop.permute(2, 0, 1)[None]


def _pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


@pytest.fixture(scope="module")
def compact_x2() -> Upscaler:
    return Upscaler(load_model("realesr-animevideov3-x2"), device="cpu")


def test_local_variance_is_the_papers():
    generator = torch.Generator().manual_seed(0)
    for shape in [(2, 1, 40, 37), (1, 1, 7, 9)]:
        residual = torch.rand(shape, generator=generator) * 3
        torch.testing.assert_close(local_variance(residual), papers_local_variance(residual), rtol=1e-5, atol=1e-7)


def test_reference_map_is_the_papers_map_with_lanczos_as_reference():
    upscaler = Upscaler("bicubic", scale=2)
    gt = _ground_truth("camera", 48)
    lr = resize(gt, 24, 24, kernel="bicubic").clamp(0, 1)
    sr = upscaler.upscale_tensor(lr)
    expected = artifact_map(gt, sr, resize(lr, 48, 48, kernel="lanczos").clamp(0, 1))
    torch.testing.assert_close(reference_artifact_map(upscaler, lr, gt), expected, rtol=1e-5, atol=1e-9)


def test_blind_map_agrees_with_the_ground_truth_map_better_than_chance(compact_x2):
    truths, blinds = [], []
    for name in IMAGES:
        gt = _ground_truth(name)
        lr = resize(gt, 48, 48, kernel="bicubic").clamp(0, 1)
        sr = compact_x2.upscale_tensor(lr)
        truths.append(reference_artifact_map(compact_x2, lr, gt, sr=sr))
        blinds.append(blind_artifact_map(compact_x2, lr, sr=sr))
    agreement = [_pearson(blind, truth) for blind, truth in zip(blinds, truths, strict=True)]
    shuffled = [_pearson(t.flatten()[torch.randperm(t.numel(), generator=torch.Generator().manual_seed(i))], t)
                for i, t in enumerate(truths)]
    other_image = [_pearson(blinds[i - 1], truth) for i, truth in enumerate(truths)]  # right statistics, wrong place
    assert max(abs(r) for r in shuffled) < 0.05, shuffled
    assert min(agreement) > 0.3 and np.mean(agreement) > np.mean(np.abs(other_image)) + 0.3, (agreement, other_image)


def test_blind_map_shapes_and_reuse_of_the_result(compact_x2):
    generator = torch.Generator().manual_seed(1)
    for channels in (1, 3, 4):
        lr = torch.rand(2, channels, 12, 10, generator=generator)
        weights = blind_artifact_map(compact_x2, lr)
        assert weights.shape == (2, 1, 24, 20) and (weights >= 0).all()
        torch.testing.assert_close(blind_artifact_map(compact_x2, lr, sr=compact_x2.upscale_tensor(lr)), weights)
    assert blind_artifact_map(Upscaler("bicubic", scale=3), torch.rand(1, 1, 1, 1)).shape == (1, 1, 3, 3)
    with pytest.raises(ValueError, match="sr is"):
        blind_artifact_map(compact_x2, torch.rand(1, 3, 8, 8), sr=torch.rand(1, 3, 8, 8))


def test_display_curve_is_fixed_and_monotone():
    weights = torch.tensor([0.0, 1e-5, 1e-4, 1e-3, 1e-2, 1.0])
    shown = to_display(weights)
    assert shown[0] == 0 and (shown.diff() > 0).all() and shown[-1] <= 1
    # the curve the overlay is documented with: weak microscopy-level maps stay visible, text
    # edges saturate (a curve much steeper or flatter would hide one end)
    torch.testing.assert_close(shown[1:5], torch.tensor([0.07, 0.20, 0.51, 0.89]), atol=0.006, rtol=0)
    # no per-map normalisation: a pixel's value does not depend on the rest of the map
    torch.testing.assert_close(to_display(torch.cat([weights, weights * 100]))[: len(weights)], shown)
