"""Real-ESRGAN's degradation pieces: kernels, JPEG, noise, the whole pipeline, USM, the queue."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from ldl_video.train.config import DegradationConfig
from ldl_video.train.degradations import (
    Degrader,
    PairQueue,
    bicubic_lr,
    filter2d,
    jpeg,
    shaped_kernel,
    sinc_kernel,
    usm_sharpen,
)


def _image(size: int = 64, batch: int = 2) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    base = (torch.sin(xx / 3.0) * torch.cos(yy / 5.0) + 1) / 2
    img = torch.stack([base, base.t(), (base + 0.3) % 1])
    return img.expand(batch, -1, -1, -1).clone()


@pytest.mark.parametrize("kind", ["gaussian", "generalized", "plateau"])
def test_kernels_are_normalised_and_oriented(kind):
    k = shaped_kernel(kind, 21, 3.0, 1.0, 0.0, 1.5)
    assert k.shape == (21, 21) and math.isclose(float(k.sum()), 1.0, rel_tol=1e-5)
    assert k[10, 10] == k.max()
    assert k[10, 14] > k[14, 10]  # σx > σy at θ = 0: wider along x
    rotated = shaped_kernel(kind, 21, 3.0, 1.0, math.pi / 2, 1.5)
    torch.testing.assert_close(rotated, k.t(), atol=1e-6, rtol=0)


def test_sinc_kernel_rings():
    k = sinc_kernel(21, math.pi / 4)
    assert math.isclose(float(k.sum()), 1.0, rel_tol=1e-5) and float(k.min()) < 0  # negative lobes: ringing


def test_filter2d_identity_and_per_sample():
    x = _image()
    delta = torch.zeros(2, 5, 5)
    delta[:, 2, 2] = 1
    torch.testing.assert_close(filter2d(x, delta), x)
    box = torch.stack([delta[0], torch.full((5, 5), 1 / 25)])
    out = filter2d(x, box)
    torch.testing.assert_close(out[0], x[0])
    assert not torch.allclose(out[1], x[1])


def test_jpeg_is_close_to_libjpeg():
    import skimage.data
    from PIL import Image

    array = np.ascontiguousarray(skimage.data.astronaut()[64:192, 160:288])
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=40)
    reference = np.asarray(Image.open(buffer)).astype(np.float64) / 255
    x = torch.from_numpy(array).permute(2, 0, 1)[None].float() / 255
    ours = jpeg(x, torch.tensor([40.0]))[0].permute(1, 2, 0).numpy()

    def psnr(a, b):
        return 10 * math.log10(1 / float(np.mean((a - b) ** 2)))

    assert psnr(ours, reference) > 35  # the same codec up to chroma upsampling and rounding
    original = array / 255
    assert abs(psnr(ours, original) - psnr(reference, original)) < 1.0
    low, high = jpeg(x.expand(2, -1, -1, -1), torch.tensor([10.0, 95.0]))
    assert float((low - x[0]).abs().mean()) > 2 * float((high - x[0]).abs().mean())


def test_degrader_makes_8bit_lr_of_the_right_size_reproducibly():
    gt = _image(64, 3)
    first = Degrader(DegradationConfig(), 4, torch.device("cpu"), seed=5)
    lq = first(gt)
    assert lq.shape == (3, 3, 16, 16) and lq.min() >= 0 and lq.max() <= 1
    torch.testing.assert_close(lq, torch.round(lq * 255) / 255)
    again = Degrader(DegradationConfig(), 4, torch.device("cpu"), seed=5)
    assert torch.equal(again(gt), lq)
    state = first.state_dict()
    nxt = first(gt)
    again.load_state_dict(state)
    assert torch.equal(again(gt), nxt)


def test_usm_sharpens_edges_only():
    flat = torch.full((1, 3, 32, 32), 0.5)
    torch.testing.assert_close(usm_sharpen(flat), flat)
    edge = flat.clone()
    edge[..., 16:] = 0.8
    sharp = usm_sharpen(edge)
    assert sharp[0, 0, 5, 17] > 0.8 and sharp[0, 0, 5, 14] < 0.5  # overshoot both sides of the edge


def test_bicubic_lr():
    lr = bicubic_lr(_image(64, 1), 4)
    assert lr.shape == (1, 3, 16, 16)
    torch.testing.assert_close(lr, torch.round(lr * 255) / 255)


def test_queue_fills_then_swaps():
    queue = PairQueue(4)
    gen = torch.Generator().manual_seed(0)
    batches = [(torch.full((2, 1, 1, 1), float(i)), torch.full((2, 1, 2, 2), float(i))) for i in range(4)]
    out0 = queue(*batches[0], gen)
    out1 = queue(*batches[1], gen)
    assert torch.equal(out0[0], batches[0][0]) and torch.equal(out1[0], batches[1][0])  # filling: pass through
    lq, gt = queue(*batches[2], gen)
    assert set(lq.flatten().tolist()) <= {0.0, 1.0} and torch.equal(lq.flatten(), gt[:, 0, 0, 0])  # pairs stay pairs
    state = queue.state_dict()
    restored = PairQueue(4)
    restored.load_state_dict(state, torch.device("cpu"))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert all(torch.equal(a, b) for a, b in zip(queue(*batches[3], g1), restored(*batches[3], g2), strict=True))
