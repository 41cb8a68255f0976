"""CUDA paths of the engine checked against the CPU: precisions, channels_last, batching, tiles.

    python benchmarks/gpu_checks.py --out benchmarks/results/gpu-checks.md

Every row is a PSNR (dB, 8-bit output) between two ways of computing the same frames; the
reference is fp32 on the CPU. Needs a CUDA device and the models' weights in the model folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import ldl_video


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255**2 / mse))


def frames(n: int, h: int, w: int) -> np.ndarray:
    import skimage.data

    sources = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), skimage.data.rocket()]
    return np.stack([np.ascontiguousarray(sources[i % len(sources)][:h, :w]) for i in range(n)])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--models", default="realesr-animevideov3-x4,realesr-animevideov3-x2,realesrgan-x4plus-anime")
    p.add_argument("--out", default="benchmarks/results/gpu-checks.md")
    args = p.parse_args()
    batch = frames(4, 240, 300)
    rows = ["| model | compared with fp32 on the CPU | PSNR dB |", "|---|---|---|"]
    for name in args.models.split(","):
        cpu = ldl_video.Upscaler(ldl_video.load_model(name), device="cpu", precision="fp32").upscale(batch)
        for precision in ("fp32", "fp16", "bf16"):
            up = ldl_video.Upscaler(ldl_video.load_model(name), device="cuda", precision=precision, batch_size=4)
            assert up.channels_last
            rows.append(f"| {name} | CUDA {precision}, channels_last, batch 4 | {psnr(cpu, up.upscale(batch)):.1f} |")
        single = ldl_video.Upscaler(ldl_video.load_model(name), device="cuda", precision="fp16", batch_size=1)
        one_by_one = np.stack([single.upscale(f) for f in batch])
        rows.append(f"| {name} | CUDA fp16, one frame at a time | {psnr(cpu, one_by_one):.1f} |")
        tiled = ldl_video.Upscaler(ldl_video.load_model(name), device="cuda", precision="fp16", tile=128,
                                   tile_overlap=16, batch_size=4)
        rows.append(f"| {name} | CUDA fp16, tile 128 / overlap 16, 4 tiles a batch | {psnr(cpu, tiled.upscale(batch)):.1f} |")
    text = "\n".join([f"## CUDA paths against the CPU ({torch.cuda.get_device_name()})", "",
                      "4 natural frames of 300×240 (skimage.data); real converted weights.", "", *rows, ""])
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
