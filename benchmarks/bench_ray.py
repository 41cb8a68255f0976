"""What Ray costs ldl-video's --ray (ldl_video/cluster.py) on this machine, before any video work:

1. `import ray` in a fresh interpreter.
2. `connect(None)`: a local Ray instance started (ray.init) and stopped (close), in a fresh
   process; `connect(address)`: the same process joining the running cluster of 3. instead.
3. `ray start --head` and `ray start --address` for a second node (the cluster the tests use).
4. Per-task overhead on that two-node cluster (one CPU per node): a no-op task one at a time
   (latency) and many in flight (throughput); the first tasks, which start the workers, apart.
5. A 5 MB bytes argument and a 5 MB bytes result per task through the object store.

    python benchmarks/bench_ray.py              # about two minutes here
    python benchmarks/bench_ray.py --quick

Results go to benchmarks/results/ray.md (or --output), with the machine they came from.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests" / "cluster"))

import cluster_tasks  # noqa: E402
from machine_info import cpu_name  # noqa: E402
from ray_processes import ray_cluster  # noqa: E402

from ldl_video.cluster import connect  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "ray.md"
MB = 1 << 20

_IMPORT = "import time; t = time.perf_counter(); import ray; print(time.perf_counter() - t)"
_CONNECT = """
import sys, time
t = time.perf_counter()
from ldl_video.cluster import connect
cluster = connect(None if sys.argv[1] == "local" else sys.argv[1])
started = time.perf_counter() - t
t = time.perf_counter()
cluster.close()
print(started, time.perf_counter() - t)
"""


def _fresh(script: str, *argv: str) -> list[float]:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    done = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, env=env, check=True, cwd=ROOT)
    return [float(x) for x in done.stdout.split()]


def _per_task(cluster, fn, tasks, max_in_flight: int | None) -> float:
    started = time.perf_counter()
    for _ in cluster.map_unordered(fn, tasks, max_in_flight=max_in_flight):
        pass
    return (time.perf_counter() - started) / len(tasks)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3, help="fresh processes for import and local start (default 3)")
    p.add_argument("--tasks", type=int, default=200, help="no-op tasks per overhead run (default 200)")
    p.add_argument("--big", type=int, default=12, help="5 MB tasks per transfer run (default 12)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--output", type=Path, default=RESULTS)
    args = p.parse_args()
    if args.quick:
        args.repeats, args.tasks, args.big = 1, 40, 4
    load_start = " / ".join(f"{x:.1f}" for x in os.getloadavg())

    imports = [_fresh(_IMPORT)[0] for _ in range(args.repeats)]
    local = [_fresh(_CONNECT, "local") for _ in range(args.repeats)]

    with ray_cluster(nodes=2, cpus_per_node=1) as processes:
        os.environ.update(processes.env)  # the token, before this process imports ray
        joins = [_fresh(_CONNECT, processes.address) for _ in range(args.repeats)]
        with connect(processes.address) as cluster:
            cold = _per_task(cluster, cluster_tasks.nothing, list(range(4)), None)
            one_at_a_time = _per_task(cluster, cluster_tasks.nothing, list(range(args.tasks // 4)), 1)
            in_flight = _per_task(cluster, cluster_tasks.nothing, list(range(args.tasks)), None)
            payloads = [os.urandom(5 * MB) for _ in range(args.big)]
            started = time.perf_counter()
            for payload in payloads:
                payload[::-1]
            local_reverse = (time.perf_counter() - started) / len(payloads)
            big_one = _per_task(cluster, cluster_tasks.reverse, payloads, 1)
            big_many = _per_task(cluster, cluster_tasks.reverse, payloads, None)
            slots = cluster.slots
        head_s, node_s = processes.start_seconds

    import ray

    start_local, stop_local = (statistics.median(x[i] for x in local) for i in (0, 1))
    join_s, leave_s = (statistics.median(x[i] for x in joins) for i in (0, 1))
    load_end = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        "# Ray: what --ray costs before any video work",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} logical CPUs; Python {platform.python_version()}, Ray {ray.__version__}. "
        f"Load average (1/5/15 min) at the start: {load_start}; at the end: {load_end} (a machine shared with other jobs: "
        "absolute times are noisy).",
        "",
        f"Command: `python benchmarks/bench_ray.py{' --quick' if args.quick else ''}`",
        "",
        "| what | time |",
        "|---|---|",
        f"| `import ray` (fresh interpreter, median of {len(imports)}) | {statistics.median(imports):.2f} s |",
        f"| `connect(None)`: local instance started (ray.init), median of {len(local)} | {start_local:.2f} s |",
        f"| `close()` of that local instance (ray.shutdown) | {stop_local:.2f} s |",
        f"| `connect(address)`: joining the running two-node cluster, median of {len(joins)} | {join_s:.2f} s |",
        f"| `close()` leaving it | {leave_s:.2f} s |",
        f"| `ray start --head` (1 CPU, no dashboard) | {head_s:.2f} s |",
        f"| `ray start --address` (a second node) | {node_s:.2f} s |",
        f"| first 4 no-op tasks, workers starting (per task) | {cold * 1000:.0f} ms |",
        f"| no-op task, one at a time ({args.tasks // 4} tasks) | {one_at_a_time * 1000:.1f} ms |",
        f"| no-op task, {2 * slots} in flight on {slots} slots ({args.tasks} tasks) | {in_flight * 1000:.1f} ms |",
        f"| 5 MB bytes in, 5 MB bytes out, one at a time ({args.big} tasks) | {big_one * 1000:.0f} ms "
        f"({10 / big_one:.0f} MB/s both ways) |",
        f"| the same, {2 * slots} in flight | {big_many * 1000:.0f} ms ({10 / big_many:.0f} MB/s) |",
        f"| reversing 5 MB in the driver itself (the task's own work) | {local_reverse * 1000:.1f} ms |",
        "",
        "A video segment of a few seconds is seconds to minutes of model time on any device here, so the "
        "per-task cost (tens of ms, plus the transfer of its packets) is well under 1 % of it; the fixed "
        "cost is the start of a local instance or the joining of a cluster, once per job.",
    ]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
