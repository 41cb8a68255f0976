"""One model call at a time in the process, on the thread that asks.

VapourSynth asks for frames from several worker threads at once. Letting each run its own model
call would split the cores (or the GPU's memory) between frames that each then take longer; a
lock keeps one call running with all of them, while the other threads copy planes in and out.
A blocked thread waits without the GIL.

(A single dedicated model thread was tried first: handing every frame to it and back cost
milliseconds per frame in GIL hand-overs, up to tens of milliseconds on a busy machine.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable

_model_lock = threading.Lock()


def run[T](function: Callable[..., T], *args: object) -> T:
    """function(*args) once no other model call of this process is running."""
    with _model_lock:
        return function(*args)
