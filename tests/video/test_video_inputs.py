"""What pipelines and VFX users type: a video on standard input, numbered image sequences."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from test_video_errors import assert_failed_cleanly, run
from video_media import assert_same_packets, decoded_pts, decoded_rgb, decoded_seconds, packet_digests

from ldl_video.cli import main


def test_video_from_standard_input(tmp_path, moving_mkv):
    out = tmp_path / "out.mkv"
    with open(moving_mkv, "rb") as pipe:  # as `cat in.mkv | ldl-video - out.mkv`
        done = subprocess.run([sys.executable, "-m", "ldl_video.cli", "-", str(out), "-m", "bicubic", "-s", "2", "--quiet"],
                              stdin=pipe, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert decoded_pts(out) == decoded_pts(moving_mkv)
    assert_same_packets(packet_digests(out, "audio"), packet_digests(moving_mkv, "audio"))


LEVELS = [40, 70, 100, 130, 160]


@pytest.fixture(scope="module")
def frames_folder(media):
    from PIL import Image

    folder = media / "frames"
    folder.mkdir(exist_ok=True)
    for index, level in enumerate(LEVELS, start=1):  # numbered from 1, as render farms write them
        Image.fromarray(np.full((24, 32, 3), level, np.uint8)).save(folder / f"{index:05d}.png")
    return folder


@pytest.mark.parametrize(("fps", "step"), [(["--fps", "12"], 1 / 12), ([], 1 / 25)])
def test_image_sequence(frames_folder, tmp_path, fps, step):
    out = tmp_path / "out.mkv"
    assert main([str(frames_folder / "%05d.png"), str(out), "-m", "bicubic", "-s", "2", "--quiet", *fps]) == 0
    assert decoded_seconds(out) == pytest.approx([i * step for i in range(5)], abs=0.0015)
    frames = decoded_rgb(out)
    assert frames[0].shape == (48, 64, 3)
    assert np.allclose([np.median(f) for f in frames], LEVELS, atol=3)


def test_image_sequence_mistakes(capsys, frames_folder, tmp_path):
    out = tmp_path / "out.mkv"
    # the files have five digits
    assert_failed_cleanly(*run(capsys, frames_folder / "%04d.png", out, "-m", "bicubic"), out, "no file matches")
    with pytest.raises(SystemExit) as stop:
        main([str(frames_folder / "%05d.png"), str(out), "--fps", "0"])
    assert stop.value.code == 2 and "above 0" in capsys.readouterr().err and not out.exists()


def test_fps_with_a_video_is_refused(capsys, tmp_path, moving_mkv):
    out = tmp_path / "out.mkv"
    assert_failed_cleanly(*run(capsys, moving_mkv, out, "-m", "bicubic", "--fps", "30"), out, "image-sequence")
