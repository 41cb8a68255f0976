"""The training recipe as typed dataclasses: read from YAML, `--set key=value` overrides applied,
every field checked with a one-line message that names the key and what it accepts.

The defaults are the paper's real-world ×4 recipe (Liang, Zeng, Zhang, CVPR 2022; the official
csjliang/LDL options/train/LDL/train_Realworld_LDL.yml, whose degradation options are
Real-ESRGAN's); a recipe file only states what differs.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LdlError

KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
GENERATORS = ("rrdb", "srvgg", "msrresnet")
DISCRIMINATORS = ("unet", "vgg128", "vgg256", "none")
DEGRADATIONS = ("realesrgan", "bicubic", "paired")
JPEG_MODELS = ("diffjpeg", "libjpeg")


@dataclass
class GeneratorConfig:
    """Used when `init` is empty; with `init`, the architecture comes from its weights."""

    arch: str = "rrdb"  # rrdb | srvgg | msrresnet
    num_feat: int = 64
    num_block: int = 23  # RRDB blocks, SRVGG convolutions or MSRResNet blocks
    num_grow_ch: int = 32  # RRDB only
    act_type: str = "prelu"  # SRVGG only: prelu | lrelu


@dataclass
class DiscriminatorConfig:
    arch: str = "unet"  # unet (spectral norm, per pixel) | vgg128 | vgg256 | none (no GAN)
    num_feat: int = 64
    init: str | None = None  # a checkpoint to start from (e.g. RealESRGAN_x4plus_netD.pth)


@dataclass
class DegradationRound:
    """One round of Real-ESRGAN's blur -> resize -> noise -> JPEG."""

    blur_prob: float = 1.0
    kernel_range: list[int] = field(default_factory=lambda: [7, 21])  # odd sizes, inclusive
    kernel_list: list[str] = field(default_factory=lambda: list(KERNEL_TYPES))
    kernel_prob: list[float] = field(default_factory=lambda: [0.45, 0.25, 0.12, 0.03, 0.12, 0.03])
    sinc_prob: float = 0.1
    blur_sigma: list[float] = field(default_factory=lambda: [0.2, 3.0])
    betag_range: list[float] = field(default_factory=lambda: [0.5, 4.0])
    betap_range: list[float] = field(default_factory=lambda: [1.0, 2.0])
    resize_prob: list[float] = field(default_factory=lambda: [0.2, 0.7, 0.1])  # up, down, keep
    resize_range: list[float] = field(default_factory=lambda: [0.15, 1.5])
    gaussian_noise_prob: float = 0.5
    noise_range: list[float] = field(default_factory=lambda: [1.0, 30.0])  # sigma in 8-bit levels
    poisson_scale_range: list[float] = field(default_factory=lambda: [0.05, 3.0])
    gray_noise_prob: float = 0.4
    jpeg_range: list[float] = field(default_factory=lambda: [30.0, 95.0])


def _second_round() -> DegradationRound:
    return DegradationRound(
        blur_prob=0.8, blur_sigma=[0.2, 1.5], resize_prob=[0.3, 0.4, 0.3], resize_range=[0.3, 1.2],
        noise_range=[1.0, 25.0], poisson_scale_range=[0.05, 2.5],
    )


@dataclass
class DegradationConfig:
    first: DegradationRound = field(default_factory=DegradationRound)
    second: DegradationRound = field(default_factory=_second_round)
    final_sinc_prob: float = 0.8
    queue_size: int = 180  # training-pair pool that mixes batches; 0 turns it off
    source_size: int = 400  # the HR crop that is degraded; the gt_size crop is cut from it after (0: the crop itself)
    # diffjpeg: the JPEG of the official pipeline (BasicSR's basicsr/utils/diffjpeg.py, which Real-ESRGAN
    # and LDL train with); libjpeg: a model of the real codec, for sources that are real JPEGs
    jpeg: str = "diffjpeg"


@dataclass
class DataConfig:
    hr: list[str] = field(default_factory=list)  # folders, image files, videos, or skimage:train
    lr: list[str] = field(default_factory=list)  # paired LR folders (same file names as hr)
    degradation: str = "realesrgan"  # realesrgan | bicubic | paired
    gt_size: int = 256  # HR crop size
    batch_size: int = 4  # per process
    num_workers: int = 4
    # BasicSR's augment(): use_hflip is hflip; use_rot is vflip + rotate (transpose, i.e. 90° turns
    # with the flips). The official real-world recipe: use_hflip True, use_rot False.
    hflip: bool = True
    vflip: bool = False
    rotate: bool = False
    normalise: str = "range"  # range: divide by the dtype's maximum | percentile: per image
    percentiles: list[float] = field(default_factory=lambda: [0.1, 99.9])
    video_step: int = 10  # every Nth frame of a video source


@dataclass
class LossConfig:
    pixel: float = 1e-2
    pixel_target: str = "usm"  # usm (unsharp-masked GT) | gt
    perceptual: float = 1.0
    perceptual_target: str = "usm"
    perceptual_layers: dict[str, float] = field(
        default_factory=lambda: {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0}
    )
    vgg_weights: str | None = None  # torchvision's vgg19-dcbb9e9d.pth; default: torch's hub cache
    ldl: float = 1.0
    ldl_kernel: int = 7
    gan: float = 0.1
    gan_type: str = "vanilla"  # vanilla | ragan (relativistic average)
    usm_weight: float = 0.5
    usm_radius: int = 50
    usm_threshold: float = 10.0  # in 8-bit levels


@dataclass
class OptimConfig:
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    weight_decay: float = 0.0
    milestones: list[int] = field(default_factory=lambda: [400000])
    gamma: float = 0.5
    grad_clip: float = 0.0  # max gradient norm, 0 = off


@dataclass
class LoopConfig:
    iterations: int = 400000
    ema_decay: float = 0.999
    precision: str = "auto"  # auto (bf16 on a CUDA GPU that has it, else fp32) | fp32 | bf16 | fp16; the paper recipes: fp32
    channels_last: bool = True  # CUDA only
    compile: bool = False
    threads: int = 0  # CPU threads for torch, 0 = torch's default
    log_every: int = 100
    save_every: int = 5000
    keep_states: int = 2
    max_nan_steps: int = 10  # stop after this many non-finite steps in a row


@dataclass
class ValConfig:
    hr: list[str] = field(default_factory=list)
    lr: list[str] = field(default_factory=list)
    degradation: str = "realesrgan"  # how LR is made when lr is empty (fixed seed): realesrgan | bicubic
    every: int = 5000
    max_images: int = 20
    crop: int = 0  # centre crop of each HR image, 0 = whole image
    save_images: int = 4


@dataclass
class Config:
    name: str = "run"
    scale: int = 4
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N (torchrun picks cuda:LOCAL_RANK)
    init: str | None = None  # zoo name or checkpoint for the generator (params_ema, else params)
    # key=value settings that replace the recipe's own when losses.perceptual is on but VGG19's
    # weights are not here (nothing downloads them); the user's --set still wins
    without_vgg: list[str] = field(default_factory=list)
    runs_dir: str = "runs"
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    data: DataConfig = field(default_factory=DataConfig)
    degradation: DegradationConfig = field(default_factory=DegradationConfig)
    losses: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: LoopConfig = field(default_factory=LoopConfig)
    val: ValConfig = field(default_factory=ValConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------- reading


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = (), say=None) -> Config:
    """A recipe file (or the defaults when None) plus `key=value` overrides, checked. When the
    recipe's `without_vgg` applies, `say` is told."""
    raw: dict[str, Any] = {}
    where = "defaults"
    if path is not None:
        path = Path(path)
        where = str(path)
        raw = _read_yaml(path)
    original = copy.deepcopy(raw)
    for item in overrides:
        _apply_override(raw, item)
    config = _build(Config, raw, "", where)
    if config.without_vgg and config.losses.perceptual > 0 and config.losses.vgg_weights is None and not _vgg_here():
        raw = original
        for item in [*config.without_vgg, *overrides]:
            _apply_override(raw, item)
        config = _build(Config, raw, "", where)
        if say is not None:
            say(f"VGG19 weights not found, so the recipe's without_vgg settings apply: {', '.join(config.without_vgg)}")
    validate(config, where)
    return config


def _vgg_here() -> bool:
    from .losses import find_vgg_weights

    try:
        find_vgg_weights(None)
    except LdlError:
        return False
    return True


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    if not path.is_file():
        raise LdlError(f"recipe {path} does not exist (the shipped ones are in training/)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise LdlError(f"recipe {path} is not valid YAML{at}: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise LdlError(f"recipe {path} must be a mapping of keys (name:, data:, losses: ...), not a {type(data).__name__}")
    return data


def _apply_override(raw: dict[str, Any], item: str) -> None:
    import yaml

    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise LdlError(f"--set expects key=value (e.g. --set data.hr=/my/frames), got {item!r}")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        value = text
    parts = key.strip().split(".")
    node = raw
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def _build(cls: type, raw: Any, prefix: str, where: str) -> Any:
    if not isinstance(raw, dict):
        raise LdlError(f"{where}: {prefix.rstrip('.') or 'the recipe'} must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else f" (known: {', '.join(names)})"
            raise LdlError(f"{where}: unknown key {prefix}{key}{hint}")
    values = {}
    for name in names:
        if name in raw:
            values[name] = _convert(raw[name], hints[name], f"{prefix}{name}", where)
    return cls(**values)


def _convert(value: Any, hint: Any, key: str, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key + ".", where)
    if origin in (types.UnionType, typing.Union):  # X | None
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "null", "none")):
            return None
        return _convert(value, next(a for a in args if a is not type(None)), key, where)
    if origin is list:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = [value]  # --set data.hr=/my/frames
        if value is None:
            value = []
        if not isinstance(value, (list, tuple)):
            raise LdlError(f"{where}: {key} must be a list, got {value!r}")
        return [_convert(v, args[0], f"{key}[{i}]", where) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise LdlError(f"{where}: {key} must be a mapping like {{conv1_2: 0.1}}, got {value!r}")
        return {str(k): _convert(v, args[1], f"{key}.{k}", where) for k, v in value.items()}
    return _scalar(value, hint, key, where)


def _scalar(value: Any, hint: type, key: str, where: str) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "yes", "on", "1"):
            return True
        if text in ("false", "no", "off", "0"):
            return False
        raise LdlError(f"{where}: {key} must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise LdlError(f"{where}: {key} must be a whole number, got {value!r}")
        try:
            number = float(value)
        except ValueError:
            raise LdlError(f"{where}: {key} must be a whole number, got {value!r}") from None
        if number != int(number):
            raise LdlError(f"{where}: {key} must be a whole number, got {value!r}")
        return int(number)
    if hint is float:
        if isinstance(value, bool):
            raise LdlError(f"{where}: {key} must be a number, got {value!r}")
        try:
            return float(value)  # YAML reads 1e-4 (no dot) as a string
        except (TypeError, ValueError):
            raise LdlError(f"{where}: {key} must be a number, got {value!r}") from None
    if hint is str:
        if isinstance(value, (dict, list)) or value is None:
            raise LdlError(f"{where}: {key} must be text, got {value!r}")
        return str(value)
    raise TypeError(f"config type {hint} for {key} is not handled")  # a bug in this file, not in the recipe


# ---------------------------------------------------------------- checking


def _fail(where: str, message: str) -> None:
    raise LdlError(f"{where}: {message}")


def _choice(where: str, key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        _fail(where, f"{key} is {value!r}; choose one of {', '.join(choices)}")


def _range(where: str, key: str, pair: list[float], low: float | None = None, high: float | None = None) -> None:
    if len(pair) != 2 or pair[0] > pair[1]:
        _fail(where, f"{key} must be [low, high] with low <= high, got {pair}")
    if (low is not None and pair[0] < low) or (high is not None and pair[1] > high):
        _fail(where, f"{key} must lie within [{low}, {high}], got {pair}")


def _probabilities(where: str, key: str, probs: list[float], count: int) -> None:
    if len(probs) != count or any(p < 0 for p in probs) or abs(sum(probs) - 1.0) > 1e-6:
        _fail(where, f"{key} must be {count} non-negative probabilities adding up to 1, got {probs}")


def _probability(where: str, key: str, p: float) -> None:
    if not 0.0 <= p <= 1.0:
        _fail(where, f"{key} must be a probability in [0, 1], got {p}")


def validate(c: Config, where: str = "recipe") -> None:
    if not c.name or any(ch in c.name for ch in "/\\") or c.name in (".", ".."):
        _fail(where, f"name must be a plain folder name (it becomes runs/<name>), got {c.name!r}")
    if c.scale not in (2, 3, 4):
        _fail(where, f"scale must be 2, 3 or 4, got {c.scale}")
    if not (c.device in ("auto", "cpu", "cuda") or c.device.startswith("cuda:")):
        _fail(where, f"device is {c.device!r}; use auto, cpu, cuda or cuda:N")
    _check_generator(c, where)
    _check_data(c, where)
    if c.data.degradation == "realesrgan" and c.degradation.source_size % c.scale:
        _fail(where, f"degradation.source_size must be a multiple of the scale {c.scale}, got {c.degradation.source_size}")
    if c.data.degradation == "realesrgan" or c.val.degradation == "realesrgan":
        _check_degradation(c.degradation, c.data.batch_size if c.data.degradation == "realesrgan" else 1, where)
    _check_losses(c, where)
    _check_optim_and_loop(c, where)
    _check_val(c, where)


def _check_generator(c: Config, where: str) -> None:
    g = c.generator
    _choice(where, "generator.arch", g.arch, GENERATORS)
    _choice(where, "generator.act_type", g.act_type, ("prelu", "lrelu"))
    if min(g.num_feat, g.num_block, g.num_grow_ch) < 1:
        _fail(where, "generator.num_feat, num_block and num_grow_ch must be 1 or more")
    if c.init is None and g.arch == "rrdb" and c.scale == 3:
        _fail(where, "RRDBNet has no ×3 form; use scale 2 or 4, or generator.arch: srvgg / msrresnet")
    d = c.discriminator
    _choice(where, "discriminator.arch", d.arch, DISCRIMINATORS)
    if d.num_feat < 1:
        _fail(where, "discriminator.num_feat must be 1 or more")
    if d.arch.startswith("vgg") and c.data.gt_size != int(d.arch[3:]):
        _fail(where, f"discriminator {d.arch} judges {d.arch[3:]} px patches but data.gt_size is {c.data.gt_size}; "
              f"set data.gt_size={d.arch[3:]} or discriminator.arch=unet")


def _check_data(c: Config, where: str) -> None:
    d = c.data
    if not d.hr:
        _fail(where, "data.hr is empty; name your HR images, folders or videos, e.g. --set data.hr=/my/frames")
    _choice(where, "data.degradation", d.degradation, DEGRADATIONS)
    if d.degradation == "paired" and len(d.lr) != len(d.hr):
        _fail(where, f"data.degradation paired needs one data.lr folder per data.hr entry ({len(d.hr)}), got {len(d.lr)}")
    if d.lr and d.degradation != "paired":
        _fail(where, "data.lr is set, so the LR images are given: set data.degradation=paired (or empty data.lr)")
    if d.gt_size < 8 or d.gt_size % (c.scale * 4) and c.discriminator.arch == "unet":
        _fail(where, f"data.gt_size must be a multiple of {c.scale * 4} (scale × 4, for the U-Net discriminator), "
              f"got {d.gt_size}")
    if d.gt_size % c.scale:
        _fail(where, f"data.gt_size must be a multiple of the scale {c.scale}, got {d.gt_size}")
    if c.init is None and c.generator.arch == "rrdb" and c.scale == 2 and d.gt_size % 4:
        _fail(where, f"RRDBNet ×2 folds its input by 2, so data.gt_size must be a multiple of 4, got {d.gt_size}")
    if d.batch_size < 1 or d.num_workers < 0 or d.video_step < 1:
        _fail(where, "data.batch_size and data.video_step must be 1 or more, data.num_workers 0 or more")
    _choice(where, "data.normalise", d.normalise, ("range", "percentile"))
    _range(where, "data.percentiles", d.percentiles, 0.0, 100.0)


def _check_degradation(deg: DegradationConfig, batch_size: int, where: str) -> None:
    for label, r in (("first", deg.first), ("second", deg.second)):
        key = f"degradation.{label}"
        for name in ("blur_prob", "sinc_prob", "gaussian_noise_prob", "gray_noise_prob"):
            _probability(where, f"{key}.{name}", getattr(r, name))
        unknown = [k for k in r.kernel_list if k not in KERNEL_TYPES]
        if unknown:
            _fail(where, f"{key}.kernel_list has unknown kernels {unknown}; known: {', '.join(KERNEL_TYPES)}")
        _probabilities(where, f"{key}.kernel_prob", r.kernel_prob, len(r.kernel_list))
        if len(r.kernel_range) != 2 or r.kernel_range[0] > r.kernel_range[1] or r.kernel_range[0] < 3 \
                or any(k % 2 == 0 for k in r.kernel_range) or r.kernel_range[1] > 31:
            _fail(where, f"{key}.kernel_range must be two odd sizes [low, high] within [3, 31], got {r.kernel_range}")
        _range(where, f"{key}.blur_sigma", r.blur_sigma, 0.01)
        _range(where, f"{key}.betag_range", r.betag_range, 0.01)
        _range(where, f"{key}.betap_range", r.betap_range, 0.01)
        _probabilities(where, f"{key}.resize_prob", r.resize_prob, 3)
        _range(where, f"{key}.resize_range", r.resize_range, 0.01)
        _range(where, f"{key}.noise_range", r.noise_range, 0.0)
        _range(where, f"{key}.poisson_scale_range", r.poisson_scale_range, 0.0)
        _range(where, f"{key}.jpeg_range", r.jpeg_range, 1.0, 100.0)
    _probability(where, "degradation.final_sinc_prob", deg.final_sinc_prob)
    _choice(where, "degradation.jpeg", deg.jpeg, JPEG_MODELS)
    if deg.source_size < 0:
        _fail(where, f"degradation.source_size must be 0 (degrade the crop itself) or a size in pixels, got {deg.source_size}")
    if deg.queue_size < 0 or (deg.queue_size and deg.queue_size % batch_size):
        _fail(where, f"degradation.queue_size ({deg.queue_size}) must be 0 or a multiple of data.batch_size ({batch_size})")


def _check_losses(c: Config, where: str) -> None:
    lo = c.losses
    for name in ("pixel", "perceptual", "ldl", "gan", "usm_weight", "usm_threshold"):
        if getattr(lo, name) < 0:
            _fail(where, f"losses.{name} must be 0 or more, got {getattr(lo, name)}")
    if lo.pixel + lo.perceptual + lo.ldl + lo.gan == 0:
        _fail(where, "every loss weight is 0; set losses.pixel, perceptual, ldl or gan above 0")
    _choice(where, "losses.pixel_target", lo.pixel_target, ("usm", "gt"))
    _choice(where, "losses.perceptual_target", lo.perceptual_target, ("usm", "gt"))
    _choice(where, "losses.gan_type", lo.gan_type, ("vanilla", "ragan"))
    if lo.ldl_kernel < 3 or lo.ldl_kernel % 2 == 0:
        _fail(where, f"losses.ldl_kernel must be odd and 3 or more, got {lo.ldl_kernel}")
    if lo.ldl_kernel // 2 >= c.data.gt_size:
        _fail(where, "losses.ldl_kernel is larger than the crop")
    if lo.usm_radius < 1:
        _fail(where, "losses.usm_radius must be 1 or more")
    if lo.perceptual > 0:
        from ..archs.vgg import layer_names

        if not lo.perceptual_layers:
            _fail(where, "losses.perceptual_layers is empty; name VGG19 layers like {conv5_4: 1.0} or set losses.perceptual=0")
        bad = [k for k in lo.perceptual_layers if k not in layer_names()]
        if bad:
            _fail(where, f"losses.perceptual_layers has unknown VGG19 layers {bad}; "
                  "use conv1_2, conv2_2, conv3_4, conv4_4, conv5_4, ...")
    if lo.gan > 0 and c.discriminator.arch == "none":
        _fail(where, "losses.gan is above 0 but discriminator.arch is none; set losses.gan=0 or pick a discriminator")


def _check_optim_and_loop(c: Config, where: str) -> None:
    o, t = c.optim, c.train
    if o.lr_g <= 0 or o.lr_d <= 0:
        _fail(where, "optim.lr_g and optim.lr_d must be above 0")
    if len(o.betas) != 2 or not all(0 <= b < 1 for b in o.betas):
        _fail(where, f"optim.betas must be two numbers in [0, 1), got {o.betas}")
    if o.weight_decay < 0 or o.grad_clip < 0 or not 0 < o.gamma <= 1:
        _fail(where, "optim.weight_decay and grad_clip must be 0 or more, optim.gamma in (0, 1]")
    if sorted(o.milestones) != o.milestones or any(m < 1 for m in o.milestones):
        _fail(where, f"optim.milestones must be increasing iteration numbers, got {o.milestones}")
    if t.iterations < 1:
        _fail(where, "train.iterations must be 1 or more")
    if not 0.0 <= t.ema_decay < 1.0:
        _fail(where, f"train.ema_decay must be in [0, 1), got {t.ema_decay}")
    _choice(where, "train.precision", t.precision, ("auto", "fp32", "bf16", "fp16"))
    if t.threads < 0:
        _fail(where, "train.threads must be 0 (torch's default) or more")
    for name in ("log_every", "save_every", "keep_states", "max_nan_steps"):
        if getattr(t, name) < 1:
            _fail(where, f"train.{name} must be 1 or more")


def _check_val(c: Config, where: str) -> None:
    v = c.val
    if v.lr and len(v.lr) != len(v.hr):
        _fail(where, f"val.lr needs one folder per val.hr entry ({len(v.hr)}), got {len(v.lr)}")
    _choice(where, "val.degradation", v.degradation, ("realesrgan", "bicubic"))
    if v.every < 1 or v.max_images < 1 or v.save_images < 0 or v.crop < 0:
        _fail(where, "val.every and val.max_images must be 1 or more, val.save_images and val.crop 0 or more")
    if v.crop and v.crop % (c.scale * 4):
        _fail(where, f"val.crop must be a multiple of {c.scale * 4}, got {v.crop}")
