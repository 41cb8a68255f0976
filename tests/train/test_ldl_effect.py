"""benchmarks/ldl_effect.py: its metrics against independent references (scikit-image, numpy
from the paper's equations), the evaluation on two held-out photographs, and the two recipes of
the experiment (a few steps each on tiny crops, differing only in the LDL weight)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from conftest import tiny
from PIL import Image

from ldl_video.train.config import load_config

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import ldl_effect  # noqa: E402

RECIPES = (ROOT / "training" / "ldl_compact_x4.yaml", ROOT / "training" / "ldl_compact_x4_nold.yaml")


def _artifact_energy_reference(sr: np.ndarray, gt: np.ndarray) -> float:
    """The LDL map without its EMA mask, from the paper's equations with numpy: r = sum_c |gt - sr|,
    var(r)^(1/5) (unbiased) times the unbiased variance of r in each 7×7 window (reflect padding)."""
    r = np.abs(gt.astype(np.float64) / 255 - sr.astype(np.float64) / 255).sum(axis=2)
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(r, 3, mode="reflect"), (7, 7))
    local = windows.reshape(*r.shape, 49).var(axis=-1, ddof=1)
    return float((r.var(ddof=1) ** 0.2 * local).mean()) * 1e4


def _pair(seed: int) -> tuple[np.ndarray, np.ndarray]:
    gt = skimage.data.astronaut()[100:164, 150:230]
    rng = np.random.default_rng(seed)
    sr = np.clip(gt.astype(int) + rng.integers(-20, 21, gt.shape) * (rng.random(gt.shape[:2]) < 0.2)[..., None], 0, 255)
    return sr.astype(np.uint8), gt


def test_metrics_match_scikit_image_and_the_papers_equations():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    sr, gt = _pair(1)
    got = ldl_effect.score(sr, gt, scale=4)
    s, g = sr[4:-4, 4:-4].astype(np.float64), gt[4:-4, 4:-4].astype(np.float64)
    assert got["psnr"] == pytest.approx(peak_signal_noise_ratio(g, s, data_range=255), abs=1e-9)
    ssim_options = dict(data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert got["ssim"] == pytest.approx(structural_similarity(g, s, channel_axis=2, **ssim_options), abs=1e-6)
    # Y as BasicSR's rgb2ycbcr: skimage's rgb2ycbcr is the same ITU-R BT.601 transform (studio range)
    from skimage.color import rgb2ycbcr

    y_s, y_g = rgb2ycbcr(s / 255)[..., 0], rgb2ycbcr(g / 255)[..., 0]
    assert got["psnr_y"] == pytest.approx(peak_signal_noise_ratio(y_g, y_s, data_range=255), abs=1e-6)
    assert got["ssim_y"] == pytest.approx(structural_similarity(y_g, y_s, **ssim_options), abs=1e-6)
    assert got["artifact"] == pytest.approx(_artifact_energy_reference(sr, gt), rel=1e-6)


def test_artifact_energy_ranks_scattered_errors_above_a_smooth_offset():
    """What the measure is for: at the same error power, speckled errors (artifacts) score high,
    a smooth tint scores nothing."""
    gt = skimage.data.coffee()[100:196, 200:296]
    speckled = np.clip(gt + np.random.default_rng(3).normal(0, 8, gt.shape), 0, 255).round().astype(np.uint8)
    rms = np.sqrt(np.mean((speckled.astype(float) - gt) ** 2))
    tinted = np.clip(gt.astype(float) + rms, 0, 255).round().astype(np.uint8)
    a, b = ldl_effect.score(speckled, gt, 4), ldl_effect.score(tinted, gt, 4)
    assert abs(a["psnr"] - b["psnr"]) < 1.0
    assert a["artifact"] > 20 * b["artifact"]


@pytest.fixture
def two_photograph_corpus(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    (corpus / "heldout").mkdir(parents=True)
    rows = []
    for name, image in (("chelsea", skimage.data.chelsea()[50:178, 100:260]), ("coffee", skimage.data.coffee()[80:208, 200:328])):
        Image.fromarray(image).save(corpus / "heldout" / f"{name}.png")
        rows.append({"file": f"heldout/{name}.png", "package": "scikit-image", "version": "", "original": name,
                     "licence": "CC0-1.0", "copyright": "", "width": image.shape[1], "height": image.shape[0],
                     "split": "heldout"})
    with (corpus / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return corpus


def test_evaluation_on_two_photographs_writes_table_numbers_and_crop_grid(two_photograph_corpus, tmp_path, capsys):
    out = tmp_path / "eval"
    code = ldl_effect.main(["--corpus", str(two_photograph_corpus), "--device", "cpu", "--out", str(out), "--evaluate",
                            "bicubic=bicubic", "lanczos=lanczos", "--set", "degradation.second.noise_range=[1,2]"])
    assert code == 0
    record = json.loads((out / "ldl_effect.json").read_text())
    results = record["results"]
    assert set(results) == {"bicubic", "realesrgan"}
    for kind in results:
        for label in ("bicubic", "lanczos"):
            per_image = results[kind][label]
            assert set(per_image) == {"chelsea", "coffee", "mean"}
            for key in ("psnr", "psnr_y", "ssim", "artifact"):
                assert per_image["mean"][key] == pytest.approx((per_image["chelsea"][key] + per_image["coffee"][key]) / 2)
    # a clean bicubic LR is easier than Real-ESRGAN's blur, noise and JPEG
    assert results["bicubic"]["lanczos"]["mean"]["psnr_y"] > results["realesrgan"]["lanczos"]["mean"]["psnr_y"]
    # the table shows both models and both degradations
    table = (out / "ldl_effect.md").read_text()
    assert table.count("\n| lanczos | ") == 2 and "artifact energy" in table
    # grid: one row per photograph and degradation; GT, enlarged LR, then each model
    grid = np.asarray(Image.open(out / "ldl_effect_crops.png"))
    tile = ldl_effect.CROP + 4
    assert grid.shape == (4 * tile, 4 * tile, 3)
    chelsea = np.asarray(Image.open(two_photograph_corpus / "heldout" / "chelsea.png"))
    first_gt_tile = grid[2 : tile - 2, 2 : tile - 2]
    # the GT tile is a crop of the photograph itself
    found = any(np.array_equal(first_gt_tile, chelsea[y : y + ldl_effect.CROP, x : x + ldl_effect.CROP])
                for y in range(0, chelsea.shape[0] - ldl_effect.CROP + 1, ldl_effect.CROP // 4)
                for x in range(0, chelsea.shape[1] - ldl_effect.CROP + 1, ldl_effect.CROP // 4))
    assert found


def test_the_two_arms_differ_only_in_the_ldl_weight():
    ldl, nold = (load_config(r, ["data.hr=[x]"]).to_dict() for r in RECIPES)
    assert ldl["losses"]["ldl"] > 0 and nold["losses"]["ldl"] == 0
    for arm in (ldl, nold):
        arm.pop("name")
        arm["losses"].pop("ldl")
    assert ldl == nold
    assert ldl["init"] == "realesr-animevideov3-x4" and ldl["losses"]["perceptual"] == 0  # offline: no VGG19


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_each_recipe_trains_a_few_steps_on_tiny_crops(recipe, image_folder, tmp_path):
    from ldl_video.train.cli import train
    from ldl_video.zoo import load_model

    overrides = [o for o in tiny(tmp_path, recipe.stem, f"data.hr=[{image_folder}]", "train.iterations=2")
                 if not o.startswith("generator.")]
    path = train(str(recipe), overrides)
    trained = load_model(str(path))
    assert type(trained.net).__name__ == "SRVGGNetCompact" and trained.scale == 4
    log = [json.loads(line) for line in (tmp_path / "runs" / recipe.stem / "log.jsonl").read_text().splitlines()]
    terms = set().union(*log)
    assert ("l_ldl" in terms) == ("nold" not in recipe.stem)
    assert {"l_pix", "l_g_gan"} <= terms and "l_percep" not in terms


def test_finetune_recipe_without_vgg_weights_switches_to_the_offline_recipe(tmp_path, monkeypatch):
    import torch

    finetune = ROOT / "training" / "finetune.yaml"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    said = []
    config = load_config(finetune, ["data.hr=[x]"], say=said.append)
    assert config.losses.perceptual == 0 and config.losses.pixel == 1.0 and config.losses.pixel_target == "gt"
    assert len(said) == 1 and "VGG19 weights not found" in said[0]
    # the user's --set still wins over the fallback
    assert load_config(finetune, ["data.hr=[x]", "losses.pixel=0.5"]).losses.pixel == 0.5
    # with the weights in torch's hub cache, the recipe's own (paper) weights stay
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    (tmp_path / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth").write_bytes(b"")
    said.clear()
    config = load_config(finetune, ["data.hr=[x]"], say=said.append)
    assert config.losses.perceptual == 1.0 and config.losses.pixel == 1.0e-2 and said == []
