"""Read ncnn `.param`/`.bin` pairs and turn their weights into PyTorch state dicts.

The `.bin` holds, layer by layer in `.param` order: for each Convolution its weights behind a
4-byte storage tag (0x01306B47 = fp16) padded to 4 bytes, then its bias as raw fp32; for each
PReLU its slopes as raw fp32. Nothing else is stored, so the file is read in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .errors import LdlError

FP16_TAG = 0x01306B47
FP32_TAG = 0x00000000


@dataclass
class Layer:
    kind: str
    name: str
    inputs: list[str]
    outputs: list[str]
    params: dict[int, str]
    blobs: dict[str, np.ndarray] = field(default_factory=dict)

    def int_param(self, key: int, default: int = 0) -> int:
        return int(self.params.get(key, default))

    def float_list(self, key: int) -> list[float]:
        """Array parameters are written as `-233NN=count,v1,v2,...` with key -23300 - NN."""
        raw = self.params.get(-23300 - key)
        return [float(v) for v in raw.split(",")[1:]] if raw else []


def _parse_param(text: str) -> list[Layer]:
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    if not lines or lines[0] != ["7767517"]:
        raise LdlError("not an ncnn .param file (missing the 7767517 magic)")
    layers = []
    for parts in lines[2:]:
        kind, name, n_in, n_out = parts[0], parts[1], int(parts[2]), int(parts[3])
        inputs = parts[4 : 4 + n_in]
        outputs = parts[4 + n_in : 4 + n_in + n_out]
        params = {}
        for item in parts[4 + n_in + n_out :]:
            key, value = item.split("=", 1)
            params[int(key)] = value
        layers.append(Layer(kind, name, inputs, outputs, params))
    return layers


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def raw_fp32(self, count: int) -> np.ndarray:
        out = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos)
        self.pos += 4 * count
        return out

    def tagged(self, count: int) -> np.ndarray:
        tag = int(np.frombuffer(self.data, dtype="<u4", count=1, offset=self.pos)[0])
        self.pos += 4
        if tag == FP16_TAG:
            out = np.frombuffer(self.data, dtype="<f2", count=count, offset=self.pos).astype(np.float32)
            self.pos += (2 * count + 3) // 4 * 4
            return out
        if tag == FP32_TAG:
            return self.raw_fp32(count)
        raise LdlError(f"unsupported ncnn weight storage tag {tag:#010x} (only fp16 and fp32 are read)")


def read_ncnn(param_path: Path, bin_path: Path) -> list[Layer]:
    """The layers of an ncnn graph with their weights attached as float32 arrays."""
    layers = _parse_param(Path(param_path).read_text())
    reader = _Reader(Path(bin_path).read_bytes())
    for layer in layers:
        if layer.kind == "Convolution":
            cout, k = layer.int_param(0), layer.int_param(1)
            size = layer.int_param(6)
            cin = size // (cout * k * k)
            layer.blobs["weight"] = reader.tagged(size).reshape(cout, cin, k, k)
            if layer.int_param(5):
                layer.blobs["bias"] = reader.raw_fp32(cout)
        elif layer.kind == "PReLU":
            layer.blobs["weight"] = reader.raw_fp32(layer.int_param(0, 1))
    if reader.pos != len(reader.data):
        raise LdlError(f"{bin_path} has {len(reader.data) - reader.pos} bytes the .param does not account for")
    return layers


def ncnn_to_state_dict(layers: list[Layer], parameter_names: list[str]) -> dict[str, torch.Tensor]:
    """Assign the graph's weight blobs, in forward order, to the given PyTorch parameter names
    (a network's own state-dict order: for RRDBNet and SRVGGNetCompact the two orders agree)."""
    blobs = [
        torch.from_numpy(np.array(blob, dtype=np.float32))
        for layer in layers
        for key in ("weight", "bias")
        if (blob := layer.blobs.get(key)) is not None
    ]
    if len(blobs) != len(parameter_names):
        raise LdlError(f"ncnn graph has {len(blobs)} weight blobs but the network expects {len(parameter_names)}")
    return dict(zip(parameter_names, blobs, strict=True))
