"""Real-ESRGAN's degradation pieces as a user of `ldl-train` meets them, each against a reference
outside the engine: the kernels' textbook formulas (BasicSR's basicsr/data/degradations.py, which
Real-ESRGAN, arXiv 2107.10833, trains with), OpenCV's filter2D, getGaussianKernel and GaussianBlur
(BasicSR's usm_sharp), scipy's DCT and Bessel J1, libjpeg's own tables and codec through Pillow,
Pillow's bicubic, Poisson counts, and a transcription of realesrgan_model.py's training-pair pool.
The sampling ranges and probabilities are those of Real-ESRGAN's
options/train_realesrgan_x4plus.yml, which DegradationConfig's defaults carry.

Written against the survivors of `make mutation MODULES=degradations`."""

from __future__ import annotations

import io
import math

import cv2
import numpy as np
import pytest
import scipy.fft
import scipy.ndimage
import scipy.special
import torch

from ldl_video.train import degradations as deg
from ldl_video.train.config import DegradationConfig, DegradationRound
from ldl_video.train.degradations import (
    Degrader,
    PairQueue,
    bicubic_lr,
    filter2d,
    gaussian_1d,
    identity_kernel,
    jpeg,
    poisson_levels,
    poisson_noise,
    quant_tables,
    shaped_kernel,
    sinc_kernel,
    to_8bit,
    usm_sharpen,
)

CPU = torch.device("cpu")


def _smooth(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    """A random image with structure at several scales, float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    img = scipy.ndimage.gaussian_filter(rng.random(shape), sigma=(0, 1.5, 1.5)[-len(shape):] if len(shape) == 3 else 1.5)
    img = (img - img.min()) / (img.max() - img.min())
    return (0.7 * img + 0.3 * rng.random(shape)).astype(np.float32)


# ---------------------------------------------------------------- kernels


def _reference_kernel(kind: str, size: int, sx: float, sy: float, theta: float, beta: float) -> np.ndarray:
    """BasicSR's sigma_matrix2 / mesh_grid / pdf2: Σ = R(θ) diag(σx², σy²) R(θ)ᵀ with
    R = [[cos, -sin], [sin, cos]], x along the columns, y along the rows, q = xᵀ Σ⁻¹ x."""
    ax = np.arange(size) - (size - 1) / 2
    xx, yy = np.meshgrid(ax, ax)  # xx varies along a row
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    sigma = rot @ np.diag([sx**2, sy**2]) @ rot.T
    xy = np.stack([xx, yy], -1)
    q = np.einsum("...i,ij,...j->...", xy, np.linalg.inv(sigma), xy)
    kernel = {"gaussian": lambda: np.exp(-0.5 * q), "generalized": lambda: np.exp(-0.5 * q**beta),
              "plateau": lambda: 1 / (q**beta + 1)}[kind]()
    return kernel / kernel.sum()


@pytest.mark.parametrize(("kind", "size", "sx", "sy", "theta", "beta"), [
    ("gaussian", 21, 3.0, 1.2, 0.7, 1.0),
    ("gaussian", 7, 0.6, 2.2, -2.4, 1.0),
    ("generalized", 15, 2.5, 0.8, -1.1, 0.6),
    ("generalized", 9, 1.0, 2.0, 2.9, 3.0),
    ("plateau", 21, 2.0, 0.6, 2.5, 1.7),
    ("plateau", 11, 0.5, 1.5, -0.4, 1.1),
])
def test_shaped_kernels_are_the_textbook_densities(kind, size, sx, sy, theta, beta):
    ours = shaped_kernel(kind, size, sx, sy, theta, beta)
    assert ours.dtype == torch.float32 and ours.shape == (size, size)
    np.testing.assert_allclose(ours.numpy(), _reference_kernel(kind, size, sx, sy, theta, beta), rtol=1e-5, atol=1e-8)


def test_kernel_orientation_follows_theta_counter_clockwise_on_screen():
    """θ turns the long (σx) axis from +x towards +y (rows grow downwards): at θ = 45° the kernel is
    long along the main diagonal, at -45° along the anti-diagonal."""
    k = shaped_kernel("gaussian", 11, 3.0, 0.7, math.pi / 4)
    assert k[8, 8] > 5 * k[8, 2] and torch.allclose(k, k.t())
    flipped = shaped_kernel("gaussian", 11, 3.0, 0.7, -math.pi / 4)
    torch.testing.assert_close(flipped, torch.flip(k, [1]), atol=1e-7, rtol=0)


def test_kernels_default_beta_is_one():
    torch.testing.assert_close(shaped_kernel("generalized", 13, 2.0, 1.0, 0.3),
                               shaped_kernel("gaussian", 13, 2.0, 1.0, 0.3), atol=1e-7, rtol=0)
    np.testing.assert_allclose(shaped_kernel("plateau", 13, 2.0, 1.0, 0.3).numpy(),
                               _reference_kernel("plateau", 13, 2.0, 1.0, 0.3, 1.0), rtol=1e-5, atol=1e-8)


def test_unknown_kernel_kind_is_named():
    with pytest.raises(ValueError, match=r"^unknown kernel kind 'box'$"):
        shaped_kernel("box", 7, 1.0, 1.0, 0.0)


@pytest.mark.parametrize(("size", "omega"), [(7, math.pi / 3), (13, math.pi / 5), (21, 2.0), (9, 2.9)])
def test_sinc_kernel_is_the_circular_low_pass(size, omega):
    """BasicSR's circular_lowpass_kernel: ω·J1(ω r) / (2π r), ω² / (4π) at the centre (the limit),
    normalised to sum 1."""
    ax = np.arange(size) - (size - 1) / 2
    r = np.hypot(*np.meshgrid(ax, ax))
    with np.errstate(invalid="ignore", divide="ignore"):
        ref = omega * scipy.special.j1(omega * r) / (2 * np.pi * r)
    ref[size // 2, size // 2] = omega**2 / (4 * np.pi)
    ref /= ref.sum()
    ours = sinc_kernel(size, omega)
    assert ours.dtype == torch.float32
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-5, atol=1e-8)


def test_small_kernels_are_zero_padded_to_the_degraders_size():
    small = sinc_kernel(7, 1.3)
    padded = deg._pad_to(small, 21)
    assert padded.shape == (21, 21)
    torch.testing.assert_close(padded[7:14, 7:14], small, atol=0, rtol=0)
    assert float(padded.abs().sum()) == pytest.approx(float(small.abs().sum()))
    delta = identity_kernel(21)
    assert delta.shape == (21, 21) and delta[10, 10] == 1 and float(delta.sum()) == 1


# ---------------------------------------------------------------- filtering


def test_filter2d_is_correlation_with_reflect_101_padding_per_sample():
    """BasicSR's filter2D (basicsr/utils/img_process_util.py): F.pad(..., mode='reflect') then
    conv2d (a correlation: the kernel is not flipped), one kernel per sample; OpenCV's filter2D
    with BORDER_REFLECT_101 is the same operation."""
    x = np.stack([_smooth(1, (3, 16, 20)), _smooth(2, (3, 16, 20))])
    rng = np.random.default_rng(3)
    kernels = rng.random((2, 7, 7)).astype(np.float32)
    kernels /= kernels.sum(axis=(1, 2), keepdims=True)
    ours = filter2d(torch.from_numpy(x), torch.from_numpy(kernels)).numpy()
    for i in range(2):
        for ch in range(3):
            ref = cv2.filter2D(x[i, ch], -1, kernels[i], borderType=cv2.BORDER_REFLECT_101)
            np.testing.assert_allclose(ours[i, ch], ref, atol=1e-5, rtol=0)
    shared = filter2d(torch.from_numpy(x), torch.from_numpy(kernels[1])).numpy()  # one k×k for the batch
    np.testing.assert_allclose(shared[0, 2], cv2.filter2D(x[0, 2], -1, kernels[1], borderType=cv2.BORDER_REFLECT_101),
                               atol=1e-5, rtol=0)


def test_filter2d_replicates_where_the_image_is_smaller_than_the_kernels_reach():
    """A 4 px side cannot be reflected by 4: the edge pixels are repeated (scipy's 'nearest');
    at 5 px it still reflects."""
    rng = np.random.default_rng(4)
    kernel = rng.random((9, 9)).astype(np.float32)
    kernel /= kernel.sum()
    tiny = _smooth(5, (3, 4, 6))
    ours = filter2d(torch.from_numpy(tiny)[None], torch.from_numpy(kernel)[None]).numpy()[0]
    for ch in range(3):
        ref = scipy.ndimage.correlate(tiny[ch].astype(np.float64), kernel.astype(np.float64), mode="nearest")
        np.testing.assert_allclose(ours[ch], ref, atol=1e-5, rtol=0)
    small = _smooth(6, (3, 5, 6))
    ours = filter2d(torch.from_numpy(small)[None], torch.from_numpy(kernel)).numpy()[0]
    np.testing.assert_allclose(ours[1], cv2.filter2D(small[1], -1, kernel, borderType=cv2.BORDER_REFLECT_101),
                               atol=1e-5, rtol=0)


@pytest.mark.parametrize(("size", "sigma"), [(9, 1.1), (51, 8.3), (5, 0.7), (3, 2.0), (1, 1.0)])  # odd: OpenCV wants odd sizes
def test_gaussian_1d_is_opencvs(size, sigma):
    ref = cv2.getGaussianKernel(size, sigma, ktype=cv2.CV_64F).ravel()
    np.testing.assert_allclose(gaussian_1d(size, sigma).numpy(), ref, rtol=1e-6, atol=1e-9)


def _usm_reference(img: np.ndarray, weight: float, radius: int, threshold: float, border: int) -> np.ndarray:
    """BasicSR's usm_sharp (basicsr/utils/img_util.py) on H×W×3: GaussianBlur of size radius|1 with
    OpenCV's sigma for that size, residual, mask |residual|·255 > threshold, blurred mask as the blend."""
    if radius % 2 == 0:
        radius += 1
    blur = cv2.GaussianBlur(img, (radius, radius), 0, borderType=border)
    residual = img - blur
    mask = (np.abs(residual) * 255 > threshold).astype(np.float32)
    soft = cv2.GaussianBlur(mask, (radius, radius), 0, borderType=border)
    sharp = np.clip(img + weight * residual, 0, 1)
    return soft * sharp + (1 - soft) * img


def _usm(img: np.ndarray, **kwargs) -> np.ndarray:
    out = usm_sharpen(torch.from_numpy(img).permute(2, 0, 1)[None], **kwargs)
    return out[0].permute(1, 2, 0).numpy()


def test_usm_sharpen_is_basicsrs_usm_sharp_with_the_official_defaults():
    """Real-ESRGAN sharpens the GT with USMSharp's defaults: weight 0.5, radius 50, threshold 10."""
    img = np.ascontiguousarray(_smooth(7, (3, 32, 32)).transpose(1, 2, 0))
    ref = _usm_reference(img, 0.5, 50, 10, cv2.BORDER_REFLECT_101)
    np.testing.assert_allclose(_usm(img), ref, atol=2e-6, rtol=0)
    assert np.abs(ref - img).max() > 0.02  # it does sharpen


@pytest.mark.parametrize(("weight", "radius", "threshold"), [(0.8, 20, 4.0), (0.3, 21, 15.0), (1.5, 13, 2.0),
                                                          (0.5, 3, 10.0), (0.5, 4, 10.0), (1.0, 7, 3.0),
                                                          (0.7, 9, 5.0), (0.5, 1, 10.0)])
def test_usm_sharpen_parameters(weight, radius, threshold):
    """Every radius a config may give, the small ones too (where OpenCV's Gaussian for sigma 0 is
    a fixed table, not its sigma formula)."""
    img = np.ascontiguousarray(_smooth(8, (3, 32, 32)).transpose(1, 2, 0))
    ref = _usm_reference(img, weight, radius, threshold, cv2.BORDER_REFLECT_101)
    np.testing.assert_allclose(_usm(img, weight=weight, radius=radius, threshold=threshold), ref, atol=2e-6, rtol=0)


@pytest.mark.parametrize(("h", "w", "border"), [(12, 14, cv2.BORDER_REPLICATE), (25, 30, cv2.BORDER_REPLICATE),
                                                (26, 30, cv2.BORDER_REFLECT_101)])
def test_usm_sharpen_of_a_crop_smaller_than_the_blur_repeats_the_edges(h, w, border):
    """The 51-tap blur reaches 25 pixels: a side of 25 or less cannot be reflected that far."""
    img = np.ascontiguousarray(_smooth(9, (3, h, w)).transpose(1, 2, 0))
    ref = _usm_reference(img, 0.5, 50, 10, border)
    np.testing.assert_allclose(_usm(img), ref, atol=2e-6, rtol=0)


# ---------------------------------------------------------------- JPEG

_STD_LUMA = np.array([  # ITU-T T.81 Annex K.1, [vertical frequency][horizontal frequency]
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55], [14, 13, 16, 24, 40, 57, 69, 56],
    [14, 17, 22, 29, 51, 87, 80, 62], [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]], dtype=np.float64)
_STD_CHROMA = np.full((8, 8), 99.0)  # Annex K.2
_STD_CHROMA[:4, :4] = [[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]]


def _pillow_jpeg(rgb: np.ndarray, quality: int) -> tuple[np.ndarray, dict]:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)  # 4:2:0, libjpeg's tables
    decoded = Image.open(buffer)
    return np.asarray(decoded.convert("RGB")).astype(np.float64) / 255, decoded.quantization


def test_libjpeg_tables_are_the_ones_libjpeg_writes_at_every_quality():
    """Pillow hands the quality to libjpeg's jpeg_set_quality and returns the tables it wrote."""
    blank = np.zeros((8, 8, 3), np.uint8)
    qualities = torch.arange(1, 101, dtype=torch.float32)
    luma, chroma = quant_tables(qualities)
    assert luma.shape == chroma.shape == (100, 8, 8)
    for i, q in enumerate(range(1, 101)):
        tables = _pillow_jpeg(blank, q)[1]
        np.testing.assert_array_equal(luma[i].numpy(), np.reshape(tables[0], (8, 8)), err_msg=f"luma at {q}")
        np.testing.assert_array_equal(chroma[i].numpy(), np.reshape(tables[1], (8, 8)), err_msg=f"chroma at {q}")
    # jcparam.c's jpeg_quality_scaling clamps the quality to 1..100 first
    low, high = quant_tables(torch.tensor([0.0, -7.0, 1.0])), quant_tables(torch.tensor([100.0, 130.0]))
    assert torch.equal(low[0][0], low[0][2]) and torch.equal(low[0][1], low[0][2]) and torch.equal(low[1][0], low[1][2])
    assert float(low[0][2].max()) == 255 and bool((high[0] == 1).all()) and bool((high[1] == 1).all())


def test_diffjpeg_tables_are_the_transposed_standard_ones_times_the_quality_factor():
    """basicsr/utils/diffjpeg.py: y_table / c_table are the Annex K tables transposed; the table
    used is table · quality_to_factor(q), quality_to_factor = (5000/q if q < 50 else 200 - 2q) / 100."""
    qualities = [30.0, 47.5, 60.0, 93.3, 50.0, 50.5, 1.0, 100.0]
    luma, chroma = quant_tables(torch.tensor(qualities, dtype=torch.float64), "diffjpeg")
    for i, q in enumerate(qualities):
        factor = (5000.0 / q if q < 50 else 200.0 - 2 * q) / 100
        np.testing.assert_allclose(luma[i].numpy(), _STD_LUMA.T * factor, rtol=1e-12)
        np.testing.assert_allclose(chroma[i].numpy(), _STD_CHROMA.T * factor, rtol=1e-12)
    # qualities outside 1..100 are taken as the nearest end, as libjpeg does
    outside = quant_tables(torch.tensor([0.2, 130.0], dtype=torch.float64), "diffjpeg")
    torch.testing.assert_close(outside[0], luma[[6, 7]], atol=0, rtol=0)
    torch.testing.assert_close(outside[1], chroma[[6, 7]], atol=0, rtol=0)


def test_dct_is_the_orthonormal_dct_ii():
    reference = scipy.fft.dct(np.eye(8), norm="ortho", axis=0)  # [frequency, sample]
    np.testing.assert_allclose(deg._dct_matrix().numpy(), reference, atol=1e-12)
    block = np.random.default_rng(10).random((8, 8))
    ours = (deg._DCT64 @ torch.from_numpy(block.ravel())).numpy().reshape(8, 8)
    np.testing.assert_allclose(ours, scipy.fft.dctn(block, norm="ortho"), atol=1e-12)


@pytest.mark.parametrize("quality", [20, 37, 75])
def test_libjpeg_model_of_a_gray_image_is_libjpegs_output(quality):
    """A gray image has flat chroma, so the model and libjpeg differ only by libjpeg's integer DCT
    and 8-bit rounding. The crop is 37×41: both pad to whole blocks by repeating the edge.
    Measured (Pillow 13, libjpeg-turbo) at qualities 10, 13, ... 94: 45.8-59.8 dB at the same
    quality (a coefficient on a rounding boundary costs a few dB), at most 41.7 dB at ±3."""
    import skimage.data

    gray = skimage.data.camera()[200:237, 220:261]
    rgb = np.repeat(gray[..., None], 3, 2)
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    ours = jpeg(x, torch.tensor([float(quality)]))[0].permute(1, 2, 0).numpy()

    def psnr(a: np.ndarray, b: np.ndarray) -> float:
        return 10 * math.log10(1 / float(np.mean((a - b) ** 2)))

    assert psnr(ours, _pillow_jpeg(rgb, quality)[0]) > 44
    for other in (quality - 5, quality + 5):
        assert psnr(ours, _pillow_jpeg(rgb, other)[0]) < 42


def test_libjpeg_model_of_a_colour_image_is_close_to_libjpeg_per_sample():
    """4:2:0 colour: libjpeg upsamples chroma with its triangle filter where the model repeats, so
    the match is looser. Measured: 42.9-43.8 dB at the same quality, under 38 dB at ±5."""
    import skimage.data

    crops = [np.ascontiguousarray(skimage.data.astronaut()[100:137, 150:191]),
             np.ascontiguousarray(skimage.data.coffee()[150:187, 250:291])]
    x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255
    ours = jpeg(x, torch.tensor([20.0, 75.0])).permute(0, 2, 3, 1).numpy()
    for img, out, q in zip(crops, ours, (20, 75), strict=True):
        err = [10 * math.log10(1 / float(np.mean((out - _pillow_jpeg(img, qq)[0]) ** 2))) for qq in (q - 5, q, q + 5)]
        assert err[1] > 40 and max(err[0], err[2]) < err[1] - 3, err


def test_jpeg_keeps_float64_and_float32():
    x = torch.from_numpy(_smooth(11, (3, 16, 16)))[None]
    out32 = jpeg(x, torch.tensor([50.0]))
    out64 = jpeg(x.double(), torch.tensor([50.0]))
    assert out32.dtype == torch.float32 and out64.dtype == torch.float64
    np.testing.assert_allclose(out32.numpy(), out64.numpy(), atol=1e-4)


# ---------------------------------------------------------------- noise, rounding, LR


def test_to_8bit_rounds_to_the_nearest_level_and_clips():
    x = np.array([-0.3, 0.0, 0.1, 0.2004, 0.5, 0.77, 0.999, 1.0, 1.4], dtype=np.float32)
    expected = np.clip(np.round(x.astype(np.float64) * 255), 0, 255) / 255
    np.testing.assert_allclose(to_8bit(torch.from_numpy(x)).numpy(), expected, atol=1e-7)


def test_poisson_noise_is_a_count_per_level():
    """generate_poisson_noise_pt: out = Poisson(img · L) / L with L = 2^ceil(log2(distinct values)):
    (img + noise) · L are whole counts, their mean is img · L and their variance img · L."""
    levels = torch.tensor([0.2, 0.4, 0.6, 0.8])  # 4 distinct values: L = 4 (a power of two stays)
    img = levels.repeat(3 * 64 * 64 // 4).view(1, 3, 64, 64)
    assert poisson_levels(img).flatten().tolist() == [4.0]
    five = torch.tensor([0.2, 0.4, 0.6, 0.8, 0.9]).view(1, 1, 1, 5)
    assert poisson_levels(torch.cat([five, five * 0])).flatten().tolist() == [8.0, 1.0]  # 5 values -> 8; 1 -> 1
    noise = poisson_noise(img, torch.Generator().manual_seed(1))
    counts = (img + noise) * 4
    torch.testing.assert_close(counts, counts.round(), atol=1e-4, rtol=0)
    for value in levels.tolist():
        c = counts[img == value].double()
        # 3072 samples each: the mean's standard error is √(4v/3072) ≤ 0.033, the bounds are 5 of them
        assert abs(float(c.mean()) - 4 * value) < 0.17
        assert abs(float(c.var()) / (4 * value) - 1) < 0.15


def test_bicubic_lr_is_pillows_antialiased_bicubic_rounded_to_8_bits():
    """Pillow's BICUBIC (a = -0.5, support widened by the shrink factor) on a float image; the
    engine repeats edge pixels where Pillow renormalises, so the 2-pixel border is left out."""
    from PIL import Image

    img = _smooth(12, (64, 48))
    ref = np.asarray(Image.fromarray(img, mode="F").resize((12, 16), Image.Resampling.BICUBIC))
    lr = bicubic_lr(torch.from_numpy(np.stack([img] * 3))[None], 4)
    assert lr.shape == (1, 3, 16, 12)
    torch.testing.assert_close(lr, torch.round(lr * 255) / 255)
    np.testing.assert_allclose(lr[0, 1, 2:-2, 2:-2].numpy(), ref[2:-2, 2:-2], atol=0.5 / 255 + 1e-4, rtol=0)


# ---------------------------------------------------------------- the Degrader's draws


def _within(count: int, n: int, p: float) -> bool:
    """count of n draws at probability p, within 5 binomial standard deviations (fixed seeds: the
    draws are the same each run; 5 σ leaves room for a seed change)."""
    return abs(count - n * p) <= 5 * math.sqrt(n * p * (1 - p)) + 1


def _spy(monkeypatch, name: str) -> list:
    """Record the arguments of the module's `name` and still run it."""
    calls, real = [], getattr(deg, name)

    def spy(*args, **kwargs):
        calls.append(args + tuple(kwargs.values()))
        return real(*args, **kwargs)

    monkeypatch.setattr(deg, name, spy)
    return calls


def test_blur_kernels_are_drawn_as_the_official_first_round(monkeypatch):
    """train_realesrgan_x4plus.yml: kernel sizes 7..21 odd, sinc 0.1 (cut-off π/3..π below size 13,
    π/5..π from 13), else kinds iso/aniso/generalized_iso/generalized_aniso/plateau_iso/plateau_aniso
    at 0.45/0.25/0.12/0.03/0.12/0.03, σ 0.2..3, θ -π..π, β 0.5..4 (generalized) and 1..2 (plateau),
    drawn below and above 1 half the time each."""
    shaped, sinc = _spy(monkeypatch, "shaped_kernel"), _spy(monkeypatch, "sinc_kernel")
    degrader = Degrader(DegradationConfig(), 4, CPU, seed=0)
    n = 3000
    for _ in range(n):
        kernel = degrader._blur_kernel(degrader.config.first)
        assert kernel.shape == (21, 21)
    assert float(kernel.sum()) == pytest.approx(1, abs=1e-5)
    assert len(shaped) + len(sinc) == n and _within(len(sinc), n, 0.1)
    sizes = [c[1] for c in shaped] + [c[0] for c in sinc]
    assert set(sizes) == set(range(7, 22, 2)) and all(_within(sizes.count(s), n, 1 / 8) for s in range(7, 22, 2))

    small = [omega for size, omega in sinc if size < 13]
    large = [omega for size, omega in sinc if size >= 13]
    assert math.pi / 3 <= min(small) < math.pi / 3 + 0.1 and max(small) <= math.pi
    assert math.pi / 5 <= min(large) < math.pi / 5 + 0.1 and max(large) > math.pi - 0.1
    assert min(omega for size, omega in sinc if size == 13) < math.pi / 3

    def kind(call):
        shape, _, sx, sy, theta, _ = call
        iso = sx == sy and theta == 0.0
        return ("iso" if iso else "aniso") if shape == "gaussian" else f"{shape}_{'iso' if iso else 'aniso'}"

    kinds = [kind(c) for c in shaped]
    for name, p in zip(("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"),
                       (0.45, 0.25, 0.12, 0.03, 0.12, 0.03), strict=True):
        assert _within(kinds.count(name), len(shaped), p), (name, kinds.count(name))
    sigmas = [c[2] for c in shaped] + [c[3] for c in shaped]
    assert 0.2 <= min(sigmas) < 0.21 and 2.99 < max(sigmas) <= 3.0
    thetas = [c[4] for c in shaped if c[4] != 0.0]
    assert -math.pi <= min(thetas) < -3.1 and 3.1 < max(thetas) <= math.pi
    betas = {"gaussian": [], "generalized": [], "plateau": []}
    for c in shaped:
        betas[c[0]].append(c[5])
    assert set(betas["gaussian"]) == {1.0}
    gen, plat = betas["generalized"], betas["plateau"]
    assert 0.5 <= min(gen) < 0.55 and 3.9 < max(gen) <= 4.0 and _within(sum(b < 1 for b in gen), len(gen), 0.5)
    assert min(plat) == 1.0 and 1.95 < max(plat) <= 2.0 and _within(sum(b == 1.0 for b in plat), len(plat), 0.5)


def test_generalized_beta_is_below_one_half_the_time(monkeypatch):
    """The β draw on its own, with a round that has only generalized kernels: 2000 draws resolve
    0.5 to ±0.056 (5 σ)."""
    shaped = _spy(monkeypatch, "shaped_kernel")
    degrader = Degrader(DegradationConfig(), 4, CPU, seed=20)
    r = DegradationRound(kernel_range=[7, 7], kernel_list=["generalized_iso"], kernel_prob=[1.0], sinc_prob=0.0)
    for _ in range(2000):
        degrader._blur_kernel(r)
    betas = [c[5] for c in shaped]
    assert {c[0] for c in shaped} == {"generalized"} and _within(sum(b < 1 for b in betas), 2000, 0.5)


def test_second_round_kernels_and_the_padded_size(monkeypatch):
    """The kernels of both rounds share the largest size of the two ranges (σ 0.2..1.5 in the second)."""
    shaped = _spy(monkeypatch, "shaped_kernel")
    config = DegradationConfig(first=DegradationRound(kernel_range=[3, 9]),
                               second=DegradationRound(kernel_range=[5, 13], blur_sigma=[0.2, 1.5]))
    degrader = Degrader(config, 4, CPU, seed=1)
    for r in (config.first, config.second, config.second):
        assert degrader._blur_kernel(r).shape == (13, 13)
    for _ in range(300):
        degrader._blur_kernel(config.second)
    sigmas = [c[2] for c in shaped[1:]]
    assert {c[1] for c in shaped[1:]} == {5, 7, 9, 11, 13} and 0.2 <= min(sigmas) and max(sigmas) <= 1.5


def test_final_sinc_is_drawn_at_its_probability(monkeypatch):
    """final_sinc_prob 0.8, sizes of the first round, cut-off π/3..π; otherwise a delta."""
    sinc = _spy(monkeypatch, "sinc_kernel")
    degrader = Degrader(DegradationConfig(), 4, CPU, seed=2)
    n, deltas = 1000, 0
    delta = identity_kernel(21)
    for _ in range(n):
        kernel = degrader._final_kernel()
        assert kernel.shape == (21, 21)
        deltas += bool(torch.equal(kernel, delta))
    assert len(sinc) + deltas == n and _within(len(sinc), n, 0.8)
    assert {size for size, _ in sinc} == set(range(7, 22, 2))
    omegas = [omega for _, omega in sinc]
    assert math.pi / 3 <= min(omegas) < math.pi / 3 + 0.05 and math.pi - 0.05 < max(omegas) <= math.pi


@pytest.mark.parametrize(("round_", "probs", "bounds"), [
    ("first", (0.2, 0.7, 0.1), (0.15, 1.5)),
    ("second", (0.3, 0.4, 0.3), (0.3, 1.2)),
])
def test_resize_factors_follow_the_rounds_options(round_, probs, bounds):
    """resize_prob (up, down, keep) and resize_range of each round."""
    degrader = Degrader(DegradationConfig(), 4, CPU, seed=3)
    r = getattr(degrader.config, round_)
    factors = [degrader._resize_factor(r) for _ in range(2000)]
    up, down = [f for f in factors if f > 1], [f for f in factors if f < 1]
    keep = len(factors) - len(up) - len(down)
    assert _within(len(up), 2000, probs[0]) and _within(len(down), 2000, probs[1]) and _within(keep, 2000, probs[2])
    assert bounds[0] <= min(down) < bounds[0] + 0.01 and max(down) < 1
    assert 1 < min(up) < 1.01 and bounds[1] - 0.01 < max(up) <= bounds[1]


def test_resize_to_a_size_uses_every_mode_and_never_goes_below_one_pixel():
    x = torch.from_numpy(_smooth(13, (2, 3, 9, 14)))
    degrader = Degrader(DegradationConfig(), 4, CPU, seed=4)
    modes = []
    for _ in range(60):
        out = degrader._resize(x, (4, 6))
        refs = {m: torch.nn.functional.interpolate(x, size=(4, 6), mode=m, **({} if m == "area" else
                                                                                {"align_corners": False}))
                for m in ("area", "bilinear", "bicubic")}
        modes += [m for m, ref in refs.items() if torch.allclose(out, ref, atol=1e-6)]
    assert len(modes) == 60 and all(_within(modes.count(m), 60, 1 / 3) for m in ("area", "bilinear", "bicubic"))
    assert degrader._resize(x, (0, 3)).shape == (2, 3, 1, 3)
    assert degrader._resize(x, (0, 0), 0.05).shape == (2, 3, 1, 1)  # the factor path would make 0×0
    by_factor = {m: torch.nn.functional.interpolate(x, scale_factor=0.2, mode=m, **({} if m == "area" else
                                                                                    {"align_corners": False}))
                 for m in ("area", "bilinear", "bicubic")}
    for _ in range(12):
        small = degrader._resize(x, (1, 2), 0.2)  # 1 px is still a factor resize
        assert small.shape == (2, 3, 1, 2)
        assert any(torch.allclose(small, ref, atol=1e-6) for ref in by_factor.values())


def test_gaussian_noise_is_sigma_in_8_bit_levels_times_a_standard_normal():
    """random_add_gaussian_noise_pt: sigma drawn per sample from noise_range (8-bit levels), the
    colour noise one standard-normal image (the noise generator's first draw) times sigma / 255."""
    degrader = Degrader(DegradationConfig(), 4, CPU, seed=6)
    r = DegradationRound(gaussian_noise_prob=1.0, gray_noise_prob=0.0, noise_range=[1.0, 30.0])
    flat = torch.full((400, 3, 2, 2), 0.5)
    replay = torch.Generator().set_state(degrader.noise.get_state())
    noise = degrader._noise(flat, r) - flat
    normal = torch.randn(flat.shape, generator=replay)
    sigma = (noise / normal).median(dim=-1).values.median(dim=-1).values.median(dim=-1).values * 255
    torch.testing.assert_close(noise, normal * sigma.view(-1, 1, 1, 1) / 255, atol=2e-6, rtol=0)
    # 400 uniform draws: the extremes lie about 29/401 ≈ 0.07 inside the range, the bounds 0.5
    assert 1 <= float(sigma.min()) < 1.5 and 29.5 < float(sigma.max()) <= 30
    assert _within(int((sigma < 15.5).sum()), 400, 0.5)
    fixed = DegradationRound(gaussian_noise_prob=1.0, gray_noise_prob=0.0, noise_range=[30.0, 30.0])
    replay = torch.Generator().set_state(degrader.noise.get_state())
    noise = degrader._noise(flat, fixed) - flat
    torch.testing.assert_close(noise, torch.randn(flat.shape, generator=replay) * 30 / 255, atol=2e-6, rtol=0)
    # the noisy image stays in [0, 1]
    for level, end in ((0.98, 1.0), (0.02, 0.0)):
        out = degrader._noise(torch.full((4, 3, 8, 8), level), fixed)
        assert float(out.max()) == 1.0 if end else float(out.min()) == 0.0
        assert 0 <= float(out.min()) and float(out.max()) <= 1


def test_gray_noise_and_noise_kind_probabilities(monkeypatch):
    """gray_noise_prob 0.4 per sample (the same noise in the three channels); gaussian_noise_prob
    0.5 per batch, Poisson otherwise."""
    poisson = _spy(monkeypatch, "poisson_noise")
    degrader = Degrader(DegradationConfig(), 4, CPU, seed=7)
    r = DegradationRound()
    x = torch.full((200, 3, 3, 3), 0.5)
    gray, gaussian, batches = 0, 0, 120
    for _ in range(batches):
        before = len(poisson)
        noise = degrader._noise(x, r) - x
        if len(poisson) == before:  # a Poisson draw of a flat image can be zero in all channels by chance
            gaussian += 1
            gray += int(((noise[:, 0] == noise[:, 1]) & (noise[:, 1] == noise[:, 2])).flatten(1).all(1).sum())
    assert len(poisson) == 2 * (batches - gaussian) and _within(gaussian, batches, 0.5)
    assert _within(gray, 200 * gaussian, 0.4)
    gaussian_only = DegradationRound(gaussian_noise_prob=1.0, gray_noise_prob=0.4)
    before, gray = len(poisson), 0
    for _ in range(10):
        noise = degrader._noise(x, gaussian_only) - x
        gray += int((noise[:, 0] == noise[:, 1]).flatten(1).all(1).sum())
    assert len(poisson) == before and _within(gray, 2000, 0.4)
    degrader._noise(x, DegradationRound(gaussian_noise_prob=0.0))
    assert len(poisson) == before + 2


def _levels(plane: np.ndarray) -> float:
    return 2.0 ** math.ceil(math.log2(len(np.unique(plane))))


@pytest.mark.parametrize("gray", [0.0, 1.0])
def test_poisson_noise_is_whole_counts_times_the_scale(gray):
    """random_add_poisson_noise_pt: scale · (Poisson(img · L) / L - img), colour from the 8-bit image,
    gray from the 8-bit luma 0.2989 R + 0.587 G + 0.114 B (torchvision's rgb_to_grayscale): divided
    by the scale and added back, the noisy image times L is a whole count."""
    img = np.round(0.35 * 255 + np.random.default_rng(14).random((2, 3, 16, 16)) * 0.3 * 255) / 255
    x = torch.from_numpy(img).float()
    degrader = Degrader(DegradationConfig(), 4, CPU, seed=8)
    r = DegradationRound(gaussian_noise_prob=0.0, gray_noise_prob=gray, poisson_scale_range=[0.5, 0.5])
    noise = (degrader._noise(x, r) - x).double().numpy() / 0.5
    for i in range(2):
        if gray:
            luma = np.round((0.2989 * img[i, 0] + 0.587 * img[i, 1] + 0.114 * img[i, 2]) * 255) / 255
            np.testing.assert_allclose(noise[i, 0], noise[i, 2], atol=1e-6)
            base, level = luma, _levels(luma)
        else:
            base, level = img[i], _levels(img[i])
        counts = (noise[i] + base) * level
        np.testing.assert_allclose(counts, np.round(counts), atol=0.02)
        assert np.abs(noise[i]).max() > 0.01


def test_poisson_gray_noise_takes_the_luma_of_the_image_before_clipping():
    """A sinc blur or a bicubic resize leaves values outside [0, 1] when the noise step comes:
    generate_poisson_noise_pt converts them to gray as they are (torchvision's rgb_to_grayscale
    does not clip) and only the luma is rounded and clipped. Red above 1 everywhere: the gray
    noise read on the green plane is whole counts around the unclipped luma."""
    rng = np.random.default_rng(31)
    img = np.stack([1.02 + 0.25 * rng.random((12, 12)), 0.35 + 0.3 * rng.random((12, 12)),
                    -0.15 + 0.3 * rng.random((12, 12))])[None]
    x = torch.from_numpy(img).float()
    degrader = Degrader(DegradationConfig(), 4, CPU, seed=12)
    r = DegradationRound(gaussian_noise_prob=0.0, gray_noise_prob=1.0, poisson_scale_range=[1.0, 1.0])
    noise = (degrader._noise(x, r) - x)[0, 1].double().numpy()
    gray = 0.2989 * img[0, 0] + 0.587 * img[0, 1] + 0.114 * img[0, 2]
    luma = np.clip(np.round(gray.astype(np.float32) * 255), 0, 255) / 255
    counts = (noise + luma) * _levels(luma)
    np.testing.assert_allclose(counts, np.round(counts), atol=0.02)


def test_jpeg_qualities_are_drawn_per_sample_with_the_recipes_model(monkeypatch):
    """jpeg_range 30..95 in both rounds, one quality per sample, the configured JPEG model."""
    calls = _spy(monkeypatch, "jpeg")
    for model in ("diffjpeg", "libjpeg"):
        degrader = Degrader(DegradationConfig(jpeg=model), 4, CPU, seed=9)
        x = torch.full((300, 3, 8, 8), 0.5)
        for _ in range(4):
            degrader._jpeg(x, degrader.config.first)
        qualities = torch.cat([c[1] for c in calls[-4:]])
        assert all(c[2] == model for c in calls[-4:])
        assert all(torch.equal(c[0], x) for c in calls[-4:])  # the picture itself is compressed
        assert 30 <= float(qualities.min()) < 30.5 and 94.5 < float(qualities.max()) <= 95
        assert len(set(qualities.tolist())) > 1000


def test_degrader_runs_realesrgans_order_of_steps(monkeypatch):
    """realesrgan_model.py feed_data: blur (always), resize, noise, JPEG; blur (0.8), resize to the
    second size, noise; then half the time resize to the LR size + final sinc and JPEG, half the
    time JPEG and then resize + sinc. Followed through the filters and JPEGs it calls."""
    steps = []
    real_filter, real_jpeg = deg.filter2d, deg.jpeg
    monkeypatch.setattr(deg, "filter2d", lambda x, k: steps.append(("blur", tuple(x.shape[-2:]))) or real_filter(x, k))
    monkeypatch.setattr(deg, "jpeg", lambda x, q, m: steps.append(("jpeg", tuple(x.shape[-2:]))) or real_jpeg(x, q, m))
    gt = torch.from_numpy(_smooth(15, (2, 3, 32, 32)))
    config = DegradationConfig()
    config.second.blur_prob = 0.3  # away from the first round's 1.0 and the official 0.8
    degrader = Degrader(config, 4, CPU, seed=10)
    runs, second_blurs, jpeg_last = 120, 0, 0
    for _ in range(runs):
        steps.clear()
        out = degrader(gt)
        assert out.shape == (2, 3, 8, 8)
        names = [name for name, _ in steps]
        assert steps[0] == ("blur", (32, 32)) and names[1] == "jpeg" and names.count("jpeg") == 2
        assert len(names) in (4, 5)
        assert all(4 <= side <= 48 for side in steps[1][1])  # first round: 32 px resized by 0.15..1.5
        second_blurs += len(names) == 5
        if names[-1] == "jpeg":
            jpeg_last += 1
            assert steps[-2] == ("blur", (8, 8)) and steps[-1] == ("jpeg", (8, 8))
        else:
            assert steps[-1] == ("blur", (8, 8))
            assert all(2 <= side <= 9 for side in steps[-2][1])  # second round: 8 px (32 / 4) by 0.3..1.2
    assert _within(second_blurs, runs, 0.3) and _within(jpeg_last, runs, 0.5)


# ---------------------------------------------------------------- the training-pair pool


class _OfficialQueue:
    """realesrgan_model.py's _dequeue_and_enqueue, transcribed: fill, then shuffle the full pool
    with randperm, hand out its first b pairs and put the new batch in their place."""

    def __init__(self, size: int) -> None:
        self.size, self.ptr, self.lq, self.gt = size, 0, None, None

    def __call__(self, lq, gt, generator):
        b = lq.shape[0]
        if self.lq is None:
            self.lq = torch.zeros(self.size, *lq.shape[1:])
            self.gt = torch.zeros(self.size, *gt.shape[1:])
        if self.ptr == self.size:
            idx = torch.randperm(self.size, generator=generator)
            self.lq, self.gt = self.lq[idx], self.gt[idx]
            out = self.lq[0:b].clone(), self.gt[0:b].clone()
            self.lq[0:b], self.gt[0:b] = lq.clone(), gt.clone()
            return out
        self.lq[self.ptr:self.ptr + b], self.gt[self.ptr:self.ptr + b] = lq.clone(), gt.clone()
        self.ptr += b
        return lq, gt


def _batches(count: int, b: int = 2) -> list:
    rng = np.random.default_rng(16)
    out = []
    for _ in range(count):
        gt = torch.from_numpy(np.round(rng.random((b, 3, 4, 4)) * 255) / 255).float()
        gt[..., 0, 0], gt[..., 0, 2] = 0.0, 1.0  # black and white pixels, as real crops have
        out.append((gt[..., ::2, ::2].contiguous(), gt))
    return out


def test_pair_queue_is_the_official_pool():
    ours, official = PairQueue(6), _OfficialQueue(6)
    g1, g2 = torch.Generator().manual_seed(17), torch.Generator().manual_seed(17)
    for lq, gt in _batches(12):
        a, b = ours(lq, gt, g1), official(lq, gt, g2)
        torch.testing.assert_close(a, b, atol=0, rtol=0)
        torch.testing.assert_close(a[0], a[1][..., ::2, ::2], atol=0, rtol=0)  # pairs stay pairs


def test_pair_queue_of_size_zero_passes_batches_through():
    queue = PairQueue(0)
    for lq, gt in _batches(3):
        out = queue(lq, gt, torch.Generator())
        assert out[0] is lq and out[1] is gt
    assert queue.state_dict() == {"count": 0}


@pytest.mark.parametrize("filled", [1, 3, 5])
def test_pair_queue_resumes_where_it_stopped(filled):
    """The state keeps the filled part (8-bit values as bytes, exactly) and a resumed queue hands
    out what the original would have."""
    batches = _batches(filled + 4)
    queue = PairQueue(6)
    gen = torch.Generator().manual_seed(18)
    for lq, gt in batches[:filled]:
        queue(lq, gt, gen)
    state = queue.state_dict()
    assert state["count"] == min(2 * filled, 6) and state["lq"]["u8"].dtype == torch.uint8
    restored = PairQueue(6)
    restored.load_state_dict(state, CPU)
    g2 = torch.Generator().set_state(gen.get_state())
    for lq, gt in batches[filled:]:
        torch.testing.assert_close(queue(lq, gt, gen), restored(lq, gt, g2), atol=0, rtol=0)


def test_pair_queue_state_keeps_values_that_are_not_8_bit():
    queue = PairQueue(4)
    lq = torch.tensor([0.3, 1 / 3]).view(2, 1, 1, 1)
    gt = torch.tensor([0.2, 0.6], dtype=torch.float64).view(2, 1, 1, 1)
    queue(lq, gt, torch.Generator())
    state = queue.state_dict()
    assert "raw" in state["lq"] and "raw" in state["gt"]  # 1/3 is not an 8-bit level; float64 stays float64
    restored = PairQueue(4)
    restored.load_state_dict(state, CPU)
    assert restored.count == 2 and restored.gt.dtype == torch.float64
    torch.testing.assert_close(restored.lq[:2], lq, atol=0, rtol=0)
    torch.testing.assert_close(restored.gt[:2], gt, atol=0, rtol=0)
    torch.testing.assert_close(restored.lq[2:], torch.zeros(2, 1, 1, 1), atol=0, rtol=0)
    empty = PairQueue(4)
    empty.load_state_dict({"count": 0}, CPU)
    assert empty.count == 0 and empty.lq is None


def test_degrader_state_resumes_both_generators():
    """The resume state carries the parameter and the noise generator: a restored Degrader makes
    the same next batch, and one that restores only the parameters does not."""
    gt = torch.from_numpy(_smooth(19, (2, 3, 32, 32)))
    first = Degrader(DegradationConfig(), 4, CPU, seed=11)
    first(gt)
    state = first.state_dict()
    expected = first(gt)
    again = Degrader(DegradationConfig(), 4, CPU, seed=99)
    again.load_state_dict(state)
    assert torch.equal(again(gt), expected)
    other = Degrader(DegradationConfig(), 4, CPU, seed=11)
    assert torch.equal(other.params.get_state(), Degrader(DegradationConfig(), 4, CPU, seed=11).params.get_state())
    assert not torch.equal(other.noise.get_state(), other.params.get_state())  # seed + 1 for the noise
