"""Checkpoints of architectures this project does not build itself go through spandrel; what the
loaded model says about itself (name, file, scale, size multiple, half precisions) is what
spandrel's own descriptor says, and the Upscaler runs it to the network's own output. A network
that is not RGB→RGB is refused in one line. Mutation testing found these unpinned."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
import torch
from spandrel import ModelLoader

from ldl_video import LdlError, Upscaler, load_model


def _swinir() -> torch.nn.Module:
    arch = importlib.import_module("spandrel.architectures.SwinIR.__arch.SwinIR")
    torch.manual_seed(0)
    return arch.SwinIR(upscale=2, img_size=16, window_size=4, embed_dim=12, depths=[1], num_heads=[2], mlp_ratio=2,
                       upsampler="pixelshuffle", resi_connection="1conv", img_range=1.0).eval()


def test_spandrel_model_describes_itself_as_spandrel_does_and_upscales(tmp_path: Path) -> None:
    net = _swinir()
    path = tmp_path / "my-swinir.pth"
    torch.save({"params_ema": net.state_dict()}, path)
    desc = ModelLoader().load_from_file(path)
    model = load_model(path)
    assert (model.name, model.source, model.arch, model.scale) == ("my-swinir", str(path), "SwinIR", int(desc.scale))
    assert model.size_multiple == desc.size_requirements.multiple_of
    assert (model.supports_fp16, model.supports_bf16) == (desc.supports_half, desc.supports_bfloat16)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (18, 21, 3), dtype=np.uint8)
    out = Upscaler(model, device="cpu", precision="fp32").upscale(image)
    with torch.inference_mode():
        want = net(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255).clamp(0, 1)
    want = (want[0].permute(1, 2, 0).numpy() * 255).round()
    assert out.shape == (36, 42, 3)
    assert np.abs(out.astype(int) - want).max() <= 1


def test_a_network_that_is_not_rgb_to_rgb_is_refused_in_one_line(tmp_path: Path) -> None:
    span = importlib.import_module("spandrel.architectures.SPAN.__arch.span")
    net = span.SPAN(num_in_ch=3, num_out_ch=1, feature_channels=8, upscale=2)
    path = tmp_path / "gray.pth"
    torch.save(net.state_dict(), path)
    with pytest.raises(LdlError) as caught:
        load_model(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("gray: only RGB→RGB networks are supported")


@pytest.mark.parametrize("act", ["prelu", "leakyrelu"])  # spandrel's spelling of Real-ESRGAN's lrelu
def test_compact_checkpoint_runs_as_spandrels_network(act: str, tmp_path: Path) -> None:
    """A Real-ESRGAN compact (SRVGG) checkpoint with either activation, loaded by our own
    builder, gives what spandrel's copy of the network gives (the LeakyReLU variant has no
    activation weights to recognise it by)."""
    arch = importlib.import_module("spandrel.architectures.Compact.__arch.SRVGG")
    torch.manual_seed(1)
    net = arch.SRVGGNetCompact(num_feat=8, num_conv=2, upscale=2, act_type=act).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.3)  # PReLU's 0.25 start would hide a wrong activation
    path = tmp_path / f"compact-{act}.pth"
    torch.save({"params": net.state_dict()}, path)
    model = load_model(path)
    assert (model.arch, model.scale) == ("SRVGGNetCompact", 2)
    x = torch.rand(1, 3, 12, 10)
    with torch.inference_mode():
        torch.testing.assert_close(model.net(x), net(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("scale", [2, 1])
def test_own_rrdbnet_checkpoint_describes_itself(scale: int, tmp_path: Path) -> None:
    """RRDBNet ×2 and ×1 pixel-unshuffle their input by 2 and 4 (Real-ESRGAN's RRDBNet), so they
    need sizes divisible by that: the loaded model says so, and odd sizes still upscale.
    (spandrel asks ×2 for multiples of 4, more than the unshuffle needs.)"""
    from ldl_video.archs import RRDBNet

    torch.manual_seed(2)
    net = RRDBNet(scale=scale, num_block=1, num_feat=16).eval()  # spandrel assumes the standard growth of 32
    path = tmp_path / f"rrdb-x{scale}.safetensors"
    from safetensors.torch import save_file

    save_file(net.state_dict(), str(path))
    desc = ModelLoader().load_from_file(path)
    model = load_model(path)
    assert (model.name, model.source, model.arch, model.scale) == (f"rrdb-x{scale}", str(path), "RRDBNet", desc.scale)
    assert model.size_multiple == 4 // scale
    image = np.random.default_rng(3).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    assert Upscaler(model, device="cpu", precision="fp32").upscale(image).shape == (9 * scale, 11 * scale, 3)


def test_weights_that_do_not_fit_the_recognised_network_are_refused(tmp_path: Path) -> None:
    """A checkpoint missing a tensor would otherwise run with random weights in its place."""
    from ldl_video.archs import RRDBNet

    state = RRDBNet(num_block=1, num_feat=8, num_grow_ch=8).state_dict()
    del state["body.0.rdb2.conv3.weight"]
    path = tmp_path / "broken.pth"
    torch.save({"params_ema": state}, path)
    with pytest.raises(LdlError) as caught:
        load_model(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("broken: looks like RRDBNet but the weights do not fit")


def test_missing_and_weightless_files_are_named_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(LdlError, match=r"^checkpoint .*absent\.pth does not exist$"):
        load_model(tmp_path / "absent.pth")
    torch.save({"epoch": 3, "note": "no tensors"}, tmp_path / "empty.pth")
    with pytest.raises(LdlError, match=r"empty\.pth holds no generator weights"):
        load_model(tmp_path / "empty.pth")
