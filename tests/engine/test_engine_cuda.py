"""CUDA paths of the Upscaler against the CPU (skipped without a CUDA GPU; run on a lent GPU
machine with `python -m pytest tests/engine/test_engine_cuda.py`)."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch

from ldl_video import Upscaler, load_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(peak**2 / mse))


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return np.stack([skimage.data.astronaut()[:96, :128], skimage.data.coffee()[:96, :128]])


@pytest.fixture(scope="module")
def reference(frames: np.ndarray) -> np.ndarray:
    return Upscaler(load_model("realesr-animevideov3-x4"), device="cpu", precision="fp32").upscale(frames)


@pytest.mark.parametrize(("precision", "floor"), [("fp32", 55), ("fp16", 50), ("bf16", 40)])
def test_precisions_match_the_cpu(frames, reference, precision: str, floor: float) -> None:
    up = Upscaler(load_model("realesr-animevideov3-x4"), device="cuda", precision=precision, batch_size=2)
    assert up.channels_last
    assert psnr(up.upscale(frames), reference) > floor


def test_auto_precision_is_half_on_cuda() -> None:
    assert Upscaler(load_model("realesr-animevideov3-x4"), device="cuda").dtype == torch.float16


def test_tiles_blend_on_the_device_and_match(frames, reference) -> None:
    up = Upscaler(load_model("realesr-animevideov3-x4"), device="cuda", precision="fp32", tile=48, tile_overlap=16, batch_size=4)
    out = up.upscale_tensor(up.to_tensor(frames[:1]))
    assert out.device.type == "cuda"
    assert psnr(up.from_tensor(out, np.uint8)[0], reference[0]) > 45


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_downloads_keep_dtype_and_values(frames, dtype) -> None:
    up = Upscaler(load_model("bicubic"), device="cuda", precision="fp32")
    cpu = Upscaler(load_model("bicubic"), device="cpu")
    data = frames.astype(np.float32) / 255 if dtype == np.float32 else frames.astype(dtype) * (257 if dtype == np.uint16 else 1)
    gpu_out, cpu_out = up.upscale(data), cpu.upscale(data)
    assert gpu_out.dtype == dtype and gpu_out.shape == cpu_out.shape
    peak = 1.0 if dtype == np.float32 else float(np.iinfo(dtype).max)
    assert psnr(gpu_out, cpu_out, peak) > 60
