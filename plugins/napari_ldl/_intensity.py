"""Intensity normalisation: any integer or float data to [0, 1] for the engine, and back.

The networks were trained on 8-bit photographs. A 16-bit fluorescence image that fills only
100..4000 of 0..65535 would look black to them, so by default everything but 8-bit data is
stretched from its own range, and the result is mapped back through the same (low, high) pair:
16-bit data stays 16-bit with its values meaningful. The pair is recorded in the output
layer's metadata.

Methods: `auto` (8-bit: the dtype range; the rest: min/max), `min/max` (exact, clips nothing),
`percentile` (0.1 to 99.9 %, robust to hot pixels, clips beyond them), `dtype range`
(0..255, 0..65535; float data must already lie in [0, 1]).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._planes import PlaneLayout

METHODS = ("auto", "min/max", "percentile", "dtype range")
PERCENTILES = (0.1, 99.9)
_SAMPLE_PLANES = 64  # percentiles are estimated from at most this many planes
_SAMPLE_PIXELS = 1 << 18  # ... and about this many pixels from each


@dataclass(frozen=True)
class Normalisation:
    method: str
    low: tuple[float, ...]  # one per channel
    high: tuple[float, ...]

    def to_unit(self, plane: np.ndarray, channel: int = 0) -> np.ndarray:
        """A plane as float32 in [0, 1] (NaN -> 0)."""
        low, high = self.low[channel], self.high[channel]
        unit = (np.asarray(plane, dtype=np.float64) - low) / (high - low)
        return np.nan_to_num(np.clip(unit, 0, 1), nan=0.0).astype(np.float32)

    def from_unit(self, unit: np.ndarray, dtype: np.dtype, channel: int = 0) -> np.ndarray:
        """The inverse of to_unit, in `dtype` (integers rounded and kept in range)."""
        low, high = self.low[channel], self.high[channel]
        values = np.asarray(unit, dtype=np.float64) * (high - low) + low
        dtype = np.dtype(dtype)
        if dtype.kind in "ui":
            info = np.iinfo(dtype)
            return np.clip(np.rint(values), info.min, info.max).astype(dtype)
        return values.astype(dtype)

    def as_metadata(self) -> dict:
        return {"method": self.method, "low": list(self.low), "high": list(self.high),
                "maps": "value -> (value - low) / (high - low) for the model, and back"}


def resolve_method(method: str, dtype: np.dtype) -> str:
    if method not in METHODS:
        raise ValueError(f"unknown normalisation {method!r}; choose one of {', '.join(METHODS)}")
    if method == "auto":
        return "dtype range" if np.dtype(dtype) == np.uint8 else "min/max"
    return method


def measure(data, layout: PlaneLayout, method: str, on_plane: Callable[[int, int], None] | None = None) -> Normalisation:
    """The (low, high) pair per channel for `method`, reading the data plane by plane.
    `on_plane(done, total)` is called after each plane read (raise from it to stop)."""
    dtype = np.dtype(data.dtype)
    method = resolve_method(method, dtype)
    channels = layout.channels
    if method == "dtype range":
        low, high = _dtype_range(dtype)
        return Normalisation(method, (low,) * channels, (high,) * channels)
    planes = list(layout.planes())
    if method == "percentile" and len(planes) > _SAMPLE_PLANES:
        planes = [planes[i] for i in np.linspace(0, len(planes) - 1, _SAMPLE_PLANES).round().astype(int)]
    lows, highs = [np.inf] * channels, [-np.inf] * channels
    samples: list[list[np.ndarray]] = [[] for _ in range(channels)]
    for done, index in enumerate(planes, 1):
        plane = np.asarray(data[index])
        channel = layout.channel_of(index)
        if method == "min/max":
            if np.isfinite(plane).any():
                lows[channel] = min(lows[channel], float(np.nanmin(plane)))
                highs[channel] = max(highs[channel], float(np.nanmax(plane)))
        else:
            step = max(1, int(np.sqrt(plane.size / _SAMPLE_PIXELS)))
            samples[channel].append(plane[::step, ::step].ravel())
        if on_plane:
            on_plane(done, len(planes))
    if method == "percentile":
        for channel, parts in enumerate(samples):
            values = np.concatenate(parts).astype(np.float64) if parts else np.array([np.nan])
            if np.isfinite(values).any():
                lows[channel], highs[channel] = (float(v) for v in np.nanpercentile(values, PERCENTILES))
    pairs = [_usable(lo, hi) for lo, hi in zip(lows, highs, strict=True)]
    return Normalisation(method, tuple(p[0] for p in pairs), tuple(p[1] for p in pairs))


def _dtype_range(dtype: np.dtype) -> tuple[float, float]:
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return float(info.min), float(info.max)
    return 0.0, 1.0


def _usable(low: float, high: float) -> tuple[float, float]:
    """A pair with high > low (a constant or empty channel gets a unit-wide range)."""
    if not np.isfinite(low) or not np.isfinite(high):
        return 0.0, 1.0
    return (low, high) if high > low else (low, low + 1.0)
