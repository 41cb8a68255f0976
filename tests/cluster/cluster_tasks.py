"""Task functions for the cluster tests. The Ray workers import this module by name: the test
cluster's nodes have this folder on their PYTHONPATH, as an installed ldl-video is on a real one."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from ldl_video.errors import LdlError


def _mark(folder: str | None, name: str) -> None:
    if folder:
        Path(folder, f"{name}.{os.getpid()}").write_text(str(os.getpid()))


def digest(task: dict) -> dict:
    """sha256 of the payload, and where it was computed."""
    _mark(task.get("marks"), f"start-{task['name']}")
    time.sleep(task.get("sleep", 0.0))
    import ray  # here, not at the top: the test process reads Ray's settings (token) when it imports ray

    return {
        "sha256": hashlib.sha256(task["payload"]).hexdigest(),
        "pid": os.getpid(),
        "node": ray.get_runtime_context().get_node_id(),
    }


def reverse(payload: bytes) -> bytes:
    return payload[::-1]


def nothing(task: object) -> None:
    return None


def refuse(task: dict) -> str:
    """Fails on the task named "bad" with a one-line LdlError, counting its attempts."""
    _mark(task["marks"], f"attempt-{task['name']}")
    if task["name"] == "bad":
        raise LdlError(f"segment {task['name']} cannot be decoded: re-mux the source")
    return task["name"]


def wait_forever(task: dict) -> None:
    _mark(task["marks"], f"start-{task['name']}")
    time.sleep(120)
    _mark(task["marks"], f"end-{task['name']}")


def wait_for_go(task: dict) -> str:
    """Holds its worker until the test creates the file "go"."""
    _mark(task["marks"], f"start-{task['name']}")
    go = Path(task["marks"], "go")
    for _ in range(1200):
        if go.exists():
            break
        time.sleep(0.05)
    return task["name"]
