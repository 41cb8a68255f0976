"""The one exception type whose message is shown to users as is, and how commands report."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class LdlError(Exception):
    """A problem the user can fix; str(error) is a one-line message saying what to do."""


def one_line(exc: BaseException) -> str:
    text = str(exc)
    # an LdlError raised in a worker (DataLoader, thread) can come back wrapped with its traceback
    marker = "LdlError: "
    if marker in text:
        return text.rsplit(marker, 1)[1].strip().splitlines()[0]
    return text.splitlines()[0] if text else ""


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP (a `timeout`, a closed SSH session, a scheduler ending the job), raised
    where Ctrl-C would be so that the same clean-up runs: partial files deleted, locks released."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


# Signals that arrived while a command ran. An interrupt that lands inside an import can come
# out as another error (a half-imported C extension refuses a second load); it is still the
# interrupt the user asked for.
_received: list[int] = []


_interrupt_notes: list[str] = []


def add_interrupt_note(text: str) -> None:
    """A clause for the interrupt's one-line message, e.g. where the finished work was kept."""
    _interrupt_notes.append(text)


def signal_received() -> bool:
    """Whether Ctrl-C, SIGTERM or SIGHUP arrived during this command: an error caught after one
    is the interrupt's doing, and a loop over files must stop rather than go on."""
    return bool(_received)


def raise_if_interrupted() -> None:
    """Raise a received Ctrl-C, SIGTERM or SIGHUP again where it cannot be lost: a signal that
    arrives while Python runs a finaliser or a C library's callback raises there, and there the
    exception is ignored (the run would go on and exit 0). Long loops call this."""
    if _received:
        raise KeyboardInterrupt if _received[0] == signal.SIGINT else Stopped(_received[0])


def _stop(signum: int, frame) -> None:
    _received.append(signum)
    signal.signal(signum, signal.SIG_DFL)  # a second one ends the process at once, clean-up or not
    raise Stopped(signum)


def _interrupt(signum: int, frame) -> None:
    _received.append(signum)
    raise KeyboardInterrupt


@contextmanager
def stop_signals_as_interrupts() -> Iterator[None]:
    """SIGTERM and SIGHUP raise `Stopped` in the main thread while the block runs. A signal
    someone chose to ignore (`nohup`) or handle stays theirs."""
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(signum) == signal.SIG_DFL:
                previous[signum] = signal.signal(signum, _stop)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            previous[signal.SIGINT] = signal.signal(signal.SIGINT, _interrupt)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def report_errors(prog: str, action: Callable[[], int], interrupted: str) -> int:
    """Run a command's `action`: a user error is one line on stderr and exit 1, Ctrl-C exit 130
    with `interrupted` (SIGTERM and SIGHUP alike, exit 128 + the signal's number), anything else
    one line too (LDL_DEBUG=1 re-raises it for the traceback)."""
    _received.clear()
    _interrupt_notes.clear()
    try:
        with stop_signals_as_interrupts():
            return action()
    except LdlError as exc:
        if _received:
            return _report_signal(prog, _received[0], interrupted)
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        return _report_signal(prog, exc.signum if isinstance(exc, Stopped) else signal.SIGINT, interrupted)
    except Exception as exc:
        if _received:
            return _report_signal(prog, _received[0], interrupted)
        if os.environ.get("LDL_DEBUG") == "1":
            raise
        if "LdlError: " in str(exc):
            print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        else:
            print(f"{prog}: error: {type(exc).__name__}: {one_line(exc)} (LDL_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1


def _report_signal(prog: str, signum: int, interrupted: str) -> int:
    interrupted = "; ".join([interrupted, *_interrupt_notes])
    if signum == signal.SIGINT:
        print(f"{prog}: {interrupted}", file=sys.stderr)
        return 130
    print(f"{prog}: {signal.Signals(signum).name}: {interrupted}", file=sys.stderr)
    return 128 + signum
