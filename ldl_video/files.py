"""Outputs that appear under their final name only when complete."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import LdlError


def check_output(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise LdlError(f"{path} already exists; pass --overwrite to replace it")
    if path.is_dir():
        raise LdlError(f"{path} is a folder; give a file name for the output")
    if not path.parent.is_dir():
        raise LdlError(f"the output folder {path.parent} does not exist; create it first")


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` (same suffix, so writers pick the format from it);
    rename it to `path` if the block finishes, delete it if it raises or is interrupted."""
    tmp = path.with_name(f".{path.stem}.ldl-partial-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno == 28:  # ENOSPC
            raise LdlError(f"no space left on the device while writing {path}; free space or write elsewhere") from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
