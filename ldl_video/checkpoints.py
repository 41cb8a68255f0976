"""Read and write generator checkpoints safely, and recognise their architecture from the keys.

Reads .pth/.pt (BasicSR `params_ema`, then `params`, then a bare state dict; `module.` prefixes
stripped) with `torch.load(weights_only=True)`, and .safetensors. Writes the BasicSR layout
(`{"params_ema": ...}`) or a flat .safetensors, which Real-ESRGAN, BasicSR, the official LDL code
and spandrel all read unchanged.
"""

from __future__ import annotations

import math
import pickle
import re
from pathlib import Path

import torch
from torch import nn

from .archs import MSRResNet, RRDBNet, SRVGGNetCompact
from .errors import LdlError
from .files import atomic_output
from .model import SRModel

CHECKPOINT_SUFFIXES = (".pth", ".pt", ".safetensors", ".ckpt")
_WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model_state_dict", "net_g")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise LdlError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:  # safetensors raises its own error type for malformed headers
            raise LdlError(f"{path} is not a readable .safetensors file ({exc})") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load fails on foreign files in many ways
        if not _torch_format(path):
            raise LdlError(f"{path} is not a PyTorch checkpoint (neither a zip archive nor a pickle: "
                           "another kind of file, or empty)") from None
        if isinstance(exc, pickle.UnpicklingError):
            raise LdlError(
                f"{path} holds Python objects beyond tensors and would need to run code to load; "
                "re-save it as a plain state dict or .safetensors"
            ) from None
        raise LdlError(f"{path} is not a PyTorch checkpoint ({_reason(exc)})") from None
    return _unwrap(obj, path)


def _torch_format(path: Path) -> bool:
    """torch.save writes a zip archive (a bare pickle before PyTorch 1.6, opening with the PROTO
    opcode). Any other file (an image renamed .pth) fails in torch's weights-only unpickler with
    the same exception as a pickle that holds objects, and a lecture about weights_only=False."""
    with open(path, "rb") as f:
        head = f.read(4)
    return head[:1] == b"\x80" or head == b"PK\x03\x04"


def _reason(exc: BaseException) -> str:
    """The library's own reason in one line: torch's load_state_dict opens with a header line
    ("Error(s) in loading state_dict for RRDBNet:") and names the keys on the next; an empty
    message is named by its type."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        lines = lines[1:]
    reason = lines[0] if lines else type(exc).__name__
    return reason if len(reason) <= 200 else reason[:199] + "…"


def _unwrap(obj: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict):
        for key in _WRAPPER_KEYS:
            if isinstance(obj.get(key), dict):
                return _unwrap(obj[key], path)
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors:
            return {k.removeprefix("module."): v for k, v in tensors.items()}
    raise LdlError(f"{path} holds no generator weights (expected params_ema, params or a state dict)")


def _count(state: dict[str, torch.Tensor], pattern: str) -> int:
    regex = re.compile(pattern)
    found = {int(m.group(1)) for k in state if (m := regex.match(k))}
    return max(found) + 1 if found else 0


def _rrdbnet(state: dict[str, torch.Tensor]) -> tuple[nn.Module, int, tuple[int, int]]:
    in_ch = state["conv_first.weight"].shape[1]
    scale = {3: 4, 12: 2, 48: 1, 1: 4, 4: 2, 16: 1}[in_ch]
    base_in = in_ch // {4: 1, 2: 4, 1: 16}[scale]
    out_ch = state["conv_last.weight"].shape[0]
    net = RRDBNet(
        num_in_ch=base_in,
        num_out_ch=out_ch,
        scale=scale,
        num_feat=state["conv_first.weight"].shape[0],
        num_block=_count(state, r"body\.(\d+)\.rdb1\."),
        num_grow_ch=state["body.0.rdb1.conv1.weight"].shape[0],
    )
    return net, scale, (base_in, out_ch)


def _srvgg(state: dict[str, torch.Tensor]) -> tuple[nn.Module, int, tuple[int, int]]:
    last = _count(state, r"body\.(\d+)\.weight") - 1
    first = state["body.0.weight"]
    out_ch = first.shape[1]
    upscale = math.isqrt(state[f"body.{last}.weight"].shape[0] // out_ch)
    act = "prelu" if "body.1.weight" in state else "lrelu"
    net = SRVGGNetCompact(
        num_in_ch=first.shape[1],
        num_out_ch=out_ch,
        num_feat=first.shape[0],
        num_conv=(last - 2) // 2,
        upscale=upscale,
        act_type=act,
    )
    return net, upscale, (first.shape[1], out_ch)


def _msrresnet(state: dict[str, torch.Tensor]) -> tuple[nn.Module, int, tuple[int, int]]:
    feat = state["conv_first.weight"].shape[0]
    channels = (state["conv_first.weight"].shape[1], state["conv_last.weight"].shape[0])
    if "upconv2.weight" in state:
        scale = 4
    else:
        scale = 3 if state["upconv1.weight"].shape[0] == feat * 9 else 2
    net = MSRResNet(
        num_in_ch=channels[0],
        num_out_ch=channels[1],
        num_feat=feat,
        num_block=_count(state, r"body\.(\d+)\.conv1\."),
        upscale=scale,
    )
    return net, scale, channels


_OWN_ARCHS = (
    ("RRDBNet", "body.0.rdb1.conv1.weight", _rrdbnet),
    ("MSRResNet", "body.0.conv1.weight", _msrresnet),
    ("SRVGGNetCompact", "body.0.weight", _srvgg),
)


def model_from_state_dict(state: dict[str, torch.Tensor], name: str, source: str = "") -> SRModel:
    """Recognise the architecture from the keys and return the network with the weights loaded.
    RRDBNet, MSRResNet and SRVGGNetCompact are built here; anything else (or a state dict that
    only looks like one of them) goes to spandrel."""
    for arch, marker, build in _OWN_ARCHS:
        if marker in state:
            try:
                net, scale, channels = build(state)
                net.load_state_dict(state, strict=True)
            except (KeyError, RuntimeError, ValueError) as exc:
                mismatch = f"{name}: looks like {arch} but the weights do not fit ({_reason(exc)})"
                break
            _refuse_unless_rgb(name, *channels)  # the Upscaler feeds RGB (gray replicated, alpha apart)
            multiple = getattr(net, "unshuffle", 1)
            return SRModel(name, net.eval(), scale, arch, size_multiple=multiple, source=source)
    else:
        mismatch = None
    return _spandrel_model(state, name, source, mismatch)


def _spandrel_model(state: dict[str, torch.Tensor], name: str, source: str, mismatch: str | None) -> SRModel:
    """Other architectures (SwinIR for the official SwinIR+LDL files, and whatever else spandrel
    knows) come through spandrel, which keeps the original parameter names."""
    try:
        from spandrel import ModelLoader, UnsupportedModelError
    except ImportError:
        raise LdlError(f"{name}: unknown architecture; install spandrel to load it") from None
    try:
        desc = ModelLoader().load_from_state_dict(state)
    except (UnsupportedModelError, KeyError, ValueError, RuntimeError):
        raise LdlError(mismatch or f"{name}: the checkpoint's keys match no known super-resolution architecture") from None
    _refuse_unless_rgb(name, desc.input_channels, desc.output_channels)
    return SRModel(
        name,
        desc.model.eval(),
        int(desc.scale),
        desc.architecture.name,
        size_multiple=desc.size_requirements.multiple_of,
        supports_fp16=desc.supports_half,
        supports_bf16=desc.supports_bfloat16,
        source=source,
    )


def _refuse_unless_rgb(name: str, in_ch: int, out_ch: int) -> None:
    if in_ch != 3 or out_ch != 3:
        raise LdlError(f"{name}: only RGB→RGB networks are supported, this one is {in_ch}→{out_ch}")


def load_checkpoint(path: str | Path) -> SRModel:
    path = Path(path)
    return model_from_state_dict(read_state_dict(path), path.stem, source=str(path))


def save_checkpoint(model: SRModel | nn.Module, path: str | Path, key: str = "params_ema") -> Path:
    """Write the generator's weights: .safetensors by suffix, else a BasicSR `{key: state}` .pth."""
    if isinstance(model, SRModel):
        if not model.weights:
            raise LdlError(f"{model.name} is classical resampling and has no weights to save")
        state = model.state_dict()
    else:
        state = model.state_dict()
    state = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    path = Path(path)
    with atomic_output(path) as tmp:  # nothing half-written under the final name, no leftovers
        if path.suffix == ".safetensors":
            from safetensors.torch import save_file

            save_file(state, str(tmp))
        else:
            torch.save({key: state}, tmp)
    return path
