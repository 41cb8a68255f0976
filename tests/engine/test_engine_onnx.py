"""ldl-video export: the ONNX file runs in onnxruntime (another implementation of every layer)
with dynamic batch, height and width, and gives what the PyTorch network gives on a photograph;
its interface (names, types, metadata) is the one vs-mlrt and chaiNNer users expect."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import skimage.data
import torch

from ldl_video import load_model
from ldl_video.archs.msrresnet import MSRResNet
from ldl_video.archs.rrdbnet import RRDBNet
from ldl_video.checkpoints import save_checkpoint
from ldl_video.cli import main


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(1 / max(mse, 1e-20))


def _photo(n: int, h: int, w: int) -> np.ndarray:
    """n crops of a photograph, N×3×H×W float32 in [0, 1]."""
    image = skimage.data.chelsea()
    crops = [image[20 * i : 20 * i + h, 30 * i : 30 * i + w] for i in range(n)]
    return np.stack(crops).transpose(0, 3, 1, 2).astype(np.float32) / 255


def _checkpoint(net: torch.nn.Module, path: Path) -> str:
    torch.manual_seed(0)
    for p in net.parameters():  # small random weights, as a short training run leaves them
        torch.nn.init.normal_(p, std=0.05)
    save_checkpoint(net, path)
    return str(path)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, tuple[str, int, int]]:
    """name -> (model name or checkpoint path, scale, size multiple)."""
    folder = tmp_path_factory.mktemp("checkpoints")
    return {
        "rrdbnet-x4": ("realesrgan-x4plus-anime", 4, 1),
        "rrdbnet-x2-unshuffle": (_checkpoint(RRDBNet(scale=2, num_feat=16, num_block=1, num_grow_ch=8), folder / "x2.pth"), 2, 2),
        "srvgg-x4": ("realesr-animevideov3-x4", 4, 1),
        "srvgg-x2-shrink": ("realesr-animevideov3-x2", 2, 1),
        "msrresnet-x4": (_checkpoint(MSRResNet(num_feat=16, num_block=2, upscale=4), folder / "srresnet.pth"), 4, 1),
    }


def _export(tmp_path: Path, model: str, capsys, *extra: str) -> tuple[int, str, Path]:
    out = tmp_path / "model.onnx"
    code = main(["export", model, str(out), *extra])
    return code, capsys.readouterr().err, out


@pytest.mark.parametrize("key", ["rrdbnet-x4", "rrdbnet-x2-unshuffle", "srvgg-x4", "srvgg-x2-shrink", "msrresnet-x4"])
def test_export_runs_in_onnxruntime_like_pytorch(key: str, models, tmp_path: Path, capsys) -> None:
    name, scale, multiple = models[key]
    code, err, out = _export(tmp_path, name, capsys)
    assert code == 0, err
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["scale"] == str(scale) and meta["size_multiple"] == str(multiple)
    (inp,), (_,) = proto.graph.input, proto.graph.output
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    dims = inp.type.tensor_type.shape.dim
    assert dims[1].dim_value == 3 and all(d.dim_param for d in (dims[0], dims[2], dims[3]))  # N, H, W dynamic

    # A batch of 3 at a size the exporter never saw, on a photograph.
    x = _photo(3, 12 * multiple, 20 * multiple)
    (got,) = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {inp.name: x})
    with torch.inference_mode():
        expected = load_model(name).net.float().eval()(torch.from_numpy(x)).clamp(0, 1).numpy()
    assert got.shape == (3, 3, 12 * multiple * scale, 20 * multiple * scale)
    assert _psnr(got, expected) >= 60
    assert got.min() >= 0 and got.max() <= 1


def test_fp16_export_takes_and_gives_float16(models, tmp_path: Path, capsys) -> None:
    code, err, out = _export(tmp_path, "realesr-animevideov3-x4", capsys, "--fp16", "--opset", "18")
    assert code == 0, err
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].type == "tensor(float16)"
    x = _photo(1, 24, 32)
    (got,) = session.run(None, {"input": x.astype(np.float16)})
    assert got.dtype == np.float16
    with torch.inference_mode():
        expected = load_model("realesr-animevideov3-x4").net.eval()(torch.from_numpy(x)).clamp(0, 1).numpy()
    assert _psnr(got.astype(np.float32), expected) >= 40
    assert onnx.load(str(out)).opset_import[0].version == 18


def test_swinir_exports_or_says_why(tmp_path: Path, capsys) -> None:
    from spandrel.architectures.SwinIR import SwinIR

    net = SwinIR(upscale=2, img_size=16, embed_dim=12, depths=[1], num_heads=[2], window_size=4, mlp_ratio=2.0,
                 upsampler="pixelshuffle", resi_connection="1conv")
    path = Path(_checkpoint(net, tmp_path / "swinir.pth"))
    code, err, out = _export(tmp_path, str(path), capsys)
    if code == 0:
        model = load_model(str(path))
        x = _photo(1, 8 * model.size_multiple, 12 * model.size_multiple)
        (got,) = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"input": x})
        with torch.inference_mode():
            expected = model.net.eval()(torch.from_numpy(x)).clamp(0, 1).numpy()
        assert _psnr(got, expected) >= 60
    else:
        assert len(err.strip().splitlines()) == 1 and "SwinIR" in err and "Traceback" not in err
        assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bicubic", "{out}"], "classical resampling"),
        (["realesr-animevideov3-x4", "{tmp}/model.pt"], ".onnx suffix"),
        (["realesr-animevideov3-x4", "{out}", "--opset", "5"], "opset 5"),
        (["no-such-model", "{out}"], "unknown model"),
    ],
)
def test_export_errors_are_one_line_and_write_nothing(argv: list[str], message: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "model.onnx"
    code = main(["export", *(a.format(out=out, tmp=tmp_path) for a in argv)])
    err = capsys.readouterr().err
    assert code != 0 and message in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_existing_file_is_kept_without_overwrite(tmp_path: Path, capsys) -> None:
    out = tmp_path / "model.onnx"
    out.write_bytes(b"mine")
    assert main(["export", "realesr-animevideov3-x4", str(out)]) != 0
    assert "--overwrite" in capsys.readouterr().err and out.read_bytes() == b"mine"


def test_a_graph_that_disagrees_with_pytorch_is_not_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """The check before writing: a graph made from slightly different weights is refused."""
    import copy

    from ldl_video.backends import onnx_export

    real = onnx_export.onnx_bytes

    def off_by_a_little(model, fp16=False, opset=17):
        wrong = copy.deepcopy(model)
        with torch.no_grad():
            wrong.net.body[0].bias.add_(0.05)
        return real(wrong, fp16, opset)

    monkeypatch.setattr(onnx_export, "onnx_bytes", off_by_a_little)
    out = tmp_path / "model.onnx"
    assert main(["export", "realesr-animevideov3-x4", str(out)]) == 1
    err = capsys.readouterr().err
    assert "differs from PyTorch" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
