"""Which axes of a layer's data are the planes to upscale, and which layers can be upscaled.

A plane is the last two axes of the data (before the colour axis of an RGB(A) layer); every
other axis (time, z, channel, ...) is kept and walked index by index, so lazy arrays (dask,
zarr) are read one plane at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ldl_video.errors import LdlError

MIN_SIDE = 4  # smaller planes have no structure for a network to work on


class UnsuitableLayer(LdlError):
    """The chosen layer cannot be upscaled; the message says why and what to do."""


@dataclass(frozen=True)
class PlaneLayout:
    shape: tuple[int, ...]  # the layer's data shape
    rgb: bool
    channel_axis: int | None = None  # a leading axis whose entries are normalised separately

    @property
    def leading_shape(self) -> tuple[int, ...]:
        return self.shape[: len(self.shape) - (3 if self.rgb else 2)]

    @property
    def height(self) -> int:
        return self.shape[len(self.leading_shape)]

    @property
    def width(self) -> int:
        return self.shape[len(self.leading_shape) + 1]

    @property
    def colours(self) -> int:
        return self.shape[-1] if self.rgb else 1

    @property
    def plane_count(self) -> int:
        return int(np.prod(self.leading_shape, dtype=np.int64))

    @property
    def channels(self) -> int:
        return 1 if self.channel_axis is None else self.shape[self.channel_axis]

    def planes(self) -> Iterator[tuple[int, ...]]:
        """Indices into the leading axes, in C order (empty tuple for a single plane)."""
        yield from np.ndindex(*self.leading_shape)

    def channel_of(self, index: tuple[int, ...]) -> int:
        return 0 if self.channel_axis is None else index[self.channel_axis]

    def output_shape(self, height: int, width: int) -> tuple[int, ...]:
        return (*self.leading_shape, height, width) + ((self.colours,) if self.rgb else ())

    def map_shape(self, height: int, width: int) -> tuple[int, ...]:
        return (*self.leading_shape, height, width)


def plane_layout(layer, channel_axis: int | None = None) -> PlaneLayout:
    """The layout of a napari layer, or UnsuitableLayer saying why it cannot be upscaled."""
    from napari.layers import Image

    name = getattr(layer, "name", "?")
    if not isinstance(layer, Image):
        kind = type(layer).__name__
        raise UnsuitableLayer(f"“{name}” is a {kind} layer; napari-ldl upscales image layers "
                              f"(choose one, or add your data as an image)")
    if layer.multiscale:
        raise UnsuitableLayer(f"“{name}” is multiscale; add its level of interest as a plain image layer "
                              f"(viewer.add_image(layer.data[k])) and upscale that")
    dtype = np.dtype(layer.data.dtype)
    if dtype.kind not in "uif":
        raise UnsuitableLayer(f"“{name}” holds {dtype} pixels; napari-ldl takes integer or float images (convert with .astype)")
    shape = tuple(int(n) for n in layer.data.shape)
    rgb = bool(layer.rgb)
    if rgb and shape[-1] not in (3, 4):
        raise UnsuitableLayer(f"“{name}” is RGB with {shape[-1]} colours; napari-ldl takes RGB or RGBA")
    layout = PlaneLayout(shape, rgb)
    if min(layout.height, layout.width) < MIN_SIDE:
        raise UnsuitableLayer(f"“{name}” has {layout.height}×{layout.width}-pixel planes; napari-ldl needs at least "
                              f"{MIN_SIDE}×{MIN_SIDE} (the last two axes{' before the colours' if rgb else ''} are the plane)")
    if channel_axis is not None:
        if not 0 <= channel_axis < len(layout.leading_shape):
            raise UnsuitableLayer(f"channel axis {channel_axis} is not one of the non-plane axes of “{name}” "
                                  f"(0 to {len(layout.leading_shape) - 1})")
        layout = PlaneLayout(shape, rgb, channel_axis)
    return layout
