"""Recipes load, --set overrides apply with types, and bad recipes get one-line messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from ldl_video.errors import LdlError
from ldl_video.train.config import load_config

RECIPES = Path(__file__).resolve().parents[2] / "training"


@pytest.mark.parametrize("name", ["paper_realworld_rrdb_x4", "paper_synthetic_rrdb_x4", "smoke"])
def test_shipped_recipes_load(name):
    config = load_config(RECIPES / f"{name}.yaml")
    assert config.name == name and config.train.ema_decay == 0.999 and config.losses.ldl == 1.0


def test_paper_numbers():
    real = load_config(RECIPES / "paper_realworld_rrdb_x4.yaml")
    assert (real.losses.gan, real.losses.gan_type, real.discriminator.arch) == (0.1, "vanilla", "unet")
    assert (real.losses.pixel, real.losses.pixel_target, real.losses.perceptual_target) == (0.01, "usm", "usm")
    assert (real.data.gt_size, real.data.batch_size, real.degradation.queue_size, real.train.iterations) == (256, 4, 180, 400000)
    assert real.degradation.first.kernel_prob == [0.45, 0.25, 0.12, 0.03, 0.12, 0.03]
    assert real.degradation.second.blur_prob == 0.8 and real.degradation.final_sinc_prob == 0.8
    synth = load_config(RECIPES / "paper_synthetic_rrdb_x4.yaml")
    assert (synth.losses.gan, synth.losses.gan_type, synth.discriminator.arch) == (0.005, "ragan", "vgg128")
    assert (synth.data.gt_size, synth.data.batch_size, synth.train.iterations) == (128, 16, 300000)
    assert synth.losses.perceptual_layers == {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0}
    assert synth.optim.betas == [0.9, 0.99] and synth.optim.lr_g == 1e-4


def test_finetune_needs_data_and_says_how():
    with pytest.raises(LdlError, match=r"data.hr is empty.*--set data.hr="):
        load_config(RECIPES / "finetune.yaml")
    config = load_config(RECIPES / "finetune.yaml", ["data.hr=/my/frames", "init=realesr-animevideov3-x4"])
    assert config.data.hr == ["/my/frames"] and config.init == "realesr-animevideov3-x4"


def test_overrides_are_typed():
    config = load_config(RECIPES / "smoke.yaml", ["optim.lr_g=1e-4", "train.iterations=10", "data.hflip=false",
                                                  "degradation.second.noise_range=[2, 20]", "init=null"])
    assert config.optim.lr_g == 1e-4 and isinstance(config.optim.lr_g, float)
    assert config.train.iterations == 10 and config.data.hflip is False
    assert config.degradation.second.noise_range == [2.0, 20.0] and config.init is None


@pytest.mark.parametrize("override, message", [
    ("losses.gan=abc", "losses.gan must be a number"),
    ("data.hrr=x", "unknown key data.hrr (did you mean data.hr?)"),
    ("data.gt_size=50", "data.gt_size must be a multiple of 16"),
    ("discriminator.arch=vgg128", "set data.gt_size=128"),
    ("degradation.first.kernel_prob=[0.5, 0.5]", "adding up to 1"),
    ("degradation.queue_size=6", "multiple of data.batch_size"),
    ("train.precision=fp8", "choose one of auto, fp32, bf16, fp16"),
    ("train.ema_decay=1.5", "train.ema_decay must be in [0, 1)"),
    ("losses.gan_type=wgan", "choose one of vanilla, ragan"),
    ("discriminator.arch=none", "losses.gan is above 0"),
    ("name=a/b", "plain folder name"),
    ("scale=8", "scale must be 2, 3 or 4"),
    ("degradation.first.jpeg_range=[90, 30]", "low <= high"),
])
def test_bad_values_say_which_key(override, message):
    with pytest.raises(LdlError) as info:
        load_config(RECIPES / "smoke.yaml", [override])
    text = str(info.value)
    assert message in text and "\n" not in text


def test_bad_yaml_and_missing_recipe(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(LdlError, match="not valid YAML at line"):
        load_config(bad)
    with pytest.raises(LdlError, match="does not exist"):
        load_config(tmp_path / "none.yaml")
