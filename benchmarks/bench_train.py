"""Training speed and a short fine-tune, written to benchmarks/results/train.md.

    python benchmarks/bench_train.py                  # CPU: the real-world recipe's step, compact generator
    python benchmarks/bench_train.py --device cuda    # GPU: RRDBNet at the paper's batch 4 × 256 px,
                                                      # fp32 vs bf16 + channels_last; fine-tune PSNR before/after

One "step" is the whole real-world iteration: second-order degradation and the pair queue on the
device, unsharp mask, generator with pixel + VGG19 perceptual + LDL + vanilla GAN, EMA update,
U-Net discriminator. Data loading is left out (a fixed batch). VGG19 is randomly initialised
unless --vgg names torchvision's file: the cost is the same, and the fine-tune then runs without
the perceptual loss. Images are synthetic (numpy), so the GPU machine needs only torch,
torchvision, numpy, pyyaml, safetensors and pillow.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine_info import cpu_name  # noqa: E402

from ldl_video.archs.vgg import VGG19Features  # noqa: E402
from ldl_video.train.config import load_config  # noqa: E402
from ldl_video.train.data import augment, sample_generator  # noqa: E402
from ldl_video.train.degradations import Degrader, usm_sharpen  # noqa: E402
from ldl_video.train.distributed import World  # noqa: E402
from ldl_video.train.loop import Trainer  # noqa: E402
from ldl_video.train.validation import VAL_SEED, psnr, ssim  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "train.md"
RECIPE = ROOT / "training" / "paper_realworld_rrdb_x4.yaml"


# ---------------------------------------------------------------- synthetic data


def synthetic_image(seed: int, size: int) -> np.ndarray:
    """A size×size RGB uint8 picture with what SR has to get right: edges of shapes, gratings
    of several frequencies, smooth shading and fine texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    image = np.zeros((size, size, 3), np.float32) + rng.uniform(0.2, 0.8, 3)
    image += 0.2 * (xx[..., None] - 0.5) * rng.uniform(-1, 1, 3)
    for _ in range(12):
        color = rng.uniform(0, 1, 3)
        cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.03, 0.25)
        if rng.random() < 0.5:
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
        else:
            mask = (np.abs(yy - cy) < r) & (np.abs(xx - cx) < r * rng.uniform(0.3, 2))
        image[mask] = color
    for _ in range(3):
        angle, freq = rng.uniform(0, np.pi), rng.uniform(8, 60)
        wave = np.sin(2 * np.pi * freq * (np.cos(angle) * xx + np.sin(angle) * yy))
        band = (np.abs(yy - rng.uniform(0, 1)) < 0.15)[..., None]
        image += band * 0.15 * wave[..., None]
    image += rng.normal(0, 0.02, image.shape)
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)


class SyntheticHR(Dataset):
    """In-memory HR images, cropped and flipped the way the training data is. `crop` is the
    recipe's degradation.source_size when that is larger than the GT patch."""

    def __init__(self, count: int, size: int, crop: int, seed: int) -> None:
        self.images = [torch.from_numpy(synthetic_image(seed + i, size)).permute(2, 0, 1) for i in range(count)]
        self.gt_size, self.seed = crop, seed

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, item: tuple[int, int]) -> dict[str, torch.Tensor]:
        index, epoch = item
        gen = sample_generator(self.seed, epoch, index)
        image = self.images[index]
        top = int(torch.randint(image.shape[1] - self.gt_size + 1, (), generator=gen))
        left = int(torch.randint(image.shape[2] - self.gt_size + 1, (), generator=gen))
        crop = image[:, top : top + self.gt_size, left : left + self.gt_size].float() / 255
        return {"gt": augment([crop], gen, True, False)[0]}


# ---------------------------------------------------------------- measurements


def vgg_file(path: str | None, folder: Path) -> tuple[str, bool]:
    if path:
        return path, True
    random_vgg = folder / "vgg19-random.pth"
    torch.save(VGG19Features(["conv5_4"]).state_dict(), random_vgg)
    return str(random_vgg), False


def recipe(overrides: list[str]) -> object:
    return load_config(RECIPE, ["data.hr=synthetic", "val.hr=[]", "data.num_workers=0", *overrides])


def time_steps(config, device: torch.device, iters: int, warmup: int, dataset: Dataset) -> float:
    trainer = Trainer(config, World(device=device), say=lambda *a, **k: None, dataset=dataset)
    trainer.sampler.set_position(0, 0)
    batch = next(iter(trainer.loader))
    for _ in range(warmup):
        trainer.iteration += 1
        trainer.train_step(batch)
    _sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        trainer.iteration += 1
        trainer.train_step(batch)
    _sync(device)
    speed = iters / (time.perf_counter() - start)
    del trainer
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return speed


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def held_out(count: int, size: int, config, seed: int = 10_000) -> list[tuple[torch.Tensor, torch.Tensor]]:
    degrader = Degrader(config.degradation, config.scale, torch.device("cpu"), VAL_SEED)
    pairs = []
    for i in range(count):
        hr = torch.from_numpy(synthetic_image(seed + i, size)).permute(2, 0, 1).float() / 255
        pairs.append((hr, degrader(usm_sharpen(hr[None]))[0]))
    return pairs


@torch.no_grad()
def evaluate(net: torch.nn.Module, pairs, device: torch.device, scale: int) -> tuple[float, float]:
    net.eval()
    scores = []
    for hr, lr in pairs:
        sr = net(lr[None].to(device)).float().clamp(0, 1)[0].cpu()
        scores.append((psnr(sr, hr, scale), ssim(sr, hr, scale)))
    return float(np.mean([s[0] for s in scores])), float(np.mean([s[1] for s in scores]))


def finetune(overrides: list[str], device: torch.device, iters: int, dataset: Dataset, pairs, runs: Path) -> dict:
    config = recipe([*overrides, f"runs_dir={runs}", "name=finetune", f"train.iterations={iters}",
                     f"train.save_every={iters}", f"train.log_every={max(1, iters // 5)}", "optim.milestones=[]"])
    trainer = Trainer(config, World(device=device), say=lambda *a, **k: None, dataset=dataset)
    before = evaluate(copy.deepcopy(trainer.net_g_ema), pairs, device, config.scale)
    start = time.perf_counter()
    trainer.fit()
    seconds = time.perf_counter() - start
    after = evaluate(copy.deepcopy(trainer.net_g_raw), pairs, device, config.scale)
    after_ema = evaluate(trainer.net_g_ema, pairs, device, config.scale)
    return {"generator": trainer.g_description, "before": before, "after": after, "after_ema": after_ema,
            "seconds": seconds, "iters": iters}


def pretrained_init(names: tuple[str, ...]) -> str | None:
    """The first of `names` whose weights are here (nothing is downloaded)."""
    from ldl_video.zoo import ZOO, weights_present

    return next((name for name in names if weights_present(ZOO[name])), None)


# ---------------------------------------------------------------- report


def machine(device: torch.device) -> str:
    cpu = cpu_name()
    load = ""
    try:
        load = f", load average {Path('/proc/loadavg').read_text().split()[0]} at the start"
    except OSError:
        pass
    text = f"{cpu}, {torch.get_num_threads()} torch threads{load}, torch {torch.__version__}"
    if device.type == "cuda":
        text = f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda}); host {text}"
    return text


def write_section(key: str, body: str) -> None:
    begin, end = f"<!-- {key} -->", f"<!-- /{key} -->"
    text = RESULTS.read_text() if RESULTS.is_file() else (
        "# Training benchmarks\n\nMade by `python benchmarks/bench_train.py` (CPU) and "
        "`python benchmarks/bench_train.py --device cuda` (GPU); each run replaces its own section.\n\n"
        "<!-- cpu -->\n<!-- /cpu -->\n\n<!-- cuda -->\n<!-- /cuda -->\n"
    )
    if begin not in text:
        text += f"\n{begin}\n{end}\n"
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(f"{head}{begin}\n{body.strip()}\n{end}{tail}")


def finetune_lines(result: dict, vgg_real: bool, patch: int, batch: int) -> list[str]:
    (p0, s0), (p1, s1), (p2, s2) = result["before"], result["after"], result["after_ema"]
    losses = ("pixel 1e-2 + perceptual 1 + LDL 1 + GAN 0.1" if vgg_real else
              "L1 1 + LDL 1, no GAN: no VGG19 weights here, and without the perceptual loss the GAN only drifts")
    return [
        "",
        f"Fine-tune: {result['generator']}, {result['iters']} iterations, real-world degradations, {losses}, "
        f"batch {batch} × {patch} px, on synthetic images; {result['seconds']:.0f} s.",
        "Held-out: 8 other synthetic images, LR by the same degradation with a fixed seed. The EMA (0.999) moves",
        "slowly, so after a short run it is still mostly the start; both are shown.",
        "",
        "| | PSNR (dB) | SSIM |",
        "|---|---|---|",
        f"| before | {p0:.2f} | {s0:.4f} |",
        f"| after (generator) | {p1:.2f} | {s1:.4f} |",
        f"| after (EMA generator) | {p2:.2f} | {s2:.4f} |",
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda / cuda:N")
    p.add_argument("--iters", type=int, help="timed steps per mode (default 5 on CPU, 20 on CUDA)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--finetune-iters", type=int, help="fine-tune length (default 150 on CPU, 300 on CUDA); 0 skips it")
    p.add_argument("--vgg", help="torchvision's vgg19-dcbb9e9d.pth (default: a random VGG19, same cost)")
    p.add_argument("--suite", choices=("compact", "rrdb"),
                   help="compact (the CPU default) or rrdb: the precision comparison (the CUDA default)")
    p.add_argument("--batch", type=int, help="override the batch size of the timed steps")
    p.add_argument("--patch", type=int, help="override the GT patch size of the timed steps (multiple of 16)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--compile", action="store_true", help="also time bf16 + channels_last with torch.compile (CUDA)")
    p.add_argument("--no-write", action="store_true", help=f"print only, do not update {RESULTS.relative_to(ROOT)}")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = device.type == "cuda"
    rrdb_suite = (args.suite or ("rrdb" if cuda else "compact")) == "rrdb"
    iters = args.iters or (20 if cuda else 5)
    ft_iters = args.finetune_iters if args.finetune_iters is not None else (300 if cuda else 150)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        vgg, vgg_real = vgg_file(args.vgg, folder)
        base = [f"losses.vgg_weights={vgg}", "init=null", f"device={device}"]
        lines = [f"Machine: {machine(device)}.", ""]
        if rrdb_suite:
            gt, batch = args.patch or 256, args.batch or 4
            data = SyntheticHR(16, max(400, gt), max(400, gt), seed=1)  # the recipe degrades 400 px crops
            rrdb = [*base, "generator.arch=rrdb", f"data.gt_size={gt}", f"data.batch_size={batch}"]
            modes = [("fp32 (cuDNN TF32 allowed, torch's default)", ["train.precision=fp32", "train.channels_last=false"], None),
                     ("fp32, TF32 off", ["train.precision=fp32", "train.channels_last=false"], False),
                     ("bf16 autocast + channels_last", ["train.precision=bf16", "train.channels_last=true"], None)]
            if args.compile:
                modes.append(("bf16 + channels_last + torch.compile", ["train.precision=bf16", "train.compile=true"], None))
            lines += [f"Real-world step, RRDBNet 64/23/32, U-Net discriminator, VGG19 perceptual, batch {batch} × {gt} px "
                      f"(the paper's per-GPU size is 4 × 256), queue 180; {iters} timed steps after {args.warmup} warm-up.", "",
                      "| precision | it/s | vs fp32 |", "|---|---|---|"]
            speeds = []
            for label, extra, tf32 in modes:
                saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
                if tf32 is False:
                    try:
                        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
                    except RuntimeError as exc:  # a torch that only takes the newer fp32_precision settings
                        print(f"skipped {label}: {exc}", flush=True)
                        continue
                speed = time_steps(recipe([*rrdb, *extra]), device, iters, args.warmup, data)
                torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
                speeds.append(speed)
                lines.append(f"| {label} | {speed:.2f} | {speed / speeds[0]:.2f}× |")
                print(f"{label}: {speed:.2f} it/s", flush=True)
            ft_gt, ft_batch = (gt, batch) if cuda else (64, 2)
            ft_extra = [*base, "train.precision=bf16", f"data.gt_size={ft_gt}", f"data.batch_size={ft_batch}"]
        else:
            gt, batch = args.patch or 128, args.batch or 2
            data = SyntheticHR(8, max(400, gt), max(400, gt), seed=1)
            compact = [*base, "generator.arch=srvgg", "generator.num_feat=64", "generator.num_block=16",
                       f"data.gt_size={gt}", f"data.batch_size={batch}", "degradation.queue_size=16"]
            speed = time_steps(recipe(compact), device, iters, args.warmup, data)
            lines += [f"Real-world step on the CPU: SRVGGNetCompact 64 feat × 16 conv (realesr-animevideov3's size), "
                      f"U-Net discriminator 64, VGG19 perceptual, LDL, batch {batch} × {gt} px cut from 400 px degraded crops, "
                      f"queue 16, fp32; "
                      f"{iters} timed steps after {args.warmup} warm-up.", "",
                      "| step | it/s | s/it |", "|---|---|---|",
                      f"| real-world, compact generator | {speed:.3f} | {1 / speed:.2f} |"]
            print(f"CPU compact step: {speed:.3f} it/s", flush=True)
            ft_gt, ft_batch = 64, 2
            ft_extra = [*base, "generator.arch=srvgg", f"data.gt_size={ft_gt}", f"data.batch_size={ft_batch}",
                        "degradation.queue_size=8", "degradation.source_size=0"]
        if ft_iters > 0:
            init = pretrained_init(("realesrgan-x4plus", "realesr-animevideov3-x4") if cuda else ("realesr-animevideov3-x4",))
            if not vgg_real:  # without the perceptual anchor, GAN 0.1 against pixel 1e-2 only drifts: train for fidelity
                ft_extra += ["losses.perceptual=0", "losses.gan=0", "discriminator.arch=none", "losses.pixel=1",
                             "losses.pixel_target=gt"]
            if init:
                ft_extra.append(f"init={init}")
            pairs = held_out(8, 256 if cuda else 192, recipe([]))
            ft_data = SyntheticHR(16, 400, max(ft_gt, 400) if cuda else ft_gt, seed=100)
            result = finetune(ft_extra, device, ft_iters, ft_data, pairs, folder / "runs")
            lines += finetune_lines(result, vgg_real, ft_gt, ft_batch)
            print(f"fine-tune PSNR {result['before'][0]:.2f} -> {result['after'][0]:.2f} dB", flush=True)
        body = "\n".join([f"## {'GPU' if cuda else 'CPU'}", "", *lines])
    print(body)
    if not args.no_write:
        write_section("cuda" if cuda else "cpu", body)
        print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
