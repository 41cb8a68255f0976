"""The TensorRT backend on an NVIDIA GPU (skipped without one or without TensorRT): the engine's
result against PyTorch fp32, its cache in the model folder, batches and tiles unchanged."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ldl_video import Upscaler, load_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available() or importlib.util.find_spec("tensorrt") is None,
                                reason="needs an NVIDIA GPU and TensorRT (pip install 'ldl-video[tensorrt]')")
REFERENCE = Path(__file__).parents[1] / "reference" / "data"


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


@pytest.fixture
def image() -> np.ndarray:
    return np.asarray(Image.open(REFERENCE / "input-64.png").convert("RGB"))


@pytest.mark.parametrize("precision", ["fp16", "fp32"])
def test_engine_matches_pytorch_fp32_and_is_cached(precision: str, image: np.ndarray, capsys) -> None:
    reference = Upscaler(load_model("realesr-animevideov3-x4"), device="cpu", precision="fp32").upscale(image)
    up = Upscaler(load_model("realesr-animevideov3-x4"), device="cuda", precision=precision, backend="tensorrt")
    assert up.backend.name == "tensorrt"
    out = up.upscale(image)
    assert _psnr(out, reference) >= (45 if precision == "fp16" else 60)
    assert "building a TensorRT engine" in capsys.readouterr().err
    engines = list((Path(os.environ["LDL_MODEL_DIR"]) / "tensorrt").glob("*.engine"))
    assert any(precision in e.name and torch.cuda.get_device_name().replace(" ", "-") in e.name for e in engines)
    again = Upscaler(load_model("realesr-animevideov3-x4"), device="cuda", precision=precision, backend="tensorrt")
    np.testing.assert_array_equal(again.upscale(image), out)
    assert "building" not in capsys.readouterr().err  # from the cache


def test_auto_picks_tensorrt_on_an_nvidia_gpu() -> None:
    assert Upscaler(load_model("realesr-animevideov3-x4"), device="cuda").backend.name == "tensorrt"


def test_tiles_batches_alpha_and_gray_as_with_torch(image: np.ndarray) -> None:
    rgba = np.dstack([image, np.full(image.shape[:2], 200, np.uint8)])
    frames = np.stack([rgba, rgba[::-1].copy(), rgba[:, ::-1].copy()])
    kwargs = {"device": "cuda", "precision": "fp32", "tile": 24, "tile_overlap": 8, "batch_size": 2}
    trt = Upscaler(load_model("realesr-animevideov3-x2"), backend="tensorrt", **kwargs).upscale(frames)
    eager = Upscaler(load_model("realesr-animevideov3-x2"), backend="torch", **kwargs).upscale(frames)
    assert trt.shape == eager.shape == (3, 128, 128, 4)
    assert _psnr(trt, eager) >= 55
    gray = Upscaler(load_model("realesr-animevideov3-x4"), device="cuda", backend="tensorrt").upscale(image[..., 0])
    assert gray.shape == (256, 256)
