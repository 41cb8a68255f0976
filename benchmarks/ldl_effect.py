"""Does LDL reduce artifacts? Train two arms that differ only in `losses.ldl` (same seed, data,
start and iterations), then score them and the starting model on the corpus's held-out photographs.

    ldl-train corpus corpus                                      # the photographs (once)
    python benchmarks/ldl_effect.py --corpus corpus              # GPU recipe: train both arms, evaluate
    python benchmarks/ldl_effect.py --corpus corpus --device cpu --threads 1 --set train.iterations=300 \\
        --set data.gt_size=128 --set data.batch_size=4 ...      # a short CPU run
    python benchmarks/ldl_effect.py --corpus corpus --evaluate start=realesr-animevideov3-x4 \\
        nold=runs/.../net_g_latest.pth ldl=...                   # evaluation only

Evaluation, per held-out photograph and averaged, for two fixed, seeded degradations of the HR
image (bicubic ×scale, and one draw of Real-ESRGAN's second-order degradation per image):
- PSNR and SSIM on RGB and on Y (BT.601 luma as BasicSR's rgb2ycbcr), 8-bit values, `scale`
  border pixels cut;
- artifact energy: the mean over pixels of the LDL artifact map without its EMA mask, i.e.
  var(r)^(1/5) × (7×7 local variance of r), r = sum over channels of |gt − sr| (values in [0, 1]),
  reported ×10⁴. Lower is fewer artifacts.
A crop grid (GT, the LR enlarged by bicubic, each model) of one 96 px region per photograph — the
region where the starting model's artifact map is largest, so the choice favours neither arm — is
written as PNG. Results: a Markdown table on stdout and in OUT/ldl_effect.md, numbers in OUT/ldl_effect.json.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ldl_video.ldl import local_variance  # noqa: E402

ARMS = {"ldl": ROOT / "training" / "ldl_compact_x4.yaml", "nold": ROOT / "training" / "ldl_compact_x4_nold.yaml"}
DEGRADATION_SEED = 20220619  # the same LR for every model and every run
CROP = 96  # HR pixels of each grid tile


# ---------------------------------------------------------------- metrics


def to_y(image: np.ndarray) -> np.ndarray:
    """BT.601 luma of an H×W×3 image on 8-bit values, as BasicSR's rgb2ycbcr(y_only=True)."""
    return 16.0 + image @ np.array([65.481, 128.553, 24.966]) / 255.0


def psnr(sr: np.ndarray, gt: np.ndarray) -> float:
    mse = float(np.mean((sr.astype(np.float64) - gt.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def ssim(sr: np.ndarray, gt: np.ndarray) -> float:
    """SSIM with an 11×11 Gaussian window (σ 1.5) over the valid region, mean over channels."""
    g = np.exp(-0.5 * ((np.arange(11) - 5) / 1.5) ** 2)
    g /= g.sum()
    window = torch.from_numpy(np.outer(g, g))[None, None]

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, window)

    x = torch.from_numpy(np.atleast_3d(sr).astype(np.float64)).permute(2, 0, 1)[:, None]
    y = torch.from_numpy(np.atleast_3d(gt).astype(np.float64)).permute(2, 0, 1)[:, None]
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    value = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(value.mean())


def artifact_energy_map(sr: torch.Tensor, gt: torch.Tensor, kernel: int = 7) -> torch.Tensor:
    """The LDL map without the EMA mask for 3×H×W images in [0, 1]: H×W."""
    residual = (gt.double() - sr.double()).abs().sum(dim=0, keepdim=True)[None]
    patch = residual.var(unbiased=True).pow(1 / 5)
    return (patch * local_variance(residual, kernel))[0, 0]


def score(sr8: np.ndarray, gt8: np.ndarray, scale: int) -> dict[str, float]:
    """All metrics of an 8-bit H×W×3 result against its ground truth."""
    b = scale
    sr_c, gt_c = sr8[b:-b, b:-b].astype(np.float64), gt8[b:-b, b:-b].astype(np.float64)
    energy = artifact_energy_map(torch.tensor(sr8).permute(2, 0, 1) / 255.0, torch.tensor(gt8).permute(2, 0, 1) / 255.0)
    return {
        "psnr": psnr(sr_c, gt_c), "ssim": ssim(sr_c, gt_c),
        "psnr_y": psnr(to_y(sr_c), to_y(gt_c)), "ssim_y": ssim(to_y(sr_c), to_y(gt_c)),
        "artifact": float(energy.mean()) * 1e4,
    }


# ---------------------------------------------------------------- data


def heldout_images(corpus: Path, scale: int, max_side: int = 0) -> list[tuple[str, np.ndarray]]:
    """The held-out photographs of the manifest (whole; shrunk only when max_side asks), cut to a
    multiple of the scale."""
    from ldl_video.images import read_image
    from ldl_video.train.corpus import read_manifest

    images = []
    for row in read_manifest(corpus):
        if row["split"] != "heldout":
            continue
        image = read_image(corpus / row["file"])[..., :3]
        if max_side and max(image.shape[:2]) > max_side:
            from PIL import Image

            factor = max_side / max(image.shape[:2])
            size = (round(image.shape[1] * factor), round(image.shape[0] * factor))
            image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BOX))
        h, w = image.shape[0] // scale * scale, image.shape[1] // scale * scale
        images.append((Path(row["file"]).stem, np.ascontiguousarray(image[:h, :w])))
    if not images:
        raise SystemExit(f"{corpus}/manifest.csv lists no held-out photographs")
    return images


def degraded_inputs(images: list[tuple[str, np.ndarray]], scale: int, degradation=None) -> dict[str, list[torch.Tensor]]:
    """{"bicubic": [...], "realesrgan": [...]}: 1×3×h×w LR tensors in [0, 1], fixed seeds.
    `degradation` is a recipe's DegradationConfig (default: the paper's)."""
    from ldl_video.train.config import DegradationConfig
    from ldl_video.train.degradations import Degrader, bicubic_lr

    degradation = degradation or DegradationConfig()

    out: dict[str, list[torch.Tensor]] = {"bicubic": [], "realesrgan": []}
    for i, (_, image) in enumerate(images):
        hr = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float() / 255.0
        out["bicubic"].append((bicubic_lr(hr, scale).clamp(0, 1) * 255).round() / 255)
        degrader = Degrader(degradation, scale, torch.device("cpu"), DEGRADATION_SEED + i)
        out["realesrgan"].append(degrader(hr))
    return out


# ---------------------------------------------------------------- evaluation


@torch.no_grad()
def upscale(net: torch.nn.Module, lr: torch.Tensor, device: torch.device) -> np.ndarray:
    sr = net(lr.to(device)).float().clamp(0, 1)[0].cpu()
    return (sr.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def evaluate(models: dict[str, str], images: list[tuple[str, np.ndarray]], scale: int, device: torch.device,
             grid_path: Path | None = None, degradation=None, say=print) -> dict:
    """{degradation: {model: {image: metrics, "mean": metrics}}}; writes the crop grid."""
    from ldl_video.zoo import load_model

    inputs = degraded_inputs(images, scale, degradation)
    results: dict = {kind: {} for kind in inputs}
    outputs: dict = {kind: {} for kind in inputs}
    for label, spec in models.items():
        net = load_model(spec, device=str(device)).net.eval()
        for kind, lrs in inputs.items():
            per_image = {}
            for (name, gt), lr in zip(images, lrs, strict=True):
                sr = upscale(net, lr, device)
                per_image[name] = score(sr, gt, scale)
                outputs[kind].setdefault(name, {})[label] = sr
            per_image["mean"] = {k: float(np.mean([m[k] for m in per_image.values()])) for k in next(iter(per_image.values()))}
            results[kind][label] = per_image
            say(f"{label:>8} {kind:>10}: " + ", ".join(f"{k} {v:.4f}" for k, v in per_image["mean"].items()))
    if grid_path is not None:
        crop_grid(images, inputs, outputs, list(models), scale, grid_path)
    return results


def crop_grid(images, inputs, outputs, labels: list[str], scale: int, path: Path) -> None:
    """One row per photograph and degradation: GT | LR (bicubic enlargement) | each model, all at
    the region where the first model's artifact map is largest."""
    from ldl_video.images import write_image

    size = min(CROP, *(min(gt.shape[:2]) for _, gt in images))  # tiny evaluation images: smaller tiles
    rows = []
    for kind in inputs:
        for (name, gt), lr in zip(images, inputs[kind], strict=True):
            first = outputs[kind][name][labels[0]]
            energy = artifact_energy_map(torch.tensor(first).permute(2, 0, 1) / 255.0, torch.tensor(gt).permute(2, 0, 1) / 255.0)
            pooled = F.avg_pool2d(energy[None, None].float(), size, stride=max(size // 4, 1))[0, 0]
            top, left = divmod(int(pooled.argmax()), pooled.shape[1])
            y, x = top * max(size // 4, 1), left * max(size // 4, 1)
            enlarged = F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False).clamp(0, 1)
            enlarged = (enlarged[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            tiles = [gt, enlarged] + [outputs[kind][name][label] for label in labels]
            row = [t[y : y + size, x : x + size] for t in tiles]
            rows.append(np.concatenate([np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=255) for t in row], axis=1))
    write_image(path, np.concatenate(rows, axis=0))


def markdown(results: dict, labels: list[str]) -> str:
    lines = []
    for kind, by_model in results.items():
        lines.append(f"\n**{kind} ×4 LR** (mean over {len(next(iter(by_model.values()))) - 1} held-out photographs)\n")
        lines.append("| model | PSNR RGB | SSIM RGB | PSNR Y | SSIM Y | artifact energy ×10⁴ |")
        lines.append("|---|---|---|---|---|---|")
        for label in labels:
            m = by_model[label]["mean"]
            lines.append(f"| {label} | {m['psnr']:.3f} | {m['ssim']:.4f} | {m['psnr_y']:.3f} | {m['ssim_y']:.4f} | "
                         f"{m['artifact']:.4f} |")
        lines.append("\nPer photograph (PSNR Y / artifact energy ×10⁴):\n")
        lines.append("| photograph | " + " | ".join(labels) + " |")
        lines.append("|---|" + "---|" * len(labels))
        for name in by_model[labels[0]]:
            if name != "mean":
                cells = [f"{by_model[label][name]['psnr_y']:.2f} / {by_model[label][name]['artifact']:.3f}" for label in labels]
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- training


def train_arm(recipe: Path, corpus: Path, runs: Path, device: str, overrides: list[str], say=print) -> tuple[Path, float]:
    """Train one arm with its recipe; (checkpoint, seconds)."""
    import yaml

    from ldl_video.train.config import load_config
    from ldl_video.train.distributed import setup
    from ldl_video.train.loop import Trainer

    name = recipe.stem
    config = load_config(recipe, [f"data.hr=[{corpus / 'train'}]", f"runs_dir={runs}", f"name={name}", f"device={device}",
                                  "val.hr=[]", *overrides])
    trainer = Trainer(config, setup(config.device), say=say)
    config.run_dir.mkdir(parents=True, exist_ok=True)
    (config.run_dir / "recipe.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8")
    started = time.perf_counter()
    try:
        path = trainer.fit()
    finally:
        if trainer.log is not None:
            trainer.log.close()
    return path, time.perf_counter() - started


def ship(checkpoint: str | Path, out: Path, note: str) -> Path:
    """The EMA generator of a run as the package's fp16 .safetensors (BasicSR names), with a note
    (data, recipe, iterations) in its metadata."""
    from safetensors.torch import save_file

    from ldl_video.checkpoints import read_state_dict

    state = {k: v.detach().to(torch.float16).contiguous() for k, v in read_state_dict(checkpoint).items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out), metadata={"format": "pt", "architecture": "SRVGGNetCompact 64 feat 16 conv PReLU x4",
                                         "about": note})
    out.chmod(0o644)  # safetensors writes 0600; a package file must be readable by every user
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", type=Path, help="built by `ldl-train corpus DIR`")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "ldl_effect")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="recipe override for both arms (repeatable)")
    p.add_argument("--start", default="realesr-animevideov3-x4", help="the starting model, scored beside the arms")
    p.add_argument("--evaluate", nargs="+", metavar="LABEL=MODEL", help="skip training; score these models")
    p.add_argument("--arm", choices=list(ARMS), help="train only this arm and stop (run both at once on one GPU, "
                   "then --evaluate; see benchmarks/gpu_ldl_effect.sh)")
    p.add_argument("--eval-max-side", type=int, default=0, help="shrink held-out photographs to this size (0: as built)")
    p.add_argument("--ship", metavar="CHECKPOINT", help="write CHECKPOINT's EMA generator as ldl_video/weights/"
                   "ldl-compact-x4.safetensors (fp16) and stop")
    p.add_argument("--note", default="", help="with --ship: the model card's one-line summary, kept in the file")
    args = p.parse_args(argv)
    if args.ship:
        print(ship(args.ship, ROOT / "ldl_video" / "weights" / "ldl-compact-x4.safetensors", args.note))
        return 0
    if args.corpus is None:
        p.error("--corpus DIR is needed (build it with: ldl-train corpus DIR)")
    if args.threads:
        torch.set_num_threads(args.threads)
    from ldl_video.devices import resolve_device

    device = resolve_device(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    timings = {}
    if args.evaluate:
        models = dict(item.split("=", 1) for item in args.evaluate)
    else:
        models = {"start": args.start}
        for arm, recipe in ARMS.items():
            if args.arm and arm != args.arm:
                continue
            path, seconds = train_arm(recipe, args.corpus, args.out / "runs", str(device), args.overrides)
            models[arm], timings[arm] = str(path), seconds
            print(f"{arm}: {path} in {seconds / 60:.1f} min", flush=True)
        if args.arm:
            (args.out / f"training_{args.arm}.json").write_text(json.dumps({"checkpoint": models[args.arm],
                                                                           "seconds": timings[args.arm]}))
            return 0
        models = {"start": models["start"], "nold": models["nold"], "ldl": models["ldl"]}
    images = heldout_images(args.corpus, 4, args.eval_max_side)
    started = time.perf_counter()
    from ldl_video.train.config import load_config

    # the Real-ESRGAN-style LR of the evaluation is the recipe's own degradation (with --set applied)
    degradation = load_config(ARMS["ldl"], ["data.hr=[unused]", *args.overrides]).degradation
    results = evaluate(models, images, 4, device, args.out / "ldl_effect_crops.png", degradation)
    table = markdown(results, list(models))
    record = {"models": models, "training_seconds": timings, "overrides": args.overrides,
              "evaluation_seconds": time.perf_counter() - started, "results": results}
    (args.out / "ldl_effect.json").write_text(json.dumps(record, indent=1))
    (args.out / "ldl_effect.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
