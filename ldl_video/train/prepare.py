"""`ldl-train prepare`: the paper's training data layout from a user's DIV2K / Flickr2K / OST folders.

What the official pipeline does (Real-ESRGAN's Training.md and its scripts, which the LDL
real-world recipe reads; csjliang/LDL options/train/LDL/train_Realworld_LDL.yml):
1. scripts/generate_multiscale_DF2K.py: every DF2K image also at 0.75, 1/2 and 1/3 of its size and
   at a shortest edge of 400 px (PIL Lanczos), named NAME T0..T3.
2. scripts/extract_subimages.py --crop_size 400 --step 200: overlapping 400 px sub-images of the
   originals and the scaled copies (the last row and column of windows flush with the edge),
   named NAME_s001, NAME_s002, ... row by row, PNG compression level 3.
3. scripts/generate_meta_info.py: a meta-info list, one path per line, sorted per folder.

Layout written under OUT (the official one, with OUT = datasets/DF2K):
  DF2K_HR_sub/           sub-images of the originals
  DF2K_multiscale_sub/   sub-images of the T0..T3 copies
  OST_sub/               sub-images of the OST images (not rescaled), their subfolders kept
  meta_info/meta_info_DF2Kmultiscale+OST_sub.txt   (…_DF2Kmultiscale_sub.txt without OST)
Paths in the list are relative to OUT, which is how `data.hr` reads a list in a meta_info/ folder.

With --bicubic 4, the synthetic recipe's paired set instead (train_Synthetic_LDL.yml reads
HRmod12_sub and LRbicx4_sub, made with BasicSR's data preparation scripts):
  DF2K_HRmod12_sub/     480 px sub-images every 240 px of each image cropped to a multiple of 12
  DF2K_LRbicx4_sub/     the same windows (120 px every 60) of its bicubic ×1/4, same names

Differences from the scripts: a side shorter than the crop is kept whole, so such sub-images are
smaller than 400 px that way (extract_subimages.py fails on them; the training data loader pads
them by reflection to the 400 px source crop, as RealESRGANDataset does). Everything is written
beside the final folders first and moved into place at the end, so an interrupted run leaves
none of them half-filled.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import LdlError
from ..images import IMAGE_SUFFIXES

SCALES = (0.75, 0.5, 1 / 3)  # generate_multiscale_DF2K.py's scale_list
SHORTEST_EDGE = 400
CROP, STEP = 400, 200  # Real-ESRGAN's Training.md: extract_subimages.py --crop_size 400 --step 200
PNG_LEVEL = 3  # extract_subimages.py's compression_level
# The synthetic recipe's paired set (train_Synthetic_LDL.yml reads HRmod12_sub and LRbicx4_sub):
# BasicSR's DIV2K preparation crops HR to a multiple of 12 and cuts 480 px sub-images every 240 px
# (scripts/data_preparation/extract_subimages.py), the LR ones at 1/scale of that.
MOD, PAIRED_CROP, PAIRED_STEP = 12, 480, 240


def window_starts(length: int, crop: int, step: int) -> list[int]:
    """Top (or left) edges of the sliding windows: every `step`, plus one flush with the far edge
    when the last window stops short of it (extract_subimages.py with thresh_size 0)."""
    if length <= crop:
        return [0]
    starts = list(range(0, length - crop + 1, step))
    if length - (starts[-1] + crop) > 0:
        starts.append(length - crop)
    return starts


def multiscale(image, stem: str) -> list[tuple[str, object]]:
    """(name, PIL image) for generate_multiscale_DF2K.py's copies of one image: T0..T2 at the
    scales, T3 with its shortest edge at 400 px (the aspect ratio kept, sizes truncated)."""
    from PIL import Image

    width, height = image.size
    out = []
    for index, scale in enumerate(SCALES):
        out.append((f"{stem}T{index}", image.resize((int(width * scale), int(height * scale)), Image.LANCZOS)))
    if width < height:
        size = (SHORTEST_EDGE, int(SHORTEST_EDGE * (height / width)))
    else:
        size = (int(SHORTEST_EDGE * (width / height)), SHORTEST_EDGE)
    out.append((f"{stem}T{len(SCALES)}", image.resize(size, Image.LANCZOS)))
    return out


def write_sub_images(image, stem: str, folder: Path, crop: int = CROP, step: int = STEP) -> list[Path]:
    """The overlapping crop×crop windows of a PIL image as NAME_s001.png, ... (row by row)."""
    from PIL import Image

    array = np.asarray(image)
    height, width = array.shape[:2]
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    index = 0
    for top in window_starts(height, crop, step):
        for left in window_starts(width, crop, step):
            index += 1
            path = folder / f"{stem}_s{index:03d}.png"
            Image.fromarray(np.ascontiguousarray(array[top : top + crop, left : left + crop])).save(
                path, compress_level=PNG_LEVEL)
            written.append(path)
    return written


def _open(path: Path):
    from PIL import Image

    try:
        image = Image.open(path)
        image.load()
    except Exception as exc:  # Pillow raises many kinds; the message names the file either way
        raise LdlError(f"cannot read {path} ({exc}); remove it from the folder") from None
    if image.mode in ("P", "PA", "RGBA", "LA", "CMYK", "YCbCr"):
        image = image.convert("RGB")
    if image.mode not in ("RGB", "L"):
        raise LdlError(f"{path} is a {image.mode} image; prepare takes 8-bit RGB or gray (DIV2K, Flickr2K and OST are)")
    return image


def bicubic_pair(image, scale: int, mod: int = MOD):
    """The synthetic recipe's pair: HR cropped at the bottom and right to a multiple of `mod`
    (BasicSR's mod_crop; HRmod12), and its bicubic LR (antialiased Keys a = -0.5, as MATLAB's
    imresize), both PIL images."""
    import torch
    from PIL import Image

    from ..resample import resize

    array = np.asarray(image)
    height, width = array.shape[0] // mod * mod, array.shape[1] // mod * mod
    if height == 0 or width == 0:
        raise LdlError(f"an image is smaller than {mod} px; remove it")
    hr = np.ascontiguousarray(array[:height, :width])
    planes = hr[..., None] if hr.ndim == 2 else hr
    x = torch.from_numpy(planes).permute(2, 0, 1)[None].double() / 255
    lr = (resize(x, height // scale, width // scale, "bicubic")[0].permute(1, 2, 0).clamp(0, 1) * 255).round()
    lr = lr.to(torch.uint8).numpy()
    return Image.fromarray(hr), Image.fromarray(lr[..., 0] if hr.ndim == 2 else lr)


def _one_image(job: tuple) -> int:
    path, stem, dirs, mode, scale, crop, step = job
    image = _open(Path(path))
    if mode == "bicubic":
        hr, lr = bicubic_pair(image, scale)
        count = len(write_sub_images(hr, stem, Path(dirs[0]), crop, step))
        return count + len(write_sub_images(lr, stem, Path(dirs[1]), crop // scale, step // scale))
    count = len(write_sub_images(image, stem, Path(dirs[0]), crop, step))
    if mode == "multiscale":
        for name, scaled in multiscale(image, stem):
            count += len(write_sub_images(scaled, name, Path(dirs[1]), crop, step))
    return count


def _images(folder: Path, key: str) -> list[Path]:
    if not folder.is_dir():
        raise LdlError(f"{key}: {folder} is not a folder")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise LdlError(f"{key}: {folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def prepare(out: str | Path, df2k: list[str | Path], ost: list[str | Path] = (), multiscale_copies: bool = True,
            crop: int = 0, step: int = 0, workers: int = 0, bicubic: int = 0,
            say: Callable[[str], None] = print) -> Path:
    """Write the sub-image folders (and for the real-world layout the meta-info list) under `out`;
    returns what `data.hr` should name: the list, or with `bicubic` the HR sub-image folder.
    `df2k`: folders of DIV2K / Flickr2K HR images (rescaled too, unless multiscale_copies is
    False); `ost`: folders used at their own scale. `bicubic` (2, 3 or 4): the synthetic
    recipe's paired set instead (see bicubic_pair), sub-images of PAIRED_CROP px every PAIRED_STEP."""
    out = Path(out)
    crop = crop or (PAIRED_CROP if bicubic else CROP)
    step = step or (PAIRED_STEP if bicubic else STEP)
    if crop < 8 or not 0 < step <= crop:
        raise LdlError(f"--crop must be 8 or more and --step between 1 and the crop, got {crop} and {step}")
    if not df2k and not ost:
        raise LdlError("name at least one image folder: --div2k, --flickr2k, --hr or --ost")
    if bicubic and (ost or bicubic not in (2, 3, 4) or crop % bicubic or step % bicubic):
        raise LdlError(f"--bicubic takes 2, 3 or 4, DF2K folders only (no --ost), and --crop/--step divisible by it; "
                       f"got {bicubic}, crop {crop}, step {step}")
    if bicubic:
        names = {"hr": f"DF2K_HRmod{MOD}_sub", "lr": f"DF2K_LRbicx{bicubic}_sub"}
        meta = None
    else:
        names = {"hr": "DF2K_HR_sub", "scaled": "DF2K_multiscale_sub", "ost": "OST_sub"}
        meta = out / "meta_info" / f"meta_info_DF2K{'multiscale' if multiscale_copies else ''}{'+OST' if ost else ''}_sub.txt"
    finals = [out / n for n in names.values()] + ([meta] if meta else [])
    taken = [str(p) for p in finals if p.exists()]
    if taken:
        raise LdlError(f"{', '.join(taken)} already exist{'s' if len(taken) == 1 else ''}; remove them or choose another folder")
    staging = out / f".prepare-{os.getpid()}"
    mode = "bicubic" if bicubic else "multiscale" if multiscale_copies else "plain"
    second = str(staging / names["lr" if bicubic else "scaled"])
    jobs = []
    for folder in map(Path, df2k):
        for file in _images(folder, "--div2k/--flickr2k/--hr"):
            jobs.append((str(file), file.stem, (str(staging / names["hr"]), second), mode, bicubic, crop, step))
    for folder in map(Path, ost):
        for file in _images(folder, "--ost"):
            sub = staging / names["ost"] / file.parent.relative_to(folder)
            jobs.append((str(file), file.stem, (str(sub), ""), "plain", 0, crop, step))
    stems = [(job[2][0], job[1]) for job in jobs]
    if len(set(stems)) != len(stems):
        raise LdlError("two source images share a file name (e.g. the same set given twice); give each set once")
    try:
        total = _run_jobs(jobs, workers, say)
        if meta is not None:
            lines = []
            for name in names.values():
                lines += sorted(p.relative_to(staging).as_posix() for p in (staging / name).rglob("*.png"))
            (staging / "meta_info").mkdir(parents=True)
            (staging / "meta_info" / meta.name).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        for final in finals:
            staged = staging / final.relative_to(out)
            if staged.exists():
                final.parent.mkdir(parents=True, exist_ok=True)
                staged.rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    result = meta if meta is not None else out / names["hr"]
    say(f"{total} sub-images of {crop} px from {len(jobs)} images; data.hr: {result}")
    return result


def _run_jobs(jobs: list, workers: int, say: Callable[[str], None]) -> int:
    workers = workers or min(len(jobs), os.cpu_count() or 1)
    total = 0
    if workers <= 1:
        results = map(_one_image, jobs)
        pool = None
    else:
        import multiprocessing

        # spawn: the parent may hold torch's threads, which fork() does not carry safely
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        results = pool.map(_one_image, jobs, chunksize=4)
    try:
        for done, count in enumerate(results, 1):
            total += count
            if done % 100 == 0 or done == len(jobs):
                say(f"{done}/{len(jobs)} images")
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return total
