"""Resumable jobs: a video cut at its keyframes into segments, each upscaled and encoded on its
own, joined by stream copy. The reference is the same command run in one pass (--segment 0):
with a lossless encoder every frame, every timestamp and every other stream's packets must be
the same, whatever the container, clock or frame rate of the source."""

from __future__ import annotations

import functools
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from video_media import VFR_PTS, Clip, packet_digests, write_clip, write_transport_stream

from ldl_video.cli import main
from ldl_video.video.segments import plan_segments

_run = functools.partial(subprocess.run, timeout=600)  # a stuck run fails the test instead of hanging the suite


def upscale(src: Path, dst: Path, *extra: str) -> int:
    return main([str(src), str(dst), "-m", "bicubic", "-s", "2", "--quiet", *extra])


def frames(path: Path) -> list[tuple[float, np.ndarray]]:
    with av.open(str(path)) as container:
        return [(float(f.pts * f.time_base), f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]


def assert_same_video(result: Path, reference: Path) -> None:
    got, want = frames(result), frames(reference)
    assert [t for t, _ in got] == [t for t, _ in want]
    for (when, a), (_, b) in zip(got, want, strict=True):
        assert np.array_equal(a, b), f"frame at {when:.3f} s differs"


def job_folder(out: Path) -> Path:
    return out.with_name(f".{out.name}.ldl-job")


SOURCES = {
    # H.264 with B-frames, AAC, subtitles and chapters in Matroska
    "mkv": lambda d: write_clip(d / "bframes.mkv", Clip(frames=60, gop=10, options={"bf": "3"}, audio=[("aac", 2, "eng")],
                                                         subtitles=[(100, 900, "one"), (1500, 2200, "two")],
                                                         chapters=[(0, 1000, "A"), (1000, 2400, "B")])),
    # a broadcast capture: 90 kHz clock starting at one hour
    "ts": lambda d: write_transport_stream(d / "capture.ts", 3600.0, frames=60, gop=12),
    # variable frame rate
    "vfr": lambda d: write_clip(d / "vfr.mkv", Clip(frames=len(VFR_PTS), pts=VFR_PTS, gop=3, audio=[("aac", 2, "eng")])),
    # a phone-style MP4 (edit list for the B-frame delay)
    "mp4": lambda d: write_clip(d / "phone.mp4", Clip(frames=60, gop=15, audio=[("aac", 2, "und")])),
}


@pytest.mark.parametrize(("kind", "suffix", "codec"), [
    ("mkv", ".mkv", ["--codec", "ffv1"]),
    ("ts", ".mkv", ["--codec", "ffv1"]),
    ("vfr", ".mkv", ["--codec", "ffv1"]),
    ("mp4", ".mp4", ["--codec", "libx264", "--crf", "0"]),
    ("mkv", ".mov", ["--codec", "libx264", "--crf", "0"]),
])
def test_segments_give_the_one_pass_result(tmp_path, kind, suffix, codec):
    source = SOURCES[kind](tmp_path)
    one, cut = tmp_path / f"one{suffix}", tmp_path / f"cut{suffix}"
    assert upscale(source, one, "--segment", "0", *codec) == 0
    assert upscale(source, cut, "--segment", "0.3", *codec) == 0
    assert len(plan_segments(source, 0, 0.3).segments) >= 2  # it was cut, not run in one pass
    assert not job_folder(cut).exists()
    assert_same_video(cut, one)
    with av.open(str(cut)) as a, av.open(str(one)) as b:
        kinds = {s.type for s in b.streams} - {"video"}
        assert {s.type for s in a.streams} - {"video"} == kinds
        for kind_ in kinds:
            assert packet_digests(cut, kind_) == packet_digests(one, kind_)
        assert a.chapters() == b.chapters()
        assert a.streams.video[0].frames == b.streams.video[0].frames or not b.streams.video[0].frames


def _command(source: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "ldl_video.cli", str(source), str(out), "-m", "ldl-compact-x2", "--codec", "ffv1",
            "--segment", "0.4", *extra]


def _kill_after_first_segment(command: list[str], job: Path, sig: int = signal.SIGKILL) -> tuple[int, str]:
    """Start the job and send `sig` as soon as one segment is stored (SIGKILL: no clean-up can
    run). Returns the exit status and stderr."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 120
    while not list(job.glob("seg-*.pkt")):
        assert process.poll() is None, "the job ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(sig)
    _, err = process.communicate(timeout=600)
    return process.returncode, err


@pytest.fixture(scope="module")
def killed_job(tmp_path_factory):
    """A 2-s clip at a variable frame rate with audio, cut into 0.4-s segments, killed with
    SIGKILL after its first segment; and the same command's uninterrupted one-pass result."""
    folder = tmp_path_factory.mktemp("killed")
    steps = [40, 40, 80, 20, 20, 40, 120, 40, 40, 33]  # ms: a phone's frame rate as the light changes
    pts = [sum(steps[i % len(steps)] for i in range(n)) for n in range(50)]
    source = write_clip(folder / "film.mkv", Clip(width=96, height=72, frames=50, gop=10, pts=pts,
                                                  audio=[("aac", 2, "eng")]))
    reference = folder / "reference.mkv"
    one_pass = _run(_command(source, reference, "--segment", "0", "--quiet"),
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert one_pass.returncode == 0
    out = folder / "out.mkv"
    _kill_after_first_segment(_command(source, out), job_folder(out))
    return source, out, reference


def test_a_killed_job_continues_where_it_stopped(killed_job):
    source, out, reference = killed_job
    job = job_folder(out)
    stored = sorted(job.glob("seg-*.pkt"))
    assert not out.exists()  # nothing under the final name
    assert 1 <= len(stored) < 5
    # a different command is refused in one line, and the finished segments are kept
    refused = _run(_command(source, out, "--crf", "3", "--codec", "libx264"), capture_output=True, text=True)
    assert refused.returncode == 1
    assert "--restart" in refused.stderr and "encoder" in refused.stderr
    assert refused.stderr.count("\n") == 1
    assert sorted(job.glob("seg-*.pkt")) == stored
    # so is a source that changed since (here: only touched)
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    changed = _run(_command(source, out), capture_output=True, text=True)
    assert changed.returncode == 1 and "source" in changed.stderr and "--restart" in changed.stderr
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    # the same command continues: says how many it reused, recomputes only the rest
    resumed = _run(_command(source, out), capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(stored)} of 5 segments already done" in resumed.stderr
    assert_same_video(out, reference)
    assert packet_digests(out, "audio") == packet_digests(reference, "audio")
    assert not job.exists()


def test_restart_starts_over(tmp_path):
    source = write_clip(tmp_path / "clip.mkv", Clip(width=96, height=72, frames=30, gop=5))
    out = tmp_path / "out.mkv"
    status, err = _kill_after_first_segment(_command(source, out, "--quiet"), job_folder(out), signal.SIGTERM)
    assert status == 143  # a scheduler's stop: said in one line, and where the finished work is
    assert "segments are kept in" in err and "the same command continues" in err and not out.exists()
    assert len(err.strip().splitlines()) == 1
    assert job_folder(out).exists()
    again = _run(_command(source, out, "--restart"), capture_output=True, text=True,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert again.returncode == 0, again.stderr
    assert "already done" not in again.stderr
    assert not job_folder(out).exists()
    assert len(frames(out)) == 30


def test_a_damaged_segment_file_is_made_again(tmp_path):
    source = write_clip(tmp_path / "clip.mkv", Clip(width=96, height=72, frames=30, gop=5))
    out = tmp_path / "out.mkv"
    _kill_after_first_segment(_command(source, out), job_folder(out))
    for stored in job_folder(out).glob("seg-*.pkt"):  # a disk that lost the end of a file
        stored.write_bytes(stored.read_bytes()[:-7])
    again = _run(_command(source, out), capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert again.returncode == 0, again.stderr
    assert "already done" not in again.stderr
    reference = tmp_path / "reference.mkv"
    assert _run(_command(source, reference, "--segment", "0", "--quiet")).returncode == 0
    assert_same_video(out, reference)


def test_ten_bit_hevc_segments_join_under_one_header(tmp_path):
    """x265 puts its options (thread counts, CPU features) in its header; segments encoded
    elsewhere join as long as the parameter sets agree. Timestamps as one pass; pictures within
    the encoder's own loss of the one-pass result."""
    source = write_clip(tmp_path / "hdr.mkv", Clip(frames=40, gop=8, codec="libx265", pix_fmt="yuv420p10le", depth=10,
                                                     options={"x265-params": "log-level=error"}))
    one, cut = tmp_path / "one.mkv", tmp_path / "cut.mkv"
    assert upscale(source, one, "--segment", "0") == 0
    assert upscale(source, cut, "--segment", "0.3") == 0
    with av.open(str(cut)) as container:
        assert container.streams.video[0].codec_context.name == "hevc"
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p10le"
    got, want = frames(cut), frames(one)
    assert [t for t, _ in got] == [t for t, _ in want]
    for (_, a), (_, b) in zip(got, want, strict=True):
        mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
        assert 10 * np.log10(255**2 / max(mse, 1e-12)) > 38


def _x265_header(pix_fmt: str, threads: int, params: str = "log-level=error") -> bytes:
    out = av.open(io.BytesIO(), "w", format="matroska")
    stream = out.add_stream("libx265", rate=25, options={"x265-params": params})
    stream.width, stream.height, stream.pix_fmt = 64, 48, pix_fmt
    stream.codec_context.thread_count = threads
    out.start_encoding()
    header = bytes(stream.codec_context.extradata)
    out.close()
    return header


def test_x265_headers_of_other_machines_are_told_apart_by_their_parameter_sets():
    from ldl_video.video.jobs import same_headers

    one, four = _x265_header("yuv420p10le", 1), _x265_header("yuv420p10le", 4)
    assert one != four  # the options SEI names the thread count
    assert same_headers(one, four)
    assert not same_headers(one, _x265_header("yuv420p", 1))  # another profile
    assert not same_headers(one, _x265_header("yuv420p10le", 1, "log-level=error:bframes=0"))


def test_ray_with_a_pipe_runs_here_in_one_pass(tmp_path):
    """Standard input cannot be read twice, so it is not cut: under --ray it is upscaled here,
    with a note, and no Ray instance is started for it."""
    source = write_clip(tmp_path / "clip.mkv", Clip(frames=12))
    out = tmp_path / "out.mkv"
    done = _run([sys.executable, "-m", "ldl_video.cli", "-", str(out), "-m", "bicubic", "-s", "2", "--ray"],
                          input=source.read_bytes(), capture_output=True, timeout=120)
    err = done.stderr.decode()
    assert done.returncode == 0, err
    assert "here, not on the cluster" in err and "one pass" in err
    assert len(frames(out)) == 12


def test_notes_and_webm_as_in_one_pass(tmp_path, capsys):
    """PCM audio and SubRip into WebM: the same notes (re-encoded, converted) as one pass, and VP9
    segments (no global header) joined with the Opus audio."""
    source = write_clip(tmp_path / "clip.mkv", Clip(frames=30, gop=5, audio=[("pcm_s16le", 2, "eng")],
                                                   subtitles=[(100, 500, "x")]))
    said = {}
    for mode, seconds in (("one", "0"), ("cut", "0.2")):
        assert main([str(source), str(tmp_path / f"{mode}.webm"), "-m", "bicubic", "-s", "2", "--segment", seconds]) == 0
        said[mode] = [line for line in capsys.readouterr().err.splitlines() if line.startswith("ldl-video:")]
    assert said["cut"] == said["one"] and any("libopus" in line for line in said["one"])
    got, want = frames(tmp_path / "cut.webm"), frames(tmp_path / "one.webm")
    assert [t for t, _ in got] == [t for t, _ in want]
    assert packet_digests(tmp_path / "cut.webm", "audio") == packet_digests(tmp_path / "one.webm", "audio")


def test_a_refused_option_leaves_nothing_beside_output(tmp_path, capsys):
    source = write_clip(tmp_path / "clip.mkv", Clip(frames=30, gop=5))
    out = tmp_path / "out.mkv"
    assert main([str(source), str(out), "-m", "bicubic", "--segment", "0.2", "--crf", "99"]) == 1
    err = capsys.readouterr().err
    assert "--crf 99" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mkv"]
