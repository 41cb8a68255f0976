"""A real Ray cluster of local processes: `ray start --head` and `ray start --address` nodes in a
temporary folder with their own ports and token, ended by process group and by the token path
their processes carry (never `ray stop`, which would end every Ray instance on the machine).
Used by conftest.py and benchmarks/bench_ray.py."""

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
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

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
    start_seconds: list[float] = field(default_factory=list)  # each node's `ray start`

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


def _start(cluster: RayCluster, command: list[str], log: Path) -> None:
    started = time.perf_counter()
    with open(log, "wb") as out:
        # a session of its own: its daemons stay in this process group, which is how they are ended
        proc = subprocess.Popen(command, env={**os.environ, **cluster.env}, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
        cluster.groups.append(proc.pid)
        if proc.wait(timeout=120) != 0:
            raise RuntimeError(f"{' '.join(command[:3])} failed:\n{log.read_text()[-3000:]}")
    cluster.start_seconds.append(time.perf_counter() - started)


def stop(cluster: RayCluster) -> None:
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


@contextmanager
def ray_cluster(nodes: int = 2, cpus_per_node: int = 1) -> Iterator[RayCluster]:
    """A head and nodes - 1 more nodes on this machine; everything they started ends on exit."""
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
    node = ["--node-ip-address", "127.0.0.1", "--num-cpus", str(cpus_per_node), "--num-gpus", "0",
            "--object-store-memory", str(200 << 20)]  # fmt: skip
    try:
        head = [str(RAY), "start", "--head", "--port", str(port), "--ray-client-server-port", str(client_port),
                "--temp-dir", str(folder / "ray"), "--include-dashboard=false", "--disable-usage-stats"]  # fmt: skip
        _start(cluster, head + node + _node_ports(), folder / "head.log")
        for number in range(1, nodes):
            join = [str(RAY), "start", "--address", cluster.address]
            _start(cluster, join + node + _node_ports(), folder / f"node{number}.log")
        yield cluster
    finally:
        stop(cluster)
        shutil.rmtree(folder, ignore_errors=True)
