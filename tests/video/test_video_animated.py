"""Animated images are videos: an animated GIF, PNG (APNG) or WebP, as Pillow (and browsers,
screen recorders, meme tools) write them, has every frame upscaled at its own time."""

from __future__ import annotations

import numpy as np
import pytest
from test_video_errors import assert_failed_cleanly, run
from video_media import decoded_rgb, decoded_seconds

from ldl_video.cli import main

LEVELS = [40, 90, 140, 190]  # one gray level per frame, 100 ms each


@pytest.fixture(scope="module", params=["gif", "png", "webp"])
def animation(request, media):
    from PIL import Image

    path = media / f"animation.{request.param}"
    frames = [Image.fromarray(np.full((24, 32, 3), level, np.uint8)) for level in LEVELS]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0, lossless=True)
    return path


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_every_frame_of_an_animation_is_upscaled(animation, tmp_path, suffix):
    out = tmp_path / f"out{suffix}"
    assert main([str(animation), str(out), "-m", "bicubic", "-s", "2", "--quiet"]) == 0
    assert decoded_seconds(out) == [0.0, 0.1, 0.2, 0.3]
    frames = decoded_rgb(out)
    assert frames[0].shape == (48, 64, 3)
    assert np.allclose([np.median(f) for f in frames], LEVELS, atol=3)


@pytest.mark.parametrize("suffix", [".png", ".gif"])
def test_animation_into_a_still_or_palette_format_is_refused(capsys, animation, tmp_path, suffix):
    out = tmp_path / f"out{suffix}"
    code, err = run(capsys, animation, out, "-m", "bicubic", "-s", "2")
    assert_failed_cleanly(code, err, out, ".mkv")
    assert ("animated image" in err) if suffix == ".png" else ("palettegen" in err)
