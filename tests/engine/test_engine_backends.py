"""Which backend runs the network, and the one-line errors when the one asked for cannot."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ldl_video import Upscaler, load_model
from ldl_video.backends import resolve_backend
from ldl_video.cli import main
from ldl_video.errors import LdlError

REFERENCE = Path(__file__).parents[1] / "reference" / "data"
CPU, CUDA = torch.device("cpu"), torch.device("cuda")
HAS_TRT = importlib.util.find_spec("tensorrt") is not None


def test_auto_is_torch_on_the_cpu() -> None:
    assert resolve_backend("auto", CPU) == "torch"
    assert Upscaler(load_model("bicubic"), device="cpu").backend.name == "torch"


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed here")
def test_auto_is_torch_on_a_gpu_without_tensorrt() -> None:
    assert resolve_backend("auto", CUDA, torch.float16) == "torch"


def test_auto_never_picks_tensorrt_for_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    import ldl_video.backends as backends

    monkeypatch.setattr(backends, "tensorrt_installed", lambda: True)
    assert resolve_backend("auto", CUDA, torch.float16) == "tensorrt"
    assert resolve_backend("auto", CUDA, torch.bfloat16) == "torch"
    assert resolve_backend("auto", CPU, torch.float32) == "torch"


@pytest.mark.parametrize(("spec", "device", "dtype", "message"), [
    ("tensorrt", CPU, torch.float32, "needs an NVIDIA GPU"),
    ("openvino", CPU, torch.float32, "use backend torch"),
    ("onnx", CPU, torch.float32, "unknown backend"),
])
def test_unusable_backends_say_what_to_use(spec: str, device: torch.device, dtype: torch.dtype, message: str) -> None:
    with pytest.raises(LdlError, match=message) as error:
        resolve_backend(spec, device, dtype)
    assert "\n" not in str(error.value)


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed here")
def test_tensorrt_missing_names_the_extra() -> None:
    with pytest.raises(LdlError, match=r"ldl-video\[tensorrt\]"):
        resolve_backend("tensorrt", CUDA, torch.float16)


def test_tensorrt_refuses_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    import ldl_video.backends as backends

    monkeypatch.setattr(backends, "tensorrt_installed", lambda: True)
    with pytest.raises(LdlError, match="fp16 or fp32"):
        resolve_backend("tensorrt", CUDA, torch.bfloat16)


def test_upscaler_with_tensorrt_on_the_cpu_is_refused() -> None:
    with pytest.raises(LdlError, match="backend tensorrt needs an NVIDIA GPU"):
        Upscaler(load_model("realesr-animevideov3-x4"), device="cpu", backend="tensorrt")


def test_torch_backend_is_the_default_result(tmp_path: Path) -> None:
    image = np.asarray(Image.open(REFERENCE / "input-64.png").convert("RGB"))
    default = Upscaler(load_model("realesr-animevideov3-x4"), device="cpu", precision="fp32").upscale(image)
    torch_ = Upscaler(load_model("realesr-animevideov3-x4"), device="cpu", precision="fp32", backend="torch").upscale(image)
    np.testing.assert_array_equal(default, torch_)


@pytest.mark.parametrize(("backend", "message"), [("tensorrt", "needs an NVIDIA GPU"), ("openvino", "use backend torch")])
def test_cli_backend_errors_are_one_line_and_write_nothing(backend: str, message: str, tmp_path: Path, capsys) -> None:
    target = tmp_path / "out.png"
    code = main([str(REFERENCE / "input-64.png"), str(target), "-m", "realesr-animevideov3-x4", "--device", "cpu",
                 "--backend", backend])
    err = capsys.readouterr().err
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_video_takes_the_backend_too(tmp_path: Path, capsys) -> None:
    """--backend reaches the video pipeline's upscalers: TensorRT on the CPU is refused before
    any frame, as for images."""
    sample = Path(__file__).resolve().parents[2] / "ldl_video" / "data" / "sample.mp4"
    target = tmp_path / "out.mkv"
    code = main([str(sample), str(target), "-m", "realesr-animevideov3-x2", "--device", "cpu", "--backend", "tensorrt",
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "needs an NVIDIA GPU" in err and len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []
