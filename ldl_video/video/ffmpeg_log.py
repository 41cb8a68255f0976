"""FFmpeg's error log, watched while a file is read.

Some damage never reaches PyAV as an exception: the Matroska demuxer that meets garbage logs
"Element at 0x... exceeds containing master element", resynchronises at the next cluster and
carries on, so frames go missing without a failed call. Only the log tells. PyAV drops FFmpeg's
log unless a level is set; while any reader needs it, errors (and nothing chattier) are captured
into a list instead of reaching the terminal, and the caller's own setting comes back after.
"""

from __future__ import annotations

import threading

import av
import av.logging


class ErrorLog:
    """Shared by every open reader in the process; `watch()` marks where a reader's part begins."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._capture: av.logging.Capture | None = None
        self._logs: list[tuple[int, str, str]] = []
        self._previous_level: int | None = None
        self._previous_skip = True

    def watch(self) -> int:
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
            return len(self._logs)

    def errors_from(self, name: str, mark: int) -> list[str]:
        """Error messages logged by the FFmpeg component `name` (a demuxer's format name, e.g.
        'matroska,webm') since `mark`."""
        return [message.strip() for level, source, message in list(self._logs[mark:])
                if source == name and level <= av.logging.ERROR]

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._capture is not None:
                av.logging.set_level(self._previous_level)
                av.logging.set_skip_repeated(self._previous_skip)
                self._capture.__exit__(None, None, None)
                self._capture, self._logs = None, []


ERRORS = ErrorLog()
