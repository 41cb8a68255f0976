"""How well the blind artifact map agrees with the map from the ground truth.

    .venv/bin/python benchmarks/bench_artifacts.py [--models realesr-animevideov3-x2 ...]
                                                   [--size 256] [--degradation bicubic|blur-noise]

Ground truth: a centre crop (up to --size pixels a side) of each natural image bundled with
scikit-image. Input: the crop shrunk by the model's scale with antialiased bicubic (and, with
--degradation blur-noise, a Gaussian blur (sigma 0.8) before and Gaussian noise (2/255) after).
Per image, Pearson's r over pixels between the ground-truth map (reference_artifact_map) and
each estimate; Spearman's rho too, since the maps are heavy-tailed. Estimates:

- blind: ldl_video.artifacts.blind_artifact_map, what the front ends show;
- one-scale-down: the paper's map computed at the input's scale (shrink the input, upscale
  it back with the model and with Lanczos, compare with the input), brought up to the output;
- texture: the local variance of the Lanczos result (where the image is busy at all);
- shuffled: the ground-truth map's own pixels in random order (chance).

Prints a markdown table; the numbers go in benchmarks/results/napari.md.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import skimage.data
import torch

from ldl_video import Upscaler, load_model
from ldl_video.artifacts import _gray_rgb, _paper_map, blind_artifact_map, local_variance, reference_artifact_map
from ldl_video.resample import resize

IMAGES = ("astronaut", "camera", "cell", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
          "moon", "brick", "grass", "gravel", "coins", "page", "text", "clock", "stereo_motorcycle")


def ground_truth(name: str, size: int) -> torch.Tensor:
    """1×3×H×W float in [0, 1], H and W multiples of 12 (so ×2, ×3 and ×4 divide them)."""
    image = getattr(skimage.data, name)()
    image = image[0] if isinstance(image, tuple) else image
    h, w = image.shape[:2]
    ch, cw = min(size, h) // 12 * 12, min(size, w) // 12 * 12
    y, x = (h - ch) // 2, (w - cw) // 2
    crop = torch.from_numpy(np.ascontiguousarray(image[y : y + ch, x : x + cw])).float() / 255
    crop = crop[None, None] if crop.ndim == 2 else crop.permute(2, 0, 1)[None, :3]
    return _gray_rgb(crop)


def degrade(gt: torch.Tensor, factor: int, kind: str, seed: int) -> torch.Tensor:
    x = gt
    if kind == "blur-noise":
        taps = torch.exp(-0.5 * (torch.arange(-3, 4, dtype=torch.float32) / 0.8) ** 2)
        taps = (taps / taps.sum()).view(1, 1, 1, 7).expand(3, 1, 1, 7)
        x = torch.nn.functional.pad(x, (3, 3, 3, 3), mode="reflect")
        x = torch.nn.functional.conv2d(torch.nn.functional.conv2d(x, taps, groups=3), taps.transpose(2, 3), groups=3)
    lr = resize(x, gt.shape[-2] // factor, gt.shape[-1] // factor, kernel="bicubic")
    if kind == "blur-noise":
        lr = lr + torch.randn(lr.shape, generator=torch.Generator().manual_seed(seed)) * (2 / 255)
    return lr.clamp(0, 1)


def one_scale_down(upscaler: Upscaler, lr: torch.Tensor) -> torch.Tensor:
    """The estimate the design started from (see the artifacts module docstring)."""
    h, w = lr.shape[-2:]
    small = resize(lr, max(1, round(h / upscaler.scale)), max(1, round(w / upscaler.scale)), kernel="bicubic").clamp(0, 1)
    sr = upscaler.upscale_tensor(small)
    sr = resize(sr, h, w, kernel="bicubic") if sr.shape[-2:] != (h, w) else sr
    low = _paper_map(lr, sr, resize(small, h, w, kernel="lanczos").clamp(0, 1), 7)
    return resize(low, *upscaler.output_size(h, w), kernel="bicubic").clamp(min=0)


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    a, b = a - a.mean(), b - b.mean()
    denominator = float(a.norm() * b.norm())
    return float((a * b).sum()) / denominator if denominator > 0 else 0.0


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    return pearson(a.flatten().argsort().argsort().float(), b.flatten().argsort().argsort().float())


def measure(model: str, size: int, degradation: str) -> dict[str, list[tuple[float, float]]]:
    upscaler = Upscaler(load_model(model, scale=4 if model in ("bicubic", "lanczos") else None), device="cpu")
    factor = int(upscaler.scale)
    scores: dict[str, list[tuple[float, float]]] = {}
    for seed, name in enumerate(IMAGES):
        gt = ground_truth(name, size)
        lr = degrade(gt, factor, degradation, seed)
        sr = upscaler.upscale_tensor(lr)
        truth = reference_artifact_map(upscaler, lr, gt, sr=sr)
        lanczos = resize(lr, *gt.shape[-2:], kernel="lanczos").clamp(0, 1)
        shuffled = truth.flatten()[torch.randperm(truth.numel(), generator=torch.Generator().manual_seed(seed))]
        estimates = {
            "blind": blind_artifact_map(upscaler, lr, sr=sr),
            "one-scale-down": one_scale_down(upscaler, lr),
            "texture": local_variance(lanczos.mean(dim=1, keepdim=True)),
            "shuffled": shuffled.view_as(truth),
        }
        for key, estimate in estimates.items():
            scores.setdefault(key, []).append((pearson(estimate, truth), spearman(estimate, truth)))
        ratio = float(truth.mean() / estimates["blind"].mean().clamp(min=1e-30))
        scores.setdefault("_scale", []).append((ratio, 0.0))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+",
                        default=["realesr-animevideov3-x2", "realesr-animevideov3-x4", "realesrgan-x4plus"])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--degradation", choices=("bicubic", "blur-noise"), default="bicubic")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{len(IMAGES)} skimage images, crops up to {args.size} px, input = {args.degradation} downscale; "
          f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {args.threads} threads\n")
    print("| model | estimate | Pearson r: mean | median | min | images with r > 0.1 | Spearman rho: mean |")
    print("|---|---|---|---|---|---|---|")
    for model in args.models:
        start = time.perf_counter()
        scores = measure(model, args.size, args.degradation)
        scale = scores.pop("_scale")
        for key, pairs in scores.items():
            r = np.array([p for p, _ in pairs])
            rho = np.array([s for _, s in pairs])
            print(f"| {model} | {key} | {r.mean():+.3f} | {np.median(r):+.3f} | {r.min():+.3f} | "
                  f"{(r > 0.1).sum()}/{len(r)} | {rho.mean():+.3f} |", flush=True)
        ratios = np.array([s for s, _ in scale])
        print(f"<!-- {model}: ground-truth map / blind map, mean values: median {np.median(ratios):.2f}, "
              f"range {ratios.min():.2f}-{ratios.max():.2f}; {time.perf_counter() - start:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
