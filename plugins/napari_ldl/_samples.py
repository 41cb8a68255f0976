"""File > Open Sample > napari-ldl: images bundled with scikit-image (nothing downloads)."""

from __future__ import annotations

import numpy as np


def _data():
    import skimage.data

    return skimage.data


def cell():
    return [(_data().cell(), {"name": "cell"}, "image")]


def retina():
    return [(_data().retina(), {"name": "retina", "rgb": True}, "image")]


def moon():
    return [(_data().moon(), {"name": "moon"}, "image")]


def hubble_deep_field():
    return [(_data().hubble_deep_field(), {"name": "hubble deep field", "rgb": True}, "image")]


def cell_stack_16bit():
    """A 16-bit z-stack like a widefield fluorescence series: the `cell` image in focus in the
    middle plane and increasingly blurred above and below, on a camera offset, with shot noise,
    in 12 of the 16 bits; 0.5 µm between planes, 0.1 µm pixels."""
    from skimage.filters import gaussian

    image = _data().cell()[120:440, 100:420].astype(np.float64) / 255
    rng = np.random.default_rng(0)
    planes = []
    for z in range(9):
        blurred = gaussian(image, sigma=0.2 + 1.1 * abs(z - 4))
        photons = rng.poisson(blurred * 3000 + 5).astype(np.float64)
        planes.append(100 + photons)
    stack = np.clip(np.stack(planes), 0, 4095).astype(np.uint16)
    attributes = {"name": "cell z-stack (16-bit)", "scale": (0.5, 0.1, 0.1), "units": ("µm", "µm", "µm"),
                  "axis_labels": ("z", "y", "x"), "contrast_limits": (100, 3200)}
    return [(stack, attributes, "image")]
