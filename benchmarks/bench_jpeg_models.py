"""How far apart the two JPEG models of the degradation are, and each from Pillow's libjpeg.
Written to benchmarks/results/jpeg-models.md.

    python benchmarks/bench_jpeg_models.py

`diffjpeg` is BasicSR's DiffJPEG as Real-ESRGAN and LDL train with (transposed tables scaled
without floor or clamp, zero padding); `libjpeg` models the real codec. PSNR of 8-bit results,
whole scikit-image photographs, 4:2:0.
"""

from __future__ import annotations

import io
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine_info import cpu_name  # noqa: E402

from ldl_video.train.degradations import jpeg  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "jpeg-models.md"
IMAGES = ("astronaut", "coffee", "chelsea", "rocket")
QUALITIES = (30, 45, 60, 95)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def main() -> None:
    import skimage.data

    rows = []
    for q in QUALITIES:
        cells = {"diffjpeg vs libjpeg": [], "libjpeg vs Pillow": [], "diffjpeg vs Pillow": []}
        for name in IMAGES:
            array = np.ascontiguousarray(getattr(skimage.data, name)())
            x = torch.from_numpy(array).permute(2, 0, 1)[None].float() / 255
            ours = {m: (jpeg(x, torch.tensor([float(q)]), m)[0].permute(1, 2, 0).numpy() * 255).round() for m in
                    ("diffjpeg", "libjpeg")}
            buffer = io.BytesIO()
            Image.fromarray(array).save(buffer, format="JPEG", quality=q, subsampling=2)
            pillow = np.asarray(Image.open(buffer).convert("RGB"))
            cells["diffjpeg vs libjpeg"].append(psnr(ours["diffjpeg"], ours["libjpeg"]))
            cells["libjpeg vs Pillow"].append(psnr(ours["libjpeg"], pillow))
            cells["diffjpeg vs Pillow"].append(psnr(ours["diffjpeg"], pillow))
        rows.append(f"| {q} | " + " | ".join(f"{min(v):.1f}–{max(v):.1f}" for v in cells.values()) + " |")
    text = "\n".join([
        "# The degradation's two JPEG models", "",
        f"Made by `python benchmarks/bench_jpeg_models.py` on {time.strftime('%Y-%m-%d')}: {cpu_name()}, "
        f"torch {torch.__version__}. PSNR (dB, 8-bit, lowest–highest over scikit-image's {', '.join(IMAGES)}, whole "
        "images, 4:2:0).", "",
        "| quality | diffjpeg vs libjpeg | libjpeg vs Pillow | diffjpeg vs Pillow |", "|---|---|---|---|", *rows, ""])
    RESULTS.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
