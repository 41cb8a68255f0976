"""The one exception type whose message is shown to users as is, and how commands report."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


class LdlError(Exception):
    """A problem the user can fix; str(error) is a one-line message saying what to do."""


def one_line(exc: BaseException) -> str:
    text = str(exc)
    # an LdlError raised in a worker (DataLoader, thread) can come back wrapped with its traceback
    marker = "LdlError: "
    if marker in text:
        return text.rsplit(marker, 1)[1].strip().splitlines()[0]
    return text.splitlines()[0] if text else ""


def report_errors(prog: str, action: Callable[[], int], interrupted: str) -> int:
    """Run a command's `action`: a user error is one line on stderr and exit 1, Ctrl-C exit 130
    with `interrupted`, anything else one line too (LDL_DEBUG=1 re-raises it for the traceback)."""
    try:
        return action()
    except LdlError as exc:
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: {interrupted}", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("LDL_DEBUG") == "1":
            raise
        if "LdlError: " in str(exc):
            print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        else:
            print(f"{prog}: error: {type(exc).__name__}: {one_line(exc)} (LDL_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1
