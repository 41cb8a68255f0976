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


# ---------------------------------------------------------------- the official pipeline's JPEG

_STD_LUMA = [[16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55], [14, 13, 16, 24, 40, 57, 69, 56],
             [14, 17, 22, 29, 51, 87, 80, 62], [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
             [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]]  # ITU T.81 Annex K.1
_STD_CHROMA = [[17, 18, 24, 47, 99, 99, 99, 99], [18, 21, 26, 66, 99, 99, 99, 99], [24, 26, 56, 99, 99, 99, 99, 99],
               [47, 66, 99, 99, 99, 99, 99, 99]] + [[99] * 8] * 4


def _official_diffjpeg(rgb: np.ndarray, quality: float) -> np.ndarray:
    """BasicSR's basicsr/utils/diffjpeg.py (DiffJPEG(differentiable=False), as Real-ESRGAN uses it),
    transcribed equation by equation in numpy: H×W×3 in [0, 1] -> the same."""
    h, w = rgb.shape[:2]
    factor = (5000.0 / quality if quality < 50 else 200.0 - 2 * quality) / 100  # quality_to_factor
    x = np.pad(rgb, ((0, (-h) % 16), (0, (-w) % 16), (0, 0)), constant_values=0) * 255  # F.pad constant 0
    to_ycc = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
    ycc = x @ to_ycc.T + np.array([0.0, 128.0, 128.0])
    H, W = ycc.shape[:2]
    sub = ycc[..., 1:].reshape(H // 2, 2, W // 2, 2, 2).mean(axis=(1, 3))  # avg_pool2d 2×2

    cos = np.array([[np.cos((2 * i + 1) * u * np.pi / 16) for u in range(8)] for i in range(8)])  # [x, u]
    alpha = np.array([1 / np.sqrt(2)] + [1.0] * 7)
    norm = np.outer(alpha, alpha)

    def codec(plane: np.ndarray, table: np.ndarray) -> np.ndarray:
        ph, pw = plane.shape
        blocks = plane.reshape(ph // 8, 8, pw // 8, 8).transpose(0, 2, 1, 3)  # block_splitting
        coeffs = 0.25 * norm * np.einsum("abxy,xu,yv->abuv", blocks - 128, cos, cos)  # dct_8x8
        q = table * factor  # y_table / c_table (already transposed) times the factor, no floor or clamp
        deq = np.round(coeffs / q) * q
        back = 0.25 * np.einsum("abuv,xu,yv->abxy", deq * norm, cos, cos) + 128  # idct_8x8
        return back.transpose(0, 2, 1, 3).reshape(ph, pw)  # block_merging

    y_table, c_table = np.array(_STD_LUMA, float).T, np.array(_STD_CHROMA, float).T  # the .T in diffjpeg.py
    y = codec(ycc[..., 0], y_table)
    cb, cr = (np.repeat(np.repeat(codec(sub[..., i], c_table), 2, 0), 2, 1) for i in (0, 1))  # chroma_upsampling
    out = np.stack([y + 1.402 * (cr - 128), y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128), y + 1.772 * (cb - 128)], -1)
    return np.clip(out, 0, 255)[:h, :w] / 255


@pytest.mark.parametrize("quality", [30.0, 47.5, 60.0, 93.3])
def test_diffjpeg_mode_is_the_official_diffjpeg(quality):
    import skimage.data

    rgb = skimage.data.astronaut()[100:203, 150:281] / 255.0  # 103×131: padded on both axes
    reference = _official_diffjpeg(rgb, quality)
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    ours = jpeg(x, torch.tensor([quality], dtype=torch.float64), "diffjpeg")[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(ours, reference, atol=1e-9, rtol=0)
    # and it is not the libjpeg model: the two differ as much as two codecs do
    libjpeg = jpeg(x, torch.tensor([quality]), "libjpeg")[0].permute(1, 2, 0).numpy()
    assert 10 * math.log10(1 / float(np.mean((libjpeg - reference) ** 2))) < 45


def test_degrader_uses_the_recipes_jpeg_model():
    gt = _image(64, 2)
    outs = {}
    for model in ("diffjpeg", "libjpeg"):
        config = DegradationConfig(jpeg=model)
        outs[model] = Degrader(config, 4, torch.device("cpu"), seed=3)(gt)
    assert not torch.equal(outs["diffjpeg"], outs["libjpeg"])


# ---------------------------------------------------------------- noise as Real-ESRGAN draws it


def test_poisson_levels_follow_the_distinct_values_of_each_image():
    """generate_poisson_noise_pt: 2 ** ceil(log2(number of distinct values)) per sample; the noise of
    a Poisson count with mean λ has variance λ, so (P(img·L)/L - img) has variance img / L."""
    from ldl_video.train.degradations import poisson_levels, poisson_noise

    few = torch.tensor([0.2, 0.4, 0.6, 0.8, 1.0]).repeat_interleave(3 * 128 * 128 // 5 + 1)[: 3 * 128 * 128]
    many = torch.arange(3 * 128 * 128) % 200 / 255
    batch = torch.stack([few.view(3, 128, 128), many.view(3, 128, 128).float()])
    assert poisson_levels(batch).flatten().tolist() == [8.0, 256.0]  # 5 values -> 8, 200 values -> 256
    noise = poisson_noise(batch, torch.Generator().manual_seed(0))
    expected = batch.mean(dim=(1, 2, 3)) / torch.tensor([8.0, 256.0])
    assert torch.allclose(noise.var(dim=(1, 2, 3)), expected, rtol=0.05)


def test_gray_gaussian_noise_is_one_pattern_per_batch_scaled_per_sample():
    """generate_gaussian_noise_pt draws the gray noise as one H×W pattern times each sample's sigma."""
    from ldl_video.train.config import DegradationRound

    degrader = Degrader(DegradationConfig(), 4, torch.device("cpu"), seed=5)
    round_ = DegradationRound(gaussian_noise_prob=1.0, gray_noise_prob=1.0, noise_range=[4.0, 20.0])
    flat = torch.full((3, 3, 48, 48), 0.5)
    noise = degrader._noise(flat, round_) - flat
    assert torch.equal(noise[:, 0], noise[:, 1])  # gray: the same in every channel
    a, b, c = (n[0].flatten() for n in noise)
    for other in (b, c):
        assert float(torch.corrcoef(torch.stack([a, other]))[0, 1]) > 0.999  # the same pattern, another sigma
    assert abs(float(a.std() / b.std()) - 1) > 0.01  # drawn per sample


def test_first_round_resize_samples_at_the_drawn_factor():
    """realesrgan_model.py resizes the first round with F.interpolate(scale_factor=...): for a
    37 px image at 0.7 the samples sit 1/0.7 apart, not 37/25 as a resize to 25 px would put them."""
    from torch.nn import functional as F

    x = torch.rand(1, 3, 37, 37, generator=torch.Generator().manual_seed(0))
    degrader = Degrader(DegradationConfig(), 4, torch.device("cpu"), seed=0)
    seen = set()
    for _ in range(12):
        out = degrader._resize(x, (25, 25), 0.7)
        by_factor = {m: F.interpolate(x, scale_factor=0.7, mode=m) for m in ("area", "bilinear", "bicubic")}
        match = [m for m, ref in by_factor.items() if torch.allclose(out, ref, atol=1e-6)]
        assert match, "not a scale-factor resize"
        seen.add(match[0])
    by_size = F.interpolate(x, size=(25, 25), mode="bilinear", align_corners=False)
    assert not torch.allclose(by_size, F.interpolate(x, scale_factor=0.7, mode="bilinear"), atol=1e-3)
    assert {"bilinear", "bicubic"} <= seen
