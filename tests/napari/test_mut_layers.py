"""The two layers an upscale adds, as a user sees them in the layer list and the canvas: names,
look, metadata, and where they lie in the world for a source with every transform napari has
(scale, translate, rotate, shear, affine), units and axis labels. The reference is napari's own
transform of the source layer (data_to_world), not our placement arithmetic.

Written against the survivors of `make mutation MODULES=layers` (benchmarks/results/mutation.md)."""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Image
from napari_ldl._intensity import Normalisation
from napari_ldl._layers import ARTIFACT_OPACITY, SourceSnapshot, output_layers
from napari_ldl._worker import UpscaleResult

AFFINE = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.9, 0.2, 4.0], [0.0, -0.1, 1.1, -2.0], [0.0, 0.0, 0.0, 1.0]])


def _source(**extra) -> Image:
    look = dict(name="cells", scale=(2.0, 0.5, 0.25), translate=(1.0, -3.0, 7.0), rotate=20, shear=[0.1, 0, 0],
                affine=AFFINE, units=("µm", "nm", "nm"), axis_labels=("z", "y", "x"), gamma=0.7, blending="translucent",
                colormap="magma", contrast_limits=(10, 900), metadata={"stain": "DAPI"})
    look.update(extra)
    return Image(np.zeros((3, 10, 12), np.uint16), **look)


def _result(factors=(2.0, 3.0), with_map=True) -> UpscaleResult:
    out = (3, int(10 * factors[0]), int(12 * factors[1]))
    return UpscaleResult(image=np.ones(out, np.uint16), artifact_map=np.zeros(out, np.float32) if with_map else None,
                         factors=factors, normalisation=Normalisation("min/max", (10.0,), (900.0,)), model="ldl-compact-x2",
                         device="cpu", map_kind="blind", backend="torch", seconds_per_plane=[0.123456, 2.0])


def test_both_layers_lie_on_the_source_under_its_affine_too():
    source = _source()
    layers = output_layers(SourceSnapshot.of(source), _result(), {"tile": 0})
    assert len(layers) == 2
    for layer in layers:
        for j in [(0, 0, 0), (2, 7, 20), (1, 19, 35)]:
            # output pixel j sits at input coordinate (j + 0.5) / f - 0.5 along the plane axes
            expected = source.data_to_world((j[0], (j[1] + 0.5) / 2 - 0.5, (j[2] + 0.5) / 3 - 0.5))
            np.testing.assert_allclose(layer.data_to_world(j), expected, atol=1e-9)
        assert tuple(str(u) for u in layer.units) == tuple(str(u) for u in source.units)
        assert tuple(layer.axis_labels) == ("z", "y", "x")


def test_names_and_look_in_the_layer_list():
    image, overlay = output_layers(SourceSnapshot.of(_source()), _result(), {"tile": 0})
    assert image.name == "cells ×2×3 ldl-compact-x2" and overlay.name == "cells ×2×3 artifact map"
    assert image.colormap.name == "magma" and tuple(image.contrast_limits) == (10, 900)
    assert image.gamma == pytest.approx(0.7) and image.blending == "translucent" and not image.rgb
    assert overlay.colormap.name == "ldl artifacts" and tuple(overlay.contrast_limits) == (0.0, 1.0)
    assert overlay.colormap._display_name == "ldl artifacts"  # the layer controls show it (napari keeps it private)
    assert overlay.blending == "additive" and overlay.opacity == pytest.approx(ARTIFACT_OPACITY)
    # transparent where nothing is suspicious, opaque yellow at the top of the scale
    low, high = overlay.colormap.map(np.array([0.0, 1.0]))
    assert low[3] == 0 and high[3] == 1 and high[0] > 0.9 and high[1] > 0.8 and high[2] < 0.2
    same, _ = output_layers(SourceSnapshot.of(_source()), _result(factors=(2.0, 2.0)), {})
    assert same.name == "cells ×2 ldl-compact-x2"


def test_metadata_keeps_the_sources_and_says_how_it_was_made():
    image, overlay = output_layers(SourceSnapshot.of(_source()), _result(), {"tile": 64, "normalise": "auto"})
    assert image.metadata["stain"] == "DAPI"
    info = image.metadata["ldl"]
    assert info == {"source": "cells", "model": "ldl-compact-x2", "device": "cpu", "backend": "torch",
                    "factors": [2.0, 3.0], "normalisation": Normalisation("min/max", (10.0,), (900.0,)).as_metadata(),
                    "seconds_per_plane": [0.1235, 2.0], "tile": 64, "normalise": "auto"}
    meaning = overlay.metadata["ldl"]["artifact_map"]
    assert meaning["kind"] == "blind" and overlay.metadata["ldl"]["model"] == "ldl-compact-x2"
    # names the function a user can call to map their own values the same way
    assert meaning["values"].startswith("ldl_video.artifacts.to_display")


def test_rgb_source_gives_an_rgb_layer_and_no_map_gives_one_layer():
    rgb = Image(np.zeros((10, 12, 3), np.uint8), name="photo", rgb=True)
    result = UpscaleResult(image=np.zeros((20, 24, 3), np.uint8), artifact_map=None, factors=(2.0, 2.0),
                           normalisation=Normalisation("dtype range", (0.0,), (255.0,)), model="bicubic", device="cpu",
                           map_kind=None)
    layers = output_layers(SourceSnapshot.of(rgb), result, {})
    assert len(layers) == 1 and layers[0].rgb and layers[0].data.shape == (20, 24, 3)
