"""What a user sees of a stream's description: the output's pixel format against the source's
(bit depth and chroma layout kept where the encoder can, the deepest it has below otherwise), the
matrix an untagged HD-width clip is read with (mpv's rule, video/csputils.c: BT.709 from 1280
wide or 577 high up), and HDR10 mastering metadata checked against the string x265 was given
(x265's own units: chromaticity in 1/50000, luminance in 1/10000 cd/m²), not against our parser."""

from __future__ import annotations

import fractions
import struct
from pathlib import Path

import av
import numpy as np
import pytest
from av.sidedata.sidedata import Type

from ldl_video.cli import main
from ldl_video.video.colour import parse_mastering_display

# Every coordinate differs from the others, and a minimum luminance of 0.6 cd/m² is large enough
# for a unit slip (1/10000 vs 1/10001) to change the integer x265 takes.
MASTER_DISPLAY = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,6000)"


def _mux_one_frame(out: av.container.OutputContainer, stream: av.stream.Stream, frame: av.VideoFrame) -> None:
    for packet in stream.encode(frame) + stream.encode():
        if packet.pts is not None and (packet.dts is None or not 0 <= packet.pts - packet.dts <= 25):
            packet.dts = packet.pts  # x265 may date a one-frame clip's packet ~1e11 early, which MKV refuses
        out.mux(packet)


def _write(path: Path, pix_fmt: str, width: int = 32, height: int = 32, codec: str = "ffv1",
           options: dict[str, str] | None = None, tags: tuple[int, int, int, int] | None = None) -> Path:
    """One frame of a horizontal ramp in `pix_fmt` (made through swscale from 16-bit RGB)."""
    ramp = np.linspace(0, 65535, width).round().astype(np.uint16)
    rgb = np.dstack([np.tile(ramp, (height, 1)), np.tile(ramp[::-1], (height, 1)), np.full((height, width), 30000, np.uint16)])
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=25, options=options or {})
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if tags:
            context = stream.codec_context
            context.color_primaries, context.color_trc, context.colorspace, context.color_range = tags
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb48le").reformat(format=pix_fmt)
        frame.pts, frame.time_base = 0, fractions.Fraction(1, 25)
        _mux_one_frame(out, stream, frame)
    return path


def _upscale(source: Path, target: Path, *extra: str) -> None:
    assert main([str(source), str(target), "-m", "bicubic", "-s", "2", "--quiet", *extra]) == 0


def _pix_fmt(path: Path) -> str:
    with av.open(str(path)) as container:
        return container.streams.video[0].codec_context.pix_fmt


# (source pixel format, --codec, what the output must be)
KEPT = [
    ("yuv420p9le", "ffv1", "yuv420p9le"),  # every depth FFV1 has is kept as it is
    ("yuv420p12le", "ffv1", "yuv420p12le"),
    ("yuv444p14le", "ffv1", "yuv444p14le"),
    ("yuv422p16le", "ffv1", "yuv422p16le"),
    ("yuv411p", "ffv1", "yuv411p"),  # DV's 4:1:1, 4:1:0 and 4:4:0 where the encoder has them
    ("yuv410p", "ffv1", "yuv410p"),
    ("yuv440p", "ffv1", "yuv440p"),
    ("gray", "ffv1", "gray"),
    ("gray12le", "libx265", "gray12le"),
    ("yuv420p12le", "libx264", "yuv420p10le"),  # x264 stops at 10 bits: the deepest below, not 8
    ("bgr0", "libx264", "yuv444p"),  # RGB becomes full-chroma Y'CbCr at its own depth
    ("gbrp10le", "libx264", "yuv444p10le"),
    ("yuv411p", "libx264", "yuv420p"),  # a layout the encoder lacks falls back to 4:2:0
    ("yuv440p12le", "libx264", "yuv420p10le"),
    ("yuv420p", "png", "rgb24"),  # nothing Y'CbCr: the encoder's first (full-colour) format
]


@pytest.mark.parametrize(("source_fmt", "codec", "expected"), KEPT, ids=[f"{s}-{c}" for s, c, _ in KEPT])
def test_output_pixel_format_keeps_what_the_encoder_can(tmp_path: Path, source_fmt: str, codec: str, expected: str) -> None:
    rgb = source_fmt.startswith(("bgr", "gbr"))
    # RGB as a screen recorder or renderer tags it: BT.709 primaries, sRGB transfer, no matrix, full range
    source = _write(tmp_path / "in.mkv", source_fmt, tags=(1, 13, 0, 2) if rgb else None)
    assert _pix_fmt(source) == source_fmt
    out = tmp_path / ("out.mov" if codec == "png" else "out.mkv")  # Matroska holds no PNG video
    _upscale(source, out, "--codec", codec)
    assert _pix_fmt(out) == expected
    if rgb:
        with av.open(str(out)) as container:
            context = container.streams.video[0].codec_context
            # the Y'CbCr made from RGB is BT.709, limited range, and says so; gamut and curve are the source's
            assert (context.color_primaries, context.color_trc, context.colorspace, context.color_range) == (1, 13, 1, 1)


def _flat_yuv(path: Path, width: int, height: int, codes: tuple[int, int, int]) -> Path:
    """An untagged (limited range, no matrix) 8-bit 4:4:4 frame of one Y'CbCr code triple."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv444p"
        frame = av.VideoFrame(width, height, "yuv444p")
        for plane, value in zip(frame.planes, codes, strict=True):
            np.frombuffer(plane, np.uint8)[:] = value
        frame.pts, frame.time_base = 0, fractions.Fraction(1, 25)
        _mux_one_frame(out, stream, frame)
    return path


@pytest.mark.parametrize(("width", "height", "kr_kb"), [(1280, 544, (0.2126, 0.0722)), (1024, 576, (0.299, 0.114)),
                                                       (720, 577, (0.2126, 0.0722))],
                         ids=["HD-width-scope-crop-bt709", "wide-PAL-bt601", "one-line-over-PAL-bt709"])
def test_untagged_matrix_is_guessed_from_width_and_height(tmp_path: Path, width: int, height: int,
                                                          kr_kb: tuple[float, float]) -> None:
    """A 1280×544 crop of 720p (2.39:1) is HD for players although it is under 577 lines."""
    y, cb, cr = 81, 90, 240  # a saturated red in limited range
    source = _flat_yuv(tmp_path / "in.mkv", width, height, (y, cb, cr))
    _upscale(source, tmp_path / "out.mkv", "--codec", "ffv1", "--pix-fmt", "gbrp16le", "--precision", "fp32")
    with av.open(str(tmp_path / "out.mkv")) as container:
        planes = next(container.decode(video=0)).planes
        g, b, r = (np.frombuffer(p, np.uint16).reshape(p.height, -1)[:, : p.width] for p in planes)
    kr, kb = kr_kb
    yn, cbn, crn = (y - 16) / 219, (cb - 128) / 224, (cr - 128) / 224
    red, blue = yn + 2 * (1 - kr) * crn, yn + 2 * (1 - kb) * cbn
    green = (yn - kr * red - kb * blue) / (1 - kr - kb)
    expected = np.clip([red, green, blue], 0, 1)
    seen = np.array([r[100, 100], g[100, 100], b[100, 100]]) / 65535
    np.testing.assert_allclose(seen, expected, atol=2e-4)


# ---- HDR10 mastering metadata -------------------------------------------------------------


@pytest.fixture(scope="module")
def hdr10_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hdr") / "hdr10.mkv"
    params = f"log-level=error:master-display={MASTER_DISPLAY}:max-cll=1000,400"
    return _write(path, "yuv420p10le", 64, 64, "libx265", {"x265-params": params, "crf": "10"}, tags=(9, 16, 9, 1))


def _mastering(path: Path) -> tuple[str | None, bytes]:
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        data = bytes(frame.side_data[Type.MASTERING_DISPLAY_METADATA])
        light = bytes(frame.side_data[Type.CONTENT_LIGHT_LEVEL])
    return parse_mastering_display(data), light


def test_mastering_display_reads_as_x265_was_told(hdr10_source: Path) -> None:
    master, light = _mastering(hdr10_source)
    assert master == MASTER_DISPLAY
    assert struct.unpack("<2I", light[:8]) == (1000, 400)


@pytest.mark.parametrize(("suffix", "codec"), [(".mkv", "libx265"), (".webm", "libsvtav1")])
def test_mastering_display_reaches_the_output(hdr10_source: Path, tmp_path: Path, suffix: str, codec: str) -> None:
    """x265 and SVT-AV1 take it in different units (SVT-AV1: fractions and cd/m²); AV1's fixed
    point (0.16 for chromaticity, 18.14 for the minimum) still rounds back to x265's integers."""
    out = tmp_path / f"out{suffix}"
    _upscale(hdr10_source, out, "--codec", codec)
    master, light = _mastering(out)
    assert master == MASTER_DISPLAY
    assert struct.unpack("<2I", light[:8]) == (1000, 400)


def _av_mastering(primaries: list[tuple[int, int]] | None, luminance: tuple[int, int] | None) -> bytes:
    """AVMasteringDisplayMetadata as libavutil lays it out: display_primaries[3][2] (R, G, B),
    white_point[2], min_luminance, max_luminance (each an AVRational num, den), has_primaries,
    has_luminance. A part that is absent is left zeroed, {0, 0} rationals included, as FFmpeg does."""
    values: list[int] = []
    for num in (primaries or [(0, 0)] * 8):
        values += [num[0], num[1]]
    for num in (luminance or ((0, 0), (0, 0))):
        values += [num[0], num[1]]
    return struct.pack("<20i2i", *values, primaries is not None, luminance is not None)


def test_partial_mastering_display_is_not_passed_on() -> None:
    """x265's master-display needs primaries and luminance; half of it (zeroed rationals) is dropped."""
    luminance = ((6000, 10000), (10000000, 10000))
    primaries = [(34000, 50000), (16000, 50000), (13250, 50000), (34500, 50000), (7500, 50000), (3000, 50000),
                 (15635, 50000), (16450, 50000)]
    assert parse_mastering_display(_av_mastering(primaries, luminance)) == MASTER_DISPLAY
    assert parse_mastering_display(_av_mastering(None, luminance)) is None
    assert parse_mastering_display(_av_mastering(primaries, None)) is None


# ---- palette and alpha sources --------------------------------------------------------------

PALETTE = np.array([(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255), (191, 191, 191),
                    (51, 128, 204), (10, 20, 30)], np.uint8)


def test_palette_gif_colours_come_out_as_pillow_reads_them(tmp_path: Path) -> None:
    """A GIF is palette (pal8) video: its colours are RGB table entries, not Y'CbCr codes."""
    from PIL import Image

    index = np.kron(np.arange(9).reshape(3, 3), np.ones((16, 16), int)).astype(np.uint8)
    frames = [Image.fromarray(index, "P") for _ in range(2)]
    for frame in frames:
        frame.putpalette(PALETTE.ravel().tolist())
    frames[0].save(tmp_path / "in.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    pillow = np.asarray(Image.open(tmp_path / "in.gif").convert("RGB"))
    _upscale(tmp_path / "in.gif", tmp_path / "out.mkv", "--codec", "ffv1", "--pix-fmt", "gbrp16le", "--precision", "fp32")
    with av.open(str(tmp_path / "out.mkv")) as container:
        planes = next(container.decode(video=0)).planes
        g, b, r = (np.frombuffer(p, np.uint16).reshape(p.height, -1)[:, : p.width] for p in planes)
    centre = np.s_[48, 48]  # the middle of the middle block, far from any edge after ×2
    np.testing.assert_allclose(np.array([r[centre], g[centre], b[centre]]) / 65535, pillow[24, 24] / 255, atol=1e-4)


@pytest.mark.parametrize("pix_fmt", ["bgra", "yuva420p"])
def test_a_dropped_alpha_channel_is_said(tmp_path: Path, capsys: pytest.CaptureFixture[str], pix_fmt: str) -> None:
    source = _write(tmp_path / "in.mkv", pix_fmt)
    assert main([str(source), str(tmp_path / "out.mkv"), "-m", "bicubic", "-s", "2", "--codec", "ffv1"]) == 0
    assert f"alpha channel ({pix_fmt}) is dropped" in capsys.readouterr().err


def test_palette_video_colours_are_the_palette_entries(tmp_path: Path) -> None:
    """PNG frames with a palette (pal8, e.g. screen captures in QuickTime): each pixel is its
    palette entry. (FFmpeg's GIF decoder hands out BGRA, so the GIF test does not cover pal8.)"""
    index = np.kron(np.arange(9).reshape(3, 3), np.ones((16, 16), int)).astype(np.uint8)
    palette = np.zeros((256, 4), np.uint8)
    palette[:, 0], palette[:9, 1:] = 255, PALETTE  # PyAV takes pal8 entries as A, R, G, B
    frame = av.VideoFrame.from_ndarray((index, palette), format="pal8")
    frame.pts, frame.time_base = 0, fractions.Fraction(1, 25)
    with av.open(str(tmp_path / "in.mov"), "w") as out:
        stream = out.add_stream("png", rate=25)
        stream.width, stream.height, stream.pix_fmt = 48, 48, "pal8"
        out.mux(stream.encode(frame))
        out.mux(stream.encode())
    with av.open(str(tmp_path / "in.mov")) as container:
        decoded = next(container.decode(video=0))
        assert decoded.format.name == "pal8"
        np.testing.assert_array_equal(decoded.to_ndarray(format="rgb24")[24, 24], PALETTE[4])  # FFmpeg agrees
    _upscale(tmp_path / "in.mov", tmp_path / "out.mkv", "--codec", "ffv1", "--pix-fmt", "gbrp16le", "--precision", "fp32")
    with av.open(str(tmp_path / "out.mkv")) as container:
        planes = next(container.decode(video=0)).planes
        g, b, r = (np.frombuffer(p, np.uint16).reshape(p.height, -1)[:, : p.width] for p in planes)
    # every block's centre (saturated entries survive a detour through 8-bit Y'CbCr by clipping; mid-tones do not)
    centres = np.arange(3) * 32 + 16
    seen = np.stack([r, g, b], axis=-1)[np.ix_(centres, centres)].reshape(9, 3) / 65535
    np.testing.assert_allclose(seen, PALETTE / 255, atol=1e-4)
