"""The validation numbers a training run prints and logs (psnr, ssim, psnr_y, ssim_y), end to end
through `Validator`: HR/LR pairs written as PNG by Pillow, a known upscaler (nearest ×4, so its
output is computed here with numpy), metrics recomputed with scikit-image on the `scale`-pixel
cropped 8-bit images and averaged over the images; the saved sample read back by Pillow.
Mutation testing found the Validator's averaging, border and sample writing unpinned."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ldl_video.train.config import load_config
from ldl_video.train.validation import Validator

SMOKE = str(Path(__file__).resolve().parents[2] / "training" / "smoke.yaml")
SCALE = 4


class Nearest(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(x, scale_factor=SCALE, mode="nearest")


def _ssim(a: np.ndarray, b: np.ndarray, channel_axis: int | None) -> float:
    return structural_similarity(a, b, data_range=255, channel_axis=channel_axis, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False)


def test_validator_reports_scikit_image_metrics_averaged_over_images(tmp_path: Path) -> None:
    hr_dir, lr_dir, samples = tmp_path / "hr", tmp_path / "lr", tmp_path / "samples"
    hr_dir.mkdir()
    lr_dir.mkdir()
    crops = {"a": skimage.data.astronaut()[40:104, 200:264], "b": skimage.data.chelsea()[60:108, 100:180]}
    expected: dict[str, list[float]] = {"psnr": [], "ssim": [], "psnr_y": [], "ssim_y": []}
    outputs = {}
    for name, hr in crops.items():
        lr = np.asarray(Image.fromarray(hr).resize((hr.shape[1] // SCALE, hr.shape[0] // SCALE), Image.Resampling.BOX))
        Image.fromarray(hr).save(hr_dir / f"{name}.png")
        Image.fromarray(lr).save(lr_dir / f"{name}.png")
        sr = lr.repeat(SCALE, axis=0).repeat(SCALE, axis=1)
        outputs[name] = sr
        c = slice(SCALE, -SCALE)
        hr_c, sr_c = hr[c, c].astype(np.float64), sr[c, c].astype(np.float64)
        expected["psnr"].append(peak_signal_noise_ratio(hr_c, sr_c, data_range=255))
        expected["ssim"].append(_ssim(hr_c, sr_c, channel_axis=-1))
        y_hr, y_sr = rgb2ycbcr(hr)[c, c, 0], rgb2ycbcr(sr)[c, c, 0]
        expected["psnr_y"].append(peak_signal_noise_ratio(y_hr, y_sr, data_range=255))
        expected["ssim_y"].append(_ssim(y_hr, y_sr, channel_axis=None))
    config = load_config(SMOKE, [f"val.hr=[{hr_dir}]", f"val.lr=[{lr_dir}]", "val.crop=0", "val.save_images=1"])
    validator = Validator(config, size_multiple=1)
    metrics, saved = validator(Nearest(), torch.device("cpu"), samples)
    assert set(metrics) == set(expected)
    for key, values in expected.items():
        assert metrics[key] == pytest.approx(np.mean(values), abs=1e-6), key
    assert expected["psnr"][0] != pytest.approx(expected["psnr"][1], abs=0.5)  # a mean, not one image's value
    assert [name for name, _ in saved] == ["a"]
    written = sorted(samples.iterdir())
    assert [p.name for p in written] == ["a.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(written[0]).convert("RGB")), outputs["a"])


def test_validation_lr_made_by_bicubic_is_pillows_bicubic(tmp_path: Path) -> None:
    """val.degradation: bicubic with no val.lr: the LR is the HR shrunk with the bicubic kernel
    (antialiased, as Pillow and MATLAB's imresize do), rounded to 8 bits."""
    hr_dir = tmp_path / "hr"
    hr_dir.mkdir()
    hr = skimage.data.astronaut()[100:196, 150:246]
    Image.fromarray(hr).save(hr_dir / "a.png")
    lr = np.asarray(Image.fromarray(hr).resize((24, 24), Image.Resampling.BICUBIC))
    sr = lr.repeat(SCALE, axis=0).repeat(SCALE, axis=1).astype(np.float64)
    c = slice(SCALE, -SCALE)
    expected_psnr = peak_signal_noise_ratio(hr[c, c].astype(np.float64), sr[c, c], data_range=255)
    config = load_config(SMOKE, [f"val.hr=[{hr_dir}]", "val.degradation=bicubic", "val.crop=0", "val.save_images=0"])
    metrics, saved = Validator(config, size_multiple=1)(Nearest(), torch.device("cpu"), None)
    assert saved == []
    # Pillow renormalises the taps at the image edge where ours repeats the edge pixel: 1e-4 dB
    # here; the Real-ESRGAN-degraded LR is 4.7 dB away
    assert metrics["psnr"] == pytest.approx(expected_psnr, abs=0.005)


def test_degraded_validation_lr_is_the_same_in_every_run(tmp_path: Path) -> None:
    """val.degradation: realesrgan (the default) makes its LR with a fixed seed, so numbers of
    two runs of a recipe compare; and it is really degraded (not the bicubic LR)."""
    hr_dir = tmp_path / "hr"
    hr_dir.mkdir()
    Image.fromarray(skimage.data.astronaut()[100:196, 150:246]).save(hr_dir / "a.png")
    runs = []
    for degradation, seed in (("realesrgan", 0), ("realesrgan", 5), ("bicubic", 0)):
        config = load_config(SMOKE, [f"val.hr=[{hr_dir}]", f"val.degradation={degradation}", "val.crop=0", f"seed={seed}"])
        runs.append(Validator(config, size_multiple=1)(Nearest(), torch.device("cpu"), None)[0]["psnr"])
    assert runs[0] == runs[1]
    assert runs[2] - runs[0] > 1.0


def test_validation_takes_the_first_images_and_their_centre_crops(tmp_path: Path) -> None:
    """val.max_images and val.crop: the first images by name, each cut to its centre (on the
    scale grid), so a big validation set stays quick."""
    hr_dir, lr_dir = tmp_path / "hr", tmp_path / "lr"
    hr_dir.mkdir()
    lr_dir.mkdir()
    astronaut = skimage.data.astronaut()
    crops = {"a": astronaut[40:120, 200:280], "b": astronaut[300:380, 100:180], "c": astronaut[0:80, 0:80]}
    psnrs = []
    for name, hr in crops.items():
        lr = np.asarray(Image.fromarray(hr).resize((20, 20), Image.Resampling.BOX))
        Image.fromarray(hr).save(hr_dir / f"{name}.png")
        Image.fromarray(lr).save(lr_dir / f"{name}.png")
        centre_hr, centre_lr = hr[24:56, 24:56], lr[6:14, 6:14]  # (80 - 32) / 2 = 24, on the ×4 grid
        sr = centre_lr.repeat(SCALE, axis=0).repeat(SCALE, axis=1).astype(np.float64)
        psnrs.append(peak_signal_noise_ratio(centre_hr[4:-4, 4:-4].astype(np.float64), sr[4:-4, 4:-4], data_range=255))
    config = load_config(SMOKE, [f"val.hr=[{hr_dir}]", f"val.lr=[{lr_dir}]", "val.crop=32", "val.max_images=2"])
    metrics, saved = Validator(config, size_multiple=1)(Nearest(), torch.device("cpu"), None)
    assert [name for name, _ in saved] == ["a", "b"]
    assert tuple(saved[0][1].shape) == (3, 32, 32)
    assert metrics["psnr"] == pytest.approx((psnrs[0] + psnrs[1]) / 2, abs=1e-6)


def test_psnr_of_identical_and_one_level_apart_images() -> None:
    """A perfect result reads inf dB (scikit-image's answer too), and a result one 8-bit level off
    everywhere (MSE exactly 1) reads 10·log10(255²) = 48.13 dB."""
    from ldl_video.train.validation import psnr

    gt = skimage.data.astronaut()[100:140, 150:190].astype(np.float64)
    gt = np.clip(gt, 0, 254)
    tensor = torch.from_numpy(gt / 255).permute(2, 0, 1)
    with np.errstate(divide="ignore"):
        assert psnr(tensor, tensor.clone(), 4) == peak_signal_noise_ratio(gt, gt, data_range=255) == float("inf")
    one_up = torch.from_numpy((gt + 1) / 255).permute(2, 0, 1)
    assert psnr(one_up, tensor, 4) == pytest.approx(peak_signal_noise_ratio(gt, gt + 1, data_range=255), abs=1e-9)
    assert psnr(one_up, tensor, 4) == pytest.approx(20 * np.log10(255), abs=1e-9)


def test_metrics_of_an_overshooting_result_are_those_of_the_saved_8_bit_image() -> None:
    """A network's raw output overshoots [0, 1] at edges; what is measured is the image as
    saved: clipped to 0..255 and rounded (scikit-image on that image)."""
    from ldl_video.train.validation import psnr, ssim

    gt = skimage.data.astronaut()[100:164, 150:214].astype(np.float64)
    raw = (gt / 255) * 1.4 - 0.2  # a fifth of the pixels below 0 or above 1
    saved = np.clip(np.rint(raw * 255), 0, 255)
    t_raw, t_gt = (torch.from_numpy(x).permute(2, 0, 1) for x in (raw, gt / 255))
    assert psnr(t_raw, t_gt, 4) == pytest.approx(peak_signal_noise_ratio(gt[4:-4, 4:-4], saved[4:-4, 4:-4], data_range=255),
                                                 abs=1e-6)
    assert ssim(t_raw, t_gt, 4) == pytest.approx(_ssim(gt[4:-4, 4:-4], saved[4:-4, 4:-4], channel_axis=-1), abs=1e-6)
