"""The paper recipes against the official files (csjliang/LDL options/train/LDL/train_Synthetic_LDL.yml
and train_Realworld_LDL.yml): learning-rate schedule, precision, and which flips and turns the
training crops get."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ldl_video.images import write_image
from ldl_video.train.config import load_config
from ldl_video.train.data import training_dataset
from ldl_video.train.loop import Trainer, resolve_train_precision

RECIPES = Path(__file__).resolve().parents[2] / "training"


def _our_lr(config, iteration: int) -> float:
    """The learning rate the trainer sets at `iteration` (counted from 1, as in its loop)."""
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    trainer = SimpleNamespace(config=config, iteration=iteration, opt_g=opt, opt_d=None)
    Trainer._set_lr(trainer)
    return opt.param_groups[0]["lr"]


def _basicsr_lr(lr: float, milestones: list[int], gamma: float, iteration: int) -> float:
    """BasicSR's train loop calls scheduler.step() before every iteration but the first, and its
    MultiStepRestartLR multiplies by gamma when last_epoch reaches a milestone: iteration i runs
    with gamma to the power of the milestones below i."""
    return lr * gamma ** sum(1 for m in milestones if m <= iteration - 1)


def test_synthetic_schedule_is_the_official_constant_rate():
    config = load_config(RECIPES / "paper_synthetic_rrdb_x4.yaml")
    for it in (1, 50_001, 100_001, 200_001, 300_000):
        official = _basicsr_lr(1e-4, [300000], 1.0, it)  # the official scheduler block
        assert official == 1e-4 and _our_lr(config, it) == pytest.approx(official, rel=1e-12), it


def test_realworld_schedule_matches_the_official_one():
    config = load_config(RECIPES / "paper_realworld_rrdb_x4.yaml")
    for it in (1, 200_000, 400_000, 400_001):
        assert _our_lr(config, it) == pytest.approx(_basicsr_lr(1e-4, [400000], 0.5, it), rel=1e-12), it


@pytest.mark.parametrize("name", ["paper_realworld_rrdb_x4", "paper_synthetic_rrdb_x4"])
def test_paper_recipes_train_in_fp32(name):
    config = load_config(RECIPES / f"{name}.yaml")
    assert config.train.precision == "fp32"
    # also on a GPU with bf16, where `auto` would pick bf16 autocast
    assert resolve_train_precision(config.train.precision, torch.device("cuda")) == torch.float32


def _orientations(config, count: int) -> dict[str, int]:
    """How often each of the eight 90° turns / mirror images comes out of the recipe's dataset."""
    data = training_dataset(config)
    first = data[(0, 0)]["gt"]
    ident = _read_back(config.data.hr[0])
    variants = {}
    for k in range(4):
        turned = np.rot90(ident, k, axes=(1, 2))
        variants[f"rot{90 * k}"] = turned
        variants[f"rot{90 * k}+hflip"] = turned[:, :, ::-1]
    assert first.shape[-1] == ident.shape[-1]
    counts: dict[str, int] = {}
    for epoch in range(count):
        crop = data[(0, epoch)]["gt"].numpy()
        name = next(n for n, v in variants.items() if v.shape == crop.shape and np.array_equal(v, crop))
        counts[name] = counts.get(name, 0) + 1
    return counts


def _read_back(folder: str) -> np.ndarray:
    from ldl_video.images import read_image

    image = read_image(next(Path(folder).glob("*.png")))
    return image.transpose(2, 0, 1).astype(np.float32) / 65535


def _asymmetric(folder: Path, size: int) -> None:
    """A 16-bit image in which every pixel differs, so each turn and flip is recognisable."""
    folder.mkdir(parents=True, exist_ok=True)
    values = np.arange(size * size * 3, dtype=np.uint16).reshape(size, size, 3) * 7 % 65521
    write_image(folder / "a.png", values.astype(np.uint16))


def test_realworld_and_finetune_recipes_flip_horizontally_only(tmp_path):
    _asymmetric(tmp_path / "hr", 64)
    for name in ("paper_realworld_rrdb_x4", "finetune"):
        config = load_config(RECIPES / f"{name}.yaml", [f"data.hr={tmp_path / 'hr'}", "degradation.source_size=0",
                                                           "data.gt_size=64", "val.hr=[]"])
        counts = _orientations(config, 200)
        assert set(counts) == {"rot0", "rot0+hflip"}, (name, counts)  # use_hflip True, use_rot False
        assert 70 <= counts["rot0+hflip"] <= 130, (name, counts)


def test_synthetic_recipe_uses_all_eight_orientations(tmp_path):
    _asymmetric(tmp_path / "hr", 64)
    lr = tmp_path / "lr"
    lr.mkdir()
    write_image(lr / "a.png", np.zeros((16, 16, 3), np.uint16))
    config = load_config(RECIPES / "paper_synthetic_rrdb_x4.yaml", [f"data.hr={tmp_path / 'hr'}", f"data.lr={lr}",
                                                                       "data.gt_size=64", "discriminator.arch=unet"])
    counts = _orientations(config, 400)
    assert len(counts) == 8 and min(counts.values()) >= 25, counts  # use_flip and use_rot: the dihedral group
