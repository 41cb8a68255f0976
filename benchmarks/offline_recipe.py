"""Which fine-tune recipe stays faithful without VGG19? Short CPU fine-tunes of
realesr-animevideov3-x4 on the offline corpus, one per loss setting, each scored on centre crops
of the held-out photographs (bicubic ×4 LR): PSNR on Y and RGB, and colour drift (mean of
sr − gt per channel, 8-bit levels) of the raw and the EMA generator. Written to
benchmarks/results/offline_recipe.md.

    ldl-train corpus corpus
    python benchmarks/offline_recipe.py --corpus corpus --steps 100
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ldl_effect import heldout_images, psnr, to_y, upscale  # noqa: E402
from machine_info import cpu_name  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "offline_recipe.md"
RECIPE = ROOT / "training" / "ldl_compact_x4.yaml"

# name -> overrides of ldl_compact_x4.yaml
VARIANTS = {
    "paper weights, no VGG (pixel 1e-2 usm, GAN 0.1, D lr 1e-4)":
        ["losses.pixel=1e-2", "losses.pixel_target=usm", "losses.gan=0.1", "optim.lr_d=1e-4"],
    "pixel 1 (gt), GAN 0.1, D lr 1e-4 (ldl_compact_x4.yaml, finetune.yaml without VGG)": ["losses.gan=0.1", "optim.lr_d=1e-4"],
    "pixel 1 (gt), GAN 0.01, D lr 5e-5": ["losses.gan=0.01", "optim.lr_d=5e-5"],
    "pixel 1 (gt) + LDL only, no GAN (warm-up)": ["losses.gan=0", "discriminator.arch=none"],
}
CPU = ["device=cpu", "train.threads=1", "data.gt_size=128", "data.batch_size=4", "data.num_workers=0",
       "degradation.queue_size=16", "degradation.source_size=0", "val.hr=[]", "train.log_every=25"]


def crops(corpus: Path, size: int = 256) -> list[tuple[str, np.ndarray]]:
    out = []
    for name, image in heldout_images(corpus, 4):
        h, w = image.shape[:2]
        top, left = (h - size) // 2, (w - size) // 2
        out.append((name, image[top : top + size, left : left + size]))
    return out


def measure(net: torch.nn.Module, pairs) -> dict[str, float]:
    drift, p_y, p_rgb = [], [], []
    for lr, gt in pairs:
        sr = upscale(net.eval(), lr, torch.device("cpu")).astype(np.float64)
        g = gt.astype(np.float64)
        drift.append((sr - g).reshape(-1, 3).mean(0))
        p_y.append(psnr(to_y(sr[4:-4, 4:-4]), to_y(g[4:-4, 4:-4])))
        p_rgb.append(psnr(sr[4:-4, 4:-4], g[4:-4, 4:-4]))
    d = np.mean(drift, axis=0)
    return {"psnr_y": float(np.mean(p_y)), "psnr": float(np.mean(p_rgb)), "dr": d[0], "dg": d[1], "db": d[2]}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--only", type=int, nargs="*", help="indices of VARIANTS to run")
    args = p.parse_args()
    torch.set_num_threads(1)
    from ldl_video.train.config import load_config
    from ldl_video.train.degradations import bicubic_lr
    from ldl_video.train.distributed import setup
    from ldl_video.train.loop import Trainer
    from ldl_video.zoo import load_model

    pairs = []
    for _, gt in crops(args.corpus):
        hr = torch.from_numpy(gt.copy()).permute(2, 0, 1)[None].float() / 255
        pairs.append(((bicubic_lr(hr, 4).clamp(0, 1) * 255).round() / 255, gt))
    rows = [("start: realesr-animevideov3-x4", "", measure(load_model("realesr-animevideov3-x4").net, pairs), None, 0.0)]
    print(rows[0])
    crop = load_config(RECIPE, ["data.hr=[x]", *CPU, *args.overrides]).data.gt_size
    chosen = list(VARIANTS.items())
    if args.only:
        chosen = [chosen[i] for i in args.only]
    with tempfile.TemporaryDirectory() as tmp:
        for label, overrides in chosen:
            config = load_config(RECIPE, [f"data.hr=[{args.corpus / 'train'}]", f"runs_dir={tmp}", "name=r",
                                          f"train.iterations={args.steps}", f"train.save_every={args.steps}", *CPU,
                                          *overrides, *args.overrides])
            trainer = Trainer(config, setup("cpu"), say=lambda m: print(m, flush=True))
            started = time.perf_counter()
            trainer.fit()
            seconds = time.perf_counter() - started
            trainer.log.close()
            raw, ema = measure(trainer.net_g_raw, pairs), measure(trainer.net_g_ema, pairs)
            rows.append((label, " ".join(overrides), raw, ema, seconds))
            print(rows[-1], flush=True)
    lines = [
        "## Offline fine-tune recipe without VGG19 (benchmarks/offline_recipe.py)",
        "",
        f"Machine: {cpu_name()}, 1 thread, shared with other jobs. Start: realesr-animevideov3-x4; "
        f"{args.steps} steps of batch 4 × {crop} px crops of the corpus's training photographs, Real-ESRGAN "
        "degradation (crop degraded directly, queue 16), LDL 1.0 in every row; scored on 256 px centre crops of the 8 "
        "held-out photographs, bicubic ×4 LR. Drift: mean of sr − gt per channel in 8-bit levels.",
        "",
        f"Command: `python benchmarks/offline_recipe.py --corpus corpus --steps {args.steps}"
        + "".join(f" --set {o}" for o in args.overrides) + "`",
        "",
        "| recipe | raw PSNR Y | raw drift R/G/B | EMA PSNR Y | EMA drift R/G/B | minutes |",
        "|---|---|---|---|---|---|",
    ]
    for label, _, raw, ema, seconds in rows:
        def cell(m):
            return f"{m['psnr_y']:.2f}", f"{m['dr']:+.2f} / {m['dg']:+.2f} / {m['db']:+.2f}"

        e = cell(ema) if ema else ("", "")
        lines.append(f"| {label} | {cell(raw)[0]} | {cell(raw)[1]} | {e[0]} | {e[1]} | {seconds / 60:.1f} |")
    text = "\n".join(lines) + "\n"
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
