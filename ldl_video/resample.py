"""Classical resampling (bicubic, Lanczos-3) as separable matrices, antialiased when shrinking.

Used for the `bicubic` / `lanczos` models, for bringing a network's own scale to the scale the
user asked for, and for alpha channels.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import nn

KERNELS = ("bicubic", "lanczos")


def _cubic(x: torch.Tensor, a: float = -0.5) -> torch.Tensor:
    x = x.abs()
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return torch.where(x <= 1, near, torch.where(x < 2, far, torch.zeros_like(x)))


def _lanczos3(x: torch.Tensor) -> torch.Tensor:
    out = torch.sinc(x) * torch.sinc(x / 3)
    return torch.where(x.abs() < 3, out, torch.zeros_like(x))


_SUPPORT = {"bicubic": (2.0, _cubic), "lanczos": (3.0, _lanczos3)}


@lru_cache(maxsize=64)
def _weights(in_size: int, out_size: int, kernel: str, device: torch.device) -> torch.Tensor:
    """An out_size x in_size matrix whose rows are the normalised filter taps (pixel centres
    aligned, edges clamped), cached on `device` so video frames do not upload it each time."""
    support, fn = _SUPPORT[kernel]
    ratio = in_size / out_size
    stretch = max(ratio, 1.0)  # widen the filter when shrinking: antialiasing
    centres = (torch.arange(out_size, dtype=torch.float64) + 0.5) * ratio - 0.5
    radius = support * stretch
    offsets = torch.arange(-math.ceil(radius), math.ceil(radius) + 1, dtype=torch.float64)
    taps = centres.floor()[:, None] + offsets[None, :]
    weights = fn((taps - centres[:, None]) / stretch)
    weights = weights / weights.sum(dim=1, keepdim=True)
    matrix = torch.zeros(out_size, in_size, dtype=torch.float64)
    matrix.scatter_add_(1, taps.clamp(0, in_size - 1).long(), weights)
    return matrix.float().to(device)


def resize(x: torch.Tensor, height: int, width: int, kernel: str = "bicubic") -> torch.Tensor:
    """Resize an N×C×H×W float tensor to height×width."""
    if kernel not in _SUPPORT:
        raise ValueError(f"unknown resampling kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
    in_h, in_w = x.shape[-2:]
    if (in_h, in_w) == (height, width):
        return x
    dtype = x.dtype
    x = x.float()
    rows = _weights(in_h, height, kernel, x.device)
    cols = _weights(in_w, width, kernel, x.device)
    out = torch.matmul(rows, torch.matmul(x, cols.t()))
    return out.to(dtype)


class Resample(nn.Module):
    """A weightless 'network' that upscales by interpolation: the classical models."""

    def __init__(self, scale: float, kernel: str = "bicubic") -> None:
        super().__init__()
        self.scale = scale
        self.kernel = kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        return resize(x, round(h * self.scale), round(w * self.scale), self.kernel)


class Downscaled(nn.Module):
    """A network followed by a bicubic shrink, as the realesr-animevideov3 ×2/×3 graphs do
    (ncnn's bicubic: a = -0.75, no antialiasing, which is torch's)."""

    def __init__(self, net: nn.Module, factor: float) -> None:
        super().__init__()
        self.net = net
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        h, w = out.shape[-2:]
        size = (round(h * self.factor), round(w * self.factor))
        return nn.functional.interpolate(out, size=size, mode="bicubic", align_corners=False)
