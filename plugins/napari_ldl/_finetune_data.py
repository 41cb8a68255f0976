"""What the Fine-tune widget trains on: the planes of napari image layers as the trainer's
dataset (`Trainer(dataset=...)`), and the `microscope` way of making LR from them.

Planes are normalised as the Upscale widget normalises them (`_intensity`, "auto": 8-bit as is,
everything else from the layer's own min/max), so a model fine-tuned here sees at inference the
intensities it was trained on. Gray planes are repeated to three channels (the networks are RGB).

`microscope` LR, the usual widefield -> confocal proxy: a Gaussian PSF (σ drawn per crop from a
range, in HR pixels), binning by the scale (camera pixels integrate light), shot noise (Poisson at
a peak photon count drawn from a range) and Gaussian read noise, clipped to [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import Dataset

from ldl_video.train.data import augment, sample_generator
from ldl_video.train.degradations import bicubic_lr, gaussian_1d

from ._intensity import measure
from ._planes import UnsuitableLayer, plane_layout

LR_SOURCES = ("microscope", "bicubic", "real-world", "paired")


@dataclass(frozen=True)
class Microscope:
    sigma: tuple[float, float] = (0.8, 1.6)  # PSF σ in HR pixels
    photons: tuple[float, float] = (300.0, 3000.0)  # peak photon count; fewer means more shot noise
    read_noise: float = 0.004  # Gaussian σ in [0, 1] units


def unit_planes(layer, limit: int | None = None) -> list[np.ndarray]:
    """The layer's planes as float32 H×W×3 in [0, 1] (at most `limit`)."""
    layout = plane_layout(layer)
    normalisation = measure(layer.data, layout, "auto")
    planes = []
    for index in layout.planes():
        unit = normalisation.to_unit(np.asarray(layer.data[index]), layout.channel_of(index))
        if unit.ndim == 2:
            unit = np.repeat(unit[..., None], 3, axis=-1)
        planes.append(np.ascontiguousarray(unit[..., :3] if unit.shape[-1] >= 3 else np.repeat(unit[..., :1], 3, -1)))
        if limit is not None and len(planes) >= limit:
            break
    return planes


def microscope_lr(gt: torch.Tensor, scale: int, params: Microscope, gen: torch.Generator) -> torch.Tensor:
    """B×C×H×W HR in [0, 1] -> B×C×(H/scale)×(W/scale) LR: PSF blur, binning, shot and read noise."""
    low, high = params.sigma
    sigma = low + (high - low) * float(torch.rand((), generator=gen))
    radius = max(1, math.ceil(3 * sigma))
    kernel = gaussian_1d(2 * radius + 1, sigma).to(gt)
    channels = gt.shape[1]
    x = F.pad(gt, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    x = F.conv2d(x, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
    x = F.avg_pool2d(x, scale)
    p_low, p_high = params.photons
    photons = math.exp(math.log(p_low) + (math.log(p_high) - math.log(p_low)) * float(torch.rand((), generator=gen)))
    gray = bool((x[:, :1] == x).all())  # a gray plane gets the same noise in every channel
    signal = x[:, :1] if gray else x
    noisy = torch.poisson(signal.clamp(0, 1) * photons, generator=gen) / photons
    noisy = noisy + params.read_noise * torch.randn(noisy.shape, generator=gen)
    noisy = noisy.clamp(0, 1)
    return noisy.expand_as(x).contiguous() if gray else noisy


def make_lr(gt: torch.Tensor, scale: int, lr_from: str, microscope: Microscope, seed: int) -> torch.Tensor:
    """A fixed LR for a held-out 1×3×H×W plane (the same in every run with this seed); real-world
    held-out planes get bicubic LR, since Real-ESRGAN's degradation is random by design."""
    if lr_from == "microscope":
        return microscope_lr(gt, scale, microscope, torch.Generator().manual_seed(seed))
    return bicubic_lr(gt, scale).clamp(0, 1)


def check_planes(planes: list[np.ndarray], scale: int, gt_size: int, paired: list[np.ndarray] | None = None) -> None:
    """Refuse planes that cannot give a gt_size crop, and LR planes that are not HR / scale."""
    small = min(min(p.shape[:2]) for p in planes)
    if small < gt_size:
        raise UnsuitableLayer(f"a training plane is {small} px across, smaller than the {gt_size} px patch; "
                              "lower the patch size or choose larger images")
    if paired is not None:
        for hr, lr in zip(planes, paired, strict=True):
            if (hr.shape[0] // scale, hr.shape[1] // scale) != lr.shape[:2]:
                raise UnsuitableLayer(f"the paired LR plane is {lr.shape[1]}×{lr.shape[0]} but its HR plane is "
                                      f"{hr.shape[1]}×{hr.shape[0]}; LR must be HR / {scale}")


class PlaneCrops(Dataset):
    """Random gt_size crops of the planes (with flips and 90° turns), indexed by (index, epoch)
    as the trainer's sampler asks; `microscope` and `paired` crops carry their LR ("lq")."""

    def __init__(self, planes: list[np.ndarray], scale: int, gt_size: int, seed: int, lr_from: str,
                 microscope: Microscope | None = None, paired: list[np.ndarray] | None = None) -> None:
        check_planes(planes, scale, gt_size, paired)
        self.planes, self.paired = planes, paired
        self.scale, self.gt_size, self.seed, self.lr_from = scale, gt_size, seed, lr_from
        self.microscope = microscope or Microscope()
        area = sum(p.shape[0] * p.shape[1] for p in planes)
        self.length = max(16, area // (gt_size * gt_size))  # about one pass over every pixel per epoch

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, item: tuple[int, int]) -> dict[str, torch.Tensor]:
        index, epoch = item
        gen = sample_generator(self.seed, epoch, index)
        which = int(torch.randint(len(self.planes), (), generator=gen))
        plane, s = self.planes[which], self.scale
        lr_size = self.gt_size // s
        top = int(torch.randint(plane.shape[0] // s - lr_size + 1, (), generator=gen))
        left = int(torch.randint(plane.shape[1] // s - lr_size + 1, (), generator=gen))
        crop = plane[top * s : top * s + self.gt_size, left * s : left * s + self.gt_size]
        gt = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)
        tensors = [gt]
        if self.lr_from == "microscope":
            tensors.append(microscope_lr(gt[None], s, self.microscope, gen)[0])
        elif self.lr_from == "paired":
            lr = self.paired[which][top : top + lr_size, left : left + lr_size]
            tensors.append(torch.from_numpy(np.ascontiguousarray(lr)).permute(2, 0, 1))
        # a microscope image has no up or left: all eight 90° turns and mirror images
        out = augment(tensors, gen, hflip=True, rotate=True, vflip=True)
        return {"gt": out[0], "lq": out[1]} if len(out) == 2 else {"gt": out[0]}

