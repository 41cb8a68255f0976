"""Training's degradation pipeline on a CUDA GPU against the same pipeline on the CPU (skipped
without a CUDA GPU; run on a lent GPU machine with `python -m pytest tests/train/test_train_cuda.py`).
`ldl-train` degrades each batch on the training device: every tensor the degrader makes (kernels,
per-sample strengths, noise, JPEG tables) has to live there too."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch

from ldl_video.train.config import DegradationConfig, DegradationRound
from ldl_video.train.degradations import Degrader, PairQueue, usm_sharpen

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

CUDA = torch.device("cuda")


def _batch() -> torch.Tensor:
    crops = [skimage.data.astronaut()[100:228, 100:228], skimage.data.coffee()[100:228, 200:328]]
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.double() - b.double()) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(1 / mse)


@pytest.mark.parametrize("jpeg", ["diffjpeg", "libjpeg"])
def test_noiseless_degradation_on_the_gpu_is_the_cpus(jpeg):
    """Same seed, noise strengths zero (the noise generator is the device's own, so noise differs
    between devices by design): blur, resize, JPEG and the final sinc are the CPU's."""
    quiet = {"noise_range": [0.0, 0.0], "poisson_scale_range": [0.0, 0.0]}
    config = DegradationConfig(first=DegradationRound(**quiet), second=DegradationRound(**quiet), jpeg=jpeg)
    gt = _batch()
    for seed in range(4):
        cpu = Degrader(config, 4, torch.device("cpu"), seed)(gt)
        gpu = Degrader(config, 4, CUDA, seed)(gt.to(CUDA))
        assert gpu.device.type == "cuda" and gpu.shape == (2, 3, 32, 32)
        assert _psnr(gpu.cpu(), cpu) > 35


def test_the_full_recipe_runs_on_the_gpu():
    """Both noise kinds and gray noise drawn on the device; the LR stays in 8-bit levels."""
    gt = _batch().to(CUDA)
    degrader = Degrader(DegradationConfig(), 4, CUDA, 0)
    for _ in range(6):
        lr = degrader(gt)
        assert lr.device.type == "cuda"
        assert torch.equal(lr, (lr * 255).round() / 255) and 0 <= float(lr.min()) <= float(lr.max()) <= 1


def test_usm_sharpen_and_the_pair_queue_on_the_gpu():
    gt = _batch()
    assert _psnr(usm_sharpen(gt.to(CUDA)).cpu(), usm_sharpen(gt)) > 60
    queue = PairQueue(4)
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        lq, hr = queue(gt[..., ::4, ::4].to(CUDA), gt.to(CUDA), generator)
        assert lq.device.type == "cuda" and hr.device.type == "cuda"
    restored = PairQueue(4)
    restored.load_state_dict(queue.state_dict(), CUDA)
    assert restored.lq.device.type == "cuda"
