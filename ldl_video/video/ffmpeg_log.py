"""FFmpeg's error log, watched while a file is read.

Some damage never reaches PyAV as an exception: the Matroska demuxer that meets garbage logs
"Element at 0x... exceeds containing master element", resynchronises at the next cluster and
carries on, so frames go missing without a failed call. Only the log tells. PyAV drops FFmpeg's
log unless a level is set; while any reader needs it, errors (and nothing chattier) are captured
into a list instead of reaching the terminal, and the caller's own setting comes back after.
The list is folded into counts per FFmpeg component as reading goes, so a long file full of
decoder complaints does not grow memory.
"""

from __future__ import annotations

import threading
from collections import Counter

import av
import av.logging


class ErrorLog:
    """Shared by every open reader in the process; `watch()` returns the counts a reader's part
    starts from."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._capture: av.logging.Capture | None = None
        self._logs: list[tuple[int, str, str]] = []
        self._counts: Counter[str] = Counter()
        self._previous_level: int | None = None
        self._previous_skip = True

    def watch(self) -> Counter[str]:
        with self._lock:
            if self._users == 0:
                self._previous_level = av.logging.get_level()
                # PyAV folds a message equal to the one before it; the same damage read twice
                # (a second run on the same file) must be seen twice.
                self._previous_skip = av.logging.get_skip_repeated()
                av.logging.set_skip_repeated(False)
                self._capture = av.logging.Capture(local=False)
                self._logs = self._capture.__enter__()
                av.logging.set_level(av.logging.ERROR)
            self._users += 1
            self._fold()
            return Counter(self._counts)

    def _fold(self) -> None:
        taken = len(self._logs)  # PyAV may append meanwhile (it holds the GIL to do so)
        for level, source, _ in self._logs[:taken]:
            if level <= av.logging.ERROR:
                self._counts[source] += 1
        del self._logs[:taken]

    def fold(self) -> None:
        with self._lock:
            if self._capture is not None:
                self._fold()

    def errors_from(self, name: str, mark: Counter[str]) -> int:
        """How many errors the FFmpeg component `name` (a demuxer's format name, e.g.
        'matroska,webm') logged since `mark`."""
        with self._lock:
            if self._capture is not None:
                self._fold()
            return self._counts[name] - mark[name]

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._capture is not None:
                av.logging.set_level(self._previous_level)
                av.logging.set_skip_repeated(self._previous_skip)
                self._capture.__exit__(None, None, None)
                self._capture, self._logs = None, []
                self._counts.clear()


ERRORS = ErrorLog()
