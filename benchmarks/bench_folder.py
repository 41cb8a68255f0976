"""What a folder job saves over a shell loop of single runs, and what a rerun costs.

A folder of small images (crops of scikit-image photographs) and short clips with audio,
upscaled three ways:

1. `ldl-video IN OUT` once: one process, the model loaded once;
2. `for f in IN/*; do ldl-video $f OUT/$f; done`: a process per file (Python, torch and the
   model start every time), as one would script it without folder mode;
3. the folder command again once everything is there: every result skipped.

    python benchmarks/bench_folder.py                      # 12 images 64×64, 2 clips of 12 frames
    python benchmarks/bench_folder.py --images 4 --clips 1 # a smoke run

Results go to benchmarks/results/folder.md (or --output), with the machine they came from.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_video import make_clip  # noqa: E402
from machine_info import cpu_name  # noqa: E402

RESULTS = HERE / "results" / "folder.md"
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "hubble_deep_field")


def make_folder(root: Path, images: int, clips: int, side: int, frames: int) -> list[Path]:
    from skimage import data

    files = []
    for i in range(images):
        photo = np.asarray(Image.fromarray(getattr(data, PHOTOS[i % len(PHOTOS)])()).convert("RGB"))
        top, left = (37 * i) % (photo.shape[0] - side), (53 * i) % (photo.shape[1] - side)
        path = root / ("stills" if i % 2 else "") / f"photo{i:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(photo[top : top + side, left : left + side]).save(path)
        files.append(path)
    for i in range(clips):
        path = root / "clips" / f"clip{i}.mkv"
        path.parent.mkdir(parents=True, exist_ok=True)
        files.append(make_clip(path, 96, 64, frames))
    return files


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(model: str, files: list[Path], source: Path, work: Path) -> dict[str, float]:
    cli = [sys.executable, "-m", "ldl_video.cli"]
    options = ["-m", model, "--quiet"]
    out = work / "folder"
    shutil.rmtree(out, ignore_errors=True)
    folder = timed(cli + [str(source), str(out)] + options)
    rerun = timed(cli + [str(source), str(out)] + options)
    loop_out = work / "loop"
    shutil.rmtree(loop_out, ignore_errors=True)
    loop = 0.0
    for path in files:
        target = loop_out / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        loop += timed(cli + [str(path), str(target)] + options)
    return {"folder": folder, "loop": loop, "rerun": rerun}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--clips", type=int, default=2)
    parser.add_argument("--side", type=int, default=64)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--models", default="realesr-animevideov3-x2,realesrgan-x4plus")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    loads_start = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-folder-") as tmp:
        source = Path(tmp) / "in"
        files = make_folder(source, args.images, args.clips, args.side, args.frames)
        for model in args.models.split(","):
            runs = [measure(model, files, source, Path(tmp)) for _ in range(args.repeats)]
            median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
            rows.append(f"| {model} | {len(files)} | {median['folder']:.1f} | {median['loop']:.1f} | "
                        f"**{median['loop'] / median['folder']:.2f}×** | {median['rerun']:.1f} |")
            print(rows[-1], flush=True)
    loads_end = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    command = "python benchmarks/bench_folder.py " + " ".join(sys.argv[1:])
    lines = [
        "# Folder jobs (`ldl-video IN_DIR OUT_DIR`)", "",
        f"Machine: {cpu_name()}, {os.cpu_count()} logical CPUs (torch uses {torch.get_num_threads()} threads); "
        f"Python {platform.python_version()}, torch {torch.__version__}.", "",
        f"Load average (1/5/15 min) at the start: {loads_start}; at the end: {loads_end}.", "",
        f"Command: `{command.strip()}`", "",
        f"The folder: {args.images} PNG crops of {args.side}×{args.side} (half in a subfolder) and {args.clips} H.264 "
        f"clip(s) of 96×64, {args.frames} frames with an AAC track; CPU, default precision, default encoder. "
        f"Wall seconds, median of {args.repeats}. *Loop*: one `ldl-video FILE OUT/FILE` process per file, as a shell "
        "loop would run it. *Rerun*: the folder command again with every result there (all skipped).", "",
        "| model | files | folder job (s) | loop of single runs (s) | loop / folder | rerun, all skipped (s) |",
        "|---|---|---|---|---|---|",
        *rows, "",
        "A rerun with nothing left to do costs the start-up of Python and torch (no model is loaded then); a loop "
        "of single runs pays that start-up and the model load once per file, which for small files is most of its time.",
        "",
    ]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
