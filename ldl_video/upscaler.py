"""Upscaler: runs an SRModel on frames with the device, precision, tiling and batching chosen.

Every front end hands arrays to this class and nothing else computes super-resolution.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from .backends import make_backend
from .devices import resolve_device, resolve_precision
from .errors import LdlError
from .model import SRModel
from .resample import resize

ProgressHook = Callable[[int, int], None]


@dataclass(frozen=True)
class _Window:
    y: int
    x: int
    h: int
    w: int


def _spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """Window spans along one axis: a core every `tile` pixels, widened by `overlap` on each
    side that has a neighbour (clamped at the image border, so border windows are smaller)."""
    return [(max(core - overlap, 0), min(core + tile + overlap, length)) for core in range(0, length, tile)]


def _ramp(length: int, fade: int, at_start: bool, at_end: bool) -> torch.Tensor:
    """Blend weights along one axis of a tile. On a side that faces another tile the weight is
    0 over the outer half of the `fade` band (pixels there lack context), then rises linearly to
    1 across the inner half; on a side at the image border it stays 1."""
    weight = torch.ones(length)
    fade = min(fade, length // 2)
    if fade > 0:  # a band of one pixel is all outer half: weight 0 (a scale-1 network at overlap 1)
        half = fade / 2
        ramp = ((torch.arange(fade, dtype=torch.float32) + 0.5 - half) / half).clamp(1e-6, 1)
        if not at_start:
            weight[:fade] = ramp
        if not at_end:
            weight[length - fade :] = ramp.flip(0)
    return weight


def _download(tensor: torch.Tensor) -> np.ndarray:
    """A tensor's values as a host array. From CUDA, through page-locked memory (several times
    faster than a pageable copy; torch's host allocator keeps and reuses the blocks)."""
    if tensor.device.type != "cuda":
        return tensor.contiguous().numpy()
    host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
    host.copy_(tensor, non_blocking=True)
    torch.cuda.current_stream(tensor.device).synchronize()
    return host.numpy()


class Upscaler:
    """Upscale frames with one model.

    frames: H×W, H×W×C or N×H×W×C (C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA), uint8, uint16 or
    float32 in [0, 1]; the result has the same layout and dtype. Alpha is resampled with
    Lanczos (a network would invent edges in it). `scale` other than the model's own resamples
    the network's output to it. The Upscaler moves `model.net` to its device, precision and
    memory layout in place: load a model once per Upscaler when precisions differ.
    `backend` picks what runs the network (auto, torch, tensorrt; see ldl_video.backends);
    precision auto is bf16 on CPUs with native bf16 for the architectures measured close to
    fp32 in it (SRModel.cpu_bf16), fp32 on other CPUs, fp16 on CUDA.
    """

    def __init__(
        self,
        model: SRModel | str,
        scale: float | None = None,
        device: str | torch.device = "auto",
        precision: str = "auto",
        tile: int = 0,
        tile_overlap: int = 16,
        batch_size: int = 1,
        backend: str = "auto",
    ) -> None:
        if isinstance(model, str):
            from .zoo import load_model

            model = load_model(model, device="cpu", scale=int(scale) if scale else None)
        if tile < 0 or tile_overlap < 0:
            raise LdlError("tile and tile overlap must be 0 or more")
        if batch_size < 1:
            raise LdlError("batch size must be 1 or more")
        self.model = model
        self.scale = float(scale) if scale else float(model.scale)
        if self.scale <= 0:
            raise LdlError(f"scale must be positive, not {scale}")
        self.device = resolve_device(device)
        self.dtype = resolve_precision(precision, self.device, model.supports_fp16, model.supports_bf16, model.cpu_bf16)
        self.tile = tile
        self.tile_overlap = tile_overlap
        self.batch_size = batch_size
        self.backend = make_backend(backend, model, self.device, self.dtype, max_batch=batch_size)

    @property
    def channels_last(self) -> bool:
        """Whether the network runs in NHWC layout."""
        return getattr(self.backend, "channels_last", False)

    @property
    def net(self) -> torch.nn.Module:
        """The network as the torch backend runs it (the model's own module otherwise)."""
        return getattr(self.backend, "net", self.model.net)

    # ---- arrays -----------------------------------------------------------------------
    def upscale(self, frames: np.ndarray, progress: ProgressHook | None = None) -> np.ndarray:
        """`progress(done, total)` is called before the first and after each network call (tiles
        or the whole batch); an exception raised from it aborts the work (a cancel)."""
        array = np.asarray(frames)
        layout = {2: "HW", 3: "HWC", 4: "NHWC"}.get(array.ndim)
        if layout is None or (layout == "HWC" and array.shape[-1] > 4) or (layout == "NHWC" and array.shape[-1] > 4):
            raise LdlError(f"frames must be H×W, H×W×C or N×H×W×C with C ≤ 4, not shape {array.shape}")
        batch = array.reshape((1,) * (4 - array.ndim) + array.shape) if layout != "HW" else array[None, :, :, None]
        # Untiled, frames go to the device as they are (uint8 is a quarter of float32's bytes) and
        # are converted there; tiled, the frame stays on the host and only windows travel.
        staging = torch.device("cpu") if self.tile else self.device
        outputs = [self.upscale_tensor(self.to_tensor(chunk, staging), progress) for chunk in self._chunks(batch)]
        result = self.from_tensor(torch.cat(outputs), array.dtype.newbyteorder("="))  # native byte order back
        if layout == "HW":
            return result[0, :, :, 0]
        return result[0] if layout == "HWC" else result

    def _chunks(self, batch: np.ndarray) -> Iterator[np.ndarray]:
        step = 1 if self.tile else self.batch_size
        for start in range(0, batch.shape[0], step):
            yield batch[start : start + step]

    @staticmethod
    def to_tensor(batch: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
        """N×H×W×C array -> N×C×H×W float32 in [0, 1] on `device`."""
        if not batch.dtype.isnative:  # big-endian data from raw readers, FITS, np.frombuffer
            batch = batch.astype(batch.dtype.newbyteorder("="))
        if batch.dtype == np.uint8:
            scale = 255.0
        elif batch.dtype == np.uint16:
            scale = 65535.0
        elif batch.dtype in (np.float32, np.float64, np.float16):
            scale = 1.0
        else:
            raise LdlError(f"unsupported pixel type {batch.dtype}; use uint8, uint16 or float32 in [0, 1]")
        if batch.dtype == np.uint16:  # torch has no uint16 arithmetic on every device
            batch = batch.astype(np.int32)
        elif not batch.flags.writeable:  # torch wants to own writable memory (e.g. Pillow's arrays)
            batch = batch.copy()
        tensor = torch.from_numpy(np.ascontiguousarray(batch)).to(device, non_blocking=True).permute(0, 3, 1, 2)
        return tensor.float().div_(scale) if scale != 1.0 else tensor.float()

    @staticmethod
    def from_tensor(tensor: torch.Tensor, dtype: np.dtype) -> np.ndarray:
        """N×C×H×W float in [0, 1] -> N×H×W×C array of `dtype`, quantised where the tensor is
        (GPU results come down already as integers, through page-locked memory)."""
        tensor = tensor.clamp(0, 1).permute(0, 2, 3, 1)
        if dtype == np.uint8:
            return _download(tensor.mul(255).round_().to(torch.uint8))
        if dtype == np.uint16:
            return _download(tensor.mul(65535).round_().to(torch.int32)).astype(np.uint16)
        return _download(tensor.float()).astype(dtype, copy=False)

    # ---- tensors ------------------------------------------------------------------------
    def output_size(self, height: int, width: int) -> tuple[int, int]:
        return round(height * self.scale), round(width * self.scale)

    @torch.inference_mode()
    def upscale_tensor(self, x: torch.Tensor, progress: ProgressHook | None = None) -> torch.Tensor:
        """N×C×H×W float in [0, 1] (C = 1..4, any device) -> N×C×H'×W' float32 on the
        Upscaler's device. Tiled, the input may stay on the host: only windows travel."""
        if x.ndim != 4 or not 1 <= x.shape[1] <= 4:
            raise LdlError(f"expected N×C×H×W with C ≤ 4, got {tuple(x.shape)}")
        channels = x.shape[1]
        colour = x[:, :3] if channels >= 3 else x[:, :1].expand(-1, 3, -1, -1)
        out = self._run_rgb(colour, progress)
        if channels < 3:
            out = out.mean(dim=1, keepdim=True)
        if channels in (2, 4):
            alpha = x[:, -1:].to(out.device, torch.float32)
            out = torch.cat([out, resize(alpha, *out.shape[-2:], kernel="lanczos").clamp_(0, 1)], dim=1)
        return out

    def _run_rgb(self, x: torch.Tensor, progress: ProgressHook | None) -> torch.Tensor:
        h, w = x.shape[-2:]
        if self.tile and (h > self.tile or w > self.tile):
            out = self._tiled(x, progress)
        else:
            if progress:
                progress(0, 1)  # a chance to cancel before the network starts
            out = self._network(x)
            if progress:
                progress(1, 1)
        target = self.output_size(h, w)
        if out.shape[-2:] != target:
            out = resize(out, *target, kernel="bicubic")
        return out.clamp_(0, 1)

    def _network(self, x: torch.Tensor) -> torch.Tensor:
        """The bare network on a batch, padded to the size it needs; float32 out."""
        x = x.to(self.device, self.backend.input_dtype, non_blocking=True)
        h, w = x.shape[-2:]
        multiple = self.model.size_multiple
        pad_h, pad_w = (-h) % multiple, (-w) % multiple
        if pad_h or pad_w:
            mode = "reflect" if pad_h < h and pad_w < w else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        out = self.backend(x)
        s = self.model.scale
        return out[..., : h * s, : w * s].float()

    def _windows(self, h: int, w: int) -> list[_Window]:
        ys, xs = _spans(h, self.tile, self.tile_overlap), _spans(w, self.tile, self.tile_overlap)
        return [_Window(y0, x0, y1 - y0, x1 - x0) for y0, y1 in ys for x0, x1 in xs]

    def _batches(self, windows: list[_Window]) -> list[list[_Window]]:
        """Windows of equal size, `batch_size` at a time (border windows are smaller)."""
        by_size: dict[tuple[int, int], list[_Window]] = {}
        for window in windows:
            by_size.setdefault((window.h, window.w), []).append(window)
        return [group[i : i + self.batch_size] for group in by_size.values() for i in range(0, len(group), self.batch_size)]

    def _tiled(self, x: torch.Tensor, progress: ProgressHook | None) -> torch.Tensor:
        """Overlapping windows, run `batch_size` at a time, blended with feathered weights on the
        device. The input frame stays where it is; only windows travel to the device."""
        n, _, h, w = x.shape
        s = self.model.scale
        windows = self._windows(h, w)
        out = torch.zeros(n, 3, h * s, w * s, device=self.device)
        weight_sum = torch.zeros(1, 1, h * s, w * s, device=self.device)
        fade = self.tile_overlap * s
        batches = self._batches(windows)
        done = 0
        if progress:
            progress(0, n * len(windows))
        for frame in range(n):
            for group in batches:
                crops = torch.cat([x[frame : frame + 1, :, g.y : g.y + g.h, g.x : g.x + g.w] for g in group])
                results = self._network(crops)
                for g, result in zip(group, results, strict=True):
                    wy = _ramp(g.h * s, fade, g.y == 0, g.y + g.h == h).to(self.device)
                    wx = _ramp(g.w * s, fade, g.x == 0, g.x + g.w == w).to(self.device)
                    weight = wy[:, None] * wx[None, :]
                    region = (slice(g.y * s, (g.y + g.h) * s), slice(g.x * s, (g.x + g.w) * s))
                    out[frame, :, region[0], region[1]] += result * weight
                    if frame == 0:
                        weight_sum[0, 0, region[0], region[1]] += weight
                done += len(group)
                if progress:
                    progress(done, n * len(windows))
        return out / weight_sum
