"""TensorRT: the network exported to ONNX (onnx_export), built into an engine once and cached
in the model folder under a name that holds everything the engine depends on: the weights'
digest, the shape range, the precision, the GPU and the TensorRT version.

The network is built strongly typed from an fp16 or fp32 ONNX graph, so the precision is the
graph's own (TensorRT 10 deprecated, and 11 removed, the fp16 builder flag). One optimisation
profile covers batch 1..max_batch and heights and widths from one size-multiple up to the
largest seen so far; a bigger input rebuilds with a bigger range (announced like the first).

Run only on NVIDIA GPUs; its tests (tests/engine/test_engine_tensorrt.py) skip elsewhere.
"""

from __future__ import annotations

import hashlib
import re
import sys
import time

import torch

from ..errors import LdlError
from ..model import SRModel
from . import TENSORRT_EXTRA
from .onnx_export import onnx_bytes

# Build-time workspace; TensorRT picks tactics that fit.
WORKSPACE_BYTES = 4 << 30


def _trt():
    try:
        import tensorrt
    except ImportError:
        raise LdlError(f"backend tensorrt needs TensorRT, which is not installed: {TENSORRT_EXTRA}") from None
    return tensorrt


def weights_digest(model: SRModel) -> str:
    digest = hashlib.sha256(model.name.encode())
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")


class TensorRTBackend:
    name = "tensorrt"

    def __init__(self, model: SRModel, device: torch.device, dtype: torch.dtype, max_batch: int = 1) -> None:
        self.trt = _trt()
        if dtype not in (torch.float16, torch.float32):
            raise LdlError("backend tensorrt builds fp16 or fp32 engines; use precision fp16, fp32 or auto")
        if not model.weights:
            raise LdlError(f"{model.name} is classical resampling; use backend torch for it")
        self.model, self.device, self.input_dtype = model, device, dtype
        self.max_batch = max(1, max_batch)
        self.multiple = max(1, model.size_multiple)
        self.digest = weights_digest(model)
        self.max_side = (0, 0)
        self.engine = self.context = None
        self.logger = self.trt.Logger(self.trt.Logger.WARNING)

    # ---- engines ------------------------------------------------------------------------
    def _profile(self, h: int, w: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        m = self.multiple
        top = (max(h, self.max_side[0]), max(w, self.max_side[1]))
        return (1, 3, m, m), (self.max_batch, 3, *top), (self.max_batch, 3, *top)

    def _engine_path(self, profile):
        from ..zoo import model_dir

        gpu = _slug(torch.cuda.get_device_name(self.device))
        precision = "fp16" if self.input_dtype == torch.float16 else "fp32"
        shapes = "-".join("x".join(map(str, shape)) for shape in profile)
        name = f"{_slug(self.model.name)}-{self.digest}-{shapes}-{precision}-{gpu}-trt{self.trt.__version__}.engine"
        return model_dir() / "tensorrt" / name

    def _ensure(self, h: int, w: int) -> None:
        if self.context is not None and h <= self.max_side[0] and w <= self.max_side[1]:
            return
        profile = self._profile(h, w)
        path = self._engine_path(profile)
        if not path.is_file():
            self._build(profile, path)
        runtime = self.trt.Runtime(self.logger)
        self.engine = runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise LdlError(f"TensorRT could not load {path}; delete it and run again to rebuild it")
        self.context = self.engine.create_execution_context()
        self.max_side = profile[2][2:]

    def _build(self, profile, path) -> None:
        from ..files import atomic_output

        trt = self.trt
        print(f"ldl-video: building a TensorRT engine for {self.model.name} (inputs up to {profile[2][3]}×{profile[2][2]}, "
              f"batch {profile[2][0]}); this takes about 1-10 minutes once and is cached in {path.parent}", file=sys.stderr)
        start = time.perf_counter()
        builder = trt.Builder(self.logger)
        network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse(onnx_bytes(self.model, fp16=self.input_dtype == torch.float16)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise LdlError(f"TensorRT cannot read the ONNX graph of {self.model.name}: {errors[:200]}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
        shapes = builder.create_optimization_profile()
        shapes.set_shape("input", *profile)
        config.add_optimization_profile(shapes)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise LdlError(f"TensorRT could not build an engine for {self.model.name} at up to {profile[2][3]}×{profile[2][2]}; "
                           "use a smaller --tile or backend torch")
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path) as tmp:
            tmp.write_bytes(bytes(serialized))
        print(f"ldl-video: TensorRT engine built in {time.perf_counter() - start:.0f} s", file=sys.stderr)

    # ---- running ------------------------------------------------------------------------
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        if n > self.max_batch:  # more than the profile takes: in pieces
            return torch.cat([self(part) for part in x.split(self.max_batch)])
        self._ensure(h, w)
        x = x.to(self.device, self.input_dtype).contiguous()
        self.context.set_input_shape("input", tuple(x.shape))
        out = torch.empty(tuple(self.context.get_tensor_shape("output")), dtype=self.input_dtype, device=self.device)
        self.context.set_tensor_address("input", x.data_ptr())
        self.context.set_tensor_address("output", out.data_ptr())
        stream = torch.cuda.current_stream(self.device)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise LdlError(f"TensorRT failed to run {self.model.name} on a {w}×{h} batch of {n}")
        return out.float()
