"""Models kept between runs: loading (and the first ncnn conversion) happens once per
(model, scale, device); every run gets a fresh, cheap Upscaler around the cached network."""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

from psygnal import Signal

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


def make_upscaler(name: str, scale: int, device: str, tile: int, tile_overlap: int = 16, backend: str = "auto") -> Upscaler:
    return Upscaler(cached_model(name, scale, device), scale=scale, device=device, tile=tile, tile_overlap=tile_overlap,
                    backend=backend)


def backends() -> list[str]:
    """What can run the network here: TensorRT only with it installed and an NVIDIA GPU."""
    import torch

    from ldl_video.backends import tensorrt_installed

    return ["auto", "torch"] + (["tensorrt"] if torch.cuda.is_available() and tensorrt_installed() else [])


class _Events:
    checkpoints_changed = Signal()  # a fine-tuned or browsed checkpoint joined the model lists


events = _Events()
_CHECKPOINTS: dict[str, str] = {}  # label -> path, in the order they came


def add_checkpoint(path: str | Path) -> str:
    """Offer a checkpoint in every widget's model list at once (labelled by its file name);
    returns its value in the lists, the absolute path."""
    path = str(Path(path).expanduser().resolve())
    if path not in _CHECKPOINTS.values():
        label = Path(path).name
        _CHECKPOINTS[path if label in _CHECKPOINTS or label in ZOO else label] = path
        events.checkpoints_changed.emit()
    return path


def checkpoints() -> dict[str, str]:
    return dict(_CHECKPOINTS)


def finetuned_dir() -> Path:
    """Where the Fine-tune widget saves by default; what is there is listed in every session."""
    from ldl_video.zoo import model_dir

    return model_dir() / "finetuned"


def model_choices(trainable: bool = False) -> list[tuple[str, str, bool, str]]:
    """(label, value for load_model, weights here, tooltip): the zoo, the fine-tuned checkpoints
    of earlier sessions, then checkpoints added in this one. `trainable` leaves out classical
    resampling."""
    rows = [(name, name, present, description) for name, present, description in available_models()
            if not (trainable and ZOO[name].kernel)]
    added = set(_CHECKPOINTS.values())
    saved = sorted(p for p in finetuned_dir().glob("*") if p.suffix in (".pth", ".safetensors") and str(p.resolve()) not in added)
    rows += [(p.name, str(p.resolve()), True, f"fine-tuned earlier: {p}") for p in saved]
    return rows + [(label, path, Path(path).is_file(), path) for label, path in _CHECKPOINTS.items()]


def devices() -> list[str]:
    import torch

    return ["auto", "cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
