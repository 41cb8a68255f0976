"""Ray as a generic executor: join a cluster (or start a local one) and run a module-level
function over a list of tasks, each a Ray task, results back as they finish.

The only module that imports ray. It knows nothing about video: the caller hands it a function
that workers can import (the same ldl-video installed on every node) and picklable tasks; big
arguments and results (bytes) travel through Ray's object store, so nodes need no shared disk.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from ldl_video.errors import LdlError

INSTALL_HINT = "--ray needs Ray: pip install 'ldl-video[cluster]'"
# Ray itself retries a dead GCS address for minutes; a plain TCP connect answers in seconds.
PROBE_TIMEOUT_S = 5.0
# Ray's own default for tasks whose worker process or node dies.
MAX_RETRIES = 3
# ray.wait in short slices, so that Ctrl-C reaches Python between them.
WAIT_SLICE_S = 0.5


class RayUnavailable(LdlError):
    """`import ray` failed: the cluster extra is not installed."""


def _import_ray() -> Any:
    # Ray asks about usage statistics on first use unless told; ldl-video never prompts. Its C++
    # failure handler would print a stack dump for every SIGTERM, which ldl-video reports in a line.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailable(INSTALL_HINT) from exc
    return ray


def _host_port(address: str) -> tuple[str, int]:
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise LdlError(f"--ray takes host:port, ray://host:port or auto, not {address!r}")
    return host, int(port)


def _probe(address: str) -> None:
    host, port = _host_port(address)
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise LdlError(
            f"no Ray cluster answers at {address} ({reason}): start one there with `ray start --head`, or fix the address"
        ) from None


def _resolve_auto(ray: Any) -> str | None:
    """Where "auto" leads (RAY_ADDRESS, else the cluster `ray start` recorded on this machine),
    so that a dead one is found by a quick probe; None if Ray's private helper is not there."""
    env = os.environ.get("RAY_ADDRESS")
    if env:
        return env
    try:
        from ray._private.services import canonicalize_bootstrap_address
    except ImportError:
        return None
    try:
        return canonicalize_bootstrap_address("auto")
    except (ConnectionError, ValueError):
        raise LdlError(
            "--ray auto found no running Ray cluster: start one with `ray start --head`, set RAY_ADDRESS, "
            "or give --ray without a value for a local one"
        ) from None


def connect(address: str | None) -> Cluster:
    """None: start a local Ray instance for this process; "auto": Ray's own convention (RAY_ADDRESS,
    else the cluster running on this machine); anything else: that cluster (host:port or
    ray://host:port). A failure is an LdlError in one line that says what to do."""
    ray = _import_ray()
    if ray.is_initialized():
        # someone (a user's own script) already connected this process: use that, leave it open
        return Cluster(ray, owned=False)
    if address is None:
        target = "local"  # a new instance even where RAY_ADDRESS is set
    else:
        target = address
        probe = _resolve_auto(ray) if address == "auto" else address
        if probe is not None:
            _probe(probe)
    try:
        with _sigterm_kept(), nullcontext() if target == "local" else _native_stderr_dropped():
            ray.init(
                address=target,
                log_to_driver=False,
                logging_level=logging.ERROR,
                **({"include_dashboard": False} if target == "local" else {}),
            )
    except (ConnectionError, RuntimeError, ValueError, getattr(ray.exceptions, "AuthenticationError", RuntimeError)) as exc:
        raise LdlError(f"cannot join the Ray cluster at {address or 'local'}: {_first_line(exc)}{_auth_hint(exc)}") from None
    return Cluster(ray, owned=True)


@contextmanager
def _sigterm_kept() -> Iterator[None]:
    """ray.init makes SIGTERM a sys.exit; a handler the program set itself (ldl-video's turns
    SIGTERM into the interrupt its clean-up waits for) is put back. Without one, Ray's stays:
    its exit still shuts the local instance down."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        if callable(previous):
            signal.signal(signal.SIGTERM, previous)


@contextmanager
def _native_stderr_dropped() -> Iterator[None]:
    """Ray's C++ core writes a warning line to file descriptor 2 for every second it retries a
    cluster that refuses it (a wrong token: twenty lines); what went wrong comes back as the
    exception. Joining starts no processes, so nothing else inherits the redirection."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as sink:
            os.dup2(sink.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    # "Initialization failure from server:" and the server's traceback: its last line says why
    if lines[0].endswith(":") and len(lines) > 1:
        return f"{lines[0]} {lines[-1]}"
    return lines[0]


def _auth_hint(exc: BaseException) -> str:
    # a token refused looks like any other failure to connect once Ray has given up
    if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        return " (if the cluster uses token authentication: set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN as on its nodes)"
    return " (check that RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH holds the cluster's token)"


class Cluster:
    """A connected Ray cluster. `gpus` and `cpus` are its totals when it was joined."""

    def __init__(self, ray: Any, *, owned: bool) -> None:
        self._ray = ray
        self._owned = owned
        self._pending: dict[Any, int] = {}
        resources = ray.cluster_resources()
        self.gpus: float = float(resources.get("GPU", 0.0))
        self.cpus: float = float(resources.get("CPU", 0.0))
        self._node_cpus = [
            float(node["Resources"].get("CPU", 0.0)) for node in ray.nodes() if node.get("Alive") and node["Resources"].get("CPU")
        ]

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def task_resources(self) -> dict[str, float]:
        """What one task asks for: a GPU where there are GPUs; else every core of the smallest
        node, so one task per node there, its PyTorch threads (OMP_NUM_THREADS, which Ray sets
        from the task's CPUs) using the whole machine: one network's convolutions spread over all
        cores run faster than several copies that each hold the weights and fight over caches."""
        if self.gpus >= 1:
            return {"num_gpus": 1}
        return {"num_cpus": min(self._node_cpus, default=1.0)}

    @property
    def slots(self) -> int:
        """How many tasks the cluster runs at once."""
        if self.gpus >= 1:
            return int(self.gpus)
        share = self.task_resources["num_cpus"]
        return max(1, sum(int(cpus // share) for cpus in self._node_cpus))

    def map_unordered(
        self,
        fn: Callable[[Any], Any],
        tasks: Iterable[Any],
        *,
        on_done: Callable[[int, Any], None] | None = None,
        max_in_flight: int | None = None,
        max_retries: int = MAX_RETRIES,
    ) -> Iterator[tuple[int, Any]]:
        """Run fn(task) for every task as a Ray task; yield (index, result) as each finishes, in
        any order (on_done(index, result) is called just before). A task whose worker dies is run
        again by Ray, up to max_retries times; an exception raised by fn is not retried and comes
        back as itself (an LdlError keeps its one-line message). At most max_in_flight tasks
        (default twice the cluster's slots) are submitted at a time, and tasks given as an
        iterator are read only as they are submitted. fn must be a module-level function that
        the workers can import."""
        ray = self._ray
        remote = ray.remote(fn).options(max_retries=max_retries, retry_exceptions=False, **self.task_resources)
        limit = max(1, max_in_flight or 2 * self.slots)
        queued = iter(enumerate(tasks))
        try:
            for index, task in _take(queued, limit):
                self._pending[remote.remote(task)] = index
            while self._pending:
                ready, _ = ray.wait(list(self._pending), num_returns=1, timeout=WAIT_SLICE_S)
                if not ready:
                    continue
                index = self._pending.pop(ready[0])
                result = self._result(ready[0], index, max_retries)
                del ready  # a reference held here would keep the result in the object store
                for next_index, task in _take(queued, 1):
                    self._pending[remote.remote(task)] = next_index
                if on_done is not None:
                    on_done(index, result)
                yield index, result
        finally:
            self.cancel()

    def _result(self, ref: Any, index: int, max_retries: int) -> Any:
        ray = self._ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            missing = _missing_module(cause)
            if missing:
                raise LdlError(f"a Ray worker cannot import {missing}: install ldl-video on every node") from None
            if isinstance(cause, BaseException):
                raise cause from None
            raise LdlError(f"Ray task {index} failed: {_first_line(exc)}") from None
        except ray.exceptions.RayError as exc:
            raise LdlError(
                f"Ray task {index} failed {max_retries + 1} times ({type(exc).__name__}: {_first_line(exc)}); "
                "check the cluster's nodes and memory"
            ) from None

    def cancel(self) -> None:
        """Stop every task still outstanding (Ctrl-C, an error): their workers are killed, their
        GPUs freed at once rather than when the task would have ended."""
        for ref in list(self._pending):
            try:
                self._ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - already finished or its node gone: nothing left to stop
                pass
        self._pending.clear()

    def close(self) -> None:
        """Cancel what is outstanding; stop the local instance we started, or leave the cluster."""
        self.cancel()
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()
        self._owned = False


def _missing_module(cause: object) -> str | None:
    """The module a worker could not import to run the task (Ray reports it as a RuntimeError
    that quotes the ModuleNotFoundError), or None."""
    if isinstance(cause, ImportError):
        return cause.name or "the task's module"
    text = str(cause) if isinstance(cause, RuntimeError) else ""
    if "failed to import on the worker" not in text:
        return None
    found = re.search(r"No module named '([^']+)'", text)
    return found.group(1) if found else "the task's module"


def _take(queued: Iterator[tuple[int, Any]], count: int) -> list[tuple[int, Any]]:
    return [item for _, item in zip(range(count), queued, strict=False)]
