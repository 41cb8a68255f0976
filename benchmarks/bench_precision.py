"""precision auto (bf16 on a CPU with native bf16) against fp32 on this CPU: quality and speed.

    .venv/bin/python benchmarks/bench_precision.py [--repeats 5] [--frames 6] [--skip-e2e]

1. Quality, per architecture: PSNR of the bf16 result against the fp32 result of the same
   model on central crops of natural photographs (scikit-image's data), float in and out; the
   minimum over the photos decides (>= 50 dB: the architecture is in model.CPU_BF16_ARCHS).
2. Speed through Upscaler.upscale on natural uint8 frames, the two precisions taking turns,
   best of `--repeats` each (other work on a shared machine only ever slows a run down).
3. End to end: `ldl-video` on a 320×180 clip ×2 and `vspipe` over the same clip with
   core.ldl.Upscale, each with precision auto and fp32, in fresh processes, best of `--repeats`.

Writes benchmarks/results/precision.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import skimage.data
import torch
from machine_info import cpu_name

import ldl_video
from ldl_video.devices import cpu_has_native_bf16

RESULTS = Path(__file__).parent / "results" / "precision.md"
BIN = Path(sys.executable).parent
PHOTOS = ["astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "motorcycle_left"]
# (model, input side for the quality and speed runs)
MODELS = [("realesr-animevideov3-x4", 128), ("realesrgan-x4plus-anime", 64), ("realesrgan-x4plus", 64)]


def photos() -> dict[str, np.ndarray]:
    out = {}
    for name in PHOTOS:
        if hasattr(skimage.data, name):
            image = getattr(skimage.data, name)()
            out[name] = image[0] if isinstance(image, tuple) else image
    return {k: v[..., :3] for k, v in out.items() if v.ndim == 3}


def crop(image: np.ndarray, side: int) -> np.ndarray:
    h, w = image.shape[:2]
    return image[(h - side) // 2 : (h + side) // 2, (w - side) // 2 : (w + side) // 2]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(1 / mse) if mse else float("inf")


def upscaler(name: str, precision: str) -> ldl_video.Upscaler:
    return ldl_video.Upscaler(ldl_video.load_model(name), device="cpu", precision=precision)


def quality(name: str, side: int) -> dict[str, float]:
    fp32, auto = upscaler(name, "fp32"), upscaler(name, "auto")
    return {photo: psnr(fp32.upscale(crop(image, side).astype(np.float32) / 255),
                        auto.upscale(crop(image, side).astype(np.float32) / 255))
            for photo, image in photos().items()}


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def speed(name: str, side: int, repeats: int) -> tuple[float, float]:
    frame = crop(photos()["astronaut"], side)
    ups = {p: upscaler(name, p) for p in ("fp32", "auto")}
    for up in ups.values():
        up.upscale(frame)  # warm-up
    best = {p: float("inf") for p in ups}
    for _ in range(repeats):  # taking turns, so a busy spell hits both
        for p, up in ups.items():
            best[p] = min(best[p], best_of(lambda up=up: up.upscale(frame), 1))
    return best["fp32"], best["auto"]


def make_clip(path: Path, frames: int) -> None:
    import av

    photo = photos()["astronaut"]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
        for i in range(frames):
            picture = np.ascontiguousarray(photo[100 + i : 280 + i, 60 + 2 * i : 380 + 2 * i])
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


VPY = """
import vapoursynth as vs
core = vs.core
clip = core.bs.VideoSource({clip!r})
clip = core.resize.Bicubic(clip, format=vs.RGB24, matrix_in_s="709")
clip = core.ldl.Upscale(clip, scale=2, model="realesr-animevideov3-x2", device="cpu", precision={precision!r})
clip.set_output()
"""


def end_to_end(folder: Path, frames: int, repeats: int) -> dict[str, tuple[float, float]]:
    clip = folder / "clip.mp4"
    make_clip(clip, frames)
    commands = {}
    for precision in ("fp32", "auto"):
        out = folder / f"out-{precision}.mkv"
        commands[("ldl-video", precision)] = [str(BIN / "ldl-video"), str(clip), str(out), "-s", "2", "-m",
                                              "realesr-animevideov3-x2", "--device", "cpu", "--precision", precision,
                                              "--overwrite", "--quiet"]
        script = folder / f"{precision}.vpy"
        script.write_text(VPY.format(clip=str(clip), precision=precision))
        commands[("vspipe", precision)] = [str(BIN / "vspipe"), str(script), "."]
    best = {key: float("inf") for key in commands}
    for _ in range(repeats):
        for key, command in commands.items():
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            best[key] = min(best[key], time.perf_counter() - start)
    return {front: (best[(front, "fp32")], best[(front, "auto")]) for front in ("ldl-video", "vspipe")}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--only-e2e", action="store_true", help="only the end-to-end runs (printed, no file written)")
    args = parser.parse_args()
    if not cpu_has_native_bf16():
        print("this CPU has no native bf16: precision auto is fp32 here, nothing to compare")
        return 1
    lines = ["## precision auto (bf16) against fp32 on the CPU", "",
             f"Machine: {cpu_name()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
             f"load average at start {os.getloadavg()[0]:.1f} (a shared machine). "
             f"Command: `OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')} .venv/bin/python benchmarks/bench_precision.py "
             f"--repeats {args.repeats} --frames {args.frames}{' --skip-e2e' if args.skip_e2e else ''}`.", "",
             "Quality: PSNR of precision auto (bf16 autocast, first and last convolution fp32) against fp32, central crops "
             "of scikit-image photographs, float in and out.", "",
             "| model | crop | " + " | ".join(photos()) + " | minimum |", "|---|---|" + "---|" * (len(photos()) + 1)]
    for name, side in [] if args.only_e2e else MODELS:
        scores = quality(name, side)
        cells = " | ".join(f"{v:.1f}" for v in scores.values())
        lines.append(f"| {name} | {side}² | {cells} | **{min(scores.values()):.1f}** |")
        print(lines[-1], flush=True)
    lines += ["", "Speed through `Upscaler.upscale` (uint8 astronaut crop), best of the turns:", "",
              "| model | input | fp32 ms | auto (bf16) ms | speed-up |", "|---|---|---|---|---|"]
    for name, side in [] if args.only_e2e else MODELS:
        fp32, auto = speed(name, side, args.repeats)
        lines.append(f"| {name} | {side}×{side} | {1000 * fp32:.0f} | {1000 * auto:.0f} | **{fp32 / auto:.2f}×** |")
        print(lines[-1], flush=True)
    if not args.skip_e2e:
        with tempfile.TemporaryDirectory() as tmp:
            results = end_to_end(Path(tmp), args.frames, args.repeats)
        lines += ["", f"End to end, {args.frames} frames of a 320×180 H.264 clip ×2 with realesr-animevideov3-x2 "
                  "(process start and model load included), best of the turns:", "",
                  "| front end | fp32 s | auto (bf16) s | speed-up |", "|---|---|---|---|"]
        for front, (fp32, auto) in results.items():
            lines.append(f"| {front} | {fp32:.2f} | {auto:.2f} | **{fp32 / auto:.2f}×** |")
            print(lines[-1], flush=True)
    if args.only_e2e:
        return 0
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
