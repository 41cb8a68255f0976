"""What the picture is besides its pixels: pixel aspect ratio, chroma layout and depth, colour
tags, with every encoder the README names (and ProRes), read back from the written file."""

from __future__ import annotations

from fractions import Fraction

import av
import pytest
from video_media import BT709, HDR10, MASTER_DISPLAY, MAX_CLL, PATCH_RGB, Clip, write_clip

from ldl_video.cli import main

DVD_WIDE = Fraction(64, 45)  # 16:9 DVD, stored 720×480 (here 64×48)


def upscale(src, dst, *extra) -> int:
    return main([str(src), str(dst), "-m", "bicubic", "-s", "2", *extra])


@pytest.fixture(scope="module")
def anamorphic_mkv(media):
    source = write_clip(media / "anamorphic.mkv", Clip(frames=2, sar=DVD_WIDE))
    with av.open(str(source)) as container:
        assert container.streams.video[0].sample_aspect_ratio == DVD_WIDE
    return source


@pytest.mark.parametrize(("suffix", "codec"), [(".mkv", None), (".mp4", "libvpx-vp9"), (".mov", "prores_ks"),
                                               (".mp4", "libsvtav1"), (".mkv", "libx265")])
def test_pixel_aspect_ratio_is_kept(anamorphic_mkv, tmp_path, capsys, suffix, codec):
    out = tmp_path / f"out{suffix}"
    assert upscale(anamorphic_mkv, out, *(["--codec", codec] if codec else [])) == 0
    assert "is lost" not in capsys.readouterr().err
    with av.open(str(out)) as result:
        assert result.streams.video[0].sample_aspect_ratio == DVD_WIDE


@pytest.mark.parametrize(("suffix", "codec"), [(".webm", None), (".mkv", "ffv1"), (".mkv", "libsvtav1")])
def test_pixel_aspect_ratio_that_cannot_be_kept_is_said(anamorphic_mkv, tmp_path, capsys, suffix, codec):
    out = tmp_path / f"out{suffix}"
    assert upscale(anamorphic_mkv, out, *(["--codec", codec] if codec else [])) == 0
    err = capsys.readouterr().err
    assert "pixel aspect ratio 64:45 is lost" in err and ".mp4/.mov" in err
    with av.open(str(out)) as result:
        assert result.streams.video[0].sample_aspect_ratio in (None, 0, 1)  # unknown or square


@pytest.mark.parametrize(("pix_fmt", "codec", "depth", "kept"), [
    ("yuv422p10le", "libx265", 16, "yuv422p10le"),
    ("yuv422p", "libx264", 8, "yuv422p"),
])
def test_chroma_and_depth_into_webm(media, tmp_path, capsys, pix_fmt, codec, depth, kept):
    source = write_clip(media / f"{pix_fmt}.mkv", Clip(frames=2, codec=codec, pix_fmt=pix_fmt, depth=depth,
                                                       options={"x265-params": "log-level=error"} if codec == "libx265" else {}))
    assert upscale(source, tmp_path / "out.mkv", "--quiet") == 0
    with av.open(str(tmp_path / "out.mkv")) as result:  # Matroska with the default encoders keeps the family
        assert result.streams.video[0].codec_context.pix_fmt == kept
    out = tmp_path / "out.webm"
    assert upscale(source, out) == 0
    err = capsys.readouterr().err
    with av.open(str(out)) as result:
        written = result.streams.video[0].codec_context.pix_fmt
    if written != kept:  # what this FFmpeg's WebM encoders cannot hold is said, with what keeps it
        assert "cannot keep the source's format" in err and written in err and "ffv1" in err
    else:
        assert "cannot keep" not in err


HDR10_PARAMS = f"log-level=error:hdr10=1:master-display={MASTER_DISPLAY}:max-cll={MAX_CLL}"


@pytest.fixture(scope="module")
def tagged_sources(media):
    return {
        "bt709": (write_clip(media / "tags709.mp4", Clip(frames=2, colour=PATCH_RGB, options={"qp": "0"})), BT709),
        "hdr10": (write_clip(media / "tagshdr.mkv", Clip(frames=2, codec="libx265", pix_fmt="yuv420p10le", tags=HDR10,
                                                         depth=16, colour=PATCH_RGB,
                                                         options={"x265-params": HDR10_PARAMS, "crf": "8"})), HDR10),
    }


@pytest.mark.parametrize("source", ["bt709", "hdr10"])
@pytest.mark.parametrize(("codec", "suffix"), [("libx264", ".mp4"), ("libx265", ".mov"), ("libvpx-vp9", ".webm"),
                                               ("libsvtav1", ".mkv"), ("ffv1", ".mkv"), ("prores_ks", ".mov"),
                                               ("mpeg4", ".mp4")])
def test_colour_tags_with_every_encoder(tagged_sources, tmp_path, source, codec, suffix):
    path, tags = tagged_sources[source]
    out = tmp_path / f"out{suffix}"
    assert upscale(path, out, "--quiet", "--codec", codec) == 0
    with av.open(str(out)) as result:
        frame = next(result.decode(video=0))
        # (primaries, transfer, matrix, range), as a player reads them from the file
        assert (frame.color_primaries, frame.color_trc, frame.colorspace, frame.color_range) == tags
