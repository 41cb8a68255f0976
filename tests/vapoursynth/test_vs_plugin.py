"""core.ldl in a Python session: there without LoadPlugin, the same pixels as Upscaler, every
format, frame properties kept, bad formats and arguments refused with the fix, frames requested
in parallel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

vs = pytest.importorskip("vapoursynth")

from ldl_video import Upscaler, load_model  # noqa: E402
from ldl_video.artifacts import blind_artifact_map, to_display  # noqa: E402

MODEL = "realesr-animevideov3-x2"
H, W = 16, 24

# format -> (dtype of a plane, number of planes, full-scale value)
FORMATS = {
    "RGB24": (np.uint8, 3, 255), "RGB48": (np.uint16, 3, 65535), "RGBH": (np.float16, 3, 1.0), "RGBS": (np.float32, 3, 1.0),
    "GRAY8": (np.uint8, 1, 255), "GRAY16": (np.uint16, 1, 65535), "GRAYH": (np.float16, 1, 1.0), "GRAYS": (np.float32, 1, 1.0),
}


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(peak**2 / mse))


def frames_of(format_name: str, count: int = 3, seed: int = 0) -> np.ndarray:
    """count×H×W×C test frames: smooth gradients with some texture, in the format's dtype."""
    dtype, planes, top = FORMATS[format_name]
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:H, 0:W] / max(H, W)
    base = np.stack([(x + y) / 2, x, y][:planes], axis=-1)[None]
    values = np.clip(0.7 * base + 0.3 * rng.random((count, H, W, planes)), 0, 1)
    return (values * top).round().astype(dtype) if top != 1.0 else values.astype(dtype)


def clip_of(frames: np.ndarray, format_name: str):
    """A clip whose frame n holds frames[n]."""
    blank = vs.core.std.BlankClip(format=getattr(vs, format_name), width=frames.shape[2], height=frames.shape[1],
                                  length=len(frames))

    def fill(n: int, f):
        out = f.copy()
        for p in range(out.format.num_planes):
            np.asarray(out[p])[...] = frames[n, :, :, p]
        return out

    return vs.core.std.ModifyFrame(blank, blank, fill)


def array_of(frame) -> np.ndarray:
    return np.stack([np.asarray(frame[p]) for p in range(frame.format.num_planes)], axis=-1)


@pytest.fixture(scope="module")
def upscaler() -> Upscaler:
    return Upscaler(load_model(MODEL), device="cpu")


def test_namespace_is_there_without_loadplugin() -> None:
    assert hasattr(vs.core, "ldl"), "the ldl plugin is not installed: run `make setup` or `pip install .`"
    assert {f.name for f in vs.core.ldl.functions()} >= {"Upscale", "ArtifactMap"}
    assert (Path(vs.get_plugin_dir()) / "libvs_ldl.so").is_file()  # autoloaded from there


def test_signature_has_the_contract_parameters() -> None:
    signature = vs.core.ldl.Upscale.signature
    for parameter in ("clip:vnode", "scale:float:opt", "model:data:opt", "tile:int:opt", "overlap:int:opt",
                      "device:data:opt", "precision:data:opt"):
        assert parameter in signature


@pytest.mark.parametrize("format_name", list(FORMATS))
def test_every_format_gives_what_upscaler_gives(format_name: str, upscaler: Upscaler) -> None:
    frames = frames_of(format_name)
    clip = vs.core.ldl.Upscale(clip_of(frames, format_name), model=MODEL)
    assert clip.format.id == getattr(vs, format_name).value
    assert (clip.width, clip.height, clip.num_frames) == (2 * W, 2 * H, len(frames))
    top = FORMATS[format_name][2]
    for n in range(len(frames)):
        got = array_of(clip.get_frame(n))
        expected = upscaler.upscale(frames[n] if frames.shape[-1] == 3 else frames[n, :, :, 0])
        assert psnr(got, expected.reshape(got.shape), top) >= 50


def test_defaults_to_the_model_scale_and_takes_other_scales(upscaler: Upscaler) -> None:
    frames = frames_of("RGB24", count=1)
    source = clip_of(frames, "RGB24")
    assert vs.core.ldl.Upscale(source, model=MODEL).width == 2 * W
    three = vs.core.ldl.Upscale(source, model=MODEL, scale=3)
    assert (three.width, three.height) == (3 * W, 3 * H)
    expected = Upscaler(upscaler.model, scale=3, device="cpu").upscale(frames[0])
    assert psnr(array_of(three.get_frame(0)), expected, 255) >= 50
    bicubic = vs.core.ldl.Upscale(source, model="bicubic")
    assert (bicubic.width, bicubic.height) == (4 * W, 4 * H)


def test_tiles_are_passed_to_the_engine(upscaler: Upscaler) -> None:
    frames = frames_of("RGBS", count=1)
    clip = vs.core.ldl.Upscale(clip_of(frames, "RGBS"), model=MODEL, tile=8, overlap=4)
    expected = Upscaler(upscaler.model, device="cpu", tile=8, tile_overlap=4).upscale(frames[0])
    assert psnr(array_of(clip.get_frame(0)), expected, 1.0) >= 50


def test_frame_properties_are_kept() -> None:
    source = vs.core.std.SetFrameProps(clip_of(frames_of("RGB24", count=2), "RGB24"), _SARNum=4, _SARDen=3, _Matrix=0,
                                       _Primaries=1, _Transfer=1, _FieldBased=0, SceneName="opening", Weights=[1.5, 2.5])
    upscaled, weights = vs.core.ldl.Upscale(source, model=MODEL), vs.core.ldl.ArtifactMap(source, model=MODEL)
    for clip in (upscaled, weights):
        assert (clip.fps, clip.num_frames) == (source.fps, source.num_frames)
    for n in range(2):
        props = dict(source.get_frame(n).props)
        assert dict(upscaled.get_frame(n).props) == props
        props.pop("_Matrix")  # RGB coefficients on a GRAY map would make core.resize refuse it
        assert dict(weights.get_frame(n).props) == props
    assert vs.core.resize.Bicubic(weights, format=vs.GRAY8).get_frame(0).format.name == "Gray8"


def test_artifact_map_is_grays_aligned_with_upscale(upscaler: Upscaler) -> None:
    frames = frames_of("RGB24", count=1)
    source = clip_of(frames, "RGB24")
    upscaled = vs.core.ldl.Upscale(source, model=MODEL)
    # fp32: bf16 (auto on CPUs that have it) sums in a thread-dependent order, which the map's variances magnify
    weights = vs.core.ldl.ArtifactMap(source, model=MODEL, precision="fp32")
    assert weights.format.id == vs.GRAYS.value
    assert (weights.width, weights.height, weights.num_frames) == (upscaled.width, upscaled.height, upscaled.num_frames)
    raw_map = blind_artifact_map(Upscaler(load_model(MODEL), device="cpu", precision="fp32"), Upscaler.to_tensor(frames[:1]))
    got = np.asarray(weights.get_frame(0)[0])
    assert np.allclose(got, to_display(raw_map)[0, 0].numpy(), atol=1e-5)
    assert got.min() >= 0 and got.max() < 1
    raw = np.asarray(vs.core.ldl.ArtifactMap(source, model=MODEL, raw=1, precision="fp32").get_frame(0)[0])
    assert np.allclose(raw, raw_map[0, 0].numpy(), rtol=1e-4, atol=1e-7)


def test_gray_artifact_map() -> None:
    weights = vs.core.ldl.ArtifactMap(clip_of(frames_of("GRAY16", count=1), "GRAY16"), model="bicubic", scale=2)
    assert (weights.format.name, weights.width, weights.height) == ("GrayS", 2 * W, 2 * H)
    assert np.isfinite(np.asarray(weights.get_frame(0)[0])).all()


@pytest.mark.parametrize(("format_name", "fix"), [
    ("YUV420P8", 'core.resize.Bicubic(clip, format=vs.RGB24, matrix_in_s="170m")'),
    ("YUV422P10", 'core.resize.Bicubic(clip, format=vs.RGB48, matrix_in_s="170m")'),
    ("YUV444PS", 'core.resize.Bicubic(clip, format=vs.RGBS, matrix_in_s="170m")'),
    ("RGB30", "core.resize.Point(clip, format=vs.RGB48)"),
    ("GRAY10", "core.resize.Point(clip, format=vs.GRAY16)"),
    ("GRAY32", "core.resize.Point(clip, format=vs.GRAYS)"),
])
@pytest.mark.parametrize("function", ["Upscale", "ArtifactMap"])
def test_other_formats_are_refused_with_the_conversion(function: str, format_name: str, fix: str) -> None:
    clip = vs.core.std.BlankClip(format=getattr(vs, format_name), width=64, height=48, length=1)
    with pytest.raises(vs.Error) as error:
        getattr(vs.core.ldl, function)(clip, model="bicubic")
    assert str(error.value).lower().startswith(f"{function}: {format_name}".lower())
    assert fix in str(error.value)


def test_hd_yuv_gets_the_709_matrix() -> None:
    clip = vs.core.std.BlankClip(format=vs.YUV420P8, width=1920, height=1080, length=1)
    with pytest.raises(vs.Error, match='matrix_in_s="709"'):
        vs.core.ldl.Upscale(clip, model="bicubic")


def test_variable_format_is_refused() -> None:
    mixed = vs.core.std.Splice([vs.core.std.BlankClip(format=vs.RGB24, length=1),
                                vs.core.std.BlankClip(format=vs.RGBS, width=32, length=1)], mismatch=True)
    with pytest.raises(vs.Error, match="no fixed format or frame size"):
        vs.core.ldl.Upscale(mixed, model="bicubic")


@pytest.mark.parametrize(("arguments", "named"), [
    ({"scale": 0}, "scale=0"),
    ({"scale": -2.0}, "scale=-2"),
    ({"scale": 100}, "scale=100"),
    ({"tile": -1}, "tile=-1"),
    ({"overlap": -5}, "overlap=-5"),
    ({"model": "no-such-model"}, "model="),
    ({"model": ""}, 'model=""'),
    ({"model": "/nowhere/net_g.pth"}, "model="),
    ({"device": "gpu"}, 'device="gpu"'),
    ({"precision": "fp8"}, 'precision="fp8"'),
    ({"device": "cpu", "precision": "fp16"}, 'precision="fp16" needs a CUDA device'),
])
def test_bad_arguments_are_refused_by_name(arguments: dict, named: str) -> None:
    clip = vs.core.std.BlankClip(format=vs.RGB24, width=32, height=24, length=1)
    arguments = {"model": "bicubic", **arguments}
    with pytest.raises(vs.Error) as error:
        vs.core.ldl.Upscale(clip, **arguments)
    message = str(error.value)
    assert message.startswith("Upscale: ") and named in message and "\n" not in message


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize(("arguments", "named"), [
    ({"device": "cuda"}, 'device="cuda"'), ({"device": "cuda:3"}, 'device="cuda:3"'), ({"precision": "fp16"}, 'precision="fp16"'),
])
def test_cuda_choices_on_a_cpu_machine_say_what_to_use(arguments: dict, named: str) -> None:
    clip = vs.core.std.BlankClip(format=vs.RGB24, width=32, height=24, length=1)
    with pytest.raises(vs.Error, match=named) as error:
        vs.core.ldl.Upscale(clip, model="bicubic", **arguments)
    assert '"cpu"' in str(error.value) or '"fp32"' in str(error.value)


def test_parallel_requests_finish_and_agree() -> None:
    """Many frames at once through two ldl filters and a Python source filter, all taking the GIL."""
    frames = frames_of("RGB24", count=8, seed=3)
    source = clip_of(frames, "RGB24")
    chain = vs.core.ldl.ArtifactMap(vs.core.ldl.Upscale(source, model=MODEL), model="bicubic", scale=2)
    threads = vs.core.num_threads
    vs.core.num_threads = max(4, threads)
    try:
        pending = [chain.get_frame_async(n) for n in range(len(frames))]
        parallel = [np.asarray(f.result(timeout=120)[0]).copy() for f in pending]
    finally:
        vs.core.num_threads = threads
    again = vs.core.ldl.ArtifactMap(vs.core.ldl.Upscale(source, model=MODEL), model="bicubic", scale=2)
    for n in (0, 7):
        assert np.array_equal(parallel[n], np.asarray(again.get_frame(n)[0]))


def test_model_is_loaded_once_per_filter(monkeypatch: pytest.MonkeyPatch) -> None:
    import ldl_video.zoo

    calls = []
    real = ldl_video.zoo.load_model
    monkeypatch.setattr(ldl_video.zoo, "load_model", lambda *a, **k: calls.append(a) or real(*a, **k))
    clip = vs.core.ldl.Upscale(clip_of(frames_of("RGB24", count=4), "RGB24"), model=MODEL)
    for n in range(4):
        clip.get_frame(n)
    assert len(calls) == 1


def test_a_failing_frame_is_a_vapoursynth_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import vs_ldl.filters

    def broken(self, frame):
        raise RuntimeError("out of memory, say")

    monkeypatch.setattr(vs_ldl.filters.Upscale, "compute", broken)
    clip = vs.core.ldl.Upscale(vs.core.std.BlankClip(format=vs.RGB24, width=8, height=8, length=1), model="bicubic")
    with pytest.raises(vs.Error, match="Upscale: frame 0: RuntimeError: out of memory, say"):
        clip.get_frame(0)
