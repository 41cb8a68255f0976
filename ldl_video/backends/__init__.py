"""How a network runs: the Upscaler hands a backend padded N×3×H×W batches on its device and
gets the network's output back. Backends know nothing about tiles, frames, alpha or gray.

- torch: eager PyTorch (channels-last; bf16 on CPUs that have it, through autocast).
- tensorrt: an engine built once per model, shape range, precision, GPU and TensorRT version
  and cached in the model folder (the optional extra `ldl-video[tensorrt]`).
- openvino: not offered (measured at 1.1-1.2× eager PyTorch on the CPU, less than bf16 gives).
"""

from __future__ import annotations

import importlib.util
from typing import Protocol

import torch

from ..errors import LdlError
from ..model import SRModel

BACKENDS = ("auto", "torch", "tensorrt", "openvino")
TENSORRT_EXTRA = "pip install 'ldl-video[tensorrt]'"


class Backend(Protocol):
    name: str
    input_dtype: torch.dtype  # what the Upscaler casts batches to before calling

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Padded N×3×H×W on the backend's device -> the network's output, float32."""
        ...


def tensorrt_installed() -> bool:
    return importlib.util.find_spec("tensorrt") is not None


def _nvidia(device: torch.device) -> bool:
    return device.type == "cuda" and torch.version.cuda is not None and getattr(torch.version, "hip", None) is None


def resolve_backend(spec: str | None, device: torch.device, dtype: torch.dtype | None = None) -> str:
    """The backend name for a request: auto is TensorRT on an NVIDIA GPU when it is installed
    (and the precision is one it builds: fp16 or fp32), else torch."""
    text = str(spec or "auto").strip().lower()
    if text not in BACKENDS:
        raise LdlError(f"unknown backend {spec!r}; use auto, torch or tensorrt")
    if text == "openvino":
        raise LdlError("backend openvino is not offered (measured 1.1-1.2× torch on the CPU, less than precision auto's bf16 "
                       "gives); use backend torch or auto")
    if text == "auto":
        usable = _nvidia(device) and tensorrt_installed() and dtype in (None, torch.float16, torch.float32)
        return "tensorrt" if usable else "torch"
    if text == "tensorrt":
        if not _nvidia(device):
            raise LdlError(f"backend tensorrt needs an NVIDIA GPU (device cuda) and this run is on {device}; use backend torch")
        if not tensorrt_installed():
            raise LdlError(f"backend tensorrt needs TensorRT, which is not installed: {TENSORRT_EXTRA}")
        if dtype == torch.bfloat16:
            raise LdlError("backend tensorrt builds fp16 or fp32 engines; use precision fp16, fp32 or auto")
    return text


def make_backend(spec: str | None, model: SRModel, device: torch.device, dtype: torch.dtype,
                 max_batch: int = 1) -> Backend:
    name = resolve_backend(spec, device, dtype)
    if name == "tensorrt":
        from .tensorrt import TensorRTBackend

        return TensorRTBackend(model, device, dtype, max_batch=max_batch)
    from .torch_backend import TorchBackend

    return TorchBackend(model, device, dtype)
