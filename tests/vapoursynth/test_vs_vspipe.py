"""core.ldl under vspipe, the way users render: a .vpy script with no LoadPlugin, raw and y4m
output, the same pixels as Upscaler, errors on stderr with a non-zero exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

vs = pytest.importorskip("vapoursynth")

from ldl_video import Upscaler, load_model  # noqa: E402

MODEL = "realesr-animevideov3-x2"
BIN = Path(sys.executable).parent

SCRIPT = """
import numpy as np
import vapoursynth as vs
core = vs.core
frames = np.load({frames!r})
blank = core.std.BlankClip(format=vs.RGB24, width=frames.shape[2], height=frames.shape[1], length=len(frames))

def fill(n, f):
    out = f.copy()
    for p in range(3):
        np.asarray(out[p])[...] = frames[n, :, :, p]
    return out

clip = core.std.ModifyFrame(blank, blank, fill)
{body}
clip.set_output()
"""


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, Path]:
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:18, 0:32]
    base = np.stack([x * 8, y * 14, (x + y) * 5], axis=-1)[None]
    array = np.clip(base + rng.integers(0, 40, (3, 18, 32, 3)), 0, 255).astype(np.uint8)
    path = tmp_path_factory.mktemp("frames") / "frames.npy"
    np.save(path, array)
    return array, path


@pytest.fixture(scope="module")
def vspipe_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment in which vspipe finds this Python: `vapoursynth config` into a private
    config folder, as `make setup` does into the user's."""
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path_factory.mktemp("config"))}
    subprocess.run([str(BIN / "vapoursynth"), "config"], env=env, check=True, capture_output=True)
    return env


def vspipe(env: dict[str, str], tmp: Path, frames_path: Path, body: str, *args: str) -> subprocess.CompletedProcess:
    script = tmp / "script.vpy"
    script.write_text(SCRIPT.format(frames=str(frames_path), body=body))
    return subprocess.run([str(BIN / "vspipe"), str(script), *args], env=env, capture_output=True, timeout=300, cwd=tmp)


def gbr_to_rgb_frames(raw: bytes, count: int, height: int, width: int) -> np.ndarray:
    """vspipe writes RGB planes in G, B, R order (FFmpeg's gbrp)."""
    planes = np.frombuffer(raw, np.uint8).reshape(count, 3, height, width)
    return planes[:, [2, 0, 1]].transpose(0, 2, 3, 1)


def test_raw_rgb_output_is_what_upscaler_gives(frames, vspipe_env, tmp_path: Path) -> None:
    array, path = frames
    done = vspipe(vspipe_env, tmp_path, path, f'clip = core.ldl.Upscale(clip, model="{MODEL}")', "-")
    assert done.returncode == 0, done.stderr.decode()
    got = gbr_to_rgb_frames(done.stdout, 3, 36, 64)
    expected = Upscaler(load_model(MODEL), device="cpu").upscale(array)
    mse = np.mean((got.astype(float) - expected.astype(float)) ** 2)
    assert mse == 0 or 10 * np.log10(255**2 / mse) >= 50


def test_y4m_after_conversion_and_the_artifact_map(frames, vspipe_env, tmp_path: Path) -> None:
    array, path = frames
    body = (
        "source = clip\n"
        f'up = core.ldl.Upscale(source, model="{MODEL}", tile=16, overlap=4)\n'
        'clip = core.resize.Bicubic(up, format=vs.YUV444P8, matrix_s="709")\n'
        f'core.ldl.ArtifactMap(source, model="{MODEL}").set_output(1)\n'
    )
    done = vspipe(vspipe_env, tmp_path, path, body, "-c", "y4m", "-")
    assert done.returncode == 0, done.stderr.decode()
    header = done.stdout.split(b"\n", 1)[0].decode()
    assert header.startswith("YUV4MPEG2") and " W64 " in header and " H36 " in header
    assert done.stdout.count(b"FRAME") == len(array)
    weights = vspipe(vspipe_env, tmp_path, path, body, "-o", "1", "-")
    assert weights.returncode == 0, weights.stderr.decode()
    maps = np.frombuffer(weights.stdout, np.float32).reshape(len(array), 36, 64)
    assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() < 1


def test_a_yuv_clip_fails_with_the_fix_on_stderr(frames, vspipe_env, tmp_path: Path) -> None:
    _, path = frames
    body = 'clip = core.ldl.Upscale(core.resize.Bicubic(clip, format=vs.YUV420P8, matrix_s="709"), model="bicubic")'
    done = vspipe(vspipe_env, tmp_path, path, body, "-")
    assert done.returncode != 0
    assert 'core.resize.Bicubic(clip, format=vs.RGB24, matrix_in_s="170m")' in done.stderr.decode()
