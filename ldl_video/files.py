"""Outputs that appear under their final name only when complete, and only one writer at a time."""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import LdlError

PARTIAL_MARK = ".ldl-partial-"
LOCK_SUFFIX = ".ldl-lock"


def check_output(path: Path, overwrite: bool) -> None:
    if path.is_dir():
        raise LdlError(f"{path} is a folder; give a file name for the output (e.g. {path / 'out.mkv'})")
    if path.exists() and not overwrite:
        raise LdlError(f"{path} already exists; pass --overwrite to replace it")
    if not path.parent.is_dir():
        raise LdlError(f"the output folder {path.parent} does not exist; create it first")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise LdlError(f"cannot write to the folder {path.parent}: permission denied; pick another OUTPUT")


def partial_path(path: Path) -> Path:
    """The hidden name a result is written under until it is complete (same suffix, so writers
    pick the format from it)."""
    return path.with_name(f".{path.stem}{PARTIAL_MARK}{os.getpid()}{path.suffix}")


def lock_path(path: Path) -> Path:
    return path.with_name(f".{path.name}{LOCK_SUFFIX}")


def _holder_alive(text: str) -> bool:
    host, _, pid = text.partition(":")
    if host != socket.gethostname():
        return True  # another machine's process (a shared folder): we cannot tell, so it may be running
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def claimed(path: Path) -> Iterator[None]:
    """Hold a lock file beside `path` while writing it: a second run writing the same OUTPUT at
    the same time is refused instead of silently replacing the first one's result. A lock left
    by a process that no longer runs (killed with SIGKILL, power cut) is taken over."""
    lock = lock_path(path)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            try:
                holder = lock.read_text().strip()
            except OSError:
                holder = ""
            if holder and _holder_alive(holder):
                raise LdlError(f"another run (process {holder.partition(':')[2]}) is writing {path} now; "
                               "wait for it to finish or pick another OUTPUT") from None
            lock.unlink(missing_ok=True)
        except PermissionError:
            raise LdlError(f"cannot write to the folder {path.parent}: permission denied; pick another OUTPUT") from None
    else:
        raise LdlError(f"another run is writing {path} now; wait for it to finish or pick another OUTPUT")
    try:
        os.write(fd, f"{socket.gethostname()}:{os.getpid()}".encode())
        os.close(fd)
        yield
    finally:
        lock.unlink(missing_ok=True)


def _publish(tmp: Path, path: Path, overwrite: bool) -> None:
    """Give the finished file its name; without `overwrite`, never over a file that appeared
    meanwhile (a link fails where a rename would replace)."""
    if overwrite:
        tmp.replace(path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise LdlError(f"{path} appeared while this run was writing it; nothing replaced "
                       "(pass --overwrite to replace it)") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        if path.exists():  # a file system without hard links: the closest check there is
            raise LdlError(f"{path} appeared while this run was writing it; nothing replaced "
                           "(pass --overwrite to replace it)") from None
        tmp.replace(path)
        return
    tmp.unlink()


@contextmanager
def atomic_output(path: Path, overwrite: bool = True, lock: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path`; give it `path`'s name if the block finishes, delete
    it if it raises or is interrupted. `lock` also refuses a second writer of `path` at the same
    time; `overwrite=False` refuses to replace a file that appeared meanwhile."""
    with claimed(path) if lock else _nothing():
        tmp = partial_path(path)
        try:
            yield tmp
            _publish(tmp, path, overwrite)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if exc.errno == errno.ENOSPC:
                raise LdlError(f"no space left on the device while writing {path}; free space or write elsewhere") from None
            raise
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


@contextmanager
def _nothing() -> Iterator[None]:
    yield
