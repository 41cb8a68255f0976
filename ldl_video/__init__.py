"""ldl-video: LDL super-resolution for video, VapourSynth and napari, from one engine.

The public names load on first use (PEP 562): `ldl-video` and `ldl-train` start by importing
this package, and torch must not load before their error handling is in place, or a Ctrl-C
during start-up would print a traceback instead of one line.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import LdlError

__version__ = "0.1.0"

_WHERE = {
    "blind_artifact_map": "artifacts", "reference_artifact_map": "artifacts",
    "save_checkpoint": "checkpoints",
    "artifact_map": "ldl", "ldl_loss": "ldl",
    "SRModel": "model",
    "Upscaler": "upscaler",
    "DEFAULT_MODEL": "zoo", "ZOO": "zoo", "load_model": "zoo", "model_dir": "zoo",
}

__all__ = ["LdlError", *sorted(_WHERE)]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'ldl_video' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
