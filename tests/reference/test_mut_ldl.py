"""The LDL map and loss where mutation testing found them unpinned (benchmarks/results/mutation.md):
a recipe's `ldl_kernel` other than 7, the public default of 7×7 (the paper, Sec. 3.3), and ties
between the generator and the EMA, which happen at the first step of every run (the EMA starts as
a copy of the generator). The official code zeroes only where the generator is strictly closer
(`overall_weight[residual_SR < residual_ema] = 0`, csjliang/LDL), so a tie keeps its weight.

The reference is numpy's sliding windows, written independently of torch's unfold."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view

from ldl_video import artifact_map, ldl_loss


def reference_map(gt: np.ndarray, sr: np.ndarray, ema: np.ndarray, k: int) -> np.ndarray:
    r_sr = np.abs(gt - sr).sum(axis=1)  # B×H×W
    r_ema = np.abs(gt - ema).sum(axis=1)
    patch = r_sr.reshape(len(r_sr), -1).var(axis=1, ddof=1) ** 0.2
    padded = np.pad(r_sr, ((0, 0), (k // 2, k // 2), (k // 2, k // 2)), mode="reflect")
    pixel = sliding_window_view(padded, (k, k), axis=(1, 2)).var(axis=(-1, -2), ddof=1)
    return np.where(r_sr < r_ema, 0.0, patch[:, None, None] * pixel)[:, None]


def _images(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.rand(2, 3, 12, 10, generator=g, dtype=torch.float64) for _ in range(3))


@pytest.mark.parametrize("k", [3, 5])
def test_map_and_loss_follow_a_recipes_kernel(k: int):
    gt, sr, ema = _images(k)
    want = reference_map(gt.numpy(), sr.numpy(), ema.numpy(), k)
    np.testing.assert_allclose(artifact_map(gt, sr, ema, kernel_size=k).numpy(), want, rtol=1e-10, atol=1e-12)
    want_loss = np.abs(want * sr.numpy() - want * gt.numpy()).mean()
    assert ldl_loss(sr, gt, ema, kernel_size=k).item() == pytest.approx(want_loss, rel=1e-10)


def test_default_kernel_is_seven():
    gt, sr, ema = _images(7)
    want = reference_map(gt.numpy(), sr.numpy(), ema.numpy(), 7)
    np.testing.assert_allclose(artifact_map(gt, sr, ema).numpy(), want, rtol=1e-10, atol=1e-12)
    want_loss = np.abs(want * sr.numpy() - want * gt.numpy()).mean()
    assert ldl_loss(sr, gt, ema).item() == pytest.approx(want_loss, rel=1e-10)


def test_first_step_ema_equal_to_generator_weights_every_pixel():
    gt, sr, _ = _images(11)
    got = artifact_map(gt, sr, sr.clone())
    np.testing.assert_allclose(got.numpy(), reference_map(gt.numpy(), sr.numpy(), sr.numpy(), 7), rtol=1e-10, atol=1e-12)
    assert (got > 0).all()
    assert ldl_loss(sr, gt, sr.clone()).item() > 0
