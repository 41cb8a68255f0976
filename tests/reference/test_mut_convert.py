"""Y'CbCr planes <-> RGB against the textbook, computed here in numpy: (Kr, Kb) of each standard,
limited range (16 + 219·Y', 128 + 224·C, shifted by depth − 8 bits) or full range (2^depth − 1
steps, chroma centred at 2^(depth−1)); subsampled chroma made as the mean of the RGB-derived
Cb/Cr over each chroma sample's pixels (edges replicated), and read back by bilinear upsampling
with centred samples, as OpenCV's INTER_LINEAR does it. Nothing here goes through our own
conversion twice."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from ldl_video.video.colour import ColourTags, pixel_family
from ldl_video.video.convert import PlaneFormat, planes_to_rgb, read_planes, rgb_to_planes, stack_planes

KR_KB = {1: (0.2126, 0.0722), 4: (0.30, 0.11), 6: (0.299, 0.114), 7: (0.212, 0.087), 9: (0.2627, 0.0593)}
SUBSAMPLING = {"444": (1, 1), "422": (2, 1), "420": (2, 2), "440": (1, 2), "411": (4, 1), "410": (4, 4)}
LIMITED, FULL = 1, 2


def _format(pix_fmt: str, matrix: int, rng: int) -> PlaneFormat:
    return PlaneFormat(pixel_family(pix_fmt), ColourTags(matrix, rng, 1, 1))


def _levels(bits: int, full: bool) -> tuple[float, float, float, float]:
    if full:
        return 0.0, 2.0**bits - 1, 2.0 ** (bits - 1), 2.0**bits - 1
    shift = 2.0 ** (bits - 8)
    return 16 * shift, 219 * shift, 128 * shift, 224 * shift


def _textbook_codes(rgb: np.ndarray, kr: float, kb: float, bits: int, full: bool, sub: tuple[int, int]) -> list[np.ndarray]:
    """H×W×3 R'G'B' in [0, 1] -> Y', Cb, Cr code planes (float, before rounding)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = kr * r + (1 - kr - kb) * g + kb * b
    cb, cr = (b - y) / (2 * (1 - kb)), (r - y) / (2 * (1 - kr))
    sx, sy = sub
    h, w = y.shape
    padded = [np.pad(c, ((0, (-h) % sy), (0, (-w) % sx)), mode="edge") for c in (cb, cr)]
    cb, cr = (p.reshape(p.shape[0] // sy, sy, p.shape[1] // sx, sx).mean(axis=(1, 3)) for p in padded)
    y_off, y_span, c_mid, c_span = _levels(bits, full)
    return [y_off + y_span * y, c_mid + c_span * cb, c_mid + c_span * cr]


def _textbook_rgb(planes: list[np.ndarray], kr: float, kb: float, bits: int, full: bool, sub: tuple[int, int]) -> np.ndarray:
    y, cb, cr = (p.astype(np.float64) for p in planes)
    h, w = y.shape
    sx, sy = sub
    if sub != (1, 1):
        cb, cr = (cv2.resize(c.astype(np.float32), (c.shape[1] * sx, c.shape[0] * sy),
                             interpolation=cv2.INTER_LINEAR)[:h, :w].astype(np.float64) for c in (cb, cr))
    y_off, y_span, c_mid, c_span = _levels(bits, full)
    y, cb, cr = (y - y_off) / y_span, (cb - c_mid) / c_span, (cr - c_mid) / c_span
    r, b = y + 2 * (1 - kr) * cr, y + 2 * (1 - kb) * cb
    g = (y - kr * r - kb * b) / (1 - kr - kb)
    return np.clip(np.stack([r, g, b], axis=-1), 0, 1)


def _bits(pix_fmt: str) -> int:
    return pixel_family(pix_fmt).depth


# (pixel format, matrix, range): every subsampling, 8 to 16 bits, both ranges, odd sizes below
CASES = [("yuv420p", 1, LIMITED), ("yuv420p10le", 9, FULL), ("yuv422p", 6, FULL), ("yuv422p12le", 7, LIMITED),
         ("yuv440p", 4, LIMITED), ("yuv411p", 1, FULL), ("yuv410p", 6, LIMITED), ("yuv444p16le", 9, FULL),
         ("yuv444p16le", 1, LIMITED), ("yuv444p", 4, FULL)]
IDS = [f"{p}-m{m}-{'full' if r == FULL else 'limited'}" for p, m, r in CASES]


@pytest.mark.parametrize(("pix_fmt", "matrix", "rng"), CASES, ids=IDS)
def test_encoding_gives_the_textbook_codes(pix_fmt: str, matrix: int, rng: int) -> None:
    h, w = 21, 37  # odd, and one past a multiple of 4
    rgb = np.random.default_rng(matrix).random((h, w, 3))
    # whole chroma blocks of saturated blue, red, black and white: full-range Cb of blue is
    # 2^(depth-1) + (2^depth - 1) / 2, half a code over the top, and must stay at the top
    rgb[:4, :4], rgb[:4, 4:8], rgb[4:8, :4], rgb[4:8, 4:8] = (0, 0, 1), (1, 0, 0), (0, 0, 0), (1, 1, 1)
    fmt = _format(pix_fmt, matrix, rng)
    ours = rgb_to_planes(torch.from_numpy(rgb).permute(2, 0, 1)[None].float(), fmt)
    bits = _bits(pix_fmt)
    sub = SUBSAMPLING[pixel_family(pix_fmt).chroma]
    expected = _textbook_codes(rgb, *KR_KB[matrix], bits, rng == FULL, sub)
    for name, plane, reference in zip("Y Cb Cr".split(), ours, expected, strict=True):
        reference = np.clip(np.rint(reference), 0, 2**bits - 1)
        assert plane[0].shape == reference.shape, name
        difference = np.abs(plane[0].astype(np.int64) - reference)
        # float32 here, float64 there: a value within 1e-4 of .5 may round the other way
        assert difference.max() <= 1 and (difference > 0).mean() < 0.01, (name, difference.max(), (difference > 0).mean())


@pytest.mark.parametrize(("pix_fmt", "matrix", "rng"), CASES, ids=IDS)
def test_decoding_follows_the_textbook(pix_fmt: str, matrix: int, rng: int) -> None:
    h, w = 21, 37
    bits = _bits(pix_fmt)
    sub = SUBSAMPLING[pixel_family(pix_fmt).chroma]
    full = rng == FULL
    y_off, y_span, c_mid, c_span = _levels(bits, full)
    generator = np.random.default_rng(bits + matrix)
    dtype = np.uint8 if bits == 8 else np.uint16
    ch, cw = -(-h // sub[1]), -(-w // sub[0])
    # legal codes, chroma kept near the centre so that most pixels are inside the RGB cube
    y = generator.integers(y_off, y_off + y_span + 1, (h, w)).astype(dtype)
    cb, cr = (generator.integers(c_mid - c_span / 4, c_mid + c_span / 4, (ch, cw)).astype(dtype) for _ in range(2))
    fmt = _format(pix_fmt, matrix, rng)
    ours = planes_to_rgb([y[None], cb[None], cr[None]], fmt, torch.device("cpu"))[0].permute(1, 2, 0).numpy()
    expected = _textbook_rgb([y, cb, cr], *KR_KB[matrix], bits, full, sub)
    np.testing.assert_allclose(ours, expected, atol=2e-5)


@pytest.mark.parametrize(("pix_fmt", "rng"), [("gray", LIMITED), ("gray", FULL), ("gray16le", FULL), ("gray10le", LIMITED)])
def test_gray_is_luma_alone(pix_fmt: str, rng: int) -> None:
    bits = _bits(pix_fmt)
    full = rng == FULL
    y_off, y_span, _, _ = _levels(bits, full)
    ramp = np.arange(0, 2**bits, max(1, 2**bits // 512), dtype=np.uint8 if bits == 8 else np.uint16)
    codes = np.stack([np.stack([ramp, ramp[::-1]]), np.stack([ramp[::-1], ramp])])  # 2 frames × 2 rows
    fmt = _format(pix_fmt, 1, rng)
    rgb = planes_to_rgb([codes], fmt, torch.device("cpu"))
    assert rgb.shape == (2, 3, 2, ramp.size)
    np.testing.assert_array_equal(rgb[1].numpy(), rgb[0].flip(1).numpy())  # the frames are not mixed up
    ours = rgb[0].permute(1, 2, 0).numpy()
    expected = np.clip((codes[0].astype(np.float64) - y_off) / y_span, 0, 1)
    for channel in range(3):
        np.testing.assert_allclose(ours[..., channel], expected, atol=1e-6)
    back = rgb_to_planes(torch.from_numpy(np.repeat(expected[None, None], 3, axis=1)).float(), fmt)
    assert len(back) == 1
    np.testing.assert_array_equal(back[0][0], np.clip(np.rint(y_off + y_span * expected), 0, 2**bits - 1))


def test_frames_stacked_for_one_batch_keep_their_order_and_planes() -> None:
    """The pipeline batches frames by stacking each plane; every frame comes back as its own textbook RGB."""
    fmt = _format("yuv420p", 1, LIMITED)
    generator = np.random.default_rng(7)
    frames = [[generator.integers(16, 236, (6, 8)).astype(np.uint8)] + [generator.integers(100, 156, (3, 4)).astype(np.uint8)
                                                                         for _ in range(2)] for _ in range(3)]
    stacked = stack_planes(frames)
    assert [p.shape for p in stacked] == [(3, 6, 8), (3, 3, 4), (3, 3, 4)]
    rgb = planes_to_rgb(stacked, fmt, torch.device("cpu")).permute(0, 2, 3, 1).numpy()
    for index, planes in enumerate(frames):
        np.testing.assert_allclose(rgb[index], _textbook_rgb(planes, *KR_KB[1], 8, False, (2, 2)), atol=2e-5)


def test_motion_jpeg_full_range_is_read_as_full_range(tmp_path) -> None:
    """MJPEG (webcams, old cameras) decodes to yuvj420p: full-range codes, which must not be
    squeezed into 16-235 on the way in. The reference: the decoded codes, read with the textbook."""
    import fractions

    import av

    from ldl_video.cli import main

    width, height = 64, 48
    index = np.kron(np.arange(12).reshape(3, 4), np.ones((16, 16), int))
    colours = np.random.default_rng(3).integers(0, 256, (12, 3)).astype(np.uint8)
    with av.open(str(tmp_path / "in.avi"), "w") as out:
        stream = out.add_stream("mjpeg", rate=25, options={"qscale": "2"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuvj420p"
        frame = av.VideoFrame.from_ndarray(colours[index], format="rgb24").reformat(format="yuvj420p")
        frame.pts, frame.time_base = 0, fractions.Fraction(1, 25)
        out.mux(stream.encode(frame))
        out.mux(stream.encode())
    with av.open(str(tmp_path / "in.avi")) as source:
        decoded = next(source.decode(video=0))
        assert decoded.format.name == "yuvj420p"
        planes = [np.frombuffer(p, np.uint8).reshape(p.height, -1)[:, : p.width] for p in decoded.planes]
    expected = _textbook_rgb(planes, *KR_KB[6], 8, True, (2, 2))  # untagged SD: BT.601
    assert main([str(tmp_path / "in.avi"), str(tmp_path / "out.mkv"), "-m", "bicubic", "-s", "2", "--codec", "ffv1",
                 "--pix-fmt", "gbrp16le", "--precision", "fp32", "--quiet"]) == 0
    with av.open(str(tmp_path / "out.mkv")) as result:
        g, b, r = (np.frombuffer(p, np.uint16).reshape(p.height, -1)[:, : p.width] for p in next(result.decode(video=0)).planes)
    ours = np.stack([r, g, b], axis=-1) / 65535
    # the centres of the inner blocks, where bicubic ×2 of a flat block is the block itself (a
    # 16-235 squeeze would move most colours by 5-15 levels)
    for x in (24, 40):
        np.testing.assert_allclose(ours[48, 2 * x], expected[24, x], atol=2e-3)


@pytest.mark.parametrize(("pix_fmt", "size"), [("yuv420p", (40, 30)), ("nv12", (64, 48)), ("yuv420p", (64, 48))])
def test_frames_of_another_size_or_layout_are_read_as_ffmpeg_scales_them(pix_fmt: str, size: tuple[int, int]) -> None:
    """A stream whose resolution changes mid-way: later frames come out at the first frame's size
    (64×48 here), as FFmpeg's own scaler makes them; a same-size planar frame is read untouched."""
    import av

    generator = np.random.default_rng(11)
    frame = av.VideoFrame.from_ndarray(generator.integers(0, 256, (size[1], size[0], 3)).astype(np.uint8), format="rgb24")
    frame = frame.reformat(format=pix_fmt)
    fmt = _format("yuv420p", 1, LIMITED)
    ours = read_planes(frame, fmt, (64, 48))
    reference = frame.reformat(width=64, height=48, format="yuv420p")
    for index, plane in enumerate(ours):
        expected = np.frombuffer(reference.planes[index], np.uint8).reshape(reference.planes[index].height, -1)
        np.testing.assert_array_equal(plane, expected[: plane.shape[0], : plane.shape[1]])
        assert plane.shape == ((48, 64) if index == 0 else (24, 32))


@pytest.mark.parametrize("pix_fmt", ["gbrp", "gbrp12le", "gbrp16le"])
def test_planar_rgb_is_g_b_r_scaled_to_the_depth(pix_fmt: str) -> None:
    """gbrp planes hold G, B, R (FFmpeg's order) as round(x · (2^depth − 1)), and read back as code / (2^depth − 1)."""
    rgb = np.random.default_rng(5).random((1, 3, 5, 7))
    bits = _bits(pix_fmt)
    top = 2**bits - 1
    fmt = _format(pix_fmt, 0, FULL)
    planes = rgb_to_planes(torch.from_numpy(rgb).float(), fmt)
    for plane, channel in zip(planes, (1, 2, 0), strict=True):
        assert np.abs(plane[0].astype(np.int64) - np.rint(rgb[0, channel] * top)).max() <= (0 if bits <= 12 else 1)
    back = planes_to_rgb(planes, fmt, torch.device("cpu")).numpy()
    codes = np.stack([planes[2], planes[0], planes[1]], axis=1).astype(np.float64)
    np.testing.assert_allclose(back, codes / top, atol=1e-6)
