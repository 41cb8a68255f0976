"""ldl-compact-x4 (and -x3, -x2): the model trained by the LDL experiment, shipped inside the
package. Checked against spandrel (chaiNNer's loader, its own SRVGGNetCompact) reading the same file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch

import ldl_video
from ldl_video.cli import main
from ldl_video.images import read_image, write_image

WEIGHTS = Path(ldl_video.__file__).parent / "weights" / "ldl-compact-x4.safetensors"


def test_the_shipped_file_is_a_small_fp16_compact_network_that_spandrel_reads():
    from safetensors.torch import load_file
    from spandrel import ModelLoader

    assert WEIGHTS.stat().st_size < 2_000_000
    assert {t.dtype for t in load_file(str(WEIGHTS)).values()} == {torch.float16}
    descriptor = ModelLoader().load_from_file(str(WEIGHTS))
    assert descriptor.architecture.name == "RealESRGAN Compact"
    assert descriptor.scale == 4


def test_models_says_here_with_an_empty_model_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LDL_MODEL_DIR", str(tmp_path / "empty"))
    assert main(["models"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.startswith("ldl-compact")}
    assert set(lines) == {"ldl-compact-x2", "ldl-compact-x3", "ldl-compact-x4"}
    assert all(" here " in line and "shipped in the package" in line for line in lines.values())


def _spandrel(lr: np.ndarray, scale: int) -> np.ndarray:
    """spandrel's network on the same file; for ×2 and ×3 the ×4 result shrunk as the ncnn graphs of
    animevideov3-x2/-x3 do (bicubic a = -0.75, no antialiasing: torch's interpolate)."""
    from spandrel import ModelLoader

    net = ModelLoader().load_from_file(str(WEIGHTS)).model.float().eval()
    with torch.no_grad():
        out = net(torch.from_numpy(lr).permute(2, 0, 1)[None].float() / 255)
        if scale != 4:
            size = (lr.shape[0] * scale, lr.shape[1] * scale)
            out = torch.nn.functional.interpolate(out, size=size, mode="bicubic", align_corners=False)
    return out[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255


@pytest.mark.parametrize("scale", [4, 3, 2])
def test_cli_upscales_with_it_from_the_package(scale, tmp_path, monkeypatch):
    monkeypatch.setenv("LDL_MODEL_DIR", str(tmp_path / "empty"))  # nothing converted or cached: the package's file
    lr = np.ascontiguousarray(skimage.data.chelsea()[60:108, 120:180])
    write_image(tmp_path / "in.png", lr)
    assert main([str(tmp_path / "in.png"), str(tmp_path / "out.png"), "-m", f"ldl-compact-x{scale}", "--quiet"]) == 0
    out = read_image(tmp_path / "out.png").astype(np.float64)
    assert out.shape == (48 * scale, 60 * scale, 3)
    difference = np.abs(out - _spandrel(lr, scale))[4:-4, 4:-4]
    assert difference.mean() < 0.6 and difference.max() <= 4
