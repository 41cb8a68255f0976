"""Training and validation data: HR sources (image folders, single images, videos sampled with
PyAV, or the images bundled with scikit-image), paired LR/HR folders, crops, flips, rotations.

Normalisation to float32 in [0, 1] (`data.normalise`):
- `range` (default): 8-bit / 255, 16-bit / 65535, float images clipped to [0, 1]. Right for
  photos, video frames and 16-bit files that use the whole range.
- `percentile`: each image mapped so its `data.percentiles` (default 0.1 and 99.9, taken over the
  whole image, all channels) become 0 and 1, then clipped; for microscopy and other 12/16-bit data
  that fills only part of the range. A paired LR image uses its HR image's levels. At inference,
  `ldl-video` divides by the dtype's maximum: normalise such data the same way before upscaling.
Gray images are repeated to three channels (the networks are RGB, and `ldl-video` does the same
at inference); an alpha channel is dropped.

Every random choice of a sample (crop, flips, rotation) comes from a generator seeded by the run's
seed, the epoch and the sample's index, so a resumed run sees the same batches in any worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler

from ..errors import LdlError
from ..images import IMAGE_SUFFIXES
from .config import Config

VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".ts", ".mts", ".m2ts", ".mpg", ".mpeg", ".wmv", ".flv",
                  ".y4m"}
SKIMAGE_TRAIN = ("astronaut", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina", "stereo_motorcycle",
                 "colorwheel", "brick", "grass", "gravel", "camera", "moon", "coins")
SKIMAGE_VAL = ("chelsea", "cell", "clock", "text")
SKIMAGE_SETS = {"skimage:train": SKIMAGE_TRAIN, "skimage:val": SKIMAGE_VAL, "skimage": SKIMAGE_TRAIN}


@dataclass(frozen=True)
class Source:
    """One HR image: a file, a frame of a video (pts in stream time base), or a bundled image."""

    kind: str  # file | video | skimage
    path: str
    frame: int = -1

    def __str__(self) -> str:
        return f"{self.path} (frame pts {self.frame})" if self.kind == "video" else self.path


# ---------------------------------------------------------------- finding sources


def find_sources(entries: list[str], video_step: int = 10, allow_video: bool = True, key: str = "data.hr") -> list[Source]:
    """Expand folders (recursively), files and skimage:train/val into sources, sorted per entry."""
    sources: list[Source] = []
    for entry in entries:
        if entry in SKIMAGE_SETS:
            sources += [Source("skimage", name) for name in SKIMAGE_SETS[entry]]
            continue
        path = Path(entry).expanduser()
        if path.suffix.lower() == ".txt" and path.is_file():
            sources += [Source("file", str(file)) for file in meta_info_files(path, key)]
            continue
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
            if not files:
                raise LdlError(f"{key}: folder {path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}) or videos")
        elif path.is_file():
            files = [path]
        else:
            raise LdlError(f"{key}: {path} does not exist (give folders, image or video files, or skimage:train)")
        for file in files:
            suffix = file.suffix.lower()
            if suffix in IMAGE_SUFFIXES:
                sources.append(Source("file", str(file)))
            elif suffix in VIDEO_SUFFIXES and allow_video:
                sources += video_frames(file, video_step)
            elif suffix in VIDEO_SUFFIXES:
                raise LdlError(f"{key}: {file} is a video; paired and validation data must be images")
            else:
                raise LdlError(f"{key}: {file} is neither an image ({', '.join(sorted(IMAGE_SUFFIXES))}) nor a video")
    return sources


def meta_info_files(path: Path, key: str = "data.hr") -> list[Path]:
    """The images a meta-info list names (BasicSR's meta_info files, as `ldl-train prepare` writes
    them): one path per line (the first field), relative to the folder above `meta_info/` when the
    list sits in one (datasets/DF2K/meta_info/x.txt -> datasets/DF2K), else to the list's folder."""
    root = path.parent.parent if path.parent.name == "meta_info" else path.parent
    files = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        file = root / line.split()[0]
        if not file.is_file():
            raise LdlError(f"{key}: {path} line {number} names {file}, which does not exist (paths are relative to {root})")
        if file.suffix.lower() not in IMAGE_SUFFIXES:
            raise LdlError(f"{key}: {path} line {number} names {file}, which is not an image")
        files.append(file)
    if not files:
        raise LdlError(f"{key}: meta-info list {path} names no images")
    return files


def video_frames(path: Path, step: int) -> list[Source]:
    """Every `step`-th frame of the first video stream, found by demuxing (no decoding)."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise LdlError(f"{path} has no video stream")
            stream = container.streams.video[0]
            stamps = sorted({p.pts for p in container.demux(stream) if p.pts is not None and p.size})
    except av.error.FFmpegError as exc:
        raise LdlError(f"cannot read video {path} ({exc})") from None
    if not stamps:
        raise LdlError(f"video {path} has no frames")
    return [Source("video", str(path), pts) for pts in stamps[::step]]


# ---------------------------------------------------------------- reading


@lru_cache(maxsize=32)
def _skimage(name: str) -> np.ndarray:
    try:
        import skimage.data
    except ImportError:
        raise LdlError("the skimage:train / skimage:val sources need scikit-image: pip install scikit-image") from None

    image = getattr(skimage.data, name)()
    return image[0] if isinstance(image, tuple) else image


class FrameReader:
    """Decodes one frame of a video by seeking to the keyframe before it; keeps a few
    containers open per worker."""

    def __init__(self) -> None:
        self.open: dict[str, object] = {}

    def __call__(self, path: str, pts: int) -> np.ndarray:
        import av

        container = self.open.get(path)
        if container is None:
            if len(self.open) >= 4:
                self.open.pop(next(iter(self.open))).close()
            container = self.open[path] = av.open(path)
        stream = container.streams.video[0]
        container.seek(pts, stream=stream, backward=True, any_frame=False)
        for frame in container.decode(stream):
            if frame.pts is not None and frame.pts >= pts:
                deep = any(c.bits > 8 for c in frame.format.components)
                return frame.to_ndarray(format="rgb48le" if deep else "rgb24")
        raise LdlError(f"{path}: frame at pts {pts} could not be decoded")

    def __getstate__(self) -> dict:  # containers do not cross into worker processes
        return {"open": {}}


def read_source(source: Source, frames: FrameReader) -> np.ndarray:
    """H×W×C array of the source in its own dtype."""
    from ..images import read_image

    if source.kind == "skimage":
        image = _skimage(source.path)
    elif source.kind == "video":
        image = frames(source.path, source.frame)
    else:
        image = read_image(source.path)
    image = image.astype(np.uint8) if image.dtype == bool else image
    return image[..., None] if image.ndim == 2 else image


def to_rgb_float(image: np.ndarray, normalise: str = "range", percentiles: tuple[float, float] = (0.1, 99.9),
                 levels: tuple[float, float] | None = None) -> torch.Tensor:
    """H×W×C (C = 1..4; uint8, uint16 or float) -> 3×H×W float32 in [0, 1] (see the module doc).
    `levels`: the (low, high) of percentile normalisation taken from another image (an LR's HR)."""
    channels = image.shape[-1]
    image = image[..., :1] if channels in (1, 2) else image[..., :3]
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
    if normalise == "percentile":
        values = tensor.float()
        low, high = levels or percentile_levels(image, percentiles)
        tensor = ((values - float(low)) / max(float(high - low), 1e-12)).clamp(0, 1)
    elif image.dtype == np.uint8:
        tensor = tensor.float() / 255
    elif image.dtype == np.uint16:
        tensor = tensor.float() / 65535
    elif image.dtype.kind == "f":
        tensor = tensor.float().clamp(0, 1)
    else:
        raise LdlError(f"{image.dtype} images are not supported; use 8/16-bit integers or float")
    return tensor.expand(3, -1, -1).contiguous() if tensor.shape[0] == 1 else tensor


def percentile_levels(image: np.ndarray, percentiles: tuple[float, float]) -> tuple[float, float]:
    channels = image.shape[-1]
    image = image[..., :1] if channels in (1, 2) else image[..., :3]
    low, high = np.percentile(image.astype(np.float32), percentiles)
    return float(low), float(high)


def image_size(source: Source) -> tuple[int, int] | None:
    """(height, width) from the file header where that is cheap, else None."""
    if source.kind != "file":
        return None
    from PIL import Image

    try:
        with Image.open(source.path) as image:
            return image.size[1], image.size[0]
    except Exception:  # Pillow cannot read every TIFF header; the full read later will say why
        return None


# ---------------------------------------------------------------- augmentation


def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch * 10_007 + index) % (2**63))


def augment(tensors: list[torch.Tensor], gen: torch.Generator, hflip: bool, rotate: bool = False,
            vflip: bool = False) -> list[torch.Tensor]:
    """The same random horizontal flip, vertical flip and transpose (each with probability 1/2, each
    only when enabled) on every tensor: BasicSR's augment() with use_hflip = hflip and
    use_rot = vflip + rotate, which together give all eight 90° turns and mirror images."""
    do_hflip, do_vflip, do_transpose = _flip_draws(gen)
    out = []
    for t in tensors:
        if hflip and do_hflip:
            t = t.flip(-1)
        if vflip and do_vflip:
            t = t.flip(-2)
        if rotate and do_transpose:
            t = t.transpose(-1, -2)
        out.append(t.contiguous())
    return out


def augment_array(image: np.ndarray, gen: torch.Generator, hflip: bool, rotate: bool = False,
                  vflip: bool = False) -> np.ndarray:
    """augment() for one H×W×C array, as views (no copy of a large image)."""
    do_hflip, do_vflip, do_transpose = _flip_draws(gen)
    if hflip and do_hflip:
        image = image[:, ::-1]
    if vflip and do_vflip:
        image = image[::-1]
    if rotate and do_transpose:
        image = image.transpose(1, 0, 2)
    return image


def _flip_draws(gen: torch.Generator) -> tuple[bool, bool, bool]:
    return tuple(bool(torch.rand((), generator=gen) < 0.5) for _ in range(3))


# ---------------------------------------------------------------- datasets


class HRDataset(Dataset):
    """Random crops of HR sources; LR is made on the training device. Crops are `crop_size`
    (default gt_size; Real-ESRGAN degrades a larger crop and cuts gt_size out of it after). An
    image smaller than the crop is padded up to it by reflection without repeating the edge row,
    as Real-ESRGAN's RealESRGANDataset does (cv2.BORDER_REFLECT_101 to 400 px), so small images
    train instead of being refused."""

    def __init__(self, sources: list[Source], gt_size: int, seed: int, hflip: bool = True, rotate: bool = False,
                 normalise: str = "range", percentiles: tuple[float, float] = (0.1, 99.9), crop_size: int = 0,
                 vflip: bool = False) -> None:
        if not sources:
            raise LdlError("data.hr holds no images")
        self.sources, self.gt_size, self.seed = sources, gt_size, seed
        self.crop_size = max(crop_size, gt_size)
        self.hflip, self.vflip, self.rotate = hflip, vflip, rotate
        self.normalise, self.percentiles = normalise, tuple(percentiles)
        self.frames = FrameReader()
        for source in sources:
            size = image_size(source)
            if size is not None:
                check_paddable(source, size)

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, item: tuple[int, int]) -> dict[str, torch.Tensor]:
        index, epoch = item
        source = self.sources[index]
        image = read_source(source, self.frames)
        check_paddable(source, image.shape[:2])
        gen = sample_generator(self.seed, epoch, index)
        levels = percentile_levels(image, self.percentiles) if self.normalise == "percentile" else None  # whole image
        size = self.crop_size
        # RealESRGANDataset's order: flip the whole image, then pad (bottom and right), then crop
        image = augment_array(image, gen, self.hflip, self.rotate, self.vflip)
        image = pad_reflect101(image, size)
        top, left = _corner(image.shape[:2], size, gen)
        crop = image[top : top + size, left : left + size]
        return {"gt": to_rgb_float(crop, self.normalise, self.percentiles, levels)}


def pad_reflect101(image: np.ndarray, size: int) -> np.ndarray:
    """H×W×C padded at the bottom and right to at least size×size by mirroring about the edge
    pixel (OpenCV's BORDER_REFLECT_101, numpy's "reflect"), repeatedly when the image is
    smaller than the padding."""
    pad_h, pad_w = max(0, size - image.shape[0]), max(0, size - image.shape[1])
    if pad_h or pad_w:
        image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect")
    return image


class PairedDataset(Dataset):
    """Aligned crops of LR/HR files with the same relative name (any image suffix)."""

    def __init__(self, hr: list[Source], lr_dirs: list[str], hr_dirs: list[str], scale: int, gt_size: int, seed: int,
                 hflip: bool = True, rotate: bool = False, normalise: str = "range",
                 percentiles: tuple[float, float] = (0.1, 99.9), vflip: bool = False) -> None:
        self.pairs = match_pairs(hr, hr_dirs, lr_dirs)
        self.scale, self.gt_size, self.seed = scale, gt_size, seed
        self.hflip, self.vflip, self.rotate = hflip, vflip, rotate
        self.normalise, self.percentiles = normalise, tuple(percentiles)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, item: tuple[int, int]) -> dict[str, torch.Tensor]:
        index, epoch = item
        hr_src, lr_src = self.pairs[index]
        hr, lr = read_source(hr_src, FrameReader()), read_source(lr_src, FrameReader())
        check_pair(hr_src, lr_src, hr.shape[:2], lr.shape[:2], self.scale)
        lr_size = self.gt_size // self.scale
        check_size(lr_src, lr.shape[:2], lr_size)
        gen = sample_generator(self.seed, epoch, index)
        top, left = _corner(lr.shape[:2], lr_size, gen)
        lr = lr[top : top + lr_size, left : left + lr_size]
        s = self.scale
        levels = percentile_levels(hr, self.percentiles) if self.normalise == "percentile" else None  # whole HR image
        hr = hr[top * s : (top + lr_size) * s, left * s : (left + lr_size) * s]
        gt = to_rgb_float(hr, self.normalise, self.percentiles, levels)
        lq = to_rgb_float(lr, self.normalise, self.percentiles, levels)
        gt, lq = augment([gt, lq], gen, self.hflip, self.rotate, self.vflip)
        return {"gt": gt, "lq": lq}


def training_dataset(config: Config) -> Dataset:
    """The dataset a recipe's `data` section describes: paired crops, or HR crops to degrade."""
    c, d = config, config.data
    options = dict(hflip=d.hflip, vflip=d.vflip, rotate=d.rotate, normalise=d.normalise, percentiles=d.percentiles)
    if d.degradation == "paired":
        sources = find_sources(d.hr, d.video_step, allow_video=False)
        return PairedDataset(sources, d.lr, d.hr, c.scale, d.gt_size, c.seed, **options)
    source_size = c.degradation.source_size if d.degradation == "realesrgan" else 0
    return HRDataset(find_sources(d.hr, d.video_step), d.gt_size, c.seed, crop_size=source_size, **options)


def match_pairs(hr: list[Source], hr_dirs: list[str], lr_dirs: list[str], key: str = "data.lr") -> list[tuple[Source, Source]]:
    pairs = []
    for hr_dir, lr_dir in zip(hr_dirs, lr_dirs, strict=True):
        hr_root, lr_root = Path(hr_dir).expanduser(), Path(lr_dir).expanduser()
        if not lr_root.is_dir() or not hr_root.is_dir():
            raise LdlError(f"{key}: paired data needs folders; {hr_root if not hr_root.is_dir() else lr_root} is not one")
        lr_files = {p.relative_to(lr_root).with_suffix("").as_posix(): p for p in lr_root.rglob("*")
                    if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES}
        for source in hr:
            path = Path(source.path)
            if not path.is_relative_to(hr_root):
                continue
            stem = path.relative_to(hr_root).with_suffix("").as_posix()
            match = lr_files.get(stem) or lr_files.get(stem + "x4") or lr_files.get(stem + "x2")  # DIV2K names LR 0001x4.png
            if match is None:
                raise LdlError(f"{key}: no LR image for {path} in {lr_root} (expected {stem}.png or similar)")
            pairs.append((source, Source("file", str(match))))
    if not pairs:
        raise LdlError(f"{key}: no LR/HR pairs found")
    return pairs


def check_size(source: Source, size: tuple[int, int], crop: int) -> None:
    if min(size) < crop:
        raise LdlError(f"{source} is {size[1]}×{size[0]}, smaller than the {crop} px crop; "
                       "remove it, or lower data.gt_size")


def check_paddable(source: Source, size: tuple[int, int]) -> None:
    if min(size) < 2:
        raise LdlError(f"{source} is {size[1]}×{size[0]}; an HR image needs at least 2 px each way to be padded; remove it")


def check_pair(hr_src: Source, lr_src: Source, hr: tuple[int, int], lr: tuple[int, int], scale: int) -> None:
    if hr[0] // scale != lr[0] or hr[1] // scale != lr[1]:
        raise LdlError(f"{lr_src} is {lr[1]}×{lr[0]} but {hr_src} is {hr[1]}×{hr[0]}: LR must be HR / {scale}")


def _corner(size: tuple[int, int], crop: int, gen: torch.Generator) -> tuple[int, int]:
    top = int(torch.randint(size[0] - crop + 1, (), generator=gen))
    left = int(torch.randint(size[1] - crop + 1, (), generator=gen))
    return top, left


class ResumableSampler(Sampler):
    """torch's DistributedSampler (this process's share of a seeded shuffle per epoch), yielding
    (index, epoch) and able to start part-way into an epoch, so a resumed run continues with
    the very batch an uninterrupted run would have drawn."""

    def __init__(self, length: int, num_replicas: int, rank: int, seed: int, batch_size: int) -> None:
        self.inner = DistributedSampler(range(length), num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.batch_size = batch_size
        self.epoch, self.skip = 0, 0

    @property
    def batches_per_epoch(self) -> int:
        return len(self.inner) // self.batch_size

    def set_position(self, epoch: int, batches_done: int) -> None:
        self.epoch, self.skip = epoch, batches_done

    def __iter__(self):
        self.inner.set_epoch(self.epoch)
        for index in list(self.inner)[self.skip * self.batch_size :]:
            yield index, self.epoch

    def __len__(self) -> int:
        return len(self.inner) - self.skip * self.batch_size


# ---------------------------------------------------------------- validation


def validation_images(hr: list[str], lr: list[str], scale: int, crop: int, max_images: int, multiple: int,
                      normalise: str, percentiles: list[float]) -> list[tuple[str, torch.Tensor, torch.Tensor | None]]:
    """(name, HR 3×H×W, LR or None) with H, W trimmed to multiples of scale × `multiple`;
    LR None means: make it with the recipe's degradation."""
    sources = find_sources(hr, allow_video=False, key="val.hr")[:max_images]
    pairs = dict(match_pairs(sources, hr, lr, key="val.lr")) if lr else {}
    frames, out = FrameReader(), []
    unit = scale * multiple
    for source in sources:
        image = to_rgb_float(read_source(source, frames), normalise, tuple(percentiles))
        low = None
        if source in pairs:
            levels = percentile_levels(read_source(source, frames), tuple(percentiles)) if normalise == "percentile" else None
            low = to_rgb_float(read_source(pairs[source], frames), normalise, tuple(percentiles), levels)
            check_pair(source, pairs[source], tuple(image.shape[-2:]), tuple(low.shape[-2:]), scale)
        h, w = image.shape[-2:]
        if crop:
            top, left = max(0, (h - crop) // 2 // unit * unit), max(0, (w - crop) // 2 // unit * unit)
            h, w = min(h, crop), min(w, crop)
        else:
            top = left = 0
        h, w = h // unit * unit, w // unit * unit
        if h == 0 or w == 0:
            raise LdlError(f"val.hr: {source} is smaller than {unit} px")
        image = image[:, top : top + h, left : left + w]
        if low is not None:
            low = low[:, top // scale : (top + h) // scale, left // scale : (left + w) // scale]
        out.append((Path(source.path).stem, image.contiguous(), low))
    return out
