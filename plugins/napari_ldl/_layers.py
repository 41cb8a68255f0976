"""The two output layers and where they lie in the world.

Pixel centres follow the engine's resampling convention: output pixel j along an upscaled
axis sits at input coordinate (j + 0.5) / f - 0.5. So the output keeps the source's rotate,
shear, affine, units and axis labels, its scale is the source's divided by f along the two
plane axes, and its translate moves by the source's linear transform applied to
scale × (1/f - 1) / 2: both layers then cover exactly the same region of the world.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._worker import UpscaleResult

# Transparent at 0 (nothing suspicious), through red to yellow: drawn additively over the image.
ARTIFACT_COLORS = [[0.0, 0.0, 0.0, 0.0], [0.85, 0.1, 0.0, 0.8], [1.0, 0.85, 0.1, 1.0]]
ARTIFACT_OPACITY = 0.7


@dataclass(frozen=True)
class SourceSnapshot:
    """What the outputs copy from the source layer, taken when the run starts (the source may
    change or go away while it runs)."""

    name: str
    scale: np.ndarray
    translate: np.ndarray
    linear: np.ndarray  # rotate · shear, without scale
    rotate: np.ndarray
    shear: np.ndarray
    affine: np.ndarray
    units: tuple
    axis_labels: tuple
    rgb: bool
    contrast_limits: tuple[float, float]
    colormap: object
    gamma: float
    blending: str
    metadata: dict

    @classmethod
    def of(cls, layer) -> SourceSnapshot:
        from napari.utils.transforms import Affine

        linear = Affine(ndim=layer.ndim, rotate=layer.rotate, shear=layer.shear).linear_matrix
        return cls(layer.name, np.array(layer.scale, float), np.array(layer.translate, float), np.array(linear),
                   np.array(layer.rotate), np.array(layer.shear), np.array(layer.affine.affine_matrix),
                   tuple(layer.units), tuple(layer.axis_labels), bool(layer.rgb), tuple(layer.contrast_limits),
                   layer.colormap, float(layer.gamma), str(layer.blending), dict(layer.metadata))


def placement(source: SourceSnapshot, factors: tuple[float, float]) -> dict:
    """scale, translate and the rest of the transform for a layer upscaled by `factors` (y, x)."""
    ndim = len(source.scale)
    factor = np.ones(ndim)
    factor[-2:] = factors
    shift = source.scale * (1 / factor - 1) / 2  # zero outside the plane axes
    return {
        "scale": tuple(source.scale / factor),
        "translate": tuple(source.translate + source.linear @ shift),
        "rotate": source.rotate,
        "shear": source.shear,
        "affine": source.affine,
        "units": source.units,
        "axis_labels": source.axis_labels,
    }


def output_layers(source: SourceSnapshot, result: UpscaleResult, settings: dict):
    """[upscaled image, artifact map (if any)] as napari Image layers, not yet in a viewer."""
    from napari.layers import Image
    from napari.utils.colormaps import Colormap

    where = placement(source, result.factors)
    factor = "×".join(dict.fromkeys(f"{f:g}" for f in result.factors))
    info = {
        "source": source.name,
        "model": result.model,
        "device": result.device,
        "backend": result.backend,
        "factors": list(result.factors),
        "normalisation": result.normalisation.as_metadata(),
        "seconds_per_plane": [round(s, 4) for s in result.seconds_per_plane],
        **settings,
    }
    look = {} if source.rgb else {"contrast_limits": source.contrast_limits, "colormap": source.colormap}
    layers = [Image(result.image, name=f"{source.name} ×{factor} {result.model}", rgb=source.rgb, gamma=source.gamma,
                    blending=source.blending, metadata={**source.metadata, "ldl": info}, **look, **where)]
    if result.artifact_map is not None:
        colormap = Colormap(ARTIFACT_COLORS, name="ldl artifacts", display_name="ldl artifacts")
        meaning = {"kind": result.map_kind,
                   "values": "ldl_video.artifacts.to_display of the map: 0 none .. 1 strong, fixed curve"}
        layers.append(Image(result.artifact_map, name=f"{source.name} ×{factor} artifact map", colormap=colormap,
                            contrast_limits=(0.0, 1.0), blending="additive", opacity=ARTIFACT_OPACITY,
                            metadata={"ldl": {**info, "artifact_map": meaning}}, **where))
    return layers
