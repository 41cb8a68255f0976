"""The networks a recipe asks for: the generator (fresh, or from `init`: a zoo name or a
checkpoint), its EMA copy, and the discriminator."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from ..archs import MSRResNet, RRDBNet, SRVGGNetCompact
from ..archs.discriminators import UNetDiscriminatorSN, VGGStyleDiscriminator
from ..checkpoints import model_from_state_dict, read_state_dict
from ..errors import LdlError
from .config import Config


def build_generator(config: Config) -> tuple[nn.Module, str, int]:
    """(network, description, size multiple of its input)."""
    if config.init:
        return generator_from_init(config.init, config.scale)
    g, s = config.generator, config.scale
    if g.arch == "rrdb":
        net = RRDBNet(scale=s, num_feat=g.num_feat, num_block=g.num_block, num_grow_ch=g.num_grow_ch)
        return net, f"RRDBNet ×{s} ({g.num_block} blocks, {g.num_feat} feat), fresh", net.unshuffle
    if g.arch == "srvgg":
        net = SRVGGNetCompact(num_feat=g.num_feat, num_conv=g.num_block, upscale=s, act_type=g.act_type)
        return net, f"SRVGGNetCompact ×{s} ({g.num_block} conv, {g.num_feat} feat), fresh", 1
    net = MSRResNet(num_feat=g.num_feat, num_block=g.num_block, upscale=s)
    return net, f"MSRResNet ×{s} ({g.num_block} blocks, {g.num_feat} feat), fresh", 1


def resolve_init(init: str) -> str:
    """A zoo name, a path, or a bare file name in the model folder."""
    from ..zoo import ZOO, model_dir

    if init in ZOO or Path(init).expanduser().exists():
        return init
    in_models = model_dir() / init
    if in_models.is_file():
        return str(in_models)
    raise LdlError(f"init {init!r} is neither a model name (ldl-video models) nor a file here or in {model_dir()}; "
                   "give a checkpoint path or a zoo name such as realesrgan-x4plus")


def generator_from_init(init: str, scale: int) -> tuple[nn.Module, str, int]:
    """The bare network of a zoo model or checkpoint (params_ema, else params), checked to be
    trainable at `scale`."""
    from ..zoo import load_model

    name = resolve_init(init)
    model = load_model(name, device="cpu")
    if not model.weights:
        raise LdlError(f"init {init} is classical resampling with nothing to train; pick a network")
    bare = model_from_state_dict(model.state_dict(), model.name, source=model.source)  # drops the ×2/×3 shrink wrappers
    if isinstance(bare.net, SRVGGNetCompact) and bare.scale == 2 * scale:
        net = compact_halved(bare.net)
        net.train().requires_grad_(True)
        return net, f"SRVGGNetCompact ×{scale} from {init} (×{bare.scale} with a 2×2 mean folded in)", 1
    if bare.scale != scale:
        raise LdlError(f"init {init} is a ×{bare.scale} network but the recipe's scale is {scale}; --set scale={bare.scale}")
    net = bare.net.train()
    net.requires_grad_(True)
    return net, f"{bare.arch} ×{bare.scale} from {init}", bare.size_multiple


def compact_halved(net: SRVGGNetCompact) -> SRVGGNetCompact:
    """The ×(s/2) SRVGGNetCompact that equals `net` followed by a 2×2 mean: the mean of four
    pixel-shuffled outputs is a mean of four output channels of the last convolution, and the
    nearest-upsampled input averages to itself, so the fold is exact (the ncnn ×2 graph shrinks
    with bicubic instead). A real ×2 network trains and saves in the BasicSR layout."""
    r = net.upscale
    last = net.body[-1]
    body = [m for m in net.body[:-1] if isinstance(m, nn.Conv2d)]
    act = "prelu" if any(isinstance(m, nn.PReLU) for m in net.body) else "lrelu"
    half = SRVGGNetCompact(net.body[0].in_channels, last.out_channels // (r * r),
                           net.body[0].out_channels, len(body) - 1, r // 2, act)
    state = net.state_dict()
    key = f"body.{len(net.body) - 1}"
    colours, h = last.out_channels // (r * r), r // 2
    weight = state[f"{key}.weight"].reshape(colours, h, 2, h, 2, *state[f"{key}.weight"].shape[1:])
    bias = state[f"{key}.bias"].reshape(colours, h, 2, h, 2)
    state[f"{key}.weight"] = weight.mean(dim=(2, 4)).reshape(colours * h * h, *weight.shape[5:])
    state[f"{key}.bias"] = bias.mean(dim=(2, 4)).reshape(-1)
    half.load_state_dict(state)
    return half


def build_discriminator(config: Config) -> nn.Module | None:
    d = config.discriminator
    if d.arch == "none" or config.losses.gan == 0:
        return None
    net: nn.Module
    if d.arch == "unet":
        net = UNetDiscriminatorSN(num_feat=d.num_feat)
    else:
        net = VGGStyleDiscriminator(num_feat=d.num_feat, input_size=int(d.arch[3:]))
    if d.init:
        state = read_state_dict(d.init)
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise LdlError(f"discriminator.init {d.init} does not fit a {d.arch} discriminator with "
                           f"{d.num_feat} features ({str(exc).splitlines()[0]})") from None
    return net


def ema_copy(net: nn.Module) -> nn.Module:
    ema = copy.deepcopy(net).eval()
    ema.requires_grad_(False)
    return ema


@torch.no_grad()
def update_ema(ema: nn.Module, net: nn.Module, decay: float) -> None:
    """ema = decay · ema + (1 − decay) · net, parameters each step; buffers copied."""
    ema_params = list(ema.parameters())
    params = [p.detach() for p in net.parameters()]
    torch._foreach_mul_(ema_params, decay)
    torch._foreach_add_(ema_params, params, alpha=1 - decay)
    for b_ema, b in zip(ema.buffers(), net.buffers(), strict=True):
        b_ema.copy_(b)
