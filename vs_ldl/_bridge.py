"""What plugin.c calls. Kept import-light: every VapourSynth core that loads the plugin imports
this module, so torch and the engine are imported only when a filter is created."""

from __future__ import annotations

from typing import Any

_COMMON = ("clip:vnode;scale:float:opt;model:data:opt;tile:int:opt;overlap:int:opt;device:data:opt;precision:data:opt;"
           "backend:data:opt;")

# (name, VapourSynth argument string, return type), registered in this order.
FUNCTIONS = [
    ("Upscale", _COMMON, "clip:vnode;"),
    ("ArtifactMap", _COMMON + "raw:int:opt;", "clip:vnode;"),
]


def functions() -> list[tuple[str, str, str]]:
    return list(FUNCTIONS)


def create(name: str, clip: dict[str, Any], args: dict[str, Any]) -> tuple[object, int, int, int, int, int, tuple[str, ...]]:
    """Build the filter `name` for a clip (its video info as a dict) with the user's arguments.

    Returns (filter, color_family, sample_type, bits_per_sample, width, height) of the output
    and the names of the source's frame properties that the output must not carry;
    raises with a one-line message (shown by VapourSynth as is) when anything is wrong.
    """
    from .filters import FilterError, build

    try:
        return build(name, clip, args)
    except FilterError as error:
        raise FilterError(f"{name}: {error}") from None
    except Exception as error:  # a bug or an engine failure: still one line, with its kind
        raise FilterError(f"{name}: {type(error).__name__}: {error}") from None
