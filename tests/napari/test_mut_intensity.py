"""Intensity normalisation as a user of the plugin meets it, against numpy's own min, max and
percentile and the mapping the layer metadata states: value -> (value - low) / (high - low).

Written against the survivors of `make mutation MODULES=intensity` (benchmarks/results/mutation.md)."""

from __future__ import annotations

import numpy as np
import pytest
from napari_ldl._intensity import PERCENTILES, Normalisation, measure, resolve_method
from napari_ldl._planes import PlaneLayout


def _stack_of_constant_planes(count: int) -> np.ndarray:
    """Plane i holds the value i everywhere: which planes were read shows in the result."""
    return np.broadcast_to(np.arange(count, dtype=np.float32)[:, None, None], (count, 8, 8)).copy()


def test_min_max_reads_every_plane_of_a_long_stack():
    data = _stack_of_constant_planes(100)
    data[37, 3, 3] = 1000.0  # a plane the percentile sample (64 of 100) leaves out
    data[90, 0, 0] = -5.0
    seen = []
    norm = measure(data, PlaneLayout(data.shape, False), "min/max", on_plane=lambda done, total: seen.append((done, total)))
    assert (norm.low, norm.high) == ((float(data.min()),), (float(data.max()),)) == ((-5.0,), (1000.0,))
    assert seen == [(i, 100) for i in range(1, 101)]  # the progress a user sees: 1/100 .. 100/100


def test_percentile_of_a_long_stack_is_estimated_from_64_evenly_spread_planes():
    data = _stack_of_constant_planes(100)
    seen = []
    norm = measure(data, PlaneLayout(data.shape, False), "percentile", on_plane=lambda done, total: seen.append((done, total)))
    assert seen == [(i, 64) for i in range(1, 65)]
    # the planes the documentation names: 64 evenly spread from the first to the last
    sample = np.concatenate([data[i].ravel() for i in np.linspace(0, 99, 64).round().astype(int)]).astype(np.float64)
    np.testing.assert_allclose((norm.low[0], norm.high[0]), np.percentile(sample, PERCENTILES), rtol=0, atol=1e-9)
    assert norm.low[0] < 1 and norm.high[0] > 98  # the first and last planes are in the sample


def test_a_stack_of_exactly_64_planes_is_read_whole():
    data = _stack_of_constant_planes(64)
    norm = measure(data, PlaneLayout(data.shape, False), "percentile")
    np.testing.assert_allclose((norm.low[0], norm.high[0]), np.percentile(data.astype(np.float64), PERCENTILES))


def test_unit_values_clip_outside_the_range_and_nan_becomes_zero():
    norm = Normalisation("percentile", (100.0,), (200.0,))
    plane = np.array([[50, 100, 150], [200, 400, np.nan]], np.float32)
    unit = norm.to_unit(plane)
    assert unit.dtype == np.float32
    np.testing.assert_array_equal(unit, [[0, 0, 0.5], [1, 1, 0]])


def test_back_from_unit_keeps_the_layers_dtype_and_rounds_like_numpy():
    norm = Normalisation("min/max", (-1000.0,), (3000.0,))
    unit = np.array([0.0, 0.1234567, 0.5, 1.0], np.float32)
    back = norm.from_unit(unit, np.int16)
    assert back.dtype == np.int16
    np.testing.assert_array_equal(back, np.rint(unit.astype(np.float64) * 4000 - 1000).astype(np.int16))
    floats = norm.from_unit(unit, np.float32)
    assert floats.dtype == np.float32
    np.testing.assert_allclose(floats, unit.astype(np.float64) * 4000 - 1000, rtol=1e-6)


def test_wide_integer_data_comes_back_at_full_precision():
    """uint32 data over its whole range: float32 arithmetic would be off by up to ~256 codes."""
    low, high = 0.0, float(2**32 - 1)
    norm = Normalisation("dtype range", (low,), (high,))
    unit = np.array([0.123456789, 0.987654321], np.float32)
    expected = np.rint(unit.astype(np.float64) * (high - low) + low).astype(np.uint32)
    np.testing.assert_array_equal(norm.from_unit(unit, np.uint32), expected)


def test_an_all_nan_plane_comes_back_as_zeros():
    data = np.full((8, 8), np.nan, np.float32)
    norm = measure(data, PlaneLayout(data.shape, False), "min/max")
    back = norm.from_unit(norm.to_unit(data), np.float32)
    np.testing.assert_array_equal(back, np.zeros((8, 8), np.float32))


def test_metadata_states_the_mapping_a_user_can_reproduce():
    data = np.linspace(10, 500, 64, dtype=np.float32).reshape(8, 8)
    norm = measure(data, PlaneLayout(data.shape, False), "min/max")
    meta = norm.as_metadata()
    assert meta["method"] == "min/max" and "maps" in meta
    by_hand = (data.astype(np.float64) - meta["low"][0]) / (meta["high"][0] - meta["low"][0])
    np.testing.assert_allclose(norm.to_unit(data), by_hand, atol=1e-7)


def test_unknown_method_lists_the_choices():
    with pytest.raises(ValueError, match=r"unknown normalisation 'median'; choose one of auto, min/max, percentile, dtype range"):
        resolve_method("median", np.dtype(np.uint16))
