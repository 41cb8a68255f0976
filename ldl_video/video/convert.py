"""Frames <-> planes <-> RGB tensors, with the matrix and range written out.

Frames travel between the threads as planar arrays in the source's own pixel family (4:2:0
stays 4:2:0, 10-bit stays 10-bit: half the bytes of RGB, no rounding). The YUV <-> RGB step
runs in torch on the upscaling device, in float, with the stream's matrix (BT.601/709/2020,
FCC, SMPTE 240M) and range (limited or full) at any bit depth, so the model's input is never
rounded to 8 bits and nothing depends on swscale's guesses about colour. Chroma is resampled
bilinearly with centred siting.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np
import torch
from torch.nn import functional as F

from .colour import LUMA_WEIGHTS, RANGE_FULL, ColourTags, PixelFamily, planar_name

_SUBSAMPLING = {"444": (1, 1), "422": (2, 1), "420": (2, 2), "440": (1, 2), "411": (4, 1), "410": (4, 4), "": (1, 1)}


@dataclass(frozen=True)
class PlaneFormat:
    """Planar frames of one family, and the matrix and range their values mean."""

    family: PixelFamily
    tags: ColourTags

    @property
    def name(self) -> str:
        return planar_name(self.family)

    @property
    def subsampling(self) -> tuple[int, int]:
        return _SUBSAMPLING[self.family.chroma] if self.family.kind == "yuv" else (1, 1)

    @property
    def dtype(self) -> type:
        return np.uint8 if self.family.depth <= 8 else np.uint16

    @property
    def planes(self) -> int:
        return 1 if self.family.kind == "gray" else 3

    @property
    def full_range(self) -> bool:
        return self.family.kind == "rgb" or self.tags.range == RANGE_FULL

    def plane_size(self, index: int, width: int, height: int) -> tuple[int, int]:
        """(height, width) of plane `index`."""
        if index == 0 or self.family.kind != "yuv":
            return height, width
        sx, sy = self.subsampling
        return -(-height // sy), -(-width // sx)


def _same_layout(source: str, target: str) -> bool:
    """Whether the first planes of `source` are `target`'s planes (yuvj420p and yuva420p are
    yuv420p plus a range flag or an alpha plane; gbrap is gbrp plus alpha)."""
    if source == target:
        return True
    base = source.replace("yuvj", "yuv").replace("yuva", "yuv").replace("gbrap", "gbrp")
    return base == target


def read_planes(frame: av.VideoFrame, fmt: PlaneFormat, size: tuple[int, int]) -> list[np.ndarray]:
    """A decoded frame -> its planes as arrays (copies, so the frame can go), at `size` (w, h).
    Other layouts (nv12, p010, packed RGB) are rearranged by swscale, which is exact for that."""
    width, height = size
    if not (_same_layout(frame.format.name, fmt.name) and (frame.width, frame.height) == (width, height)):
        frame = frame.reformat(width=width, height=height, format=fmt.name)
    planes = []
    for index in range(fmt.planes):
        plane = frame.planes[index]
        h, w = fmt.plane_size(index, width, height)
        itemsize = np.dtype(fmt.dtype).itemsize
        rows = np.frombuffer(plane, fmt.dtype).reshape(plane.height, plane.line_size // itemsize)
        planes.append(rows[:h, :w].copy())
    return planes


def write_frame(planes: list[np.ndarray], fmt: PlaneFormat, pix_fmt: str) -> av.VideoFrame:
    """Planes -> a frame in the encoder's pixel format (a layout change through swscale when
    it is not planar)."""
    height, width = planes[0].shape
    frame = av.VideoFrame(width, height, fmt.name)
    for index, data in enumerate(planes):
        plane = frame.planes[index]
        itemsize = np.dtype(fmt.dtype).itemsize
        rows = np.frombuffer(plane, fmt.dtype).reshape(plane.height, plane.line_size // itemsize)
        rows[: data.shape[0], : data.shape[1]] = data
    if pix_fmt != fmt.name:
        frame = frame.reformat(format=pix_fmt)
    return frame


# ---- planes <-> RGB in torch -----------------------------------------------------------------


def _to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """Code values travel as they are (1 or 2 bytes) and become float on the device. 16-bit
    planes travel as int16 (torch's uint16 is not usable on every device) and are unwrapped."""
    wide = array.dtype == np.uint16
    tensor = torch.from_numpy(np.ascontiguousarray(array.view(np.int16) if wide else array))
    if device.type == "cuda":
        tensor = tensor.pin_memory().to(device, non_blocking=True)
    if wide:
        return tensor.to(torch.int32).bitwise_and_(0xFFFF).float()
    return tensor.float()


def _levels(fmt: PlaneFormat) -> tuple[float, float, float, float]:
    """(luma offset, luma span, chroma centre, chroma span) in code values."""
    depth = fmt.family.depth
    top = float(2**depth - 1)
    if fmt.full_range:
        return 0.0, top, float(2 ** (depth - 1)), top
    unit = float(2 ** (depth - 8))
    return 16.0 * unit, 219.0 * unit, 128.0 * unit, 224.0 * unit


def _ycc_from_rgb(fmt: PlaneFormat) -> tuple[torch.Tensor, torch.Tensor]:
    """The affine map RGB in [0, 1] -> code values of each plane, as (3×3 weight, bias)."""
    top = float(2**fmt.family.depth - 1)
    if fmt.family.kind == "rgb":  # gbrp: G, B, R planes
        weight = torch.tensor([[0.0, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=torch.float64) * top
        return weight, torch.zeros(3, dtype=torch.float64)
    kr, kb = LUMA_WEIGHTS.get(fmt.tags.matrix, LUMA_WEIGHTS[1])
    kg = 1 - kr - kb
    matrix = torch.tensor([[kr, kg, kb],
                           [-kr / (2 * (1 - kb)), -kg / (2 * (1 - kb)), 0.5],
                           [0.5, -kg / (2 * (1 - kr)), -kb / (2 * (1 - kr))]], dtype=torch.float64)
    y_offset, y_span, c_centre, c_span = _levels(fmt)
    weight = torch.diag(torch.tensor([y_span, c_span, c_span], dtype=torch.float64)) @ matrix
    return weight, torch.tensor([y_offset, c_centre, c_centre], dtype=torch.float64)


def _mix(channels: list[torch.Tensor], weights: torch.Tensor, offset: float) -> torch.Tensor:
    """weights[0]·channels[0] + weights[1]·channels[1] + weights[2]·channels[2] + offset, in three
    passes over one plane (quicker than a matrix product or a 1×1 convolution on three channels)."""
    out = channels[0] * float(weights[0])
    out.add_(channels[1], alpha=float(weights[1])).add_(channels[2], alpha=float(weights[2]))
    return out.add_(offset)


def planes_to_rgb(planes: list[np.ndarray], fmt: PlaneFormat, device: torch.device) -> torch.Tensor:
    """N stacked planes (each N×h×w) -> N×3×H×W float RGB in [0, 1] on `device`, in channels-last
    memory (CPU convolutions run up to twice as fast on it)."""
    tensors = [_to_device(p, device) for p in planes]
    height, width = tensors[0].shape[-2:]
    if fmt.family.kind == "gray":
        y_offset, y_span, _, _ = _levels(fmt)
        y = tensors[0].sub_(y_offset).div_(y_span).clamp_(0, 1)
        return y[..., None].expand(-1, -1, -1, 3).contiguous().permute(0, 3, 1, 2)
    if fmt.family.kind == "yuv" and fmt.subsampling != (1, 1):
        sx, sy = fmt.subsampling
        chroma = torch.stack(tensors[1:], dim=1)
        h, w = chroma.shape[-2:]
        chroma = F.interpolate(chroma, size=(h * sy, w * sx), mode="bilinear", align_corners=False)[..., :height, :width]
        tensors = [tensors[0], chroma[:, 0], chroma[:, 1]]
    weight, bias = _ycc_from_rgb(fmt)
    inverse = torch.linalg.inv(weight)
    offsets = -inverse @ bias
    rgb = [_mix(tensors, inverse[i], float(offsets[i])) for i in range(3)]
    return torch.stack(rgb, dim=-1).clamp_(0, 1).permute(0, 3, 1, 2)


def _quantise(values: torch.Tensor, fmt: PlaneFormat) -> np.ndarray:
    top = 2**fmt.family.depth - 1
    q = values.round().clamp_(0, top)
    if fmt.dtype == np.uint8:
        return q.to(torch.uint8).cpu().numpy()
    return q.to(torch.int32).cpu().numpy().astype(np.uint16)


def _box_average(x: torch.Tensor, sx: int, sy: int) -> torch.Tensor:
    """The mean of each sy×sx block (edges replicated to whole blocks), as a sum of strided
    slices: several times quicker than avg_pool2d on the CPU."""
    h, w = x.shape[-2:]
    if h % sy or w % sx:
        x = F.pad(x, (0, (-w) % sx, 0, (-h) % sy), mode="replicate")
    total = x[..., 0::sy, 0::sx].clone()
    for i in range(sy):
        for j in range(sx):
            if i or j:
                total.add_(x[..., i::sy, j::sx])
    return total.mul_(1.0 / (sx * sy))


def rgb_to_planes(rgb: torch.Tensor, fmt: PlaneFormat) -> list[np.ndarray]:
    """N×3×H×W float RGB in [0, 1] -> N stacked planes of `fmt` (host arrays). Chroma is worked
    out from RGB averaged over each chroma sample's pixels: the same as averaging Cb and Cr (the
    map is linear), for a quarter of the work in 4:2:0."""
    rgb = rgb.float().clamp(0, 1)
    weight, bias = _ycc_from_rgb(fmt)
    channels = list(rgb.unbind(1))
    luma = _quantise(_mix(channels, weight[0], float(bias[0])), fmt)
    if fmt.family.kind == "gray":
        return [luma]
    if fmt.family.kind == "yuv" and fmt.subsampling != (1, 1):
        channels = list(_box_average(rgb, *fmt.subsampling).unbind(1))
    return [luma] + [_quantise(_mix(channels, weight[i], float(bias[i])), fmt) for i in (1, 2)]


def stack_planes(frames: list[list[np.ndarray]]) -> list[np.ndarray]:
    """Per-frame plane lists -> one N×h×w array per plane."""
    return [np.stack([frame[i] for frame in frames]) for i in range(len(frames[0]))]

