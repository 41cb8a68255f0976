"""Artifact maps for finished results: where an upscaler likely invented detail.

With ground truth, this is the paper's map (ldl.artifact_map) with a fidelity-oriented
reference in the EMA slot: classical Lanczos, which invents nothing.

Without ground truth (the usual case) the same question is asked one scale down, where the
input itself is the ground truth: shrink the input by the upscaler's factor, upscale that back
with the same upscaler and with Lanczos, compute the paper's map against the input, and bring
the map up to the output size. Regions whose texture the model mis-synthesises at the small
scale are the ones it mis-synthesises at full scale.
"""

from __future__ import annotations

import torch

from .ldl import artifact_map
from .resample import resize
from .upscaler import Upscaler

# Maps are displayed as 1 - exp(-map / DISPLAY_SCALE): 0 = nothing suspicious, toward 1 = strong.
DISPLAY_SCALE = 0.02


def _gray_rgb(x: torch.Tensor) -> torch.Tensor:
    return x[:, :3] if x.shape[1] >= 3 else x[:, :1].expand(-1, 3, -1, -1)


def reference_artifact_map(upscaler: Upscaler, lr: torch.Tensor, gt: torch.Tensor, kernel_size: int = 7) -> torch.Tensor:
    """The paper's map of upscaler(lr) against a known HR `gt` (N×C×H'×W' in [0, 1])."""
    lr, gt = _gray_rgb(lr.float()), _gray_rgb(gt.float())
    sr = upscaler.upscale_tensor(lr).to(gt.device)
    if sr.shape[-2:] != gt.shape[-2:]:
        raise ValueError(f"ground truth is {tuple(gt.shape[-2:])} but the result is {tuple(sr.shape[-2:])}")
    reference = resize(lr.to(gt.device), *gt.shape[-2:], kernel="lanczos").clamp(0, 1)
    return artifact_map(gt, sr, reference, kernel_size)


def blind_artifact_map(upscaler: Upscaler, lr: torch.Tensor, kernel_size: int = 7) -> torch.Tensor:
    """An estimate of the map for upscaler(lr) without ground truth, N×1×H'×W' at the output size."""
    lr = _gray_rgb(lr.float())
    h, w = lr.shape[-2:]
    small_h, small_w = max(1, round(h / upscaler.scale)), max(1, round(w / upscaler.scale))
    small = resize(lr, small_h, small_w, kernel="bicubic").clamp(0, 1)
    sr = upscaler.upscale_tensor(small).to(lr.device)
    sr = resize(sr, h, w, kernel="bicubic") if sr.shape[-2:] != (h, w) else sr
    reference = resize(small, h, w, kernel="lanczos").clamp(0, 1)
    low = artifact_map(lr, sr, reference, kernel_size)
    return resize(low, *upscaler.output_size(h, w), kernel="bicubic").clamp_(min=0)


def to_display(weights: torch.Tensor) -> torch.Tensor:
    """A map in [0, 1] with a fixed curve (no per-frame normalisation, so video does not flicker)."""
    return 1 - torch.exp(-weights / DISPLAY_SCALE)
