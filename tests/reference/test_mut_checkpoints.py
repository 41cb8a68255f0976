"""Checkpoints of architectures this project does not build itself go through spandrel; what the
loaded model says about itself (name, file, scale, size multiple, half precisions) is what
spandrel's own descriptor says, and the Upscaler runs it to the network's own output. A network
that is not RGB→RGB is refused in one line. Mutation testing found these unpinned."""

from __future__ import annotations

import importlib
import pickle
import re
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


# ---- networks of other channel counts, through our own builders -----------------------------


def _gray_networks() -> dict[str, torch.nn.Module]:
    from ldl_video.archs import MSRResNet, RRDBNet, SRVGGNetCompact

    return {
        "gray-rrdb-x4": RRDBNet(num_in_ch=1, num_out_ch=1, scale=4, num_block=1, num_feat=8, num_grow_ch=8),
        "gray-rrdb-x2": RRDBNet(num_in_ch=1, num_out_ch=1, scale=2, num_block=1, num_feat=8, num_grow_ch=8),
        "gray-rrdb-x1": RRDBNet(num_in_ch=1, num_out_ch=1, scale=1, num_block=1, num_feat=8, num_grow_ch=8),
        "gray-msrresnet-x2": MSRResNet(num_in_ch=1, num_out_ch=1, num_feat=8, num_block=1, upscale=2),
        "gray-compact-x2": SRVGGNetCompact(num_in_ch=1, num_out_ch=1, num_feat=8, num_conv=2, upscale=2),
    }


@pytest.mark.parametrize("name", list(_gray_networks()))
def test_a_gray_network_of_our_own_architectures_is_refused_in_one_line(name: str, tmp_path: Path) -> None:
    """A one-channel RRDBNet (×4, and ×2/×1 whose pixel-unshuffle makes 4 and 16 input channels),
    MSRResNet or compact network is recognised as the 1→1 network it is and refused at load, as
    spandrel's architectures are, instead of failing inside the first tile with a convolution
    error (the Upscaler feeds RGB)."""
    path = tmp_path / f"{name}.pth"
    torch.save({"params_ema": _gray_networks()[name].state_dict()}, path)
    with pytest.raises(LdlError) as caught:
        load_model(path)
    assert str(caught.value) == f"{name}: only RGB→RGB networks are supported, this one is 1→1"


def _aurasr() -> torch.nn.Module:
    """A tiny AuraSR (GigaGAN upsampler): spandrel needs sizes that are multiples of 8 and runs
    it in fp32 only."""
    arch = importlib.import_module("spandrel.architectures.AuraSR.__arch.aura_sr")
    torch.manual_seed(4)
    return arch.UnetUpsampler(
        dim=8, image_size=None, input_image_size=None, init_dim=8, style_network={"dim_in": 8, "dim_out": 32, "depth": 1},
        up_dim_mults=(1, 1, 1, 1, 1), down_dim_mults=(1, 1, 1), full_attn=(False,) * 5, self_attn_dim_head=8,
        attn_depths=(1,) * 5, mid_attn_depth=1, num_conv_kernels=2, skip_connect_scale=0.4).eval()


def _aurasr_file(tmp_path: Path) -> tuple[torch.nn.Module, Path]:
    from safetensors.torch import save_file

    net = _aurasr()
    save_file(net.state_dict(), str(tmp_path / "aura.safetensors"))
    return net, tmp_path / "aura.safetensors"


def test_a_spandrel_model_with_size_and_precision_limits_keeps_them(tmp_path: Path) -> None:
    """SwinIR (above) has spandrel's defaults; AuraSR needs sizes divisible by 8 and supports
    neither fp16 nor bf16: the loaded model says so as spandrel's descriptor does."""
    net, path = _aurasr_file(tmp_path)
    desc = ModelLoader().load_from_file(path)
    assert desc.size_requirements.multiple_of == 8 and not desc.supports_bfloat16  # what the test relies on
    model = load_model(path)
    assert (model.arch, model.scale, model.size_multiple) == ("AuraSR", desc.scale, desc.size_requirements.multiple_of)
    assert (model.supports_fp16, model.supports_bf16) == (desc.supports_half, desc.supports_bfloat16)
    assert all(torch.equal(a, b) for a, b in zip(model.net.state_dict().values(), net.state_dict().values(), strict=True))


def test_aurasr_upscales_as_spandrel_runs_it(tmp_path: Path) -> None:
    """A network with 5-D weights (AuraSR's modulated kernels), which torch cannot lay out
    channels_last: it runs in its own layout and gives what spandrel's own model gives (the
    network draws noise, so both runs start from the same seed)."""
    _, path = _aurasr_file(tmp_path)
    image = np.random.default_rng(3).random((16, 24, 3), dtype=np.float32)
    upscaler = Upscaler(load_model(path), device="cpu", precision="fp32", tile=0)
    torch.manual_seed(0)
    out = upscaler.upscale(image)
    desc = ModelLoader().load_from_file(path)
    torch.manual_seed(0)
    with torch.no_grad():
        expected = desc.model.eval()(torch.from_numpy(image).permute(2, 0, 1)[None]).clamp(0, 1)[0].permute(1, 2, 0)
    assert out.shape == (64, 96, 3)
    np.testing.assert_allclose(out, expected.numpy(), atol=1e-4)


# ---- what the refusals say -------------------------------------------------------------------


def test_a_file_that_is_not_a_checkpoint_says_so(tmp_path: Path) -> None:
    """An image or text file named .pth, or an empty one, which torch.load refuses: "not a
    PyTorch checkpoint", never the warning about Python objects (torch's weights-only loader
    raises the same exception for them as for a pickle of objects) and never a crash."""
    import shutil

    shutil.copy(Path(__file__).parent / "data" / "input-64.png", tmp_path / "photo.pth")
    (tmp_path / "notes.pth").write_text("epoch 12, loss 0.031\n" * 4)
    (tmp_path / "empty.pth").write_bytes(b"")
    for name in ("photo.pth", "notes.pth", "empty.pth"):
        with pytest.raises(Exception):  # noqa: B017 -- torch itself refuses each (its exception types vary)
            torch.load(tmp_path / name, weights_only=True)
        with pytest.raises(LdlError) as caught:
            load_model(tmp_path / name)
        message = str(caught.value)
        assert "\n" not in message and message.startswith(f"{tmp_path / name} is not a PyTorch checkpoint ("), message
        assert "weights_only" not in message and "Python objects" not in message


def test_a_checkpoint_cut_short_gets_torchs_reason(tmp_path: Path) -> None:
    """A torch.save file cut in half (an interrupted copy): torch's own reason, in one line."""
    torch.save({"params_ema": {"w": torch.arange(4096.0)}}, tmp_path / "whole.pth")
    data = (tmp_path / "whole.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(Exception) as raw:
        torch.load(tmp_path / "cut.pth", weights_only=True)
    with pytest.raises(LdlError) as caught:
        load_model(tmp_path / "cut.pth")
    assert str(caught.value) == f"{tmp_path / 'cut.pth'} is not a PyTorch checkpoint ({str(raw.value).splitlines()[0]})"


def test_a_pickle_with_objects_says_how_to_re_save_it(tmp_path: Path) -> None:
    """A full training checkpoint (optimiser, config objects) needs code to load: the refusal
    says what to do about it."""
    import argparse

    torch.save({"params_ema": {"w": torch.zeros(2)}, "args": argparse.Namespace(lr=1e-4)}, tmp_path / "full.pth")
    with pytest.raises(pickle.UnpicklingError):  # torch's own weights-only loader refuses it
        torch.load(tmp_path / "full.pth", weights_only=True)
    with pytest.raises(LdlError) as caught:
        load_model(tmp_path / "full.pth")
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'full.pth'} holds Python objects")
    assert re.search(r"; re-save it as a plain state dict or \.safetensors$", message), message


def test_a_damaged_safetensors_file_gets_safetensors_reason(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    save_file({"w": torch.arange(256.0)}, str(tmp_path / "whole.safetensors"))
    data = (tmp_path / "whole.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(Exception) as raw:
        load_file(str(tmp_path / "cut.safetensors"))
    with pytest.raises(LdlError) as caught:
        load_model(tmp_path / "cut.safetensors")
    assert str(caught.value) == f"{tmp_path / 'cut.safetensors'} is not a readable .safetensors file ({raw.value})"


def test_weights_that_do_not_fit_name_the_key_torch_names(tmp_path: Path) -> None:
    """The reason is torch's own line naming the key (its first line is only a header)."""
    from ldl_video.archs import RRDBNet

    state = RRDBNet(num_block=1, num_feat=8, num_grow_ch=8).state_dict()
    del state["body.0.rdb2.conv3.weight"]
    with pytest.raises(RuntimeError) as raw:
        RRDBNet(num_block=1, num_feat=8, num_grow_ch=8).load_state_dict(state)
    torch_line = str(raw.value).splitlines()[1].strip()
    assert "body.0.rdb2.conv3.weight" in torch_line
    torch.save({"params_ema": state}, tmp_path / "broken.pth")
    with pytest.raises(LdlError) as caught:
        load_model(tmp_path / "broken.pth")
    assert str(caught.value) == f"broken: looks like RRDBNet but the weights do not fit ({torch_line})"


def test_a_long_reason_is_cut_to_one_short_line(tmp_path: Path) -> None:
    """Many missing keys make torch's line thousands of characters long: the one-line message
    keeps its first 199 and an ellipsis."""
    from ldl_video.archs import RRDBNet

    state = RRDBNet(num_block=1, num_feat=8, num_grow_ch=8).state_dict()
    for key in [k for k in state if k.startswith(("body.0.rdb2.", "body.0.rdb3."))]:
        del state[key]
    with pytest.raises(RuntimeError) as raw:
        RRDBNet(num_block=1, num_feat=8, num_grow_ch=8).load_state_dict(state)
    torch_line = str(raw.value).splitlines()[1].strip()
    assert len(torch_line) > 400  # what the test relies on
    torch.save({"params_ema": state}, tmp_path / "half.pth")
    with pytest.raises(LdlError) as caught:
        load_model(tmp_path / "half.pth")
    assert str(caught.value) == f"half: looks like RRDBNet but the weights do not fit ({torch_line[:199]}…)"


def test_a_nested_wrapper_without_weights_names_the_file(tmp_path: Path) -> None:
    torch.save({"params_ema": {"step": 3}}, tmp_path / "hollow.pth")
    with pytest.raises(LdlError, match=r"^.*hollow\.pth holds no generator weights"):
        load_model(tmp_path / "hollow.pth")


def test_saving_classical_resampling_is_refused_by_name(tmp_path: Path) -> None:
    from ldl_video import save_checkpoint

    with pytest.raises(LdlError, match=r"^bicubic .*no weights to save$"):
        save_checkpoint(load_model("bicubic", scale=2), tmp_path / "bicubic.pth")
    assert not (tmp_path / "bicubic.pth").exists()
