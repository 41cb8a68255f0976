"""The plugin's data side without a viewer: plane layouts, intensity round trips, world
alignment, the worker generator on numpy and dask data, cancelling within a plane."""

from __future__ import annotations

import threading

import dask.array as da
import numpy as np
import pytest
import skimage.data
from napari.layers import Image, Labels
from napari_ldl import _samples
from napari_ldl._intensity import measure
from napari_ldl._layers import SourceSnapshot, placement
from napari_ldl._planes import PlaneLayout, UnsuitableLayer, plane_layout
from napari_ldl._worker import Failure, Progress, UpscaleRequest, run_upscale

from ldl_video import Upscaler
from ldl_video.errors import LdlError


def _finish(generator):
    """Run a worker generator to the end; (yielded progress, returned value)."""
    progress = []
    while True:
        try:
            progress.append(next(generator))
        except StopIteration as stop:
            return progress, stop.value


# ---- layouts -------------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "rgb", "leading", "colours"), [
    (np.zeros((16, 20), np.uint8), False, (), 1),
    (np.zeros((3, 5, 16, 20), np.uint16), False, (3, 5), 1),
    (np.zeros((16, 20, 3), np.uint8), True, (), 3),
    (np.zeros((2, 16, 20, 4), np.float32), True, (2,), 4),
])
def test_layouts_keep_every_axis_but_the_plane(data, rgb, leading, colours):
    layout = plane_layout(Image(data, rgb=rgb))
    assert (layout.leading_shape, layout.height, layout.width, layout.colours) == (leading, 16, 20, colours)
    assert len(list(layout.planes())) == layout.plane_count == int(np.prod(leading))
    assert layout.output_shape(32, 40) == (*leading, 32, 40) + ((colours,) if rgb else ())


def test_unsuitable_layers_say_why():
    with pytest.raises(UnsuitableLayer, match="Labels layer"):
        plane_layout(Labels(np.zeros((8, 8), np.int32), name="cells"))
    with pytest.raises(UnsuitableLayer, match="1×1-pixel planes"):
        plane_layout(Image(np.zeros((1, 1), np.uint8)))
    with pytest.raises(UnsuitableLayer, match="multiscale"):
        plane_layout(Image([np.zeros((64, 64)), np.zeros((32, 32))], multiscale=True))
    with pytest.raises(UnsuitableLayer, match="channel axis 2"):
        plane_layout(Image(np.zeros((2, 8, 8))), channel_axis=2)


# ---- intensities ---------------------------------------------------------------------------

def test_sixteen_bit_round_trips_exactly():
    rng = np.random.default_rng(1)
    data = rng.integers(100, 4000, size=(2, 32, 32)).astype(np.uint16)
    layout = PlaneLayout(data.shape, False)
    norm = measure(data, layout, "auto")
    assert (norm.method, norm.low, norm.high) == ("min/max", (float(data.min()),), (float(data.max()),))
    for index in layout.planes():
        unit = norm.to_unit(data[index])
        assert unit.dtype == np.float32 and 0 <= unit.min() <= unit.max() <= 1
        np.testing.assert_array_equal(norm.from_unit(unit, np.uint16), data[index])


def test_percentile_and_channels_and_dtype_range():
    data = np.zeros((2, 16, 16), np.float32)
    data[0] = np.linspace(0, 1, 256).reshape(16, 16)
    data[1] = np.linspace(100, 300, 256).reshape(16, 16)
    layout = PlaneLayout(data.shape, False, channel_axis=0)
    norm = measure(data, layout, "min/max")
    assert norm.low == (0.0, 100.0) and norm.high == (1.0, 300.0)
    robust = measure(data, layout, "percentile")
    assert 0 < robust.low[0] < 0.01 and 299 < robust.high[1] < 300
    eight = measure(np.zeros((8, 8), np.uint8), PlaneLayout((8, 8), False), "auto")
    assert (eight.method, eight.low, eight.high) == ("dtype range", (0.0,), (255.0,))
    constant = measure(np.full((8, 8), 7, np.int16), PlaneLayout((8, 8), False), "auto")
    assert constant.high[0] > constant.low[0] == 7


# ---- alignment -----------------------------------------------------------------------------

@pytest.mark.parametrize("rotate", [0, 30])
def test_upscaled_pixels_lie_on_the_source_in_world_coordinates(rotate):
    source = Image(np.zeros((3, 10, 12)), scale=(2.0, 0.5, 0.25), translate=(1.0, -3.0, 7.0), rotate=rotate, shear=[0.1, 0, 0])
    upscaled = Image(np.zeros((3, 20, 36)), **placement(SourceSnapshot.of(source), (2.0, 3.0)))
    for j in [(0, 0, 0), (2, 5, 7), (1, 19, 35)]:
        # output pixel j sits at input coordinate (j + 0.5) / f - 0.5 along the plane axes
        expected = source.data_to_world((j[0], (j[1] + 0.5) / 2 - 0.5, (j[2] + 0.5) / 3 - 0.5))
        np.testing.assert_allclose(upscaled.data_to_world(j), expected, atol=1e-9)
    # and the outer edges of the two pixel grids coincide
    np.testing.assert_allclose(upscaled.data_to_world((0, -0.5, -0.5)), source.data_to_world((0, -0.5, -0.5)), atol=1e-9)


# ---- the worker ----------------------------------------------------------------------------

class _Recording:
    """A lazy array that records what is read from it."""

    def __init__(self, array) -> None:
        self.array, self.reads = array, []
        self.shape, self.dtype, self.ndim = array.shape, array.dtype, array.ndim

    def __getitem__(self, index):
        self.reads.append(index)
        return self.array[index]


def test_worker_reads_lazy_stacks_plane_by_plane_and_matches_the_engine():
    image = skimage.data.camera()[200:232, 200:248]
    stack = np.stack([image, image[::-1], 255 - image]).astype(np.uint8)
    lazy = _Recording(da.from_array(stack, chunks=(1, 32, 48)))
    request = UpscaleRequest(lazy, PlaneLayout(stack.shape, False), "stack", "bicubic", 2, tile=0, artifact_map=True)
    progress, result = _finish(run_upscale(request, threading.Event()))
    assert [p.done for p in progress] == [1, 2, 3] and all(isinstance(p, Progress) for p in progress)
    assert lazy.reads and all(len(index) == 1 for index in lazy.reads)  # one plane per read, never the whole stack
    assert result.image.shape == (3, 64, 96) and result.image.dtype == np.uint8
    assert result.artifact_map.shape == (3, 64, 96) and 0 <= result.artifact_map.min() <= result.artifact_map.max() <= 1
    engine = Upscaler("bicubic", scale=2)
    for z in range(3):  # the same pixels as the engine on the plane alone (up to rounding)
        np.testing.assert_allclose(result.image[z], engine.upscale(stack[z]), atol=1)


def test_worker_keeps_rgba_and_16_bit_colour():
    logo = skimage.data.logo()[200:232, 200:240]  # RGBA uint8
    rgb16 = (skimage.data.astronaut()[:24, :20].astype(np.uint16) * 16)  # 12-bit colour in uint16
    for image in (logo, rgb16):
        request = UpscaleRequest(image, PlaneLayout(image.shape, True), "rgb", "bicubic", 2, tile=0)
        _, result = _finish(run_upscale(request, threading.Event()))
        h, w, c = image.shape
        assert result.image.shape == (2 * h, 2 * w, c) and result.image.dtype == image.dtype
        assert result.artifact_map.shape == (2 * h, 2 * w)
        assert result.image.max() <= image.max()


def test_cancel_stops_within_a_plane():
    data = np.random.default_rng(0).random((2, 64, 64)).astype(np.float32)
    cancel = threading.Event()
    reports = []

    def report(progress: Progress) -> None:
        reports.append(progress)
        if progress.tiles_done == 1:  # the first batch of tiles of the first plane is done
            cancel.set()

    request = UpscaleRequest(data, PlaneLayout(data.shape, False), "noise", "bicubic", 2, tile=16)
    progress, result = _finish(run_upscale(request, cancel, report))
    assert result is None and progress == []  # not even the first plane finished
    tiles = [p for p in reports if p.tiles_total and p.tiles_done]  # reports after a batch of tiles
    assert len(tiles) == 1 and tiles[0].tiles_total > 1


def test_failures_come_out_as_one_line_messages():
    data = np.zeros((8, 8), np.uint8)
    request = UpscaleRequest(data, PlaneLayout(data.shape, False), "x", "no-such-model", 2)
    _, failure = _finish(run_upscale(request, threading.Event()))
    assert isinstance(failure, Failure) and isinstance(failure.error.__cause__, LdlError)
    assert str(failure.error).startswith("napari-ldl: unknown model 'no-such-model'") and "\n" not in str(failure.error)


# ---- samples -------------------------------------------------------------------------------

def test_samples_are_images_and_the_stack_is_16_bit_3d():
    for make in (_samples.cell, _samples.moon, _samples.retina, _samples.hubble_deep_field):
        ((data, attributes, kind),) = make()
        assert kind == "image" and data.ndim in (2, 3) and attributes["name"]
    ((stack, attributes, _),) = _samples.cell_stack_16bit()
    assert stack.dtype == np.uint16 and stack.ndim == 3 and len(attributes["scale"]) == 3
    assert 100 <= stack.min() and stack.max() <= 4095 and stack.std() > 100
