"""backend= in core.ldl.Upscale/ArtifactMap, and the README's VapourSynth script run as written
(core.bs.VideoSource from the PyPI package vapoursynth-bestsource)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

vs = pytest.importorskip("vapoursynth")

README = Path(__file__).parents[2] / "README.md"
BIN = Path(sys.executable).parent


def _clip(width: int = 32, height: int = 24):
    gradient = vs.core.std.BlankClip(format=vs.RGB24, width=width, height=height, length=1, color=[40, 120, 200])
    return vs.core.std.AddBorders(vs.core.std.Crop(gradient, left=8), left=8, color=[250, 10, 10])


@pytest.mark.parametrize("function", ["Upscale", "ArtifactMap"])
def test_signature_has_backend(function: str) -> None:
    assert "backend:data:opt" in getattr(vs.core.ldl, function).signature


def test_torch_backend_gives_the_default_result_on_the_cpu() -> None:
    """On a CPU machine auto is torch: the two clips are the same pixels."""
    clip = _clip()
    default = vs.core.ldl.Upscale(clip, model="realesr-animevideov3-x2", device="cpu")
    torch_ = vs.core.ldl.Upscale(clip, model="realesr-animevideov3-x2", device="cpu", backend="torch")
    a, b = default.get_frame(0), torch_.get_frame(0)
    assert (b.width, b.height) == (64, 48)
    for plane in range(3):
        np.testing.assert_array_equal(np.asarray(a[plane]), np.asarray(b[plane]))


@pytest.mark.parametrize(("backend", "device", "named"), [
    ("onnx", "cpu", 'backend="onnx" is unknown'),
    ("openvino", "cpu", "use backend torch"),
    ("tensorrt", "cpu", "needs an NVIDIA GPU"),
])
@pytest.mark.parametrize("function", ["Upscale", "ArtifactMap"])
def test_unusable_backends_are_refused_by_name(function: str, backend: str, device: str, named: str) -> None:
    with pytest.raises(vs.Error) as error:
        getattr(vs.core.ldl, function)(_clip(), model="realesr-animevideov3-x2", device=device, backend=backend)
    message = str(error.value)
    assert message.startswith(f"{function}: ") and named in message and "\n" not in message
    assert f'backend="{backend}"' in message


def _readme_script() -> str:
    blocks = re.findall(r"```python\n(# upscale\.vpy\n.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) == 1, "README.md should hold one ```python block starting with '# upscale.vpy'"
    return blocks[0]


def _make_input(path: Path, frames: int = 3) -> None:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
        for i in range(frames):
            picture = np.zeros((32, 48, 3), np.uint8)
            picture[:, : 16 + 8 * i] = (200, 60, 30)
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def test_readme_vapoursynth_script_runs_as_written(tmp_path: Path) -> None:
    if not hasattr(vs.core, "bs"):
        pytest.fail("core.bs is missing: pip install vapoursynth-bestsource (the test extra has it)")
    (tmp_path / "upscale.vpy").write_text(_readme_script())
    _make_input(tmp_path / "input.mkv")
    subprocess.run([str(BIN / "vapoursynth"), "config"], check=True, capture_output=True)
    y4m = subprocess.run([str(BIN / "vspipe"), "upscale.vpy", "-c", "y4m", "-"], cwd=tmp_path, capture_output=True, timeout=600)
    assert y4m.returncode == 0, y4m.stderr.decode()[-500:]
    header = y4m.stdout.split(b"\n", 1)[0].decode()
    assert header.startswith("YUV4MPEG2") and " W96 " in header and " H64 " in header and "C420p10" in header
    assert y4m.stdout.count(b"FRAME") == 3
    raw = subprocess.run([str(BIN / "vspipe"), "upscale.vpy", "-o", "1", "weights.raw"], cwd=tmp_path, capture_output=True,
                         timeout=600)
    assert raw.returncode == 0, raw.stderr.decode()[-500:]
    weights = np.fromfile(tmp_path / "weights.raw", dtype=np.float32)
    assert weights.size == 3 * 96 * 64 and np.isfinite(weights).all() and weights.min() >= 0
