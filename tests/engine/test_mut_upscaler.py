"""The Upscaler's tiling, settings and pixel conversions against references built here by hand
(mutation testing found them unpinned): the blend weights the docstring of `_ramp` describes,
written out as numbers; a network with a known receptive field whose full-frame result plain
torch computes, which tiles must reproduce exactly once the overlap covers twice its reach;
Pillow's bicubic for a classical model named by string; exact 8/16-bit and float levels."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from ldl_video import LdlError, Upscaler
from ldl_video.model import SRModel
from ldl_video.upscaler import _ramp, _spans

EPS = 1e-6  # the floor `_ramp` keeps instead of 0, so that a pixel's weight sum is never 0


class ConvThenNearest(nn.Module):
    """A k×k convolution (zero padding, so a window's edge pixels lack context) then nearest
    upsampling by `scale`: its reach is k // 2 input pixels."""

    def __init__(self, kernel: int, scale: int) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(kernel * 10 + scale)
        weight = torch.rand(3, 3, kernel, kernel, generator=generator)
        self.weight = nn.Parameter(weight / weight.sum(dim=(1, 2, 3), keepdim=True))  # output stays in [0, 1]
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(x, self.weight, padding=self.weight.shape[-1] // 2)
        return y.repeat_interleave(self.scale, dim=2).repeat_interleave(self.scale, dim=3)


def reference(frames: torch.Tensor, kernel: int, scale: int) -> torch.Tensor:
    """The same network on the whole frame, written with plain torch calls."""
    weight = ConvThenNearest(kernel, scale).weight.detach()
    y = F.conv2d(frames, weight, padding=kernel // 2)
    return y.repeat_interleave(scale, dim=2).repeat_interleave(scale, dim=3)


def conv_model(kernel: int, scale: int, size_multiple: int = 1) -> SRModel:
    return SRModel("conv", ConvThenNearest(kernel, scale).eval(), scale, "test", size_multiple=size_multiple, weights=False)


def frames_of(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


# ---- the blend weights, as the docstring of `_ramp` states them -----------------------------
# fade f: 0 over the outer f/2 pixels, then a linear rise to 1 across the inner f/2, sampled at
# pixel centres: pixel i of the band weighs (i + 0.5 - f/2) / (f/2), floored at EPS


@pytest.mark.parametrize(
    ("length", "fade", "at_start", "at_end", "expected"),
    [
        (10, 4, False, False, [EPS, EPS, 0.25, 0.75, 1, 1, 0.75, 0.25, EPS, EPS]),
        (10, 4, True, False, [1, 1, 1, 1, 1, 1, 0.75, 0.25, EPS, EPS]),
        (10, 4, False, True, [EPS, EPS, 0.25, 0.75, 1, 1, 1, 1, 1, 1]),
        (10, 4, True, True, [1] * 10),
        (8, 2, False, False, [EPS, 0.5, 1, 1, 1, 1, 0.5, EPS]),
        (9, 3, False, False, [EPS, EPS, 2 / 3, 1, 1, 1, 2 / 3, EPS, EPS]),  # odd: centres 0.5, 1.5, 2.5 against 1.5
        (9, 5, False, False, [EPS, EPS, 0.25, 0.75, 1, 0.75, 0.25, EPS, EPS]),  # over half the length: fade 4
        (5, 8, False, False, [EPS, 0.5, 1, 0.5, EPS]),  # fade clamped to 2
        (6, 0, False, False, [1] * 6),
        (6, 1, False, False, [EPS, 1, 1, 1, 1, EPS]),  # a one-pixel band: its centre is where the rise starts
    ],
)
def test_blend_weights_are_the_documented_ramp(length: int, fade: int, at_start: bool, at_end: bool,
                                               expected: list[float]) -> None:
    weights = _ramp(length, fade, at_start, at_end)
    assert weights.dtype == torch.float32
    np.testing.assert_allclose(weights.numpy(), expected, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(("length", "tile", "overlap", "expected"), [
    (10, 4, 2, [(0, 6), (2, 10), (6, 10)]),
    (9, 4, 0, [(0, 4), (4, 8), (8, 9)]),
    (12, 5, 3, [(0, 8), (2, 12), (7, 12)]),
])
def test_windows_have_a_core_every_tile_from_the_first_pixel(length: int, tile: int, overlap: int,
                                                             expected: list[tuple[int, int]]) -> None:
    assert _spans(length, tile, overlap) == expected


# ---- tiles against the full-frame network -----------------------------------------------------
@pytest.mark.parametrize(
    ("h", "w", "tile", "overlap", "kernel", "scale", "batch"),
    [
        (13, 17, 4, 0, 1, 2, 1),  # a 1×1 network needs no overlap at all
        (13, 17, 5, 2, 3, 1, 1),  # overlap = 2 × reach; tiles that do not divide the size
        (13, 17, 5, 2, 3, 2, 3),
        (11, 23, 6, 4, 5, 3, 2),
        (19, 10, 4, 3, 3, 2, 4),  # overlap near the tile: neighbours reach the image's first and last rows
        (10, 19, 4, 3, 3, 2, 1),
        (9, 14, 3, 4, 5, 1, 2),  # windows shorter than twice the fade: the fade is clamped
        (17, 19, 5, 1, 3, 1, 1),  # a scale-1 network at overlap 1: the one-pixel band is left to the neighbour
    ],
)
def test_tiles_reproduce_the_whole_frame_where_the_overlap_covers_the_reach(
        h: int, w: int, tile: int, overlap: int, kernel: int, scale: int, batch: int) -> None:
    frame = frames_of(1, h, w)
    up = Upscaler(conv_model(kernel, scale), device="cpu", precision="fp32", tile=tile, tile_overlap=overlap,
                  batch_size=batch)
    out = up.upscale(frame[0].permute(1, 2, 0).numpy())
    expected = reference(frame, kernel, scale)[0].permute(1, 2, 0).numpy()
    assert out.shape == (h * scale, w * scale, 3)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_several_frames_through_upscale_tensor_are_tiled_one_by_one() -> None:
    frames = frames_of(3, 14, 11, seed=1)
    up = Upscaler(conv_model(3, 2), device="cpu", precision="fp32", tile=4, tile_overlap=2, batch_size=2)
    seen: list[tuple[int, int]] = []
    out = up.upscale_tensor(frames, progress=lambda done, total: seen.append((done, total)))
    torch.testing.assert_close(out, reference(frames, 3, 2), atol=1e-5, rtol=0)
    windows = 4 * 3  # ceil(14 / 4) rows × ceil(11 / 4) columns
    assert seen[0] == (0, 3 * windows) and seen[-1] == (3 * windows, 3 * windows)


def test_the_default_overlap_is_16_pixels() -> None:
    # a reach of 20 pixels: every overlap up to 40 leaves its own trace on the seams
    model = conv_model(41, 1)
    image = frames_of(1, 40, 40, seed=2)[0].permute(1, 2, 0).numpy()
    default = Upscaler(model, device="cpu", precision="fp32", tile=16).upscale(image)
    sixteen = Upscaler(model, device="cpu", precision="fp32", tile=16, tile_overlap=16).upscale(image)
    other = Upscaler(model, device="cpu", precision="fp32", tile=16, tile_overlap=17).upscale(image)
    assert np.array_equal(default, sixteen)
    assert np.abs(default - other).max() > 1e-3  # the overlap shows in this network's output


# ---- settings -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [{"tile": -1}, {"tile_overlap": -1}, {"tile": -8, "tile_overlap": -2}])
def test_negative_tiles_are_refused_in_one_line(kwargs: dict) -> None:
    with pytest.raises(LdlError) as caught:
        Upscaler(conv_model(1, 1), device="cpu", **kwargs)
    assert str(caught.value) == "tile and tile overlap must be 0 or more"


def test_a_classical_model_named_by_string_takes_the_scale() -> None:
    rgb = (frames_of(1, 12, 10, seed=3)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    up = Upscaler("bicubic", scale=3, device="cpu", precision="fp32")
    assert up.model.scale == 3  # resampled once, not ×4 then back down to ×3
    out = up.upscale(rgb)
    planes = [Image.fromarray(rgb[..., c].astype(np.float32), mode="F").resize((30, 36), Image.Resampling.BICUBIC)
              for c in range(3)]
    expected = np.clip(np.rint(np.stack([np.asarray(p) for p in planes], axis=-1)), 0, 255)
    m = 4  # Pillow renormalises taps at the edges where ours repeats the edge pixel
    assert np.abs(out.astype(int) - expected.astype(int))[m:-m, m:-m].max() <= 1


# ---- padding for sizes the network cannot take ---------------------------------------------
def test_a_frame_smaller_than_the_padding_is_padded_by_repetition() -> None:
    # a 1×3 frame for a network that takes multiples of 4: mirroring has nothing to mirror
    frame = frames_of(1, 1, 3, seed=4)
    out = Upscaler(conv_model(3, 2, size_multiple=4), device="cpu", precision="fp32").upscale_tensor(frame)
    padded = torch.from_numpy(np.pad(frame.numpy(), ((0, 0), (0, 0), (0, 3), (0, 1)), mode="edge"))
    torch.testing.assert_close(out, reference(padded, 3, 2)[..., :2, :6], atol=1e-5, rtol=0)


# ---- progress, levels and shapes -------------------------------------------------------------
def test_progress_of_an_untiled_run_is_zero_then_one_of_one() -> None:
    seen: list[tuple[int, int]] = []
    up = Upscaler(conv_model(1, 2), device="cpu", tile=8)
    up.upscale_tensor(frames_of(2, 6, 8), progress=lambda done, total: seen.append((done, total)))
    assert seen == [(0, 1), (1, 1)]  # 6×8 fits one tile of 8: the whole batch in one call


def test_float_results_of_upscale_tensor_stay_within_0_and_1() -> None:
    class Overshoot(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x * 3 - 1).repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)

    out = Upscaler(SRModel("over", Overshoot(), 2, "test", weights=False), device="cpu").upscale_tensor(frames_of(1, 4, 4))
    assert out.min() == 0 and out.max() == 1


@pytest.mark.parametrize(("dtype", "top"), [(np.uint8, 255), (np.uint16, 65535), (np.float32, 1.0)])
@pytest.mark.parametrize("level", [0.0, 0.2, 0.8, 1.0])
def test_flat_levels_come_back_exactly(dtype, top: float, level: float) -> None:
    value = np.asarray(level * top).round().astype(dtype) if dtype != np.float32 else np.float32(level)
    flat = np.full((5, 6, 3), value, dtype)
    out = Upscaler(conv_model(1, 2), device="cpu", precision="fp32").upscale(flat)
    np.testing.assert_allclose(out.astype(np.float64), np.full(out.shape, float(value)), atol=1e-6)


def test_read_only_arrays_are_taken_without_warnings() -> None:
    frame = np.full((4, 5, 3), 100, np.uint8)
    frame.flags.writeable = False  # as Pillow's and memory-mapped arrays come
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = Upscaler(conv_model(1, 2), device="cpu").upscale(frame)
    assert np.array_equal(out, np.full((8, 10, 3), 100, np.uint8))


@pytest.mark.parametrize("shape", [(4, 4, 5), (2, 4, 4, 5)])
def test_five_channels_are_refused_with_the_shapes_that_work(shape: tuple) -> None:
    with pytest.raises(LdlError, match=r"^frames must be H×W, H×W×C or N×H×W×C with C ≤ 4"):
        Upscaler(conv_model(1, 2), device="cpu").upscale(np.zeros(shape, np.uint8))
