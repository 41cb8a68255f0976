"""Engine benchmarks: model throughput, Upscaler overhead, tiling cost; on the CPU or a GPU.

    python benchmarks/bench_engine.py                     # CPU, writes benchmarks/results/engine.md
    python benchmarks/bench_engine.py --device cuda --out benchmarks/results/engine-gpu.md
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from machine_info import cpu_name

import ldl_video
from ldl_video.upscaler import _spans

MODELS = ["realesrgan-x4plus", "realesrgan-x4plus-anime", "realesr-animevideov3-x2", "realesr-animevideov3-x3",
          "realesr-animevideov3-x4", "bicubic", "lanczos"]


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}, CUDA {torch.version.cuda}"
    return f"{cpu_name()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeat: int) -> float:
    """Median seconds of `repeat` calls after one warm-up."""
    fn()
    sync(device)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def frame(h: int, w: int, n: int = 1) -> np.ndarray:
    import skimage.data

    base = skimage.data.astronaut()
    reps = (max(1, -(-h // base.shape[0])), max(1, -(-w // base.shape[1])), 1)
    image = np.tile(base, reps)[:h, :w]
    return np.broadcast_to(image, (n, h, w, 3)).copy()


def throughput(args, device, precision: str) -> list[str]:
    rows = ["| model | precision | input | batch | output MP/s | ms per frame |", "|---|---|---|---|---|---|"]
    for name in MODELS:
        heavy = name.startswith("realesrgan")
        h, w = (args.heavy_size if heavy else args.size)
        up = ldl_video.Upscaler(ldl_video.load_model(name, scale=4), device=device, precision=precision,
                                batch_size=args.batch)
        frames = frame(h, w, args.batch)
        seconds = timed(lambda up=up, frames=frames: up.upscale(frames), device, args.repeat)
        oh, ow = up.output_size(h, w)
        rows.append(f"| {name} | {precision} | {w}×{h} | {args.batch} | {args.batch * oh * ow / seconds / 1e6:.3f} "
                    f"| {1000 * seconds / args.batch:.1f} |")
    return rows


def overhead(args, device, precision: str) -> list[str]:
    """Upscaler.upscale(uint8 array) against the bare network on a ready tensor on the device."""
    rows = ["| model | input | bare net ms | Upscaler ms | ratio |", "|---|---|---|---|---|"]
    for name in ("realesr-animevideov3-x4", "realesrgan-x4plus"):
        h, w = args.heavy_size if name.startswith("realesrgan") else args.size
        up = ldl_video.Upscaler(ldl_video.load_model(name), device=device, precision=precision)
        image = frame(h, w)[0]
        x = up.to_tensor(image[None]).to(device, up.backend.input_dtype)

        def bare(x=x, up=up):
            with torch.inference_mode():
                return up.backend(x)  # the network as the Upscaler's backend runs it (layout, autocast)

        pairs = [(timed(bare, device, 1), timed(lambda up=up, image=image: up.upscale(image), device, 1))
                 for _ in range(args.repeat)]
        net_s, up_s = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
        rows.append(f"| {name} | {w}×{h} | {1000 * net_s:.1f} | {1000 * up_s:.1f} | {up_s / net_s:.3f} |")
    return rows


def tiling(args, device, precision: str) -> list[str]:
    rows = ["| model | input | tile / overlap | untiled ms | tiled ms | ratio | area ratio |", "|---|---|---|---|---|---|---|"]
    size, tile, ov = args.tile_case
    for name in args.tile_models:
        model = ldl_video.load_model(name)
        image = frame(size, size)[0]
        whole = ldl_video.Upscaler(model, device=device, precision=precision)
        tiled = ldl_video.Upscaler(model, device=device, precision=precision, tile=tile, tile_overlap=ov)
        spans = _spans(size, tile, ov)
        area = sum((b - a) for a, b in spans) ** 2 / size**2
        pairs = [
            (timed(lambda u=whole, i=image: u.upscale(i), device, 1), timed(lambda u=tiled, i=image: u.upscale(i), device, 1))
            for _ in range(args.repeat)
        ]
        a, b = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
        rows.append(f"| {name} | {size}×{size} | {tile} / {ov} | {1000 * a:.0f} | {1000 * b:.0f} | {b / a:.3f} | {area:.3f} |")
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="cpu")
    p.add_argument("--precisions", default=None, help="comma list; default fp32 on CPU, fp32,fp16,bf16 on CUDA")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", default="benchmarks/results/engine.md")
    args = p.parse_args()
    device = ldl_video.devices.resolve_device(args.device)
    gpu = device.type == "cuda"
    args.size = (720, 1280) if gpu else (128, 128)
    args.heavy_size = (720, 1280) if gpu else (64, 64)
    args.tile_case = (512, 256, 16)
    args.tile_models = ["realesr-animevideov3-x4", "realesrgan-x4plus"] if gpu else ["realesr-animevideov3-x4"]
    precisions = (args.precisions or ("fp32,fp16,bf16" if gpu else "fp32")).split(",")
    torch.backends.cudnn.benchmark = gpu
    lines = [f"## Engine ({'GPU' if gpu else 'CPU'})", "", f"Machine: {machine(device)}.", "",
             "Throughput (median of repeated runs, uint8 frames in and out through `Upscaler.upscale`):", ""]
    for precision in precisions:
        lines += throughput(args, device, precision) + [""]
    lines += ["Upscaler overhead against the bare network on a ready tensor (untiled, target ≤ 1.05):", ""]
    lines += overhead(args, device, precisions[-1 if gpu else 0]) + [""]
    lines += ["Tiling cost (target: no more than the extra area the overlap implies):", ""]
    lines += tiling(args, device, precisions[-1 if gpu else 0]) + [""]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
