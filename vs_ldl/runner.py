"""One thread runs every model call of every ldl filter in the process.

VapourSynth asks for frames from its own worker threads. Run straight from them, torch would
build an OpenMP thread pool per calling thread (pools that spin and fight over the cores) and
several frames would compete for the same GPU memory at once. Funnelling the calls through one
thread keeps one warm pool and one model call at a time; the VapourSynth threads meanwhile do
the cheap work of copying planes in and out, waiting with the GIL released.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

_executor: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def run[T](function: Callable[..., T], *args: object) -> T:
    """function(*args) on the model thread; blocks (without the GIL) until it is done."""
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vs_ldl-model")
    return _executor.submit(function, *args).result()
