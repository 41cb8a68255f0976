"""Which clip formats the filters take, how their planes become arrays, and the one-line fix
for the formats they do not take."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import FilterError

# VapourSynth's VSColorFamily and VSSampleType values.
GRAY, RGB, YUV = 1, 2, 3
INTEGER, FLOAT = 0, 1

# (colour family, sample type, bits per sample) -> (format name, dtype of a plane)
ACCEPTED: dict[tuple[int, int, int], tuple[str, type]] = {
    (RGB, INTEGER, 8): ("RGB24", np.uint8),
    (RGB, INTEGER, 16): ("RGB48", np.uint16),
    (RGB, FLOAT, 16): ("RGBH", np.float16),
    (RGB, FLOAT, 32): ("RGBS", np.float32),
    (GRAY, INTEGER, 8): ("GRAY8", np.uint8),
    (GRAY, INTEGER, 16): ("GRAY16", np.uint16),
    (GRAY, FLOAT, 16): ("GRAYH", np.float16),
    (GRAY, FLOAT, 32): ("GRAYS", np.float32),
}
ACCEPTED_NAMES = "RGB24, RGB48, RGBH, RGBS or GRAY8, GRAY16, GRAYH, GRAYS"

# A plane as plugin.c passes it: (memoryview, width, height, stride in bytes).
Plane = tuple[memoryview, int, int, int]


@dataclass(frozen=True)
class Layout:
    """How a clip's frames map to the H×W×C (RGB) or H×W (GRAY) arrays Upscaler takes."""

    color_family: int
    sample_type: int
    bits: int
    dtype: type

    def read(self, planes: list[Plane]) -> np.ndarray:
        arrays = [_plane_array(plane, self.dtype) for plane in planes]
        return np.stack(arrays, axis=-1) if len(arrays) > 1 else arrays[0].copy()

    def write(self, planes: list[Plane], frame: np.ndarray) -> None:
        channels = frame[..., None] if frame.ndim == 2 else frame
        for index, plane in enumerate(planes):
            _plane_array(plane, self.dtype)[...] = channels[..., index]


def _plane_array(plane: Plane, dtype: type) -> np.ndarray:
    view, width, height, stride = plane
    item = np.dtype(dtype).itemsize
    return np.frombuffer(view, dtype).reshape(height, stride // item)[:, :width]


def layout_of(clip: dict[str, Any]) -> Layout:
    """The layout of a clip (video info from plugin.c), or FilterError saying how to convert it."""
    family, sample, bits = clip["color_family"], clip["sample_type"], clip["bits"]
    if family == 0 or clip["width"] == 0 or clip["height"] == 0:
        raise FilterError(
            "clip has no fixed format or frame size; give it one first, "
            'e.g. clip = core.resize.Bicubic(clip, width=W, height=H, format=vs.RGBS, matrix_in_s="709")'
        )
    accepted = ACCEPTED.get((family, sample, bits))
    if accepted is None:
        raise FilterError(f"{clip['format_name']} is not taken (only {ACCEPTED_NAMES}); {_conversion(clip)}")
    return Layout(family, sample, bits, accepted[1])


def _conversion(clip: dict[str, Any]) -> str:
    family, name = clip["color_family"], clip["format_name"]
    if family == YUV:
        target = _nearest(RGB, clip["sample_type"], clip["bits"])
        matrix = "709" if clip["width"] > 1024 or clip["height"] > 576 else "170m"
        return (
            f'convert it with clip = core.resize.Bicubic(clip, format=vs.{target}, matrix_in_s="{matrix}") '
            f"(the matrix the source was made with: \"709\" for HD, \"170m\" for SD) and back after with "
            f'core.resize.Bicubic(clip, format=vs.{name}, matrix_s="{matrix}")'
        )
    return f"convert it with clip = core.resize.Point(clip, format=vs.{_nearest(family, clip['sample_type'], clip['bits'])})"


def _nearest(family: int, sample: int, bits: int) -> str:
    """The accepted format of `family` (RGB, or GRAY) that keeps the most of the clip's depth."""
    if sample == FLOAT or bits > 16:
        key = (family, FLOAT, 32)
    else:
        key = (family, INTEGER, 8 if bits == 8 else 16)
    return ACCEPTED[key][0]
