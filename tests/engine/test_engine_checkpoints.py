"""Checkpoints: the BasicSR layout round-trips, architectures are recognised from the keys,
other tools' readers (spandrel) accept what we write, and unsafe files are refused."""

from __future__ import annotations

import importlib
import os
import pickle

import pytest
import torch

from ldl_video import LdlError, load_model, save_checkpoint
from ldl_video.archs import MSRResNet, RRDBNet, SRVGGNetCompact
from ldl_video.checkpoints import load_checkpoint, model_from_state_dict, read_state_dict

NETWORKS = {
    "rrdb-x4": (lambda: RRDBNet(num_block=2, num_feat=16, num_grow_ch=8), 4),
    "rrdb-x2": (lambda: RRDBNet(scale=2, num_block=1, num_feat=16, num_grow_ch=8), 2),
    "rrdb-x1": (lambda: RRDBNet(scale=1, num_block=1, num_feat=16, num_grow_ch=8), 1),
    "srvgg-x4": (lambda: SRVGGNetCompact(num_feat=16, num_conv=4, upscale=4), 4),
    "srvgg-x2": (lambda: SRVGGNetCompact(num_feat=8, num_conv=2, upscale=2), 2),
    "msrresnet-x4": (lambda: MSRResNet(num_feat=16, num_block=2, upscale=4), 4),
    "msrresnet-x3": (lambda: MSRResNet(num_feat=16, num_block=2, upscale=3), 3),
    "msrresnet-x2": (lambda: MSRResNet(num_feat=16, num_block=2, upscale=2), 2),
}


def _randomised(net: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.05)
    return net.eval()


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
@pytest.mark.parametrize("kind", list(NETWORKS))
def test_round_trip_recognises_architecture_and_scale(kind: str, suffix: str, tmp_path) -> None:
    build, scale = NETWORKS[kind]
    net = _randomised(build())
    path = save_checkpoint(net, tmp_path / f"net_g{suffix}")
    model = load_checkpoint(path)
    assert model.scale == scale
    assert model.arch == type(net).__name__
    x = torch.rand(1, 3, 12, 16)
    with torch.inference_mode():
        assert torch.equal(model.net(x), net(x))
        assert model.net(x).shape[-2:] == (12 * scale, 16 * scale)


def test_pth_uses_basicsr_layout(tmp_path) -> None:
    net = _randomised(NETWORKS["rrdb-x4"][0]())
    save_checkpoint(net, tmp_path / "g.pth")
    raw = torch.load(tmp_path / "g.pth", weights_only=True)
    assert list(raw) == ["params_ema"]
    assert {"conv_first.weight", "body.0.rdb1.conv1.weight", "conv_body.weight", "conv_up1.weight",
            "conv_up2.weight", "conv_hr.weight", "conv_last.weight"} <= set(raw["params_ema"])


def test_params_and_module_prefix_are_read(tmp_path) -> None:
    net = _randomised(NETWORKS["srvgg-x4"][0]())
    state = {f"module.{k}": v for k, v in net.state_dict().items()}
    torch.save({"params": state, "iter": 5}, tmp_path / "ddp.pth")
    assert read_state_dict(tmp_path / "ddp.pth").keys() == net.state_dict().keys()
    torch.save({"params": {}, "params_ema": net.state_dict()}, tmp_path / "both.pth")
    assert torch.equal(read_state_dict(tmp_path / "both.pth")["body.0.weight"], net.state_dict()["body.0.weight"])


@pytest.mark.parametrize(
    ("build", "scale"),
    [
        (lambda: RRDBNet(num_block=1), 4),  # spandrel assumes the standard growth of 32
        (lambda: RRDBNet(scale=2, num_block=1), 2),
        (NETWORKS["srvgg-x4"][0], 4),
    ],
    ids=["rrdb-x4", "rrdb-x2", "srvgg-x4"],
)
def test_spandrel_reads_what_we_write(build, scale: int, tmp_path) -> None:
    from spandrel import ModelLoader

    net = _randomised(build())
    save_checkpoint(net, tmp_path / "g.pth")
    desc = ModelLoader().load_from_file(tmp_path / "g.pth")
    assert desc.scale == scale
    x = torch.rand(1, 3, 8, 8)
    with torch.inference_mode():
        assert torch.allclose(desc.model.eval()(x), net(x), atol=1e-6)


def test_swinir_checkpoint_loads_through_spandrel(tmp_path) -> None:
    arch = importlib.import_module("spandrel.architectures.SwinIR.__arch.SwinIR")
    net = arch.SwinIR(upscale=2, img_size=16, window_size=4, embed_dim=12, depths=[1], num_heads=[2],
                      mlp_ratio=2, upsampler="pixelshuffle", resi_connection="1conv", img_range=1.0).eval()
    torch.save({"params": net.state_dict()}, tmp_path / "net_g_SwinIR.pth")
    model = load_model(tmp_path / "net_g_SwinIR.pth")
    assert (model.arch, model.scale) == ("SwinIR", 2)
    x = torch.rand(1, 3, 16, 16)
    with torch.inference_mode():
        assert torch.allclose(model.net(x), net(x), atol=1e-5)


def test_pickle_that_runs_code_is_refused_and_never_runs(tmp_path) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"params": Payload()}))
    with pytest.raises(LdlError, match="would need to run code"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["junk.pth", "junk.safetensors"])
def test_non_checkpoint_files_get_a_clear_error(name: str, tmp_path) -> None:
    path = tmp_path / name
    path.write_text("this is not a checkpoint\n")
    with pytest.raises(LdlError, match="not a"):
        load_checkpoint(path)


def test_unknown_architecture_is_named_as_such() -> None:
    with pytest.raises(LdlError, match="no known"):
        model_from_state_dict({"foo.weight": torch.zeros(3, 3)}, "mystery")


def test_zoo_model_saves_and_reloads_identically(tmp_path) -> None:
    model = load_model("realesr-animevideov3-x2")
    save_checkpoint(model, tmp_path / "anime.safetensors")
    again = load_model(tmp_path / "anime.safetensors")
    assert again.arch == "SRVGGNetCompact" and again.scale == 4  # the ×4 network; the ×0.5 shrink is the zoo's
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True))


def test_a_failed_save_leaves_nothing_behind(tmp_path) -> None:
    net = _randomised(NETWORKS["srvgg-x2"][0]())
    tied = {"a": torch.zeros(4), "b": None}
    tied["b"] = tied["a"]  # safetensors refuses tensors that share memory

    class Shared(torch.nn.Module):
        def state_dict(self):
            return tied

    with pytest.raises(RuntimeError, match="share memory"):
        save_checkpoint(Shared(), tmp_path / "bad.safetensors")
    assert list(tmp_path.iterdir()) == []
    save_checkpoint(net, tmp_path / "good.pth")
    assert [p.name for p in tmp_path.iterdir()] == ["good.pth"]
