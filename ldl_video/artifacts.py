"""Artifact maps for finished results: where an upscaler likely invented detail.

The paper's map (ldl.artifact_map) needs the ground truth: it is large where the residual
|gt - sr| varies strongly within a 7×7 window and the result is further from the truth than a
stable reference. Here the stable reference is classical Lanczos, which invents nothing.

With ground truth, `reference_artifact_map` is exactly that map.

Without ground truth (the usual case), `blind_artifact_map` puts the Lanczos result where the
ground truth was: the same formula on h = sum_c |sr - lanczos(lr)|,

    blind = var(h over the image) ** (1/5) * var(h in each 7×7 window)

i.e. the paper's map of the detail the model added beyond what the input supports, with no
mask (which pixels beat the reference is unknowable without the truth). Why this works: the
residual against the truth is gt - sr = (gt - lanczos) - (sr - lanczos); where the model adds
strong, irregular detail, that second term dominates the residual's local variance, which is
what the paper's map measures.

Measured on 18 skimage images (256×256 crops as ground truth, bicubic-downscaled input),
per-image Pearson correlation over pixels with the map from the ground truth
(benchmarks/bench_artifacts.py, numbers in benchmarks/results/napari.md): mean r 0.56 for
realesr-animevideov3 ×2, 0.41 ×4, 0.56 for realesrgan-x4plus (0.37 / 0.34 with blurred, noisy
input), against 0.00 for a shuffled map. The alternative the design started from, the
paper's map one scale down (shrink the input, upscale it back, compare with the input, bring
the map up), reached only 0.31 / 0.21 / 0.21 (plausibly because what the model gets wrong at
the smaller scale sits on other structures than at full scale).

Both maps are on the paper's scale: the ground-truth map's mean is a median 1.2× the blind
one's at ×2 and 2.2× at ×4 (it also counts detail the model failed to recover). `to_display`
turns either into [0, 1] with one fixed curve, so video does not flicker and maps of
different images compare.

Cost: the blind map needs the full-size result. Callers that have it pass `sr=` (the napari
worker does); without it the upscaler runs again. The map itself is one Lanczos resize and box
filters at the output size (about 0.07 s for a 1024×1024 output on two CPU threads).

The local variance here is computed with box sums in float64 instead of ldl.local_variance's
k²-fold unfold, which at 2048×2048 would need 0.8 GB; tests check the two agree.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from .resample import resize
from .upscaler import Upscaler

# to_display: 1 - exp(-sqrt(map / DISPLAY_SCALE)). The map spans about four decades (1e-5 in
# smooth microscopy, 1e-1 at the worst text edges); the square root keeps the weak end
# visible: 1e-5 -> 0.07, 1e-4 -> 0.20, 1e-3 -> 0.51, 1e-2 -> 0.89.
DISPLAY_SCALE = 2e-3


def _gray_rgb(x: torch.Tensor) -> torch.Tensor:
    """Colour channels only (alpha dropped); gray replicated to three, as the paper sums over RGB."""
    return x[:, :3] if x.shape[1] >= 3 else x[:, :1].expand(-1, 3, -1, -1)


def local_variance(residual: torch.Tensor, kernel_size: int = 7) -> torch.Tensor:
    """Unbiased variance of a B×1×H×W map in each k×k window (reflect padding, replicate when
    the map is too small to reflect), from box sums: memory O(H·W) whatever k is."""
    pad = kernel_size // 2
    mode = "reflect" if min(residual.shape[-2:]) > pad else "replicate"
    x = F.pad(residual.double(), (pad, pad, pad, pad), mode=mode)
    n = kernel_size * kernel_size
    mean = F.avg_pool2d(x, kernel_size, stride=1)
    mean_sq = F.avg_pool2d(x * x, kernel_size, stride=1)
    return ((mean_sq - mean * mean) * (n / (n - 1))).clamp_(min=0).to(residual.dtype)


def _paper_map(target: torch.Tensor, result: torch.Tensor, reference: torch.Tensor | None, kernel_size: int) -> torch.Tensor:
    """ldl.artifact_map with the light local variance; no mask when `reference` is None."""
    residual = (target - result).abs().sum(dim=1, keepdim=True)
    patch = residual.var(dim=(1, 2, 3), unbiased=True, keepdim=True).nan_to_num_(0).pow(1 / 5)
    weight = patch * local_variance(residual, kernel_size)
    if reference is None:
        return weight
    return weight.masked_fill(residual < (target - reference).abs().sum(dim=1, keepdim=True), 0.0)


def _result(upscaler: Upscaler, lr: torch.Tensor, sr: torch.Tensor | None) -> torch.Tensor:
    """upscaler(lr) in RGB, reusing `sr` when the caller already has it."""
    if sr is None:
        sr = upscaler.upscale_tensor(lr)
    expected = upscaler.output_size(*lr.shape[-2:])
    if tuple(sr.shape[-2:]) != expected:
        raise ValueError(f"sr is {tuple(sr.shape[-2:])} but the upscaler makes {expected} from this input")
    return _gray_rgb(sr.float()).to(lr.device)


@torch.inference_mode()
def reference_artifact_map(
    upscaler: Upscaler, lr: torch.Tensor, gt: torch.Tensor, kernel_size: int = 7, *, sr: torch.Tensor | None = None
) -> torch.Tensor:
    """The paper's map of upscaler(lr) against a known HR `gt` (N×C×H'×W' in [0, 1]), with
    Lanczos as the reference; N×1×H'×W'. Pass `sr` (the upscaler's output) to skip running it."""
    sr = _result(upscaler, lr.float(), sr).to(gt.device)
    lr, gt = _gray_rgb(lr.float()), _gray_rgb(gt.float())
    if sr.shape[-2:] != gt.shape[-2:]:
        raise ValueError(f"ground truth is {tuple(gt.shape[-2:])} but the result is {tuple(sr.shape[-2:])}")
    reference = resize(lr.to(gt.device), *gt.shape[-2:], kernel="lanczos").clamp_(0, 1)
    return _paper_map(gt, sr, reference, kernel_size)


@torch.inference_mode()
def blind_artifact_map(
    upscaler: Upscaler, lr: torch.Tensor, kernel_size: int = 7, *, sr: torch.Tensor | None = None
) -> torch.Tensor:
    """An estimate of the map for upscaler(lr) without ground truth, N×1×H'×W' at the output
    size (see the module docstring). Pass `sr` (the upscaler's output) to skip running it."""
    sr = _result(upscaler, lr.float(), sr)
    lr = _gray_rgb(lr.float()).to(sr.device)
    supported = resize(lr, *sr.shape[-2:], kernel="lanczos").clamp_(0, 1)
    return _paper_map(supported, sr, None, kernel_size)


def to_display(weights: torch.Tensor) -> torch.Tensor:
    """A map in [0, 1] with a fixed curve (no per-frame normalisation, so video does not flicker):
    0 = nothing suspicious, toward 1 = strong."""
    return 1 - torch.exp(-(weights.clamp(min=0) / DISPLAY_SCALE).sqrt())
