"""What the image command writes, pixel by pixel: inputs made and outputs read by other
libraries (Pillow, pypng, tifffile), compared with the engine's own result on the same array.
A swapped channel, a black or shifted result, a lost alpha or a 16-bit file cut to 8 bits fails."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import png  # pypng: a PNG codec of its own, in pure Python
import pytest
import skimage.data
import tifffile
from PIL import Image

from ldl_video import Upscaler, load_model
from ldl_video.cli import main

MODEL = "realesr-animevideov3-x2"


@pytest.fixture(scope="module")
def engine() -> Upscaler:
    return Upscaler(load_model(MODEL), device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    return np.ascontiguousarray(skimage.data.astronaut()[120:160, 170:218])  # 48×40, red/blue differ


def _run(source: Path, target: Path) -> None:
    assert main([str(source), str(target), "-m", MODEL, "--precision", "fp32", "--quiet"]) == 0


def _read_png16(path: Path) -> np.ndarray:
    width, height, rows, info = png.Reader(filename=str(path)).asDirect()
    planes = info["planes"]
    return np.vstack([np.asarray(r, np.uint16) for r in rows]).reshape(height, width, planes)


def test_rgb_png_pixels(tmp_path: Path, engine: Upscaler, rgb: np.ndarray) -> None:
    Image.fromarray(rgb).save(tmp_path / "in.png")
    _run(tmp_path / "in.png", tmp_path / "out.png")
    written = Image.open(tmp_path / "out.png")
    assert written.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(written), engine.upscale(rgb))


def test_rgba_png_keeps_alpha(tmp_path: Path, engine: Upscaler, rgb: np.ndarray) -> None:
    alpha = np.tile(np.linspace(0, 255, rgb.shape[1]).astype(np.uint8), (rgb.shape[0], 1))
    rgba = np.dstack([rgb, alpha])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "in.png")
    _run(tmp_path / "in.png", tmp_path / "out.png")
    written = Image.open(tmp_path / "out.png")
    assert written.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(written), engine.upscale(rgba))


def test_gray_png_pixels(tmp_path: Path, engine: Upscaler) -> None:
    gray = np.ascontiguousarray(skimage.data.camera()[200:240, 200:248])
    Image.fromarray(gray, "L").save(tmp_path / "in.png")
    _run(tmp_path / "in.png", tmp_path / "out.png")
    written = Image.open(tmp_path / "out.png")
    assert written.mode == "L"
    np.testing.assert_array_equal(np.asarray(written), engine.upscale(gray))


def test_16bit_rgb_png_stays_16bit(tmp_path: Path, engine: Upscaler, rgb: np.ndarray) -> None:
    deep = (rgb.astype(np.uint16) * 257 + np.arange(rgb.size, dtype=np.uint16).reshape(rgb.shape) % 200).astype(np.uint16)
    height, width, _ = deep.shape
    with open(tmp_path / "in.png", "wb") as f:
        png.Writer(width, height, greyscale=False, bitdepth=16).write(f, deep.reshape(height, width * 3))
    _run(tmp_path / "in.png", tmp_path / "out.png")
    written = _read_png16(tmp_path / "out.png")
    expected = engine.upscale(deep)
    assert written.shape == expected.shape
    np.testing.assert_array_equal(written, expected)
    assert len(np.unique(written[..., 0] % 257)) > 1  # real 16-bit values, not 8-bit ones scaled


def test_16bit_tiff_read_back_by_pillow(tmp_path: Path, engine: Upscaler) -> None:
    cells = skimage.data.moon()[200:240, 200:248].astype(np.uint16) * 211 + 17  # 16-bit values, not ×257
    tifffile.imwrite(tmp_path / "in.tif", cells)
    _run(tmp_path / "in.tif", tmp_path / "out.tif")
    written = np.asarray(Image.open(tmp_path / "out.tif"))
    assert written.dtype == np.uint16
    np.testing.assert_array_equal(written, engine.upscale(cells))


@pytest.mark.parametrize("suffix", [".jpg", ".webp"])
def test_lossy_outputs_are_the_result(tmp_path: Path, engine: Upscaler, rgb: np.ndarray, suffix: str) -> None:
    Image.fromarray(rgb).save(tmp_path / "in.png")
    _run(tmp_path / "in.png", tmp_path / f"out{suffix}")
    written = np.asarray(Image.open(tmp_path / f"out{suffix}").convert("RGB")).astype(np.float64)
    expected = engine.upscale(rgb).astype(np.float64)
    psnr = 10 * np.log10(255**2 / np.mean((written - expected) ** 2))
    assert psnr > 30, psnr  # a quality encode of the result; a swapped channel is ~15 dB away
    swapped = 10 * np.log10(255**2 / np.mean((written[..., ::-1] - expected) ** 2))
    assert psnr > swapped + 6
