"""The YUV <-> RGB conversion itself: textbook matrices, both ranges, any depth, plane order."""

from __future__ import annotations

import av
import numpy as np
import pytest
import torch

from ldl_video.video.colour import ColourTags, pixel_family
from ldl_video.video.convert import PlaneFormat, planes_to_rgb, read_planes, rgb_to_planes, write_frame


def smooth_image(h: int = 48, w: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    return np.stack([0.1 + 0.8 * x, 0.2 + 0.6 * y, 0.5 + 0.3 * np.sin(6 * x * y)], axis=-1)


def fmt(pix_fmt: str, matrix: int = 1, range_: int = 1) -> PlaneFormat:
    return PlaneFormat(pixel_family(pix_fmt), ColourTags(matrix, range_, 1, 1))


@pytest.mark.parametrize("pix_fmt", ["yuv444p", "yuv444p10le", "gbrp", "gbrp12le"])
@pytest.mark.parametrize(("matrix", "range_"), [(1, 1), (1, 2), (6, 1), (9, 1)])
def test_round_trip_without_subsampling_loses_only_rounding(pix_fmt, matrix, range_):
    image = torch.from_numpy(smooth_image()).permute(2, 0, 1)[None].float()
    plane_format = fmt(pix_fmt, matrix, range_)
    planes = rgb_to_planes(image, plane_format)
    back = planes_to_rgb(planes, plane_format, torch.device("cpu"))
    error = (back - image).abs().max().item() * (2**plane_format.family.depth - 1)
    # Half a code of Y plus half a code of colour difference, which B gets ×1.9 of: ≤ 1.7 codes.
    assert error <= (0.51 if plane_format.family.kind == "rgb" else 1.7)


def test_bt709_limited_codes_are_the_textbook_ones():
    white, black = torch.ones(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)
    y, cb, cr = rgb_to_planes(torch.cat([white, black]), fmt("yuv420p"))
    assert y[:, 0, 0].tolist() == [235, 16] and cb[:, 0, 0].tolist() == [128, 128] and cr[:, 0, 0].tolist() == [128, 128]
    y10, _, _ = rgb_to_planes(torch.cat([white, black]), fmt("yuv420p10le"))
    assert y10[:, 0, 0].tolist() == [940, 64]
    red = torch.tensor([1.0, 0, 0]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    y, cb, cr = rgb_to_planes(red, fmt("yuv420p"))
    assert (y[0, 0, 0], cb[0, 0, 0], cr[0, 0, 0]) == (63, 102, 240)  # BT.709 red (BT.601 would be 81, 90, 240)


def test_420_decoding_is_as_close_to_the_original_as_swscale():
    image = (smooth_image(64, 96) * 255).round().astype(np.uint8)
    frame = av.VideoFrame.from_ndarray(image).reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")
    frame.colorspace, frame.color_range = 1, 1
    plane_format = fmt("yuv420p")
    planes = [p[None] for p in read_planes(frame, plane_format, (96, 64))]
    ours = planes_to_rgb(planes, plane_format, torch.device("cpu"))[0].permute(1, 2, 0).numpy() * 255
    theirs = frame.to_ndarray(format="rgb24").astype(np.float64)
    ours_error, their_error = np.abs(ours - image).mean(), np.abs(theirs - image).mean()
    assert ours_error <= their_error + 0.1, (ours_error, their_error)
    assert ours_error < 1.5


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv422p10le", "gray", "gbrp"])
def test_planes_survive_a_frame(pix_fmt):
    plane_format = fmt(pix_fmt)
    image = torch.from_numpy(smooth_image(47, 63)).permute(2, 0, 1)[None].float()
    planes = rgb_to_planes(image[..., :46, :62] if "420" in pix_fmt or "422" in pix_fmt else image, plane_format)
    frame = write_frame([p[0] for p in planes], plane_format, pix_fmt)
    again = read_planes(frame, plane_format, (frame.width, frame.height))
    assert all(np.array_equal(a, b[0]) for a, b in zip(again, planes, strict=True))


def test_nv12_is_read_through_its_planar_twin():
    plane_format = fmt("yuv420p")
    image = torch.from_numpy(smooth_image()).permute(2, 0, 1)[None].float()
    planes = rgb_to_planes(image, plane_format)
    nv12 = write_frame([p[0] for p in planes], plane_format, "nv12")
    assert nv12.format.name == "nv12"
    assert all(np.array_equal(a, b[0]) for a, b in zip(read_planes(nv12, plane_format, (64, 48)), planes, strict=True))
