"""The classical resampler (the `bicubic`/`lanczos` models, -s other than a model's own scale,
alpha) against Pillow's, which uses the same kernels (cubic a = -0.5, Lanczos-3), centre-aligned
pixels and a filter widened by the ratio when shrinking. Pillow renormalises taps at the edges
where ours repeats the edge pixel, so a margin of the filter's reach is left out."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from ldl_video import Upscaler, load_model
from ldl_video.resample import resize

PIL_KERNELS = {"bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS}
SIZES = [(128, 120), (192, 180), (256, 240), (32, 30), (48, 45), (100, 77)]  # up ×2/×3/×4, down, uneven


@pytest.fixture(scope="module")
def camera() -> np.ndarray:
    return skimage.data.camera()[100:164, 200:260].astype(np.float32) / 255  # 64×60, sharp edges


def _margin(in_size: int, out_size: int) -> int:
    """Output pixels whose filter reaches past the edge: Lanczos' 3 taps, widened when shrinking."""
    ratio = in_size / out_size
    return int(np.ceil((3 * max(ratio, 1) + 1) / ratio))


@pytest.mark.parametrize("kernel", sorted(PIL_KERNELS))
@pytest.mark.parametrize(("height", "width"), SIZES)
def test_resize_equals_pillow_inside_the_edges(camera: np.ndarray, kernel: str, height: int, width: int) -> None:
    ours = resize(torch.from_numpy(camera)[None, None], height, width, kernel)[0, 0].numpy()
    expected = np.asarray(Image.fromarray(camera, mode="F").resize((width, height), PIL_KERNELS[kernel]))
    my, mx = _margin(camera.shape[0], height), _margin(camera.shape[1], width)
    np.testing.assert_allclose(ours[my:-my, mx:-mx], expected[my:-my, mx:-mx], atol=2e-6)


@pytest.mark.parametrize("kernel", sorted(PIL_KERNELS))
def test_classical_models_write_what_pillow_writes(kernel: str) -> None:
    rgb = np.ascontiguousarray(skimage.data.astronaut()[150:190, 160:210])
    ours = Upscaler(load_model(kernel, scale=3), scale=3, device="cpu", precision="fp32").upscale(rgb)
    # Pillow's float path per channel: its 8-bit path rounds between the two passes
    planes = [Image.fromarray(rgb[..., c].astype(np.float32), mode="F").resize((150, 120), PIL_KERNELS[kernel])
              for c in range(3)]
    expected = np.clip(np.rint(np.stack([np.asarray(p) for p in planes], axis=-1)), 0, 255)
    m = _margin(40, 120)
    diff = np.abs(ours.astype(int) - expected.astype(int))[m:-m, m:-m]
    assert ours.shape == expected.shape
    assert diff.max() <= 1  # rounding of values that fall on .5
