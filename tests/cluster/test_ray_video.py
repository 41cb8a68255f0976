"""`ldl-video --ray ADDRESS` on the real two-node cluster of conftest.py: a video's segments run as
Ray tasks, one worker is killed with SIGKILL in the middle of a segment, and the output is still
every frame, in order, equal to the same command run in one pass on this machine; a folder of
three short videos (each one segment, one task), one already done, goes over the same cluster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "video"))
from video_media import Clip, packet_digests, write_clip  # noqa: E402


def _rgb(path: Path) -> list[tuple[float, np.ndarray]]:
    with av.open(str(path)) as container:
        return [(float(f.pts * f.time_base), f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]


def _command(source: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "ldl_video.cli", str(source), str(out), "-m", "ldl-compact-x2", "--codec", "ffv1",
            "--quiet", *extra]


def _segment_workers(cluster) -> list[int]:
    """Ray worker processes of this cluster that are running a segment now (Ray names the
    process after the task it runs)."""
    found = []
    for pid in cluster.processes():
        try:
            if b"run_segment" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            pass
    return found


@pytest.fixture(scope="module")
def film(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ray-video")
    return write_clip(folder / "film.mkv", Clip(width=96, height=72, frames=60, gop=6, audio=[("aac", 2, "eng")]))


def test_a_worker_killed_mid_segment_loses_nothing(ray_cluster, film, tmp_path):
    reference = tmp_path / "one-pass.mkv"
    assert subprocess.run(_command(film, reference, "--segment", "0"), timeout=600).returncode == 0
    out = tmp_path / "ray.mkv"
    env = {**os.environ, **ray_cluster.env}
    job = subprocess.Popen(_command(film, out, "--segment", "0.24", "--ray", ray_cluster.address), env=env,
                           stderr=subprocess.PIPE, text=True)
    killed: list[int] = []

    def kill_one_worker() -> None:
        deadline = time.monotonic() + 120
        while job.poll() is None and time.monotonic() < deadline:
            busy = _segment_workers(ray_cluster)
            if busy:
                os.kill(busy[0], signal.SIGKILL)
                killed.append(busy[0])
                return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_one_worker)
    killer.start()
    _, err = job.communicate(timeout=300)
    killer.join()
    assert killed, "no segment was seen running on the cluster"
    assert job.returncode == 0, err
    got, want = _rgb(out), _rgb(reference)
    assert [t for t, _ in got] == [t for t, _ in want]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(got, want, strict=True))
    assert packet_digests(out, "audio") == packet_digests(film, "audio")
    assert not out.with_name(f".{out.name}.ldl-job").exists()


def test_a_folder_over_the_cluster_skips_what_is_done(ray_cluster, tmp_path):
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    (inputs / "b").mkdir(parents=True)
    outputs.mkdir()
    names = ["a.mkv", "b/c.mkv", "d.mkv"]
    for index, name in enumerate(names):
        write_clip(inputs / name, Clip(width=64, height=48, frames=24 + 4 * index, gop=6))
    done = outputs / "d.mkv"
    done.write_bytes(b"finished earlier")  # a complete result from an earlier run is never redone
    env = {**os.environ, **ray_cluster.env}
    run = subprocess.run([sys.executable, "-m", "ldl_video.cli", str(inputs), str(outputs), "-m", "bicubic", "-s", "2",
                          "--codec", "ffv1", "--ray", ray_cluster.address], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert done.read_bytes() == b"finished earlier"
    for index, name in enumerate(names[:2]):
        frames = _rgb(outputs / name)
        assert len(frames) == 24 + 4 * index
        assert frames[0][1].shape == (96, 128, 3)
