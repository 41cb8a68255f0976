"""Fine-tuning in napari on a laptop-class CPU: how long the Fine-tune widget's default run takes,
whether it helps on held-out data of the same specimen, what the GAN recipe would cost instead,
and how responsive the viewer stays meanwhile.

    xvfb-run -a .venv/bin/python benchmarks/bench_finetune.py [--steps 300] [--minutes 4] [--gan-steps 6]
                                                              [--skip-viewer]

Data: scikit-image's `cell` image (660×550, bundled, nothing downloads) as a 16-bit plane in 12
bits (100 + 14·value, a camera offset and gain). Training plane: the top-left 512×512; held out:
the rows below it (512:660, all columns), pixels the training never sees. LR: the widget's default
`microscope` degradation (Gaussian PSF σ 0.8-1.6, 2×2 binning, shot and read noise), fixed seed
for the held-out plane.

1. The default run, exactly as the widget starts it (`run_finetune` with the widget's defaults:
   --model, default realesr-animevideov3-x2, folded to a real ×2, pixel L1 + LDL, no GAN, patch 48, batch 4,
   300 steps or the time budget): wall time, steps/s, held-out PSNR/SSIM before and after, and
   the same scores for plain bicubic as the floor.
2. Steps per second of the two recipes on the same data: fidelity-first (the default) and the
   paper's real-world GAN recipe (plus vanilla GAN 0.1 with the 64-feature U-Net discriminator).
3. --compare-lr: held-out PSNR after 60 steps for learning rates 5e-5 … 5e-4 (how the
   default was chosen).
4. A shown viewer runs the Fine-tune widget for --viewer-steps steps while a 10 ms QTimer
   measures how late the event loop serves it (as bench_napari.py does for Upscale).

Prints markdown; the numbers go in benchmarks/results/finetune.md.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import skimage.data
import torch
from bench_napari import lateness, pump_until, start_ticking
from machine_info import cpu_name
from napari_ldl._finetune_data import Microscope, make_lr
from napari_ldl._finetune_worker import HELD_OUT_SEED, FineTuneRequest, overlay, run_finetune

START = "realesr-animevideov3-x2"
start_model = START  # --model


def planes() -> tuple[np.ndarray, np.ndarray]:
    """(training plane 512×512, held-out plane 148×550) as uint16, and as the widget sees them."""
    cell16 = (100 + skimage.data.cell().astype(np.float64) * 14).astype(np.uint16)
    return cell16[:512, :512], cell16[512:, :]


def unit(plane: np.ndarray, low: float, high: float) -> np.ndarray:
    """What the widget's "auto" intensities make of a 16-bit layer: its min/max to [0, 1]."""
    scaled = ((plane.astype(np.float32) - low) / (high - low)).clip(0, 1)
    return np.repeat(scaled[..., None], 3, axis=-1)


def request(train: np.ndarray, held: np.ndarray, folder: Path, steps: int, minutes: float, gan: float = 0.0
            ) -> FineTuneRequest:
    return FineTuneRequest(planes=[unit(train, train.min(), train.max())], held_out=[unit(held, held.min(), held.max())],
                           model=start_model, scale=2, folder=folder, steps=steps, minutes=minutes, gan=gan, device="cpu")


def bicubic_scores(held: np.ndarray) -> tuple[float, float]:
    from ldl_video.train.validation import ssim

    target = unit(held, held.min(), held.max())
    target = target[: target.shape[0] // 2 * 2, : target.shape[1] // 2 * 2]
    gt = torch.from_numpy(target).permute(2, 0, 1)[None]
    lr = make_lr(gt, 2, "microscope", Microscope(), HELD_OUT_SEED)
    up = torch.nn.functional.interpolate(lr, scale_factor=2, mode="bicubic", align_corners=False).clamp(0, 1)[0]
    mse = float(((up - gt[0]) ** 2).mean())
    return 10 * np.log10(1 / mse), ssim(up, gt[0], 0)


def default_run(train, held, steps: int, minutes: float) -> list[str]:
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        result = run_finetune(request(train, held, Path(folder), steps, minutes), threading.Event())
        wall = time.perf_counter() - start
    if not hasattr(result, "after"):
        raise SystemExit(str(result.error))
    psnr_b, ssim_b = bicubic_scores(held)
    map_before, map_after = (artifact_energy(outputs, result.targets) for outputs in (result.outputs_before,
                                                                                      result.outputs_after))
    return [f"- wall time {wall:.0f} s ({wall / 60:.1f} min) for {result.steps} steps "
            f"({'stopped by the time budget' if result.stopped_early else 'all steps'}), "
            f"{result.steps / result.seconds:.2f} steps/s",
            "",
            "| held-out plane (148×550, 16-bit) | PSNR (dB) | SSIM | artifact map: mean | pixels > 0.5 |",
            "|---|---|---|---|---|",
            f"| bicubic | {psnr_b:.2f} | {ssim_b:.4f} | | |",
            f"| {start_model} (start, folded to ×2) | {result.before.psnr:.2f} | {result.before.ssim:.4f} | "
            f"{map_before[0]:.4f} | {map_before[1]:.2%} |",
            f"| after fine-tuning | {result.after.psnr:.2f} | {result.after.ssim:.4f} | "
            f"{map_after[0]:.4f} | {map_after[1]:.2%} |"]


def artifact_energy(outputs: list[np.ndarray], targets: list[np.ndarray]) -> tuple[float, float]:
    """The widget's artifact overlay of the held-out result (the paper's map against the HR, Lanczos
    from the same LR as the reference, on Upscale's display curve): (mean, fraction above 0.5)."""
    (out,), (target,) = outputs, targets
    lr = make_lr(torch.from_numpy(target).permute(2, 0, 1)[None], 2, "microscope", Microscope(), HELD_OUT_SEED)
    shown = overlay(out, target, lr)
    return float(shown.mean()), float((shown > 0.5).mean())


def recipe_speeds(train, held, steps: int) -> list[str]:
    rows = ["| recipe | steps/s | s per step |", "|---|---|---|"]
    for label, gan in (("fidelity-first: L1 + LDL (the default)", 0.0), ("+ GAN 0.1, U-Net discriminator 64 feat", 0.1)):
        with tempfile.TemporaryDirectory() as folder:
            reports = []
            run_finetune(request(train, held, Path(folder), steps + 2, 0, gan=gan), threading.Event(), reports.append)
        # the first two steps include the one-off set-up; time the rest
        elapsed = reports[-1].seconds - reports[1].seconds
        rows.append(f"| {label} | {steps / elapsed:.2f} | {elapsed / steps:.2f} |")
    return rows


def compare_learning_rates(train, held, steps: int = 60) -> list[str]:
    rows = ["| learning rate | held-out PSNR before → after (dB) | SSIM before → after |", "|---|---|---|"]
    for lr in (5e-5, 1e-4, 2e-4, 5e-4):
        with tempfile.TemporaryDirectory() as folder:
            result = run_finetune(replace(request(train, held, Path(folder), steps, 0), lr=lr), threading.Event())
        rows.append(f"| {lr:g} | {result.before.psnr:.2f} → {result.after.psnr:.2f} | "
                    f"{result.before.ssim:.4f} → {result.after.ssim:.4f} |")
    return rows


def viewer_responsiveness(train, held, steps: int) -> list[str]:
    import napari

    viewer = napari.Viewer(show=True)
    layer = viewer.add_image(train, name="train")
    held_layer = viewer.add_image(held, name="held")
    _, widget = viewer.window.add_plugin_dock_widget("napari-ldl", "Fine-tune")
    timer, ticks, idle = start_ticking()
    with tempfile.TemporaryDirectory() as folder:
        widget(images=[layer], held_out=held_layer, steps=steps, preview_every=10, device="cpu", folder=folder)
        pump_until(lambda: not widget.running, 1800)
    timer.stop()
    result = widget.last_result
    viewer.close()
    return [f"- idle viewer: {lateness(idle)}",
            f"- fine-tuning ({result.steps} steps, a preview every 10, {result.seconds:.0f} s): {lateness(ticks)}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--gan-steps", type=int, default=6)
    parser.add_argument("--viewer-steps", type=int, default=40)
    parser.add_argument("--skip-viewer", action="store_true")
    parser.add_argument("--skip-default", action="store_true")
    parser.add_argument("--compare-lr", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--model", default=START, help="the model to start from (a ×4 compact is folded to ×2)")
    args = parser.parse_args()
    global start_model
    start_model = args.model
    train, held = planes()
    print(f"CPU: {cpu_name()}, {os.cpu_count()} logical cores, torch {torch.__version__} ({torch.get_num_threads()} "
          f"threads), load average {os.getloadavg()[0]:.1f} at the start\n")
    if not args.skip_default:
        print(f"Default run ({args.steps} steps, budget {args.minutes} min):\n")
        for line in default_run(train, held, args.steps, args.minutes):
            print(line, flush=True)
    if not args.skip_speed:
        print(f"\nRecipe speed ({args.gan_steps} timed steps each, patch 48, batch 4):\n")
        for line in recipe_speeds(train, held, args.gan_steps):
            print(line, flush=True)
    if args.compare_lr:
        print("\nLearning rate, 60 steps each:\n")
        for line in compare_learning_rates(train, held):
            print(line, flush=True)
    if not args.skip_viewer:
        print("\nViewer event loop, 10 ms QTimer:\n")
        for line in viewer_responsiveness(train, held, args.viewer_steps):
            print(line, flush=True)


if __name__ == "__main__":
    main()
