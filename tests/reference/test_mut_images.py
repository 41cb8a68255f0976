"""Still images as other libraries make and read them: TIFF layouts tifffile writes (planar RGB,
gray strips), and what Pillow sees in files we write. The reference is always the other
library's array, never our own reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from ldl_video import Upscaler, load_model
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


def _cli(source: Path, target: Path, scale: int = 2) -> int:
    from ldl_video.cli import main

    return main([str(source), str(target), "-m", "bicubic", "-s", str(scale), "--precision", "fp32", "--quiet"])



def _engine(array: np.ndarray) -> np.ndarray:
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
    # tifffile.imread (napari's and scikit-image's reader) follows the shape stored in the file:
    # a gray result is H×W, not H×W×1
    assert tifffile.imread(tmp_path / "out.tiff").shape == (expected.shape[:2] if channels == 1 else expected.shape)
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


# ---- names, layouts and refusals the tests above did not reach ------------------------------


def test_tiff_suffix_reads_through_tifffile(tmp_path: Path) -> None:
    """`.tiff` is TIFF as `.tif` is: a float32 image comes back as tifffile reads it (OpenCV's
    decoder, the other path, refuses float data)."""
    image = np.random.default_rng(6).random((9, 7, 3)).astype(np.float32)
    tifffile.imwrite(tmp_path / "in.tiff", image, photometric="rgb")
    read = read_image(tmp_path / "in.tiff")
    assert read.dtype == np.float32
    np.testing.assert_array_equal(read, tifffile.imread(tmp_path / "in.tiff"))


def test_jpeg_suffix_writes_a_jpeg(tmp_path: Path) -> None:
    photo = _photo()
    Image.fromarray(photo).save(tmp_path / "in.png")
    assert _cli(tmp_path / "in.png", tmp_path / "out.jpeg") == 0
    with Image.open(tmp_path / "out.jpeg") as opened:
        assert opened.format == "JPEG" and opened.mode == "RGB" and opened.size == (160, 128)
        assert _psnr(np.asarray(opened), _engine(photo)) > 38


def test_gray_alpha_tiff_three_rows_high_stays_gray_alpha(tmp_path: Path) -> None:
    """A gray+alpha result 3 (or 4) rows high has the shape of planar RGB (RGBA): the file must say
    gray + unassociated alpha, not leave tifffile to guess; and the result is deflate-compressed."""
    la = np.stack([np.linspace(0, 255, 10), np.linspace(255, 0, 10)], axis=-1).astype(np.uint8)[None]  # 1×10×2
    tifffile.imwrite(tmp_path / "in.tif", la, photometric="minisblack", extrasamples=["unassalpha"])
    assert _cli(tmp_path / "in.tif", tmp_path / "out.tif", scale=3) == 0
    with Image.open(tmp_path / "out.tif") as opened:
        assert opened.mode == "LA" and opened.size == (30, 3)
        assert opened.info["compression"] == "tiff_adobe_deflate"
        pillow = np.asarray(opened)
    expected = Upscaler(load_model("bicubic", scale=3), device="cpu", precision="fp32").upscale(la)
    np.testing.assert_array_equal(pillow, expected)


def test_tiff_with_five_samples_or_several_pages_is_refused(tmp_path: Path) -> None:
    """Five samples a pixel, or a stack of RGB pages (a time series): one line naming the file and
    the shape tifffile reads, nothing written."""
    tifffile.imwrite(tmp_path / "five.tif", np.zeros((6, 8, 5), np.uint8), photometric="minisblack", planarconfig="contig")
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((2, 6, 8, 3), np.uint8), photometric="rgb")
    from ldl_video.errors import LdlError

    assert tifffile.imread(tmp_path / "five.tif").shape == (6, 8, 5)
    with pytest.raises(LdlError) as caught:
        read_image(tmp_path / "five.tif")
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'five.tif'}: unsupported image shape (6, 8, 5)") and "RGB" in message
    assert tifffile.imread(tmp_path / "stack.tif").shape == (2, 6, 8, 3)
    with pytest.raises(LdlError, match=r"stack\.tif is a stack of 2 images; .* napari"):
        read_image(tmp_path / "stack.tif")


def test_a_damaged_file_is_refused_with_the_readers_reason(tmp_path: Path) -> None:
    """A TIFF cut short, and an empty PNG: the reason tifffile or OpenCV gives, with its type, in one
    line naming the file."""
    import cv2

    image = np.random.default_rng(7).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "whole.tif", image, photometric="rgb", compression="zlib")
    data = (tmp_path / "whole.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[: len(data) - 40])
    (tmp_path / "empty.png").write_bytes(b"")
    from ldl_video.errors import LdlError

    def decode_empty() -> None:
        cv2.imdecode(np.zeros(0, np.uint8), cv2.IMREAD_ANYCOLOR)

    for name, reference in (("cut.tif", lambda: tifffile.imread(tmp_path / "cut.tif")), ("empty.png", decode_empty)):
        with pytest.raises(Exception) as raw:  # the library's own exception
            reference()
        reason = f"{type(raw.value).__name__}: {str(raw.value).splitlines()[0]}"
        with pytest.raises(LdlError) as caught:
            read_image(tmp_path / name)
        assert str(caught.value) == f"cannot read {tmp_path / name} as an image ({reason})"


def test_float_data_behind_a_png_name_is_refused(tmp_path: Path) -> None:
    """OpenCV decodes by content: a Radiance HDR file named .png decodes to float32, which the PNG
    path does not take; the message says what does."""
    import cv2

    ok, encoded = cv2.imencode(".hdr", np.full((4, 5, 3), 0.5, np.float32))
    assert ok
    encoded.tofile(tmp_path / "hdr.png")
    flags = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH
    assert cv2.imdecode(np.fromfile(tmp_path / "hdr.png", np.uint8), flags).dtype == np.float32
    from ldl_video.errors import LdlError

    with pytest.raises(LdlError, match=r"hdr\.png: float32 images are not supported; use 8/16-bit .*TIFF"):
        read_image(tmp_path / "hdr.png")


def test_an_unknown_output_format_lists_the_known_ones(tmp_path: Path) -> None:
    from ldl_video.errors import LdlError
    from ldl_video.images import write_image

    with pytest.raises(LdlError) as caught:
        write_image(tmp_path / "out.bmp", np.zeros((4, 4, 3), np.uint8))
    message = str(caught.value)
    assert message.startswith("unknown image format '.bmp'; use one of ")
    assert set(message.split("use one of ")[1].split(", ")) == {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp"}
    assert not (tmp_path / "out.bmp").exists()


def test_webp_with_an_exif_orientation_reads_as_viewers_show_it(tmp_path: Path) -> None:
    """An opaque WebP photo with EXIF orientation 6 (rotate 90° clockwise) reads turned, as
    Pillow's exif_transpose shows it; the alpha test of its header must not send it down the
    path that keeps the stored orientation."""
    from PIL import ImageOps

    photo = _photo()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(photo).save(tmp_path / "o.webp", quality=95, exif=exif.tobytes())
    with Image.open(tmp_path / "o.webp") as opened:
        shown = np.asarray(ImageOps.exif_transpose(opened).convert("RGB"))
    ours = read_image(tmp_path / "o.webp")
    assert ours.shape == shown.shape == (80, 64, 3)
    assert np.abs(ours.astype(int) - shown).max() <= 3


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_images_are_clipped_into_16_bit_png(tmp_path: Path, dtype: type) -> None:
    """write_image takes float in [0, 1] (any float dtype): PNG gets 16 bits, values outside the
    range clipped (not wrapped around), as pypng reads it."""
    import png

    from ldl_video.images import write_image

    image = np.array([[-0.25, 0.0, 0.2, 0.5], [0.75, 1.0, 1.25, 1 / 3]], dtype)[..., None]
    write_image(tmp_path / "f.png", image)
    width, height, rows, info = png.Reader(filename=str(tmp_path / "f.png")).asDirect()
    assert (width, height, info["bitdepth"], info["planes"]) == (4, 2, 16, 1)
    back = np.vstack([np.asarray(row) for row in rows])
    np.testing.assert_array_equal(back, np.round(np.clip(image[..., 0], 0, 1) * 65535))


def test_a_one_pixel_wide_colour_image_keeps_its_colours(tmp_path: Path) -> None:
    """A 1-pixel-wide (or tall) RGB strip is still colour: Pillow reads back what was written."""
    from ldl_video.images import write_image

    strip = np.array([[[255, 0, 0]], [[0, 255, 0]], [[0, 0, 255]]], np.uint8)  # 3×1 red, green, blue
    for image in (strip, strip.transpose(1, 0, 2)):
        write_image(tmp_path / "strip.png", image)
        with Image.open(tmp_path / "strip.png") as opened:
            assert opened.mode == "RGB"
            np.testing.assert_array_equal(np.asarray(opened), image)


def test_a_tiff_stack_is_refused_in_one_line_that_says_what_to_do(tmp_path: Path) -> None:
    from ldl_video.errors import LdlError

    tifffile.imwrite(tmp_path / "z.tif", np.zeros((5, 6, 8), np.uint16))
    with pytest.raises(LdlError) as caught:
        read_image(tmp_path / "z.tif")
    assert str(caught.value) == (f"{tmp_path / 'z.tif'} is a stack of 5 images; upscale one image per file (save the "
                                 "pages separately), or open the stack in napari, whose LDL plugin upscales every plane")
