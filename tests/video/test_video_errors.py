"""Bad input and bad luck: one line on stderr, a non-zero exit, nothing at OUTPUT."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from video_media import decoded_pts

from ldl_video.cli import main


def run(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def assert_failed_cleanly(code: int, err: str, output: Path, *words: str) -> None:
    assert code != 0
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ldl-video: error: "), err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], lines[0]
    assert not output.exists()
    assert not list(output.parent.glob(f".{output.stem}.ldl-partial-*")), "a temporary file was left behind"


def test_missing_input(capsys, tmp_path):
    out = tmp_path / "out.mkv"
    assert_failed_cleanly(*run(capsys, tmp_path / "nope.mkv", out, "-m", "bicubic"), out, "does not exist")


def test_not_a_video(capsys, tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video\n" * 20)
    out = tmp_path / "out.mkv"
    assert_failed_cleanly(*run(capsys, fake, out, "-m", "bicubic"), out, "not a video")


def test_no_video_stream(capsys, tmp_path, audio_only_m4a):
    out = tmp_path / "out.mkv"
    assert_failed_cleanly(*run(capsys, audio_only_m4a, out, "-m", "bicubic"), out, "no video stream", "audio")


def test_codec_without_decoder(capsys, tmp_path, unknown_codec_mkv):
    out = tmp_path / "out.mkv"
    assert_failed_cleanly(*run(capsys, unknown_codec_mkv, out, "-m", "bicubic"), out, "cannot be decoded")


def test_output_folder_missing(capsys, tmp_path, moving_mkv):
    out = tmp_path / "missing" / "out.mkv"
    assert_failed_cleanly(*run(capsys, moving_mkv, out, "-m", "bicubic"), out, "does not exist")


def test_existing_output_is_refused_without_overwrite(capsys, tmp_path, moving_mkv):
    out = tmp_path / "out.mkv"
    out.write_bytes(b"keep me")
    code, err = run(capsys, moving_mkv, out, "-m", "bicubic")
    assert code != 0 and "--overwrite" in err
    assert out.read_bytes() == b"keep me"


@pytest.mark.parametrize(("args", "words"), [
    (["--pix-fmt", "rgb565"], ["cannot encode --pix-fmt rgb565"]),
    (["--codec", "ffv1", "--crf", "20"], ["no CRF"]),
    (["--crf", "99"], ["--crf 99 is out of range for libx264", "0 to 51"]),
    (["--codec", "nonsense"], ["unknown video encoder"]),
    (["--codec", "aac"], ["audio encoder"]),
])
def test_bad_encoder_settings(capsys, tmp_path, moving_mkv, args, words):
    out = tmp_path / "out.mkv"
    assert_failed_cleanly(*run(capsys, moving_mkv, out, "-m", "bicubic", *args), out, *words)


@pytest.mark.parametrize(("name", "words"), [("out.png", ["video suffix"]), ("out.nosuchformat", ["unknown video container"])])
def test_bad_output_suffix(capsys, tmp_path, moving_mkv, name, words):
    out = tmp_path / name
    assert_failed_cleanly(*run(capsys, moving_mkv, out, "-m", "bicubic"), out, *words)


def test_truncated_input_says_how_much_was_recovered(capsys, tmp_path, truncated_mkv):
    cut, total = truncated_mkv
    out = tmp_path / "out.mkv"
    code, err = run(capsys, cut, out, "-m", "bicubic", "-s", "2", "--quiet")
    assert_failed_cleanly(code, err, out, "damaged", "recovered", "--keep-partial")
    recovered = int(err.split("damaged: ")[1].split(" frame")[0])
    assert 0 < recovered < total


def test_keep_partial_keeps_the_recovered_frames(capsys, tmp_path, truncated_mkv):
    cut, total = truncated_mkv
    out = tmp_path / "out.mkv"
    code, err = run(capsys, cut, out, "-m", "bicubic", "-s", "2", "--quiet", "--keep-partial")
    assert code != 0  # still not a complete result
    recovered = int(err.split("damaged: ")[1].split(" frame")[0])
    assert out.exists() and str(out) in err
    assert decoded_pts(out) == decoded_pts(cut)
    assert len(decoded_pts(out)) == recovered < total


def _cli(*argv) -> list[str]:
    return [sys.executable, "-m", "ldl_video.cli", *[str(a) for a in argv]]


def test_full_disk(tmp_path, noise_mkv):
    """The file-size limit makes writes fail the way a full disk does (EFBIG instead of ENOSPC)."""

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    out = tmp_path / "out.mkv"
    done = subprocess.run(_cli(noise_mkv, out, "-m", "bicubic", "-s", "2", "--quiet"), preexec_fn=limit_file_size,
                          capture_output=True, text=True, timeout=300)
    assert_failed_cleanly(done.returncode, done.stderr, out, "while writing")


def _default_stop_signals() -> None:
    """A run as from a terminal: under nohup (or a CI runner that ignores SIGHUP) the test would
    inherit an ignored signal, which ldl-video rightly leaves ignored."""
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)  # Python puts its Ctrl-C handler back on SIGINT at start


def test_ctrl_c_stops_cleanly(tmp_path, long_mkv):
    out = tmp_path / "out.mkv"
    # A real network (tens of milliseconds a frame here) so that 600 frames take a while.
    process = subprocess.Popen(_cli(long_mkv, out, "-m", "realesr-animevideov3-x2", "--quiet"), stderr=subprocess.PIPE,
                               text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=_default_stop_signals)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".out.ldl-partial-*")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # frames are flowing
    assert process.poll() is None, "finished before it could be interrupted"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "interrupted" in err and "Traceback" not in err
    assert not out.exists()
    assert not list(tmp_path.glob(".out.ldl-partial-*"))


def test_damaged_matroska_is_not_passed_off_as_complete(capsys, tmp_path, damaged_mkv, media):
    path, total = damaged_mkv
    readable = decoded_pts(path)
    assert 0 < len(readable) < total  # FFmpeg itself skips frames past the garbage
    out = tmp_path / "out.mkv"
    code, err = run(capsys, path, out, "-m", "bicubic", "-s", "2", "--quiet")
    assert_failed_cleanly(code, err, out, "damaged", "skipped", "--keep-partial")
    assert f"{len(readable)} frame(s) recovered" in err
    code, err = run(capsys, path, out, "-m", "bicubic", "-s", "2", "--quiet", "--keep-partial")
    assert code == 1 and str(out) in err
    assert decoded_pts(out) == readable
    import av.logging

    assert av.logging.get_level() is None  # the caller's FFmpeg log setting is back (PyAV's default)


def test_undamaged_matroska_in_small_clusters_is_complete(capsys, tmp_path, damaged_mkv, media):
    out = tmp_path / "out.mkv"
    code, err = run(capsys, media / "for-damage.mkv", out, "-m", "bicubic", "-s", "2", "--quiet")
    assert code == 0, err
    assert len(decoded_pts(out)) == damaged_mkv[1]


def _paused_run(long_mkv, out: Path, *extra) -> subprocess.Popen:
    """A run stopped (SIGSTOP) as soon as it is writing OUTPUT, so the test acts while it is
    under way whatever the machine's speed; SIGCONT lets it go on."""
    process = subprocess.Popen(_cli(long_mkv, out, "-m", "bicubic", "-s", "2", "--quiet", *extra),
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                               preexec_fn=_default_stop_signals)
    deadline = time.monotonic() + 120
    while not list(out.parent.glob(f".{out.stem}.ldl-partial-*")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGSTOP)
    assert process.poll() is None, "finished before the test could act"
    return process


def test_two_runs_on_one_output(capsys, tmp_path, long_mkv, moving_mkv):
    out = tmp_path / "out.mkv"
    first = _paused_run(long_mkv, out)
    # a second run on the same OUTPUT is refused at once, even with --overwrite
    for extra in ([], ["--overwrite"]):
        code, err = run(capsys, moving_mkv, out, "-m", "bicubic", "--quiet", *extra)
        assert code == 1 and "another run" in err and str(out) in err, err
        assert len(err.strip().splitlines()) == 1
    assert list(tmp_path.glob(".out.ldl-partial-*")), "the second run removed the first one's work"
    # a file that appears at OUTPUT meanwhile (another program) is not replaced without --overwrite
    out.write_bytes(b"written by someone else")
    first.send_signal(signal.SIGCONT)
    _, err = first.communicate(timeout=300)
    assert first.returncode == 1 and "appeared" in err and "--overwrite" in err, err
    assert out.read_bytes() == b"written by someone else"
    assert not list(tmp_path.glob(".out*ldl-*")), "a temporary or lock file was left behind"
    # the lock is gone with its run: the next run writes
    assert run(capsys, moving_mkv, out, "-m", "bicubic", "--quiet", "--overwrite")[0] == 0


def test_lock_of_a_dead_run_is_taken_over(capsys, tmp_path, moving_mkv):
    out = tmp_path / "out.mkv"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket

    (tmp_path / ".out.mkv.ldl-lock").write_text(f"{socket.gethostname()}:{dead.stdout.strip()}")
    assert run(capsys, moving_mkv, out, "-m", "bicubic", "--quiet")[0] == 0
    assert len(decoded_pts(out)) == 11 and not (tmp_path / ".out.mkv.ldl-lock").exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_terminate_and_hangup_stop_like_ctrl_c(tmp_path, long_mkv, signum):
    """`timeout`, a closed SSH session or a scheduler stop the run: same clean end as Ctrl-C."""
    out = tmp_path / "out.mkv"
    process = _paused_run(long_mkv, out)
    process.send_signal(signum)
    process.send_signal(signal.SIGCONT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signum, err
    assert "interrupted" in err and signal.Signals(signum).name in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()
    assert not list(tmp_path.glob(".out*")), "a partial or lock file was left behind"


@pytest.mark.parametrize("after", [0.2, 1.5])  # while Python and torch load, while the model loads
def test_ctrl_c_during_start_up(tmp_path, long_mkv, after):
    out = tmp_path / "out.mkv"
    process = subprocess.Popen(_cli(long_mkv, out, "-m", "bicubic", "-s", "2", "--quiet"), stderr=subprocess.PIPE, text=True,
                               preexec_fn=_default_stop_signals)
    time.sleep(after)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines() == ["ldl-video: interrupted; no output written"]
    assert not out.exists() and not list(tmp_path.glob(".out*"))


_SWALLOWED_CTRL_C = """
import os, signal, sys
from ldl_video.cli import main
from ldl_video.video import writer

written = []
original = writer.VideoSink.write_frames


class Finaliser:
    def __del__(self):  # Ctrl-C lands while Python runs a finaliser: its KeyboardInterrupt is ignored there
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(100000):
            pass


def write_frames(self, planes, pts):
    written.append(len(pts))
    if len(written) == 5:
        Finaliser()
    return original(self, planes, pts)


writer.VideoSink.write_frames = write_frames
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("segment", ["0", "0.4"])
def test_ctrl_c_swallowed_by_a_finaliser_still_stops_the_run(tmp_path, long_mkv, segment):
    """Python ignores an exception raised inside __del__ (or a C library's callback), so a Ctrl-C
    that lands there would be lost and the run would finish with exit 0; the run notices the
    received signal at its next step and stops as Ctrl-C does."""
    out = tmp_path / "out.mkv"
    done = subprocess.run([sys.executable, "-c", _SWALLOWED_CTRL_C, str(long_mkv), str(out), "-m", "bicubic", "-s", "2",
                           "--quiet", "--segment", segment], capture_output=True, text=True, timeout=300,
                          preexec_fn=_default_stop_signals)
    assert done.returncode == 130, done.stderr
    assert "interrupted" in done.stderr and not out.exists()
