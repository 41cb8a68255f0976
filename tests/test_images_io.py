"""Still-image I/O (ldl_video.images, OpenCV for PNG/JPEG/WebP, tifffile for TIFF), always
checked with another library on the other side: what we write is read by pypng, Pillow or
tifffile, and what they write is read by us."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import png
import pytest
import skimage.data
import tifffile
from PIL import Image, ImageOps, JpegImagePlugin

from ldl_video.errors import LdlError
from ldl_video.images import check_image_size, read_image, write_image


def _photo() -> np.ndarray:
    return skimage.data.astronaut()[100:164, 150:230]  # 64×80 RGB


def _pypng(path: Path) -> tuple[np.ndarray, dict]:
    """(H×W×planes array, info) as pypng decodes the file."""
    width, height, rows, info = png.Reader(filename=str(path)).asDirect()
    array = np.vstack([np.asarray(row) for row in rows]).reshape(height, width, info["planes"])
    return array, info


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_png_we_write_is_exact_in_pypng(tmp_path, bits, channels):
    rng = np.random.default_rng(bits * 10 + channels)
    top = 255 if bits == 8 else 65535
    image = rng.integers(0, top + 1, size=(9, 13, channels)).astype(np.uint8 if bits == 8 else np.uint16)
    write_image(tmp_path / "x.png", image)
    back, info = _pypng(tmp_path / "x.png")
    assert info["bitdepth"] == bits and info["planes"] == channels
    assert info["greyscale"] == (channels == 1) and info["alpha"] == (channels == 4)
    np.testing.assert_array_equal(back, image)


def test_float_and_gray_alpha_png(tmp_path):
    ramp = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    write_image(tmp_path / "f.png", ramp)
    back, info = _pypng(tmp_path / "f.png")
    assert info["bitdepth"] == 16
    np.testing.assert_array_equal(back[..., 0], np.round(ramp * 65535).astype(np.uint16))
    gray_alpha = np.dstack([np.arange(64, dtype=np.uint8).reshape(8, 8), np.full((8, 8), 200, np.uint8)])
    write_image(tmp_path / "ga.png", gray_alpha)
    back, info = _pypng(tmp_path / "ga.png")  # kept as RGBA: gray repeated, alpha intact
    np.testing.assert_array_equal(back, gray_alpha[..., [0, 0, 0, 1]])


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "I;16", "P", "PA"])
def test_png_pillow_writes_we_read(tmp_path, mode):
    photo = Image.fromarray(_photo())
    if mode == "I;16":
        made = Image.fromarray(np.asarray(photo.convert("L")).astype(np.uint16) * 257)
        expected = np.asarray(made)[..., None]
    elif mode == "P":
        made = photo.convert("P")
        expected = np.asarray(made.convert("RGB"))
    elif mode == "PA":  # a palette with a transparent entry
        made = photo.convert("P")
        made.info["transparency"] = 0
        expected = np.asarray(made.convert("RGBA"))
    else:
        made = photo.convert(mode) if mode != "LA" else Image.merge("LA", [photo.convert("L"), photo.getchannel("B")])
        expected = np.asarray(made)
        expected = expected[..., None] if expected.ndim == 2 else expected
    made.save(tmp_path / "p.png")
    ours = read_image(tmp_path / "p.png")
    assert ours.dtype == expected.dtype and ours.shape == expected.shape
    np.testing.assert_array_equal(ours, expected)


def test_16_bit_rgb_png_from_pypng(tmp_path):
    image = (np.random.default_rng(3).integers(0, 65536, size=(7, 5, 3))).astype(np.uint16)
    with open(tmp_path / "deep.png", "wb") as f:
        png.Writer(width=5, height=7, bitdepth=16, greyscale=False).write(f, image.reshape(7, 15).tolist())
    ours = read_image(tmp_path / "deep.png")
    assert ours.dtype == np.uint16
    np.testing.assert_array_equal(ours, image)


def test_jpeg_we_write_is_full_chroma_and_close_in_pillow(tmp_path):
    photo = _photo()
    write_image(tmp_path / "x.jpg", photo)
    with Image.open(tmp_path / "x.jpg") as opened:
        assert opened.mode == "RGB" and JpegImagePlugin.get_sampling(opened) == 0  # 4:4:4
        back = np.asarray(opened).astype(np.float64)
    assert 10 * np.log10(255**2 / np.mean((back - photo) ** 2)) > 35
    with pytest.warns(UserWarning, match="alpha dropped"):
        write_image(tmp_path / "a.jpg", np.dstack([photo, np.full(photo.shape[:2], 9, np.uint8)]))
    with Image.open(tmp_path / "a.jpg") as opened:
        assert opened.mode == "RGB"


def test_jpeg_exif_orientation_matches_pillows_transpose(tmp_path):
    stored = np.zeros((24, 40, 3), np.uint8)
    stored[:8, :16] = (250, 30, 30)  # a red block in the stored top-left
    exif = Image.Exif()
    for orientation in (3, 6, 8):
        exif[0x0112] = orientation
        Image.fromarray(stored).save(tmp_path / f"o{orientation}.jpg", exif=exif, quality=95)
        with Image.open(tmp_path / f"o{orientation}.jpg") as opened:
            expected = np.asarray(ImageOps.exif_transpose(opened)).astype(int)
        ours = read_image(tmp_path / f"o{orientation}.jpg").astype(int)
        assert ours.shape == expected.shape
        assert np.abs(ours - expected).max() <= 8  # two JPEG decoders, same orientation


def test_webp_keeps_alpha_and_pillow_reads_it(tmp_path):
    # alpha never 0: WebP encoders drop the colour of fully transparent pixels
    rgba = np.dstack([_photo(), np.tile(np.arange(80, dtype=np.uint8) * 3 + 10, (64, 1))])
    write_image(tmp_path / "x.webp", rgba)
    with Image.open(tmp_path / "x.webp") as opened:
        assert opened.mode == "RGBA"
        back = np.asarray(opened)
    np.testing.assert_array_equal(back[..., 3], rgba[..., 3])
    assert np.abs(back[..., :3].astype(int) - rgba[..., :3]).mean() < 3
    Image.fromarray(rgba).save(tmp_path / "p.webp", lossless=True)
    np.testing.assert_array_equal(read_image(tmp_path / "p.webp"), rgba)
    Image.fromarray(_photo()).save(tmp_path / "q.webp", lossless=True)
    np.testing.assert_array_equal(read_image(tmp_path / "q.webp"), _photo())


def test_tiff_with_tifffile_both_ways(tmp_path):
    image = np.random.default_rng(5).integers(0, 65536, size=(6, 7, 3)).astype(np.uint16)
    write_image(tmp_path / "x.tif", image)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "x.tif"), image)
    with Image.open(tmp_path / "x.tif") as opened:  # and a third library agrees on the first channel's size
        assert opened.size == (7, 6)
    floats = np.random.default_rng(6).random((5, 4)).astype(np.float32)
    tifffile.imwrite(tmp_path / "f.tif", floats)
    np.testing.assert_array_equal(read_image(tmp_path / "f.tif")[..., 0], floats)


@pytest.mark.parametrize(("kind", "compression"), [("rgb", "tiff_lzw"), ("rgba", "tiff_lzw"), ("gray", "packbits"),
                                                    ("rgb", "tiff_adobe_deflate"), ("gray16", "tiff_lzw")])
def test_compressed_tiff_from_libtiff_is_read_exactly(tmp_path, kind, compression):
    """LZW and PackBits are what scanners, GIMP, Photoshop and OpenCV write by default (Pillow
    writes them here through libtiff, not tifffile): read exactly, alpha unpremultiplied."""
    rng = np.random.default_rng(7)
    shape = {"rgb": (9, 11, 3), "rgba": (9, 11, 4), "gray": (9, 11), "gray16": (9, 11)}[kind]
    image = rng.integers(0, 65536 if kind == "gray16" else 256, size=shape).astype(np.uint16 if kind == "gray16" else np.uint8)
    Image.fromarray(image).save(tmp_path / "x.tif", compression=compression)
    back = read_image(tmp_path / "x.tif")
    np.testing.assert_array_equal(back, image if image.ndim == 3 else image[..., None])


def test_jpeg_compressed_tiff_is_libjpegs_picture(tmp_path):
    """JPEG-in-TIFF (scanners, slide scanners): the pixels Pillow's libtiff decodes, within one level."""
    Image.fromarray(_photo()).save(tmp_path / "x.tif", compression="jpeg", quality=90)
    with Image.open(tmp_path / "x.tif") as opened:
        reference = np.asarray(opened.convert("RGB"))
    back = read_image(tmp_path / "x.tif")
    assert back.shape == reference.shape and back.dtype == np.uint8
    assert np.abs(back.astype(int) - reference).max() <= 1
    assert np.abs(back.astype(int) - _photo()).mean() < 4  # and it is the photo


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_opencvs_lzw_tiff_is_read_exactly(tmp_path, dtype):
    """OpenCV writes TIFF with LZW unless told otherwise (16-bit colour, float32 gray here)."""
    import cv2

    rng = np.random.default_rng(8)
    image = (rng.integers(0, 65536, size=(8, 10, 3)).astype(np.uint16) if dtype == np.uint16
             else rng.random((8, 10)).astype(np.float32))
    bgr = image[..., ::-1] if image.ndim == 3 else image
    assert cv2.imwrite(str(tmp_path / "x.tif"), np.ascontiguousarray(bgr), [cv2.IMWRITE_TIFF_COMPRESSION, 5])
    assert tifffile.TiffFile(tmp_path / "x.tif").pages[0].compression == 5  # LZW
    back = read_image(tmp_path / "x.tif")
    np.testing.assert_array_equal(back, image if image.ndim == 3 else image[..., None])


def test_tiff_stacks_are_refused_and_thumbnails_ignored(tmp_path):
    """Pillow writes a 3-page stack (refused in one line pointing at napari) and an image followed
    by its thumbnail, as scanners do (the image is read)."""
    planes = [Image.fromarray(np.full((8, 10), 40 * i, np.uint8)) for i in range(3)]
    planes[0].save(tmp_path / "stack.tif", save_all=True, append_images=planes[1:])
    with pytest.raises(LdlError, match="stack of 3 images.*napari"):
        read_image(tmp_path / "stack.tif")
    photo = Image.fromarray(_photo())
    photo.save(tmp_path / "thumb.tif", save_all=True, append_images=[photo.resize((20, 16))])
    np.testing.assert_array_equal(read_image(tmp_path / "thumb.tif"), _photo())


def test_unicode_paths_and_suffixless_temporary_names(tmp_path):
    image = _photo()
    target = tmp_path / "größe ü.png.partial"
    write_image(target, image, format_suffix=".png")
    with Image.open(target) as opened:
        assert opened.format == "PNG"
        np.testing.assert_array_equal(np.asarray(opened), image)


def test_bad_files_and_formats_say_what_to_do(tmp_path):
    (tmp_path / "fake.png").write_text("hello, not a png")
    with pytest.raises(LdlError, match="cannot read .*fake.png"):
        read_image(tmp_path / "fake.png")
    buffer = io.BytesIO()
    Image.fromarray(_photo()).save(buffer, format="PNG")
    (tmp_path / "cut.png").write_bytes(buffer.getvalue()[:200])
    with pytest.raises(LdlError, match="cannot read"):
        read_image(tmp_path / "cut.png")
    with pytest.raises(LdlError, match="does not exist"):
        read_image(tmp_path / "none.png")
    with pytest.raises(LdlError, match="unknown image format '.bmp'"):
        write_image(tmp_path / "x.bmp", _photo())
    with pytest.raises(LdlError, match="limit of 16383"):
        check_image_size(tmp_path / "x.webp", 100, 16384)
    check_image_size(tmp_path / "x.png", 100, 70000)  # PNG has no such limit
