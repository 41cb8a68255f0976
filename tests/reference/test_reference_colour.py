"""Video colour against the textbook: Y'CbCr made in the test from known R'G'B' with each
standard's (Kr, Kb) and quantisation (ITU-R BT.601/709/2020, FCC, SMPTE 240M; limited and full
range), run through `ldl-video -m bicubic`, and the output's raw planes read back and compared
with the same formulas. Decoding is checked on its own (the output is planar RGB), so an error
in the decode matrix cannot hide behind the same error when encoding back."""

from __future__ import annotations

import fractions
from pathlib import Path

import av
import numpy as np
import pytest

from ldl_video.cli import main

# AVColorSpace code -> (Kr, Kb), from the standards themselves
TEXTBOOK = {1: (0.2126, 0.0722), 4: (0.30, 0.11), 5: (0.299, 0.114), 6: (0.299, 0.114), 7: (0.212, 0.087),
            9: (0.2627, 0.0593)}
LIMITED, FULL, UNSPECIFIED = 1, 2, 0
BLOCK = 16
# primaries and secondaries at full strength, a 75 % gray, and a mid tone
COLOURS = np.array([(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (0, 1, 1), (1, 0, 1), (0.75, 0.75, 0.75),
                    (0.2, 0.5, 0.8)], dtype=np.float64)


def _blocks(height: int, width: int) -> np.ndarray:
    """Colour index per 16×16 block."""
    ys, xs = np.mgrid[0 : height // BLOCK, 0 : width // BLOCK]
    return (ys * 3 + xs) % len(COLOURS)


def _quantise(rgb: np.ndarray, kr: float, kb: float, full: bool, bits: int) -> list[np.ndarray]:
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = kr * r + (1 - kr - kb) * g + kb * b
    cb, cr = (b - y) / (2 * (1 - kb)), (r - y) / (2 * (1 - kr))
    top, shift = 2**bits - 1, 2 ** (bits - 8)
    if full:
        planes = (y * top, 2 ** (bits - 1) + cb * top, 2 ** (bits - 1) + cr * top)
    else:
        planes = ((16 + 219 * y) * shift, (128 + 224 * cb) * shift, (128 + 224 * cr) * shift)
    return [np.clip(np.rint(p), 0, top) for p in planes]


def _dequantise(planes: list[np.ndarray], kr: float, kb: float, full: bool, bits: int) -> np.ndarray:
    y, cb, cr = (p.astype(np.float64) for p in planes)
    top, shift = 2**bits - 1, 2 ** (bits - 8)
    if full:
        y, cb, cr = y / top, (cb - 2 ** (bits - 1)) / top, (cr - 2 ** (bits - 1)) / top
    else:
        y, cb, cr = (y / shift - 16) / 219, (cb / shift - 128) / 224, (cr / shift - 128) / 224
    r = y + 2 * (1 - kr) * cr
    b = y + 2 * (1 - kb) * cb
    g = (y - kr * r - kb * b) / (1 - kr - kb)
    return np.stack([r, g, b], axis=-1)


def _write_source(path: Path, planes: list[np.ndarray], pix_fmt: str, matrix: int, rng: int) -> None:
    height, width = planes[0].shape
    dtype = np.uint16 if pix_fmt.endswith("le") else np.uint8
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.codec_context.colorspace, stream.codec_context.color_range = matrix, rng
        frame = av.VideoFrame(width, height, pix_fmt)
        for plane, values in zip(frame.planes, planes, strict=True):
            rows = np.frombuffer(plane, dtype).reshape(height, plane.line_size // dtype().itemsize)
            rows[:, :width] = values.astype(dtype)
        frame.pts, frame.time_base = 0, fractions.Fraction(1, 25)
        frame.colorspace, frame.color_range = matrix, rng
        out.mux(stream.encode(frame))
        out.mux(stream.encode())


def _read_output(path: Path) -> tuple[list[np.ndarray], av.VideoFrame]:
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        planes = [np.frombuffer(p, np.uint16).reshape(frame.height, p.line_size // 2)[:, : frame.width].copy()
                  for p in frame.planes]
        return planes, frame


def _upscale(source: Path, target: Path, pix_fmt: str) -> None:
    code = main([str(source), str(target), "-m", "bicubic", "-s", "2", "--precision", "fp32", "--codec", "ffv1",
                 "--pix-fmt", pix_fmt, "--quiet"])
    assert code == 0


def _block_centres(image: np.ndarray, blocks: tuple[int, int]) -> np.ndarray:
    """The values at the centres of the (×2) blocks, leaving out the blocks at the frame's edge."""
    ys, xs = np.mgrid[1 : blocks[0] - 1, 1 : blocks[1] - 1]
    return image[ys * 2 * BLOCK + BLOCK, xs * 2 * BLOCK + BLOCK]


def _source(tmp_path: Path, width: int, height: int, matrix: int, rng: int, bits: int, kr_kb: tuple[float, float]
            ) -> tuple[Path, np.ndarray]:
    """A clip of flat colour blocks made with (Kr, Kb); returns it and, per inner block, the R'G'B'
    the textbook gives back for the codes actually written."""
    index = _blocks(height, width)
    rgb = COLOURS[np.kron(index, np.ones((BLOCK, BLOCK), dtype=int))]
    planes = _quantise(rgb, *kr_kb, rng == FULL, bits)
    path = tmp_path / f"source-{matrix}-{rng}-{bits}.mkv"
    _write_source(path, planes, "yuv444p" if bits == 8 else f"yuv444p{bits}le", matrix, rng)
    codes = [p[BLOCK + BLOCK // 2 : -BLOCK : BLOCK, BLOCK + BLOCK // 2 : -BLOCK : BLOCK] for p in planes]
    return path, np.clip(_dequantise(codes, *kr_kb, rng == FULL, bits), 0, 1)


def _decoded_rgb(path: Path) -> np.ndarray:
    (g, b, r), _ = _read_output(path)
    return np.stack([r, g, b], axis=-1) / 65535.0


CASES = [(m, r, 8) for m in sorted(TEXTBOOK) for r in (LIMITED, FULL)] + [(9, LIMITED, 10), (1, FULL, 10)]


@pytest.mark.parametrize(("matrix", "rng", "bits"), CASES,
                         ids=[f"matrix{m}-{'full' if r == FULL else 'limited'}-{b}bit" for m, r, b in CASES])
def test_decode_and_encode_follow_the_textbook(tmp_path: Path, matrix: int, rng: int, bits: int) -> None:
    width, height = 96, 64
    source, expected = _source(tmp_path, width, height, matrix, rng, bits, TEXTBOOK[matrix])
    blocks = (height // BLOCK, width // BLOCK)

    # decoding: planar 16-bit RGB out, so what the model saw is what we read
    _upscale(source, tmp_path / "rgb.mkv", "gbrp16le")
    np.testing.assert_allclose(_block_centres(_decoded_rgb(tmp_path / "rgb.mkv"), blocks), expected, atol=2e-4)

    # encoding: 16-bit Y'CbCr out, tagged like the source, read back with the textbook
    _upscale(source, tmp_path / "yuv.mkv", "yuv444p16le")
    planes, frame = _read_output(tmp_path / "yuv.mkv")
    assert (frame.colorspace, frame.color_range) == (matrix, rng)
    back = np.clip(_dequantise(planes, *TEXTBOOK[matrix], rng == FULL, 16), 0, 1)
    np.testing.assert_allclose(_block_centres(back, blocks), expected, atol=2e-4)


@pytest.mark.parametrize(("width", "height", "reads_as"), [(720, 576, 6), (720, 480, 6), (1280, 720, 1)],
                         ids=["PAL-SD", "NTSC-SD", "HD"])
def test_untagged_video_is_read_with_the_matrix_players_assume(tmp_path: Path, width: int, height: int,
                                                              reads_as: int) -> None:
    """Untagged limited-range video: BT.601 below HD, BT.709 from HD up (what players do)."""
    source, expected = _source(tmp_path, width, height, 2, UNSPECIFIED, 8, TEXTBOOK[reads_as])
    _upscale(source, tmp_path / "rgb.mkv", "gbrp16le")
    seen = _block_centres(_decoded_rgb(tmp_path / "rgb.mkv"), (height // BLOCK, width // BLOCK))
    np.testing.assert_allclose(seen, expected, atol=2e-4)
