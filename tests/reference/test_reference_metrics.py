"""Numbers users read off a run, against other implementations: validation PSNR and SSIM (RGB
and the paper's Y channel) against scikit-image, and the saved generator weights against an
EMA the test computes itself from the raw weights after every step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ldl_video.train.config import load_config
from ldl_video.train.distributed import cleanup, setup
from ldl_video.train.loop import Trainer
from ldl_video.train.validation import psnr, ssim

SMOKE = str(Path(__file__).resolve().parents[2] / "training" / "smoke.yaml")


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    """A natural crop and a damaged copy of it (blurred, noisy), both 8-bit."""
    gt = skimage.data.astronaut()[100:196, 150:246].astype(np.float64)
    rng = np.random.default_rng(1)
    blurred = (gt + np.roll(gt, 1, 0) + np.roll(gt, 1, 1) + np.roll(gt, (1, 1), (0, 1))) / 4
    sr = np.clip(np.rint(blurred + rng.normal(0, 6, gt.shape)), 0, 255)
    return sr.astype(np.uint8), gt.astype(np.uint8)


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image.astype(np.float32) / 255).permute(2, 0, 1)


@pytest.mark.parametrize("border", [0, 4])
def test_psnr_and_ssim_equal_scikit_image(pair: tuple[np.ndarray, np.ndarray], border: int) -> None:
    sr, gt = pair
    crop = (slice(border, -border or None), slice(border, -border or None))
    expected_psnr = peak_signal_noise_ratio(gt[crop], sr[crop], data_range=255)
    expected_ssim = structural_similarity(gt[crop].astype(np.float64), sr[crop].astype(np.float64), data_range=255,
                                          channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert psnr(_tensor(sr), _tensor(gt), border) == pytest.approx(expected_psnr, abs=1e-6)
    assert ssim(_tensor(sr), _tensor(gt), border) == pytest.approx(expected_ssim, abs=1e-6)


def test_y_channel_metrics_use_the_studio_range_luma(pair: tuple[np.ndarray, np.ndarray]) -> None:
    """The LDL paper's tables: BT.601 Y in [16, 235] of the 8-bit images, 4 pixels cropped."""
    sr, gt = pair
    y_sr, y_gt = (rgb2ycbcr(x)[4:-4, 4:-4, 0] for x in (sr, gt))
    expected_psnr = peak_signal_noise_ratio(y_gt, y_sr, data_range=255)
    expected_ssim = structural_similarity(y_gt, y_sr, data_range=255, gaussian_weights=True, sigma=1.5,
                                          use_sample_covariance=False)
    assert psnr(_tensor(sr), _tensor(gt), 4, y_channel=True) == pytest.approx(expected_psnr, abs=1e-6)
    assert ssim(_tensor(sr), _tensor(gt), 4, y_channel=True) == pytest.approx(expected_ssim, abs=1e-6)


def test_saved_weights_are_the_raw_and_the_ema_generator(tmp_path: Path) -> None:
    decay = 0.5  # far from 1, so the EMA stands well apart from both the start and the last weights
    overrides = ["device=cpu", "train.threads=1", "generator.arch=srvgg", "generator.num_feat=8", "generator.num_block=2",
                 "discriminator.num_feat=8", "data.gt_size=32", "data.batch_size=2", "data.num_workers=0",
                 "degradation.queue_size=4", "degradation.source_size=48", "losses.perceptual=0", "val.hr=[]",
                 f"runs_dir={tmp_path}", "name=ema", "train.iterations=4", "train.save_every=100",
                 f"train.ema_decay={decay}", "optim.lr_g=1e-2"]
    config = load_config(SMOKE, overrides)
    world = setup(config.device)
    try:
        trainer = Trainer(config, world, say=lambda *args, **kwargs: None)
        start = {k: v.detach().clone() for k, v in trainer.net_g_raw.state_dict().items()}
        steps: list[dict[str, torch.Tensor]] = []
        trainer.on_step = lambda t, terms: steps.append({k: v.detach().clone() for k, v in t.net_g_raw.state_dict().items()})
        saved = torch.load(trainer.fit(), weights_only=True)
    finally:
        cleanup(world)
    assert len(steps) == 4
    ema = start
    for weights in steps:
        ema = {k: decay * ema[k] + (1 - decay) * weights[k] for k in ema}
    for name in start:
        torch.testing.assert_close(saved["params"][name], steps[-1][name], rtol=0, atol=1e-7)
        torch.testing.assert_close(saved["params_ema"][name], ema[name], rtol=1e-5, atol=1e-6)
    moved = max(float((steps[-1][k] - ema[k]).abs().max()) for k in start)
    assert moved > 1e-3  # the two really differ, so a swap cannot pass
