"""Models kept between runs: loading (and the first ncnn conversion) happens once per
(model, scale, device); every run gets a fresh, cheap Upscaler around the cached network."""

from __future__ import annotations

import threading
from functools import lru_cache

from ldl_video import ZOO, SRModel, Upscaler, load_model
from ldl_video.devices import resolve_device
from ldl_video.zoo import weights_present

_LOCK = threading.Lock()


def available_models() -> list[tuple[str, bool, str]]:
    """(name, weights here, description) for every zoo entry."""
    return [(name, weights_present(entry), f"{entry.description}; weights: {entry.source}") for name, entry in ZOO.items()]


def native_scale(name: str) -> int:
    """The zoo model's own scale, 0 for any-scale (classical) models and checkpoints."""
    entry = ZOO.get(name)
    return entry.scale if entry else 0


@lru_cache(maxsize=3)
def _cached(name: str, scale: int, device: str) -> SRModel:
    classical = native_scale(name) == 0 and name in ZOO
    return load_model(name, device=device, scale=scale if classical else None)


def cached_model(name: str, scale: int, device: str) -> SRModel:
    """The model, loaded on `device` the first time and reused afterwards (thread-safe)."""
    concrete = str(resolve_device(device))
    with _LOCK:
        return _cached(name, scale if native_scale(name) == 0 and name in ZOO else 0, concrete)


def cache_info():
    return _cached.cache_info()


def make_upscaler(name: str, scale: int, device: str, tile: int, tile_overlap: int = 16) -> Upscaler:
    return Upscaler(cached_model(name, scale, device), scale=scale, device=device, tile=tile, tile_overlap=tile_overlap)
