"""The ldl filters: arguments checked once, the model loaded once per filter instance, frames
handed to the engine's Upscaler."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import runner
from .errors import FilterError
from .formats import FLOAT, GRAY, Layout, Plane, layout_of

DEFAULT_MODEL = "realesrgan-x4plus"  # ldl_video.DEFAULT_MODEL, without importing torch to say so
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
BACKENDS = ("auto", "torch", "tensorrt", "openvino")  # ldl_video.backends.BACKENDS, without importing torch


@dataclass(frozen=True)
class Options:
    model: str = DEFAULT_MODEL
    scale: float | None = None  # None: the model's own
    tile: int = 0
    overlap: int = 16
    device: str = "auto"
    precision: str = "auto"
    raw: bool = False
    backend: str = "auto"


def parse_options(args: dict[str, Any]) -> Options:
    """The user's arguments, checked; each error names its parameter."""
    options = Options(**{key: value for key, value in args.items() if key in Options.__dataclass_fields__})
    scale = options.scale
    if scale is not None and not (math.isfinite(scale) and 0 < scale <= 16):
        raise FilterError(f"scale={scale:g} is out of range; give a factor above 0 and up to 16, e.g. scale=2")
    if not options.model.strip():
        raise FilterError('model="" names no model; give a name from `ldl-video models` or a checkpoint path')
    if options.tile < 0:
        raise FilterError(f"tile={options.tile} is negative; use tile=0 for whole frames or a tile size in pixels, e.g. tile=256")
    if options.overlap < 0:
        raise FilterError(f"overlap={options.overlap} is negative; use 0 or more pixels, e.g. overlap=16")
    device = _check_device(options.device)
    precision = options.precision.strip().lower()
    if precision not in PRECISIONS:
        raise FilterError(f'precision="{options.precision}" is unknown; use "auto", "fp32", "fp16" or "bf16"')
    if precision == "fp16" and (device == "cpu" or (device == "auto" and not _cuda_count())):
        raise FilterError('precision="fp16" needs a CUDA device; on the CPU use precision="fp32" or "bf16"')
    backend = options.backend.strip().lower()
    if backend not in BACKENDS:
        raise FilterError(f'backend="{options.backend}" is unknown; use "auto", "torch" or "tensorrt"')
    return Options(options.model, scale, options.tile, options.overlap, device, precision, bool(options.raw), backend)


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _check_device(value: str) -> str:
    text = value.strip().lower()
    if text in ("auto", "cpu"):
        return text
    match = re.fullmatch(r"cuda(?::(\d+))?", text)
    if not match:
        raise FilterError(f'device="{value}" is unknown; use "auto", "cpu", "cuda" or "cuda:N"')
    count = _cuda_count()
    if count == 0:
        raise FilterError(f'device="{value}" but no CUDA GPU is usable here; use device="cpu" or "auto"')
    if int(match.group(1) or 0) >= count:
        raise FilterError(f'device="{value}" does not exist: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}')
    return text


@contextmanager
def _blame(parameter: str, value: object) -> Iterator[None]:
    """Engine errors raised inside get the parameter they came from in front."""
    from ldl_video.errors import LdlError

    try:
        yield
    except LdlError as error:
        shown = f'"{value}"' if isinstance(value, str) else value
        raise FilterError(f"{parameter}={shown}: {error}") from None


class _Filter:
    """Shared by both filters: the clip's layout, the Upscaler, the output size."""

    name = ""
    dropped_props: tuple[str, ...] = ()  # frame properties of the source the output must not carry

    def __init__(self, clip: dict[str, Any], options: Options) -> None:
        from ldl_video.upscaler import Upscaler
        from ldl_video.zoo import load_model

        self.layout = layout_of(clip)
        self.options = options
        scale = options.scale
        with _blame("model", options.model):
            model = load_model(options.model, device="cpu", scale=max(1, round(scale)) if scale else None)
        with _blame("backend", options.backend):  # before the Upscaler, whose errors are blamed on precision
            from ldl_video.backends import resolve_backend
            from ldl_video.devices import resolve_device

            resolve_backend(options.backend, resolve_device(options.device))
        with _blame("precision", options.precision):
            self.upscaler = Upscaler(model, scale=scale, device=options.device, precision=options.precision,
                                     tile=options.tile, tile_overlap=options.overlap, backend=options.backend)
        self.height, self.width = self.upscaler.output_size(clip["height"], clip["width"])
        if self.height < 1 or self.width < 1:
            raise FilterError(f"scale={self.upscaler.scale:g} leaves no pixels of a {clip['width']}×{clip['height']} clip")

    def output_format(self) -> tuple[int, int, int]:
        """(colour family, sample type, bits per sample) of the output."""
        return self.layout.color_family, self.layout.sample_type, self.layout.bits

    def process(self, n: int, src: list[Plane], dst: list[Plane]) -> None:
        """Fill the planes of output frame n from those of input frame n (called by plugin.c)."""
        try:
            frame = self.layout.read(src)
            self.write(dst, runner.run(self.compute, frame))
        except Exception as error:
            raise FilterError(f"{self.name}: frame {n}: {type(error).__name__}: {error}") from None

    def compute(self, frame: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def write(self, dst: list[Plane], result: np.ndarray) -> None:
        self.layout.write(dst, result)


class Upscale(_Filter):
    """The upscaled clip, in the input's format."""

    name = "Upscale"

    def compute(self, frame: np.ndarray) -> np.ndarray:
        return self.upscaler.upscale(frame)


class ArtifactMap(_Filter):
    """The blind artifact map of Upscale's output, GRAYS at its size: the display curve
    (0 nothing suspicious, toward 1 strong) unless raw=1 asks for the map's own values."""

    name = "ArtifactMap"
    dropped_props = ("_Matrix", "_ChromaLocation")  # a map is no colour picture; resize refuses GRAY with an RGB _Matrix
    _GRAYS = Layout(GRAY, FLOAT, 32, np.float32)

    def output_format(self) -> tuple[int, int, int]:
        return GRAY, FLOAT, 32

    def compute(self, frame: np.ndarray) -> np.ndarray:
        from ldl_video.artifacts import blind_artifact_map, to_display

        batch = frame[None] if frame.ndim == 3 else frame[None, :, :, None]
        weights = blind_artifact_map(self.upscaler, self.upscaler.to_tensor(batch))
        if not self.options.raw:
            weights = to_display(weights)
        return weights[0, 0].float().cpu().numpy()

    def write(self, dst: list[Plane], result: np.ndarray) -> None:
        self._GRAYS.write(dst, result)


FILTERS: dict[str, type[_Filter]] = {"Upscale": Upscale, "ArtifactMap": ArtifactMap}


def build(name: str, clip: dict[str, Any], args: dict[str, Any]) -> tuple[_Filter, int, int, int, int, int, tuple[str, ...]]:
    """A filter for plugin.c: (filter, colour family, sample type, bits, width, height, dropped frame properties)."""
    layout_of(clip)  # a wrong format is reported before any model is loaded
    options = parse_options(args)
    instance = FILTERS[name](clip, options)
    return (instance, *instance.output_format(), instance.width, instance.height, instance.dropped_props)
