"""A real two-node Ray cluster on this machine: `ray start --head` and `ray start --address`, each
node with one CPU, in a temporary folder with its own ports and token. Torn down by process
group (never `ray stop`, which would end every Ray instance on the machine)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ldl_video.cluster import Cluster, connect

HERE = Path(__file__).resolve().parent
RAY = Path(sys.executable).with_name("ray")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RayCluster:
    address: str
    client_address: str
    env: dict[str, str]  # what a driver process needs to join it (token, task module path)
    folder: Path
    groups: list[int] = field(default_factory=list)

    def processes(self) -> list[int]:
        """Every process that carries this cluster's token path: its daemons and workers."""
        marker = f"RAY_AUTH_TOKEN_PATH={self.env['RAY_AUTH_TOKEN_PATH']}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and entry.name != str(os.getpid()):
                try:
                    if marker in (entry / "environ").read_bytes().split(b"\0"):
                        found.append(int(entry.name))
                except OSError:
                    pass
        return found


def _node_ports() -> list[str]:
    # every port a node would otherwise take from a fixed default, so that another Ray on the machine does not collide
    return [
        "--dashboard-agent-listen-port", str(free_port()),
        "--dashboard-agent-grpc-port", str(free_port()),
        "--runtime-env-agent-port", str(free_port()),
        "--metrics-export-port", str(free_port()),
    ]  # fmt: skip


def _start(command: list[str], env: dict[str, str], log: Path) -> int:
    with open(log, "wb") as out:
        # a session of its own: its daemons stay in this process group, which is how they are ended
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        if proc.wait(timeout=120) != 0:
            raise RuntimeError(f"{' '.join(command[:3])} failed:\n{log.read_text()[-3000:]}")
    return proc.pid


def _stop(cluster: RayCluster) -> None:
    for group in cluster.groups:
        try:
            os.killpg(group, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while cluster.processes() and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in cluster.processes():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[RayCluster]:
    folder = Path(tempfile.mkdtemp(prefix="ldl-ray-"))
    token = folder / "token"
    token.write_text(uuid.uuid4().hex)
    env = {
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
    }
    port, client_port = free_port(), free_port()
    cluster = RayCluster(f"127.0.0.1:{port}", f"ray://127.0.0.1:{client_port}", env, folder)
    node = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--num-gpus", "0", "--object-store-memory", str(200 << 20)]
    full_env = {**os.environ, **env}
    try:
        head = [str(RAY), "start", "--head", "--port", str(port), "--ray-client-server-port", str(client_port),
                "--temp-dir", str(folder / "ray"), "--include-dashboard=false", "--disable-usage-stats"]  # fmt: skip
        cluster.groups.append(_start(head + node + _node_ports(), full_env, folder / "head.log"))
        worker = [str(RAY), "start", "--address", cluster.address]
        cluster.groups.append(_start(worker + node + _node_ports(), full_env, folder / "worker.log"))
        yield cluster
    finally:
        _stop(cluster)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(ray_cluster: RayCluster) -> Iterator[Cluster]:
    """This test process joined to the two-node cluster."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in ray_cluster.env.items():
            env.setenv(name, value)
        joined = connect(ray_cluster.address)
        try:
            yield joined
        finally:
            joined.close()
