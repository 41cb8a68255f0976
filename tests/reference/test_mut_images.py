"""Still images as other libraries make and read them: TIFF layouts tifffile writes (planar RGB,
gray strips), and what Pillow sees in files we write. The reference is always the other
library's array, never our own reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from ldl_video.images import read_image


def _rgb(height: int, width: int) -> np.ndarray:
    return np.random.default_rng(height * 100 + width).integers(0, 65536, size=(height, width, 3)).astype(np.uint16)


@pytest.mark.parametrize(("height", "width"), [(10, 12), (6, 40)])
def test_planar_rgb_tiff_reads_as_pillow_sees_it(tmp_path: Path, height: int, width: int) -> None:
    """planarconfig=separate (one plane per channel, as microscopy and GIS tools write RGB)."""
    image = _rgb(height, width)
    tifffile.imwrite(tmp_path / "p.tif", np.moveaxis(image, -1, 0), photometric="rgb", planarconfig="separate")
    with Image.open(tmp_path / "p.tif") as opened:
        assert opened.size == (width, height) and opened.mode.startswith("RGB")
    np.testing.assert_array_equal(read_image(tmp_path / "p.tif"), image)
    alpha = np.arange(height * width, dtype=np.uint16).reshape(height, width, 1) * 50
    rgba = np.concatenate([image, alpha], axis=-1)
    tifffile.imwrite(tmp_path / "pa.tif", np.moveaxis(rgba, -1, 0), photometric="rgb", planarconfig="separate",
                     extrasamples=["unassalpha"])
    with tifffile.TiffFile(tmp_path / "pa.tif") as opened:
        assert opened.pages[0].planarconfig == 2 and opened.pages[0].shape == (4, height, width)
    np.testing.assert_array_equal(read_image(tmp_path / "pa.tif"), rgba)


def test_planar_rgb_tiff_narrower_than_five_pixels(tmp_path: Path) -> None:
    image = _rgb(10, 4)
    tifffile.imwrite(tmp_path / "p.tif", np.moveaxis(image, -1, 0), photometric="rgb", planarconfig="separate")
    np.testing.assert_array_equal(read_image(tmp_path / "p.tif"), image)


@pytest.mark.parametrize(("height", "width"), [(3, 16), (1, 64), (16, 3)])
def test_short_gray_tiff_keeps_its_orientation(tmp_path: Path, height: int, width: int) -> None:
    """A gray strip (a line scan, a spectrum) is H×W, never turned on its side."""
    strip = np.arange(height * width, dtype=np.uint16).reshape(height, width) * 7
    tifffile.imwrite(tmp_path / "g.tif", strip, photometric="minisblack")
    with Image.open(tmp_path / "g.tif") as opened:
        assert opened.size == (width, height)
    read = read_image(tmp_path / "g.tif")
    assert read.shape == (height, width, 1)
    np.testing.assert_array_equal(read[..., 0], strip)


# ---- through the command line ----------------------------------------------------------------


def _cli(source: Path, target: Path) -> int:
    from ldl_video.cli import main

    return main([str(source), str(target), "-m", "bicubic", "-s", "2", "--precision", "fp32", "--quiet"])


def _engine(array: np.ndarray) -> np.ndarray:
    from ldl_video import Upscaler, load_model

    return Upscaler(load_model("bicubic", scale=2), device="cpu", precision="fp32").upscale(array)


def test_float32_tiff_comes_back_float32(tmp_path: Path) -> None:
    image = np.random.default_rng(1).random((12, 10, 3)).astype(np.float32)
    tifffile.imwrite(tmp_path / "in.tif", image, photometric="rgb")
    assert _cli(tmp_path / "in.tif", tmp_path / "out.tif") == 0
    written = tifffile.imread(tmp_path / "out.tif")
    assert written.dtype == np.float32  # not float64: the input's precision and half the bytes
    np.testing.assert_array_equal(written, _engine(image))


def test_sixteen_bit_png_to_jpeg_is_the_8_bit_result(tmp_path: Path) -> None:
    """JPEG holds 8 bits: the 16-bit result is rounded to the nearest 8-bit level (v / 257)."""
    import png

    deep = (np.random.default_rng(2).random((16, 20, 3)) * 65535).astype(np.uint16)
    with open(tmp_path / "in.png", "wb") as f:
        png.Writer(20, 16, greyscale=False, bitdepth=16).write(f, deep.reshape(16, 60))
    assert _cli(tmp_path / "in.png", tmp_path / "out.jpg") == 0
    with Image.open(tmp_path / "out.jpg") as opened:
        assert opened.mode == "RGB" and opened.size == (40, 32)
        back = np.asarray(opened).astype(np.float64)
    expected = np.rint(_engine(deep) / 257.0)
    assert 10 * np.log10(255**2 / np.mean((back - expected) ** 2)) > 30  # JPEG at quality 95 on noise


def test_integer_tiff_other_than_8_or_16_bit_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tifffile.imwrite(tmp_path / "in.tif", np.arange(48, dtype=np.int32).reshape(6, 8))
    assert _cli(tmp_path / "in.tif", tmp_path / "out.png") != 0
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "int32 TIFF is not supported" in err and "8/16-bit" in err
    assert not (tmp_path / "out.png").exists()


def _photo() -> np.ndarray:
    import skimage.data

    return np.ascontiguousarray(skimage.data.astronaut()[100:164, 150:230])  # 64×80 RGB


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


def test_alpha_into_jpeg_keeps_the_colour_or_gray(tmp_path: Path) -> None:
    """JPEG has no alpha: RGBA becomes its RGB, gray+alpha its gray (a one-channel JPEG)."""
    photo = _photo()
    alpha = np.tile(np.linspace(0, 255, photo.shape[1]).astype(np.uint8), (photo.shape[0], 1))
    Image.fromarray(np.dstack([photo, alpha]), "RGBA").save(tmp_path / "rgba.png")
    assert _cli(tmp_path / "rgba.png", tmp_path / "rgba.jpg") == 0
    with Image.open(tmp_path / "rgba.jpg") as opened:
        assert opened.mode == "RGB"
        assert _psnr(np.asarray(opened), _engine(photo)) > 35
    gray = photo[..., 1]
    Image.merge("LA", [Image.fromarray(gray), Image.fromarray(alpha)]).save(tmp_path / "la.png")
    assert _cli(tmp_path / "la.png", tmp_path / "la.jpg") == 0
    with Image.open(tmp_path / "la.jpg") as opened:
        assert opened.mode == "L"
        assert _psnr(np.asarray(opened), _engine(gray)) > 35


@pytest.mark.parametrize(("suffix", "pillow_options"), [(".webp", {"quality": 95}), (".jpg", {"quality": 95, "subsampling": 0})])
def test_lossy_files_are_quality_95(tmp_path: Path, suffix: str, pillow_options: dict) -> None:
    """WebP and JPEG are written at quality 95 (JPEG 4:4:4): the file is the size Pillow's libwebp
    and libjpeg write at that setting (±5 %; one step of quality moves it by 10 % or more), and a
    WebP is not lossless (several times larger)."""
    photo = _photo()
    Image.fromarray(photo).save(tmp_path / "in.png")
    assert _cli(tmp_path / "in.png", tmp_path / f"out{suffix}") == 0
    with Image.open(tmp_path / f"out{suffix}") as opened:
        written = np.asarray(opened.convert("RGB"))
    expected = _engine(photo)
    assert 38 < _psnr(written, expected) < 55
    Image.fromarray(expected).save(tmp_path / f"pillow{suffix}", **pillow_options)
    ratio = (tmp_path / f"out{suffix}").stat().st_size / (tmp_path / f"pillow{suffix}").stat().st_size
    assert 0.95 < ratio < 1.05, ratio


@pytest.mark.parametrize(("suffix", "limit"), [(".webp", 16383), (".jpg", 65535)])
def test_size_limits_are_the_formats_own(tmp_path: Path, suffix: str, limit: int) -> None:
    """WebP holds 16383 pixels a side (libwebp's WEBP_MAX_DIMENSION), JPEG 65535 (a 16-bit field):
    a result exactly at the limit is written, one pixel more is refused before any work."""
    from ldl_video.errors import LdlError
    from ldl_video.images import check_image_size

    check_image_size(tmp_path / f"x{suffix}", 1, limit)
    check_image_size(tmp_path / f"x{suffix}", limit, 1)
    with pytest.raises(LdlError, match=rf"limit of {limit} pixels a side; write \.png or \.tif"):
        check_image_size(tmp_path / f"x{suffix}", 1, limit + 1)
    if suffix == ".webp":  # libwebp itself agrees
        import cv2

        assert cv2.imencode(".webp", np.zeros((1, limit, 3), np.uint8))[0]
        assert not cv2.imencode(".webp", np.zeros((1, limit + 1, 3), np.uint8))[0]


def test_float_and_16_bit_into_8_bit_files_round_to_the_nearest_level(tmp_path: Path) -> None:
    """Flat gray survives JPEG exactly, so the 8-bit level can be checked, on two flat halves
    (16 pixels each, whole JPEG blocks away from the edge between them after ×2): v / 257 rounded
    for 16 bits (25828 / 257 = 100.498 -> 100 and 25829 / 257 = 100.502 -> 101, where truncating
    or an offset other than half a step gets one of them wrong), x · 255 rounded for float
    (0.3933 · 255 = 100.29 -> 100 and 0.3953 · 255 = 100.80 -> 101, where x · 256 gives 101 and 101)."""
    import png

    halves = np.repeat(np.array([[25828, 25829]], np.uint16), 16, axis=1).repeat(16, axis=0)  # 16×32
    with open(tmp_path / "deep.png", "wb") as f:
        png.Writer(32, 16, greyscale=True, bitdepth=16).write(f, halves)
    tifffile.imwrite(tmp_path / "float.tif", np.where(halves == 25828, 0.3933, 0.3953).astype(np.float32))
    for source in ("deep.png", "float.tif"):
        assert _cli(tmp_path / source, tmp_path / f"{source}.jpg") == 0
        with Image.open(tmp_path / f"{source}.jpg") as opened:
            assert opened.mode == "L" and opened.size == (64, 32)
            written = np.asarray(opened)
        assert np.unique(written[:, :16]).tolist() == [100], source
        assert np.unique(written[:, 48:]).tolist() == [101], source


@pytest.mark.parametrize(("channels", "mode"), [(1, "I;16"), (2, "LA"), (3, "RGB"), (4, "RGBA")])
def test_tiff_output_is_what_other_readers_expect(tmp_path: Path, channels: int, mode: str) -> None:
    """A .tiff result: gray, gray+alpha, RGB or RGBA as Pillow names them (alpha as unassociated
    alpha, TIFF's ExtraSamples = 2), the values tifffile reads equal to the engine's."""
    image = (np.random.default_rng(channels).random((12, 10, channels)) * 65535).astype(np.uint16)
    if mode == "LA":
        image = (image // 257).astype(np.uint8)  # Pillow reads gray+alpha TIFF at 8 bits only
    tifffile.imwrite(tmp_path / "in.tif", image[..., 0] if channels == 1 else image,
                     photometric="rgb" if channels >= 3 else "minisblack",
                     extrasamples=["unassalpha"] if channels in (2, 4) else None)
    assert _cli(tmp_path / "in.tif", tmp_path / "out.tiff") == 0
    with tifffile.TiffFile(tmp_path / "out.tiff") as opened:
        page = opened.pages[0]
        assert tuple(page.extrasamples) == ((2,) if channels in (2, 4) else ())
        written = page.asarray()
    expected = _engine(image)
    np.testing.assert_array_equal(written, expected[..., 0] if channels == 1 else expected)
    with Image.open(tmp_path / "out.tiff") as pillow:
        assert pillow.mode == mode and pillow.size == (20, 24)


def test_an_image_the_encoder_refuses_is_one_line() -> None:
    """Past the format's limit (the CLI checks before any work; the writer says it too)."""
    from ldl_video.errors import LdlError
    from ldl_video.images import write_image

    with pytest.raises(LdlError, match=r"OpenCV could not encode .*x\.webp as \.webp"):
        write_image(Path("/nonexistent/x.webp"), np.zeros((1, 16384, 3), np.uint8))


EXIF = b"Exif\0\0MM\0*\0\0\0\x08\0\0"  # an empty big-endian EXIF block: makes the file VP8X without alpha


@pytest.mark.parametrize(("options", "mode"), [({"quality": 90}, "RGBA"), ({"quality": 90, "exif": EXIF}, "RGB"),
                                               ({"lossless": True}, "RGBA"), ({"quality": 90}, "RGB")])
def test_webp_alpha_is_read_from_its_header(tmp_path: Path, options: dict, mode: str) -> None:
    """Lossy WebP with alpha (VP8X + ALPH), extended WebP without alpha (VP8X for EXIF), lossless
    (VP8L) with alpha and plain lossy (VP8): channels as Pillow reads them, alpha exact."""
    photo = _photo()
    alpha = np.tile(np.linspace(10, 250, photo.shape[1]).astype(np.uint8), (photo.shape[0], 1))
    source = Image.fromarray(np.dstack([photo, alpha]), "RGBA") if mode == "RGBA" else Image.fromarray(photo)
    source.save(tmp_path / "x.webp", **options)
    with Image.open(tmp_path / "x.webp") as opened:
        assert opened.mode == mode
        expected = np.asarray(opened)
    ours = read_image(tmp_path / "x.webp")
    assert ours.shape == expected.shape
    assert np.abs(ours.astype(int) - expected).max() <= 3  # two WebP decoders (libwebp versions may differ by a level)
    if mode == "RGBA":
        np.testing.assert_array_equal(ours[..., 3], expected[..., 3])
