"""Colours and their description survive: matrix, range, primaries, transfer, bit depth, HDR."""

from __future__ import annotations

import av
import numpy as np
import pytest
from av.sidedata.sidedata import Type
from video_media import HDR10, PATCH_RGB, centre_colours, centre_rgb, decoded_rgb

from ldl_video.cli import main
from ldl_video.video.colour import parse_content_light, parse_mastering_display


def upscale(src, dst, *extra) -> int:
    return main([str(src), str(dst), "-m", "bicubic", "-s", "2", "--quiet", *extra])


def tags(path) -> tuple[int, int, int, int]:
    with av.open(str(path)) as container:
        c = container.streams.video[0].codec_context
        return c.color_primaries, c.color_trc, c.colorspace, c.color_range


def assert_patch(path) -> None:
    for colour in centre_colours(path):
        assert np.abs(colour - PATCH_RGB).max() <= 2, colour


def test_bt709_patch_survives_within_two_levels(patch_mp4, tmp_path):
    assert_patch(patch_mp4)  # the source itself decodes right
    out = tmp_path / "out.mp4"
    assert upscale(patch_mp4, out) == 0
    assert tags(out) == (1, 1, 1, 1)
    assert_patch(out)
    # Read as BT.601 the same pixels would be about (185, 22, 29): the matrix matters.
    with av.open(str(out)) as container:
        frame = next(container.decode(video=0))
        frame.colorspace = 6
        assert np.abs(centre_rgb(frame) - PATCH_RGB).max() > 8
    # PyAV's own conversion, which follows the tags, agrees.
    pyav = decoded_rgb(out)[0]
    assert np.abs(pyav[40:56, 56:72].reshape(-1, 3).mean(axis=0) - PATCH_RGB).max() <= 2


def test_untagged_sd_is_read_as_bt601_and_tagged_so(untagged_sd_mkv, tmp_path):
    out = tmp_path / "out.mkv"
    assert upscale(untagged_sd_mkv, out) == 0
    primaries, transfer, matrix, range_ = tags(out)
    assert (matrix, range_) == (6, 1)  # smpte170m, limited: explicit, so the HD-sized output is not read as BT.709
    assert_patch(out)


def test_full_range_is_kept(full_range_mkv, tmp_path):
    out = tmp_path / "out.mp4"
    assert upscale(full_range_mkv, out) == 0
    assert tags(out) == (1, 1, 1, 2)
    assert_patch(out)


@pytest.mark.parametrize(("suffix", "codec"), [(".mkv", "hevc"), (".webm", "av1")])
def test_ten_bit_hdr10_stays_ten_bit_hdr10(hdr10_mkv, tmp_path, capfd, suffix, codec):
    out = tmp_path / f"out{suffix}"
    assert upscale(hdr10_mkv, out) == 0
    assert capfd.readouterr().err == ""  # x265 and SVT-AV1 print their set-up unless told not to
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.codec.canonical_name == codec
        frame = next(container.decode(stream))
        assert frame.format.name == "yuv420p10le"
        master = parse_mastering_display(bytes(frame.side_data[Type.MASTERING_DISPLAY_METADATA]))
        light = parse_content_light(bytes(frame.side_data[Type.CONTENT_LIGHT_LEVEL]))
    with av.open(str(hdr10_mkv)) as container:
        source = next(container.decode(video=0))
        assert master == parse_mastering_display(bytes(source.side_data[Type.MASTERING_DISPLAY_METADATA]))
        assert light == parse_content_light(bytes(source.side_data[Type.CONTENT_LIGHT_LEVEL])) == "1000,400"
    assert tags(out) == HDR10
    assert_patch(out)


def test_encoder_overrides(patch_mp4, tmp_path):
    out = tmp_path / "out.mkv"
    assert upscale(patch_mp4, out, "--codec", "libx265", "--pix-fmt", "yuv444p10le", "--crf", "12", "--preset", "ultrafast") == 0
    with av.open(str(out)) as container:
        context = container.streams.video[0].codec_context
        assert (context.name, context.pix_fmt) == ("hevc", "yuv444p10le")
    assert tags(out) == (1, 1, 1, 1)
    assert_patch(out)


@pytest.mark.parametrize(("codec", "pix_fmt"), [("ffv1", "yuv420p"), ("libvpx-vp9", "yuv420p")])
def test_other_encoders_keep_tags_and_colour(patch_mp4, tmp_path, codec, pix_fmt):
    out = tmp_path / "out.mkv"
    assert upscale(patch_mp4, out, "--codec", codec) == 0
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == pix_fmt
    assert tags(out) == (1, 1, 1, 1)
    assert_patch(out)


def test_untagged_gray_is_full_range(tmp_path):
    """FFmpeg reads untagged gray (ffv1, PNG sequences) as full range: black stays 0, white 255."""
    src, dst = tmp_path / "gray.mkv", tmp_path / "out.mkv"
    ramp = np.tile(np.arange(256, dtype=np.uint8), (16, 1))  # 256 wide, every level once
    with av.open(str(src), "w") as container:
        stream = container.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = 256, 16, "gray"
        for _ in range(2):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(ramp, format="gray")))
        container.mux(stream.encode(None))
    assert upscale(src, dst, "--codec", "ffv1") == 0
    with av.open(str(dst)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="gray")
    assert frame.min() == 0 and frame.max() == 255
    assert len(np.unique(frame)) == 256
