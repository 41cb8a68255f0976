"""ONNX export in the interface the field uses (vs-mlrt, chaiNNer, onnxruntime users): one input
`input`, N×3×H×W RGB in [0, 1], float32 (float16 with fp16); one output `output`, the same at the
model's scale. Batch, height and width are dynamic; pixel-unshuffle is part of the graph; what H
and W must be divisible by is stated in the file's metadata (`size_multiple`, `padding`).

The file is checked against PyTorch on a real picture (the bundled sample clip's first frame)
with onnxruntime before it gets its name.
"""

from __future__ import annotations

import copy
import io
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import LdlError
from ..files import atomic_output
from ..model import SRModel
from ..resample import Downscaled

EXPORT_EXTRA = "pip install 'ldl-video[export]'"
DEFAULT_OPSET = 17
# Agreement with PyTorch fp32 that a written file must reach on the check picture.
MIN_PSNR = {False: 60.0, True: 40.0}


class _Exported(nn.Module):
    """The network with its output clamped to [0, 1], as the Upscaler hands results on. A
    shrink after the network (animevideov3 ×2, ×3) becomes a scale factor: the ×4 output's
    size times 0.5 or 0.75 is whole, and a size computed from the input would be traced as a
    constant."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.shrink = net.factor if isinstance(net, Downscaled) else 1.0
        self.net = net.net if isinstance(net, Downscaled) else net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        if self.shrink != 1.0:
            out = nn.functional.interpolate(out, scale_factor=self.shrink, mode="bicubic", align_corners=False)
        return out.clamp(0, 1)


def _require(module: str):
    try:
        return __import__(module)
    except ImportError:
        raise LdlError(f"ONNX export needs the {module} package: {EXPORT_EXTRA}") from None


def check_picture(multiple: int) -> np.ndarray:
    """1×3×H×W float32 in [0, 1]: a crop of the first frame of the bundled sample clip, its
    height and width odd multiples of `multiple` (so the dynamic axes are exercised)."""
    import av

    sample = Path(__file__).resolve().parents[1] / "data" / "sample.mp4"
    with av.open(str(sample)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    h, w = 40 * multiple, 56 * multiple
    top, left = (frame.shape[0] - h) // 2, (frame.shape[1] - w) // 2
    crop = frame[max(top, 0) : max(top, 0) + h, max(left, 0) : max(left, 0) + w]
    crop = crop[: crop.shape[0] // multiple * multiple, : crop.shape[1] // multiple * multiple]
    return np.ascontiguousarray(crop.transpose(2, 0, 1)[None], dtype=np.float32) / 255


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(1 / mse) if mse else float("inf")


def onnx_bytes(model: SRModel, fp16: bool = False, opset: int = DEFAULT_OPSET) -> bytes:
    """The model as an ONNX file's bytes, with its metadata."""
    onnx = _require("onnx")
    if not model.weights:
        raise LdlError(f"{model.name} is classical resampling, not a network; export a model with weights")
    dtype = torch.float16 if fp16 else torch.float32
    net = _Exported(copy.deepcopy(model.net)).to("cpu", dtype).eval()  # the caller's model keeps its device and precision
    multiple = max(1, model.size_multiple)
    example = torch.rand(1, 3, 8 * multiple, 8 * multiple, dtype=dtype)
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter advises on its successor: not the user's business
            torch.onnx.export(net, (example,), buffer, input_names=["input"], output_names=["output"], opset_version=opset,
                              dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"},
                                            "output": {0: "batch", 2: "height_out", 3: "width_out"}},
                              dynamo=False)
    except Exception as exc:  # the exporter's own errors are long and many kinds
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LdlError(f"{model.name} ({model.arch}) does not export to ONNX opset {opset}: {first[:200]}") from None
    proto = onnx.load_from_string(buffer.getvalue())
    metadata = {
        "name": model.name,
        "architecture": model.arch,
        "scale": str(model.scale),
        "size_multiple": str(multiple),
        "padding": (f"pad H and W up to a multiple of {multiple} (reflect) and crop the output to H·{model.scale}×W·{model.scale}"
                    if multiple > 1 else "none"),
        "input": f"N×3×H×W RGB in [0, 1], {'float16' if fp16 else 'float32'}",
        "output": f"N×3×(H·{model.scale})×(W·{model.scale}) RGB in [0, 1]",
        "source": model.source or model.name,
        "producer": "ldl-video export",
    }
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


def check_onnx(data: bytes, model: SRModel, fp16: bool) -> float:
    """PSNR of onnxruntime's result against PyTorch fp32 on the check picture (batch of 2)."""
    ort = _require("onnxruntime")
    picture = check_picture(max(1, model.size_multiple))
    batch = np.concatenate([picture, picture[:, :, ::-1].copy()])  # two different pictures, one call
    with torch.inference_mode():
        net = copy.deepcopy(model.net).to("cpu", torch.float32).eval()
        expected = net(torch.from_numpy(batch)).clamp(0, 1).numpy()
    try:
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        (got,) = session.run(None, {"input": batch.astype(np.float16 if fp16 else np.float32)})
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LdlError(f"onnxruntime cannot run the exported {model.name}: {first[:200]}; nothing written") from None
    if got.shape != expected.shape:
        raise LdlError(f"the exported {model.name} gives shape {got.shape}, PyTorch {expected.shape}; nothing written")
    return _psnr(got.astype(np.float32), expected)


def export_onnx(model: SRModel, path: str | Path, fp16: bool = False, opset: int = DEFAULT_OPSET) -> float:
    """Write `model` as ONNX to `path` once it agrees with PyTorch; returns that agreement (dB)."""
    path = Path(path)
    if path.suffix.lower() != ".onnx":
        raise LdlError(f"the export is an ONNX file: give OUT a .onnx suffix, not {path.suffix or 'none'!r}")
    if not 11 <= opset <= 23:
        raise LdlError(f"opset {opset} is out of range; use 11 or newer (default {DEFAULT_OPSET})")
    data = onnx_bytes(model, fp16, opset)
    agreement = check_onnx(data, model, fp16)
    if agreement < MIN_PSNR[fp16]:
        raise LdlError(f"the exported {model.name} differs from PyTorch ({agreement:.1f} dB < {MIN_PSNR[fp16]:.0f}); "
                       "nothing written")
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
    return agreement
