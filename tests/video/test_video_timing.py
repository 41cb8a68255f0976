"""Frames keep their exact times and order: VFR, no frame count, cut streams, split devices."""

from __future__ import annotations

import av
import numpy as np
import pytest
from video_media import VFR_PTS, assert_same_packets, decoded_pts, decoded_rgb, decoded_seconds, frame_brightness, packet_digests

from ldl_video.cli import main


def upscale(src, dst, *extra) -> int:
    return main([str(src), str(dst), "-m", "bicubic", "-s", "2", "--quiet", *extra])


def test_variable_frame_rate_survives_exactly(vfr_mkv, tmp_path):
    out = tmp_path / "out.mkv"
    assert upscale(vfr_mkv, out) == 0
    assert decoded_pts(out) == VFR_PTS
    assert_same_packets(packet_digests(out, "audio"), packet_digests(vfr_mkv, "audio"))


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_variable_frame_rate_from_mp4(vfr_mp4, tmp_path, suffix):
    out = tmp_path / f"out{suffix}"
    assert upscale(vfr_mp4, out) == 0
    assert decoded_seconds(out) == decoded_seconds(vfr_mp4) == [t / 1000 for t in VFR_PTS]


def test_stream_that_starts_without_a_keyframe(no_keyframe_start_mkv, tmp_path):
    out = tmp_path / "out.mkv"
    assert upscale(no_keyframe_start_mkv, out) == 0
    source = decoded_pts(no_keyframe_start_mkv)
    assert 0 < len(source) < 30  # the frames before the first keyframe cannot be decoded
    with av.open(str(no_keyframe_start_mkv)) as container:
        start = container.start_time * 1000 // av.time_base  # its first packet (ms), undecodable
    assert start > 0
    # where the file starts becomes 0, as in `ffmpeg -c copy`; the frames keep their spacing
    assert decoded_pts(out) == [pts - start for pts in source]


def test_odd_size_in_444_is_kept(odd_mkv, tmp_path):
    out = tmp_path / "out.mkv"
    assert main([str(odd_mkv), str(out), "-m", "bicubic", "-s", "3", "--quiet"]) == 0
    with av.open(str(out)) as result:
        context = result.streams.video[0].codec_context
        assert (context.width, context.height, context.pix_fmt) == (189, 141, "yuv444p")


def test_odd_size_in_420_is_cropped_and_said(odd_mkv, tmp_path, capsys):
    out = tmp_path / "out.mkv"
    assert main([str(odd_mkv), str(out), "-m", "bicubic", "-s", "3", "--pix-fmt", "yuv420p"]) == 0
    assert "cropped from 189×141 to 188×140" in capsys.readouterr().err
    with av.open(str(out)) as result:
        context = result.streams.video[0].codec_context
        assert (context.width, context.height) == (188, 140)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_rotation_metadata_is_kept(rotated_mp4, tmp_path, suffix):
    out = tmp_path / f"out{suffix}"
    assert upscale(rotated_mp4, out) == 0
    with av.open(str(out)) as result:
        frame = next(result.decode(video=0))
        assert frame.rotation == 90
        assert (frame.width, frame.height) == (128, 96)  # stored as before; players turn it


def _blue_levels(path) -> list[float]:
    return [float(np.median(f[..., 2])) for f in decoded_rgb(path)]


@pytest.mark.parametrize("extra", [["--device", "cpu,cpu", "--batch", "2"], ["--batch", "4"],
                                   ["--tile", "24", "--tile-overlap", "4"]])
def test_frames_keep_their_order(moving_mkv, tmp_path, extra):
    out = tmp_path / "out.mkv"
    assert upscale(moving_mkv, out, *extra) == 0
    assert decoded_pts(out) == decoded_pts(moving_mkv)
    levels = _blue_levels(out)
    assert len(levels) == 11
    assert np.allclose(levels, [frame_brightness(i) for i in range(11)], atol=2)
    assert_same_packets(packet_digests(out, "audio"), packet_digests(moving_mkv, "audio"))
