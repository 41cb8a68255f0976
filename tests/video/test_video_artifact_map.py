"""--artifact-map writes a second video: same frames, same times, same size as the result."""

from __future__ import annotations

import av
import numpy as np
from video_media import decoded_rgb, decoded_seconds

from ldl_video.cli import main


def test_artifact_map_video_matches_the_result(moving_mkv, tmp_path):
    out, artifact = tmp_path / "out.mkv", tmp_path / "map.mp4"
    assert main([str(moving_mkv), str(out), "-m", "realesr-animevideov3-x2", "--artifact-map", str(artifact), "--quiet"]) == 0
    assert decoded_seconds(artifact) == decoded_seconds(out) == decoded_seconds(moving_mkv)
    with av.open(str(artifact)) as container:
        assert len(container.streams) == 1  # video only: no audio copied into the map
        context = container.streams.video[0].codec_context
        assert (context.width, context.height) == (128, 96)
    frames = decoded_rgb(artifact)
    assert all(np.allclose(f[..., 0], f[..., 1], atol=3) for f in frames)  # gray
    assert max(int(f.max()) for f in frames) > 0


def test_artifact_map_needs_a_video_suffix(moving_mkv, tmp_path, capsys):
    out, artifact = tmp_path / "out.mkv", tmp_path / "map.png"
    assert main([str(moving_mkv), str(out), "-m", "bicubic", "--artifact-map", str(artifact)]) != 0
    assert "video suffix" in capsys.readouterr().err
    assert not out.exists() and not artifact.exists()


def test_progress_goes_to_stderr_and_quiet_silences_it(moving_mkv, tmp_path, capsys):
    assert main([str(moving_mkv), str(tmp_path / "a.mkv"), "-m", "bicubic", "-s", "2"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    # Matroska counts no frames: the bar runs over the clip's 0.44 s and counts the 11 frames
    assert "11 frames" in captured.err and "0.44/0.44 s" in captured.err and "wrote" in captured.err
    assert main([str(moving_mkv), str(tmp_path / "b.mkv"), "-m", "bicubic", "-s", "2", "--quiet"]) == 0
    assert capsys.readouterr().err == ""
