"""Does bf16 autocast change what LDL penalises, and the result of training? Written to
benchmarks/results/precision-ldl.md.

    python benchmarks/bench_precision_ldl.py                   # CPU (bf16 autocast where the CPU has it)
    python benchmarks/bench_precision_ldl.py --device cuda     # the same on a GPU

The LDL map keeps a pixel only where the generator's residual is larger than its EMA copy's
(r_sr >= r_ema); the two networks differ by little, so a rounding change in their outputs can
move that comparison. Three short fine-tunes of SRVGGNetCompact ×4 from realesr-animevideov3-x4
(L1 1 + LDL 1, real-world degradations with DiffJPEG, batch 4 × 64 px of scikit-image's
photographs; no GAN and no perceptual loss, whose VGG19 weights are not here): fp32, bf16, and
fp32 with another seed as the yardstick of run-to-run spread. Then, on the held-out images with
the fp32 run's generator and EMA: how far bf16 moves the outputs and the map, and on how many
pixels it flips the zeroing rule.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine_info import cpu_name  # noqa: E402

from ldl_video.ldl import artifact_map, ldl_loss  # noqa: E402
from ldl_video.train.config import load_config  # noqa: E402
from ldl_video.train.distributed import World  # noqa: E402
from ldl_video.train.loop import Trainer  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "precision-ldl.md"
RECIPE = ROOT / "training" / "finetune.yaml"


def fine_tune(precision: str, seed: int, iterations: int, device: torch.device, runs: Path) -> Trainer:
    overrides = [
        f"name={precision}_{seed}", f"runs_dir={runs}", f"seed={seed}", f"device={device.type}",
        "init=realesr-animevideov3-x4", "discriminator.arch=none", "losses.gan=0", "losses.perceptual=0",
        "losses.pixel=1", "losses.ldl=1", "data.hr=skimage:train", "data.gt_size=64", "data.batch_size=4",
        "data.num_workers=0", "degradation.source_size=0", "degradation.queue_size=16",
        f"train.iterations={iterations}", f"train.precision={precision}", f"train.save_every={iterations}",
        "train.log_every=50", "train.channels_last=false", "val.hr=skimage:val", "val.crop=128",
        f"val.every={iterations}", "val.save_images=0",
    ]
    trainer = Trainer(load_config(RECIPE, overrides), World(device=device), say=lambda *a, **k: None)
    trainer.fit()
    trainer.log.close()
    return trainer


@torch.no_grad()
def map_sensitivity(trainer: Trainer, device: torch.device) -> dict[str, float]:
    """bf16 against fp32 forward passes of the same generator and EMA on the held-out pairs."""
    sums = {"out": 0.0, "gap": 0.0, "flip": 0.0, "map": 0.0, "loss32": 0.0, "loss16": 0.0}
    pairs = trainer.validator.pairs
    for _, hr, lr in pairs:
        gt, lq = hr[None].to(device), lr[None].to(device)
        sr32, ema32 = trainer.net_g_raw(lq).float(), trainer.net_g_ema(lq).float()
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            sr16, ema16 = trainer.net_g_raw(lq).float(), trainer.net_g_ema(lq).float()
        keep32 = (gt - sr32).abs().sum(1) >= (gt - ema32).abs().sum(1)
        keep16 = (gt - sr16).abs().sum(1) >= (gt - ema16).abs().sum(1)
        map32, map16 = artifact_map(gt, sr32, ema32), artifact_map(gt, sr16, ema16)
        sums["out"] += float((sr16 - sr32).abs().mean()) * 255
        sums["gap"] += float((sr32 - ema32).abs().mean()) * 255
        sums["flip"] += float((keep32 != keep16).float().mean())
        sums["map"] += float((map16 - map32).abs().sum() / map32.abs().sum().clamp_min(1e-12))
        sums["loss32"] += float(ldl_loss(sr32, gt, ema32))
        sums["loss16"] += float(ldl_loss(sr16, gt, ema16))
    return {k: v / len(pairs) for k, v in sums.items()}


def scores(trainer: Trainer, device: torch.device) -> tuple[dict[str, float], dict[str, float]]:
    generator, _ = trainer.validator(trainer.net_g_raw, device, None)
    ema, _ = trainer.validator(trainer.net_g_ema, device, None)
    return generator, ema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    rows, started = {}, time.time()
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        trainers = {}
        for label, precision, seed in (("fp32", "fp32", 0), ("bf16", "bf16", 0), ("fp32, seed 1", "fp32", 1)):
            t0 = time.perf_counter()
            trainers[label] = fine_tune(precision, seed, args.iterations, device, runs)
            rows[label] = (*scores(trainers[label], device), time.perf_counter() - t0)
        sensitivity = map_sensitivity(trainers["fp32"], device)
    machine = (torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name())
    lines = [
        "# bf16 autocast and the LDL map", "",
        f"Made by `python benchmarks/bench_precision_ldl.py --device {args.device} --iterations {args.iterations}` on "
        f"{time.strftime('%Y-%m-%d')}: {machine}, {args.threads} torch threads, torch {torch.__version__}.", "",
        f"SRVGGNetCompact ×4 from realesr-animevideov3-x4, {args.iterations} iterations of L1 1 + LDL 1 (no GAN, no "
        "perceptual loss: no VGG19 weights here), real-world degradations with DiffJPEG, batch 4 × 64 px of "
        "scikit-image's photographs, EMA 0.999. Held out: scikit-image's chelsea, cell, clock, text (128 px centre "
        "crops), LR by the same degradation with a fixed seed.", "",
        "## What bf16 does to one step's map (the fp32 run's generator and EMA, held-out images)", "",
        "| | value |", "|---|---|",
        f"| mean \\|sr(bf16) − sr(fp32)\\|, 8-bit levels | {sensitivity['out']:.3f} |",
        f"| mean \\|sr − sr_ema\\| (fp32), 8-bit levels: the gap the zeroing rule compares | {sensitivity['gap']:.3f} |",
        f"| pixels whose zeroing (r_sr < r_ema) differs between fp32 and bf16 | {100 * sensitivity['flip']:.1f} % |",
        f"| map change, Σ\\|map(bf16) − map(fp32)\\| / Σ map(fp32) | {100 * sensitivity['map']:.1f} % |",
        f"| LDL loss fp32 / bf16 | {sensitivity['loss32']:.3e} / {sensitivity['loss16']:.3e} |", "",
        "## Does it change the result? (held-out, Y channel, 4 px border)", "",
        "| run | generator PSNR-Y | generator SSIM-Y | EMA PSNR-Y | EMA SSIM-Y | wall s |", "|---|---|---|---|---|---|",
    ]
    for label, (gen, ema, seconds) in rows.items():
        lines.append(f"| {label} | {gen['psnr_y']:.3f} | {gen['ssim_y']:.4f} | {ema['psnr_y']:.3f} | {ema['ssim_y']:.4f} "
                     f"| {seconds:.0f} |")
    RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(RESULTS.read_text(), f"total {time.time() - started:.0f} s", sep="\n")


if __name__ == "__main__":
    main()
