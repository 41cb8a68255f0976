"""The LDL artifact map and loss (Liang, Zeng, Zhang, CVPR 2022), as the paper and its code define them.

    r_sr  = sum_c |gt - sr|          r_ema = sum_c |gt - sr_ema|          (B×1×H×W)
    patch = var(r_sr over C,H,W) ** (1/5)        (unbiased, per sample)
    pixel = var(r_sr in each k×k window)         (unbiased, reflect padding k//2)
    map   = patch * pixel, zero wherever r_sr < r_ema
    loss  = L1(map * sr, map * gt)
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def local_variance(residual: torch.Tensor, kernel_size: int = 7) -> torch.Tensor:
    """Unbiased variance of a B×1×H×W map in each k×k window (reflect padding)."""
    pad = kernel_size // 2
    padded = F.pad(residual, (pad, pad, pad, pad), mode="reflect")
    windows = F.unfold(padded, kernel_size)  # B × k² × (H·W)
    return windows.var(dim=1, unbiased=True).view_as(residual)


def artifact_map(gt: torch.Tensor, sr: torch.Tensor, sr_ema: torch.Tensor, kernel_size: int = 7) -> torch.Tensor:
    """The refined artifact map, B×1×H×W. `sr_ema` is the output of a more stable reference
    (the EMA generator in training; a fidelity-oriented upscaler when inspecting a result)."""
    r_sr = (gt - sr).abs().sum(dim=1, keepdim=True)
    r_ema = (gt - sr_ema).abs().sum(dim=1, keepdim=True)
    patch = r_sr.var(dim=(1, 2, 3), unbiased=True, keepdim=True).pow(1 / 5)
    weight = patch * local_variance(r_sr, kernel_size)
    return weight.masked_fill(r_sr < r_ema, 0.0)


def ldl_loss(sr: torch.Tensor, gt: torch.Tensor, sr_ema: torch.Tensor, kernel_size: int = 7) -> torch.Tensor:
    """L1 between map·sr and map·gt (mean), the map not detached, as in the official code."""
    weight = artifact_map(gt, sr, sr_ema, kernel_size)
    return F.l1_loss(weight * sr, weight * gt)
