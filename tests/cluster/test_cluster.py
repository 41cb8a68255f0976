"""ldl_video.cluster on a real two-node Ray cluster (conftest.py): results, retries after a killed
worker, errors, Ctrl-C, and how a driver joins or fails to."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cluster_tasks
import pytest
from ray_processes import HERE, RayCluster, free_port

from ldl_video.cluster import INSTALL_HINT, Cluster
from ldl_video.errors import LdlError


def _marks(folder: Path, prefix: str) -> list[int]:
    return [int(path.read_text()) for path in folder.glob(f"{prefix}.*")]


def _wait_for(condition, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"
    except OSError:
        return False


def _default_stop_signals() -> None:
    # a test run under nohup or in a background job would pass its ignored signals on
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


def _driver(script: str, env: dict[str, str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", script], env={**os.environ, **env}, cwd=HERE, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs,
    )  # fmt: skip


def test_results_come_back_complete_mapped_by_index_from_both_nodes(cluster: Cluster) -> None:
    payloads = [os.urandom(size) for size in (0, 1, 1000, 300_000, 1 << 20, 7, 64, 2 << 20)]
    finished: list[int] = []
    results = {}
    for index, result in cluster.map_unordered(
        cluster_tasks.digest,
        [{"name": str(i), "payload": payload, "sleep": 0.3} for i, payload in enumerate(payloads)],
        on_done=lambda index, result: finished.append(index),
    ):
        assert index not in results
        results[index] = result
    assert sorted(results) == list(range(len(payloads)))
    assert [results[i]["sha256"] for i in range(len(payloads))] == [hashlib.sha256(p).hexdigest() for p in payloads]
    assert sorted(finished) == list(range(len(payloads)))
    assert len({result["node"] for result in results.values()}) == 2
    assert (cluster.gpus, cluster.cpus, cluster.slots) == (0, 2, 2)


def test_megabytes_of_bytes_travel_both_ways(cluster: Cluster) -> None:
    payloads = [os.urandom(5 << 20) for _ in range(3)]
    results = dict(cluster.map_unordered(cluster_tasks.reverse, payloads, max_in_flight=1))
    assert sorted(results) == [0, 1, 2]
    for index, payload in enumerate(payloads):
        assert hashlib.sha256(results[index]).digest() == hashlib.sha256(payload[::-1]).digest()


def test_a_worker_killed_mid_task_is_retried_and_nothing_is_lost(cluster: Cluster, tmp_path: Path) -> None:
    payloads = [os.urandom(10_000 + i) for i in range(4)]
    tasks = [{"name": str(i), "payload": p, "sleep": 2.0, "marks": str(tmp_path)} for i, p in enumerate(payloads)]
    killed: list[tuple[str, int]] = []

    def kill_first_started() -> None:
        _wait_for(lambda: list(tmp_path.glob("start-*")))
        first = next(tmp_path.glob("start-*"))
        pid = int(first.read_text())
        os.kill(pid, signal.SIGKILL)
        killed.append((first.name.split(".")[0].removeprefix("start-"), pid))

    killer = threading.Thread(target=kill_first_started)
    killer.start()
    results = dict(cluster.map_unordered(cluster_tasks.digest, tasks))
    killer.join()

    name, pid = killed[0]
    assert [results[i]["sha256"] for i in range(4)] == [hashlib.sha256(p).hexdigest() for p in payloads]
    assert results[int(name)]["pid"] != pid
    assert pid in _marks(tmp_path, f"start-{name}") and len(_marks(tmp_path, f"start-{name}")) == 2


def test_an_error_in_the_task_reaches_the_driver_in_one_line_and_is_not_retried(cluster: Cluster, tmp_path: Path) -> None:
    tasks = [{"name": name, "marks": str(tmp_path)} for name in ("a", "bad", "c")]
    with pytest.raises(LdlError) as caught:
        list(cluster.map_unordered(cluster_tasks.refuse, tasks))
    assert type(caught.value) is LdlError
    assert str(caught.value) == "segment bad cannot be decoded: re-mux the source"
    assert len(_marks(tmp_path, "attempt-bad")) == 1


def test_a_task_module_the_workers_lack_is_named_with_the_fix(cluster: Cluster, tmp_path: Path) -> None:
    (tmp_path / "driver_only_tasks.py").write_text("def double(x):\n    return 2 * x\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import driver_only_tasks

        with pytest.raises(LdlError, match=r"^a Ray worker cannot import driver_only_tasks: install ldl-video on every node$"):
            list(cluster.map_unordered(driver_only_tasks.double, [1, 2]))
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("driver_only_tasks", None)


def test_a_job_of_more_tasks_than_slots_runs_them_all(cluster: Cluster) -> None:
    results = dict(cluster.map_unordered(cluster_tasks.nothing, list(range(40)), max_in_flight=3))
    assert results == dict.fromkeys(range(40))


def test_tasks_are_read_and_handed_to_ray_no_faster_than_max_in_flight(cluster: Cluster, tmp_path: Path) -> None:
    pulled: list[int] = []

    def tasks():
        for i in range(4):
            pulled.append(i)
            yield {"name": str(i), "marks": str(tmp_path)}

    results: dict = {}
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.update(cluster.map_unordered(cluster_tasks.wait_for_go, tasks(), max_in_flight=1))
        except BaseException as exc:  # noqa: BLE001 - reported below, in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    _wait_for(lambda: list(tmp_path.glob("start-0.*")))
    time.sleep(1.0)  # the second node is idle: a second task handed over would have started
    assert pulled == [0] and len(list(tmp_path.glob("start-*"))) == 1
    (tmp_path / "go").touch()
    thread.join(90)
    assert not errors and results == {i: str(i) for i in range(4)}


_JOIN = """
import json, cluster_tasks
from ldl_video.cluster import connect
with connect({address!r}) as cluster:
    done = dict(cluster.map_unordered(cluster_tasks.digest, [{{"name": str(i), "payload": b"x" * i}} for i in range(4)]))
    print(json.dumps({{"hashes": [done[i]["sha256"] for i in range(4)], "nodes": len({{r["node"] for r in done.values()}}),
                      "cpus": cluster.cpus}}))
"""


def test_auto_joins_the_cluster_that_RAY_ADDRESS_names_quietly(ray_cluster: RayCluster) -> None:
    driver = _driver(_JOIN.format(address="auto"), {**ray_cluster.env, "RAY_ADDRESS": ray_cluster.address})
    out, err = driver.communicate(timeout=120)
    assert driver.returncode == 0, err
    assert err == ""
    report = json.loads(out)
    assert report["hashes"] == [hashlib.sha256(b"x" * i).hexdigest() for i in range(4)]
    assert report["cpus"] == 2


def test_no_address_starts_a_local_instance_and_leaves_nothing_behind(ray_cluster: RayCluster, tmp_path: Path) -> None:
    # its own token path marks every process of the local instance; RAY_ADDRESS must not be followed
    token = tmp_path / "local-token"
    token.write_text("local")
    env = {**ray_cluster.env, "RAY_ADDRESS": ray_cluster.address, "RAY_AUTH_TOKEN_PATH": str(token)}
    driver = _driver(_JOIN.format(address=None), env)
    out, err = driver.communicate(timeout=120)
    assert driver.returncode == 0, err
    assert err == ""
    report = json.loads(out)
    assert report["hashes"] == [hashlib.sha256(b"x" * i).hexdigest() for i in range(4)]
    assert report["nodes"] == 1 and report["cpus"] == os.cpu_count()
    local = RayCluster("", "", {"RAY_AUTH_TOKEN_PATH": str(token)}, tmp_path)
    _wait_for(lambda: not local.processes(), 30)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_in_the_driver_stops_the_tasks_on_the_cluster(ray_cluster: RayCluster, tmp_path: Path,
                                                                         signum: int) -> None:
    # the driver handles signals as ldl-video's commands do: SIGTERM becomes the same interrupt as
    # Ctrl-C, so that the same clean-up runs (Ray's own SIGTERM handler would just exit)
    script = f"""
import cluster_tasks
from ldl_video.cluster import connect
from ldl_video.errors import stop_signals_as_interrupts
with stop_signals_as_interrupts(), connect({ray_cluster.address!r}) as cluster:
    tasks = [{{"name": str(i), "marks": {str(tmp_path)!r}}} for i in range(3)]
    try:
        list(cluster.map_unordered(cluster_tasks.wait_forever, tasks))
    except KeyboardInterrupt:
        print("interrupted")
"""
    driver = _driver(script, ray_cluster.env, preexec_fn=_default_stop_signals)
    _wait_for(lambda: len(list(tmp_path.glob("start-*"))) == 2, 90)
    workers = [int(path.read_text()) for path in tmp_path.glob("start-*")]
    driver.send_signal(signum)
    out, err = driver.communicate(timeout=60)
    assert out.strip() == "interrupted", err
    assert err == ""
    _wait_for(lambda: not any(_alive(pid) for pid in workers), 30)
    assert not list(tmp_path.glob("end-*"))
    assert len(list(tmp_path.glob("start-*"))) == 2  # the third task was never started


def _connect_script(address: str) -> str:
    return f"from ldl_video.cluster import connect\ntry:\n    connect({address!r})\nexcept Exception as e:\n    print(e)"


def test_a_dead_address_fails_at_once_in_one_line() -> None:
    port = free_port()
    script = _connect_script(f"127.0.0.1:{port}")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip().startswith(f"no Ray cluster answers at 127.0.0.1:{port} (")
    assert "ray start --head" in done.stdout and len(done.stdout.strip().splitlines()) == 1
    assert done.stderr == ""


def test_a_cluster_that_refuses_our_token_is_one_line_that_names_the_setting(ray_cluster: RayCluster) -> None:
    script = _connect_script(ray_cluster.address)
    env = {name: value for name, value in os.environ.items() if not name.startswith("RAY_")}
    env["RAY_gcs_server_port_wait_time_s"] = "2"  # Ray's retry budget for the GCS (20 s by default)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env, cwd=HERE)
    assert done.stdout.startswith(f"cannot join the Ray cluster at {ray_cluster.address}: ")
    assert "set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN" in done.stdout and len(done.stdout.splitlines()) == 1
    assert done.stderr == ""


@pytest.mark.parametrize("address", ["not-an-address", "host:port"])
def test_a_malformed_address_says_what_it_takes(address: str) -> None:
    script = _connect_script(address)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == f"--ray takes host:port, ray://host:port or auto, not {address!r}"


def test_without_ray_the_error_says_how_to_install_it() -> None:
    script = (
        "import sys\nsys.modules['ray'] = None\nfrom ldl_video.cluster import RayUnavailable, connect\n"
        "try:\n    connect(None)\nexcept RayUnavailable as e:\n    print(e)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == INSTALL_HINT == "--ray needs Ray: pip install 'ldl-video[cluster]'"
