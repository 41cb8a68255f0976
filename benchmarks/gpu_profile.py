"""Where an `Upscaler.upscale` call spends its time on a GPU, step by step (ms, median of 10).

    python benchmarks/gpu_profile.py [--model realesr-animevideov3-x4] [--size 1280x720]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

import ldl_video


def ms(fn, repeat: int = 10) -> float:
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="realesr-animevideov3-x4")
    p.add_argument("--size", default="1280x720")
    p.add_argument("--precision", default="fp16")
    args = p.parse_args()
    w, h = map(int, args.size.split("x"))
    up = ldl_video.Upscaler(ldl_video.load_model(args.model), device="cuda", precision=args.precision)
    image = np.random.default_rng(0).integers(0, 255, (1, h, w, 3), dtype=np.uint8)
    x = up.to_tensor(image, "cuda")
    with torch.inference_mode():
        out = up.upscale_tensor(x)
        quantised = out.clamp(0, 1).permute(0, 2, 3, 1).mul(255).round_().to(torch.uint8)
        rows = {
            "upload + to float": ms(lambda: up.to_tensor(image, "cuda")),
            "network (upscale_tensor)": ms(lambda: up.upscale_tensor(x)),
            "quantise on GPU": ms(lambda: out.clamp(0, 1).permute(0, 2, 3, 1).mul(255).round_().to(torch.uint8)),
            "download, pageable .cpu()": ms(lambda: quantised.cpu()),
            "download, page-locked": ms(lambda: ldl_video.upscaler._download(quantised)),
            "whole upscale(uint8 array)": ms(lambda: up.upscale(image)),
        }
    print(f"{args.model} {args.precision} {w}×{h} on {torch.cuda.get_device_name()}")
    for name, value in rows.items():
        print(f"| {name} | {value:.2f} ms |")


if __name__ == "__main__":
    main()
