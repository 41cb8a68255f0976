"""`ldl-train prepare`: the paper's data layout (Real-ESRGAN's generate_multiscale_DF2K.py,
extract_subimages.py --crop_size 400 --step 200, generate_meta_info.py) on a few real photographs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ldl_video.train.cli import main
from ldl_video.train.config import load_config
from ldl_video.train.data import find_sources, training_dataset

RECIPES = Path(__file__).resolve().parents[2] / "training"


def _official_windows(length: int, crop: int = 400, step: int = 200) -> list[int]:
    """extract_subimages.py: np.arange(0, h - crop + 1, step), plus h - crop when the last window
    stops short of the edge (thresh_size 0)."""
    starts = list(np.arange(0, length - crop + 1, step))
    if length - (starts[-1] + crop) > 0:
        starts.append(length - crop)
    return [int(s) for s in starts]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    import skimage.data

    root = tmp_path_factory.mktemp("prepare")
    div2k, ost = root / "DIV2K_train_HR", root / "OST" / "animal"
    div2k.mkdir()
    ost.mkdir(parents=True)
    images = {"0001": skimage.data.astronaut(), "0002": skimage.data.coffee()}  # 512×512, 600×400
    for name, image in images.items():
        Image.fromarray(image).save(div2k / f"{name}.png")
    Image.fromarray(skimage.data.chelsea()).save(ost / "cat.png")  # 451×300: narrower than a sub-image
    out = root / "datasets" / "DF2K"
    assert main(["prepare", str(out), "--div2k", str(div2k), "--ost", str(root / "OST"), "--workers", "2"]) == 0
    return out, {**images, "cat": skimage.data.chelsea()}


def test_sub_images_are_400px_windows_of_the_originals(prepared):
    out, images = prepared
    astronaut = images["0001"]
    subs = sorted((out / "DF2K_HR_sub").glob("0001_s*.png"))
    rows, cols = _official_windows(512), _official_windows(512)
    assert rows == [0, 112] and len(subs) == len(rows) * len(cols)
    for index, (top, left) in enumerate([(t, left) for t in rows for left in cols], 1):
        sub = np.asarray(Image.open(out / "DF2K_HR_sub" / f"0001_s{index:03d}.png"))
        np.testing.assert_array_equal(sub, astronaut[top : top + 400, left : left + 400])
    coffee = sorted((out / "DF2K_HR_sub").glob("0002_s*.png"))
    assert len(coffee) == len(_official_windows(400)) * len(_official_windows(600)) == 2  # 600 = 0..400, 200..600


def test_multiscale_copies_as_generate_multiscale_df2k(prepared):
    out, images = prepared
    source = Image.fromarray(images["0002"])  # 600×400
    sizes = {"T0": (450, 300), "T1": (300, 200), "T2": (200, 133), "T3": (600, 400)}  # 0.75, 1/2, 1/3, shortest edge 400
    for tag, (width, height) in sizes.items():
        subs = sorted((out / "DF2K_multiscale_sub").glob(f"0002{tag}_s*.png"))
        expected = np.asarray(source.resize((width, height), Image.LANCZOS))
        # a side shorter than 400 px is kept whole (extract_subimages.py cannot cut it)
        rows = _official_windows(height) if height >= 400 else [0]
        cols = _official_windows(width) if width >= 400 else [0]
        assert len(subs) == len(rows) * len(cols), tag
        for sub, (top, left) in zip(subs, [(t, left) for t in rows for left in cols], strict=True):
            np.testing.assert_array_equal(np.asarray(Image.open(sub)), expected[top : top + 400, left : left + 400])


def test_meta_info_list_feeds_the_realworld_recipe(prepared):
    out, _ = prepared
    meta = out / "meta_info" / "meta_info_DF2Kmultiscale+OST_sub.txt"
    lines = meta.read_text(encoding="utf-8").splitlines()
    on_disk = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert sorted(lines) == on_disk and "OST_sub/animal/cat_s001.png" in lines
    folders = [line.split("/")[0] for line in lines]
    assert folders == sorted(folders, key=["DF2K_HR_sub", "DF2K_multiscale_sub", "OST_sub"].index)  # one folder after another
    assert not list(out.glob(".prepare-*"))
    config = load_config(RECIPES / "paper_realworld_rrdb_x4.yaml", [f"data.hr={meta}"])
    assert len(find_sources(config.data.hr)) == len(lines)
    crop = training_dataset(config)[(lines.index("OST_sub/animal/cat_s001.png"), 0)]["gt"]
    assert crop.shape == (3, 400, 400)  # the 451×300 cat, padded to the 400 px source crop


def test_existing_output_is_refused_and_left_alone(prepared, tmp_path, capsys):
    out, _ = prepared
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    source = tmp_path / "hr"
    source.mkdir()
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(source / "x.png")
    assert main(["prepare", str(out), "--hr", str(source), "--no-multiscale"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "already exist" in err
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert main(["prepare", str(tmp_path / "o"), "--hr", str(tmp_path / "missing")]) == 1
    assert "is not a folder" in capsys.readouterr().err and not (tmp_path / "o" / "DF2K_HR_sub").exists()


def test_bicubic_pairs_for_the_synthetic_recipe(tmp_path):
    """--bicubic 4: HR cropped to a multiple of 12 (HRmod12), 480 px sub-images every 240 px, and
    the same windows of its bicubic ×1/4 (LRbicx4), which the synthetic recipe reads as pairs."""
    import skimage.data

    source = tmp_path / "DIV2K_train_HR"
    source.mkdir()
    rocket = skimage.data.rocket()  # 427×640
    Image.fromarray(rocket).save(source / "0001.png")
    out = tmp_path / "DF2K"
    assert main(["prepare", str(out), "--div2k", str(source), "--bicubic", "4", "--workers", "1"]) == 0
    hr_mod = rocket[:420, :636]  # 427 -> 420, 640 -> 636
    rows, cols = [0], _official_windows(636, 480, 240)  # 420 px tall: kept whole that way
    hr_subs = sorted((out / "DF2K_HRmod12_sub").glob("*.png"))
    lr_subs = sorted((out / "DF2K_LRbicx4_sub").glob("*.png"))
    assert [p.name for p in hr_subs] == [p.name for p in lr_subs] == [f"0001_s{i:03d}.png" for i in (1, 2)]
    assert cols == [0, 156]
    lr_reference = np.asarray(Image.fromarray(hr_mod).resize((159, 105), Image.BICUBIC)).astype(int)  # Pillow: Keys -0.5
    for sub_hr, sub_lr, left in zip(hr_subs, lr_subs, cols, strict=True):
        np.testing.assert_array_equal(np.asarray(Image.open(sub_hr)), hr_mod[rows[0] : 480, left : left + 480])
        lr = np.asarray(Image.open(sub_lr)).astype(int)
        assert lr.shape == (105, 120, 3)
        diff = np.abs(lr - lr_reference[:, left // 4 : left // 4 + 120])[4:-4, 4:-4]  # borders: edge handling differs
        assert diff.max() <= 2 and diff.mean() < 0.5
    config = load_config(RECIPES / "paper_synthetic_rrdb_x4.yaml",
                         [f"data.hr={out / 'DF2K_HRmod12_sub'}", f"data.lr={out / 'DF2K_LRbicx4_sub'}"])
    pair = training_dataset(config)[(0, 0)]
    assert pair["gt"].shape == (3, 128, 128) and pair["lq"].shape == (3, 32, 32)
