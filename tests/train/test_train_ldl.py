"""The artifact map and LDL loss against a direct, loop-by-loop transcription of the paper's
equations (Liang, Zeng, Zhang, CVPR 2022; the official csjliang/LDL
ArtifactsDis models: map from the summed residuals, 7×7 local variance, patch variance to the 1/5,
zero where the EMA residual is larger), including the zeroing rule."""

from __future__ import annotations

import numpy as np
import torch

from ldl_video import artifact_map, ldl_loss


def transcribed_map(gt: np.ndarray, sr: np.ndarray, ema: np.ndarray, k: int = 7) -> np.ndarray:
    b, _, h, w = gt.shape
    out = np.zeros((b, 1, h, w))
    pad = k // 2
    for n in range(b):
        r_sr = np.abs(gt[n] - sr[n]).sum(axis=0)
        r_ema = np.abs(gt[n] - ema[n]).sum(axis=0)
        patch = np.var(r_sr, ddof=1) ** (1 / 5)
        padded = np.pad(r_sr, pad, mode="reflect")
        for y in range(h):
            for x in range(w):
                pixel = np.var(padded[y : y + k, x : x + k], ddof=1)
                out[n, 0, y, x] = 0.0 if r_sr[y, x] < r_ema[y, x] else patch * pixel
    return out


def _tensors(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    gt, sr, ema = (torch.rand(2, 3, 13, 11, generator=g, dtype=torch.float64) for _ in range(3))
    return gt, sr, ema


def test_map_matches_the_equations():
    gt, sr, ema = _tensors()
    got = artifact_map(gt, sr, ema, kernel_size=7).numpy()
    want = transcribed_map(gt.numpy(), sr.numpy(), ema.numpy())
    assert got.shape == (2, 1, 13, 11)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_zero_where_the_generator_is_closer_than_the_ema():
    gt, sr, ema = _tensors(1)
    ema_worse = gt + (sr - gt) * 2  # the generator beats the EMA everywhere: nothing to push
    ema_better = gt + (sr - gt) * 0.5  # the EMA beats the generator everywhere: every pixel weighted
    assert torch.count_nonzero(artifact_map(gt, sr, ema_worse)) == 0
    assert (artifact_map(gt, sr, ema_better) > 0).all()
    assert (artifact_map(gt, sr, gt.clone()) > 0).all()
    mixed = artifact_map(gt, sr, ema)
    r_sr = (gt - sr).abs().sum(1, keepdim=True)
    r_ema = (gt - ema).abs().sum(1, keepdim=True)
    assert 0 < int((r_sr < r_ema).sum()) < r_sr.numel()
    assert torch.all(mixed[r_sr < r_ema] == 0) and torch.all(mixed[r_sr >= r_ema] > 0)


def test_loss_is_l1_of_weighted_images_and_not_detached():
    gt, sr, ema = _tensors(2)
    sr = sr.clone().requires_grad_(True)
    weight = torch.from_numpy(transcribed_map(gt.numpy(), sr.detach().numpy(), ema.numpy()))
    want = (weight * sr.detach() - weight * gt).abs().mean()
    got = ldl_loss(sr, gt, ema, kernel_size=7)
    torch.testing.assert_close(got.detach(), want, rtol=1e-10, atol=1e-12)
    got.backward()
    map_only = torch.autograd.grad(
        torch.nn.functional.l1_loss(artifact_map(gt, sr, ema).detach() * sr, artifact_map(gt, sr, ema).detach() * gt), sr
    )[0]
    assert not torch.allclose(sr.grad, map_only)  # gradient also flows through the map, as in the official code
