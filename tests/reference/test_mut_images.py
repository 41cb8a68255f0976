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


@pytest.mark.xfail(strict=True, reason="images._read_tiff guesses planar layout from the shape (first axis ≤ 4 < last): "
                                        "a planar RGB TIFF 4 or fewer pixels wide is read as a 3-row, 4-channel image; "
                                        "tifffile's page.planarconfig says which it is")
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
