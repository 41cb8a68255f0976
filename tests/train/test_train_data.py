"""Data sources and normalisation: folders, 16-bit and gray images, videos, paired crops, and
one-line errors for bad folders and small images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ldl_video.errors import LdlError
from ldl_video.images import write_image
from ldl_video.train.data import HRDataset, PairedDataset, ResumableSampler, find_sources, to_rgb_float


def test_normalisation_of_8_16_bit_gray_and_float():
    gray16 = np.array([[0, 65535], [32768, 1000]], dtype=np.uint16)[..., None]
    out = to_rgb_float(gray16)
    assert out.shape == (3, 2, 2) and out.dtype == torch.float32
    assert float(out[0, 0, 1]) == 1.0 and torch.equal(out[0], out[2])
    rgba8 = np.full((2, 2, 4), 255, dtype=np.uint8)
    assert to_rgb_float(rgba8).shape == (3, 2, 2)
    assert float(to_rgb_float(np.full((1, 1, 3), 2.0, dtype=np.float32)).max()) == 1.0
    dim12 = np.linspace(100, 4000, 1000).astype(np.uint16).reshape(10, 100, 1)  # 12-bit data in a 16-bit file
    spread = to_rgb_float(dim12, "percentile", (0.0, 100.0))
    assert float(spread.min()) == 0.0 and float(spread.max()) == 1.0
    assert float(to_rgb_float(dim12).max()) < 0.07


def test_folders_16bit_and_gray_files(tmp_path):
    (tmp_path / "sub").mkdir()
    write_image(tmp_path / "a.png", np.full((40, 40, 3), 200, np.uint8))
    write_image(tmp_path / "sub" / "b.tif", np.full((40, 40), 30000, np.uint16))
    sources = find_sources([str(tmp_path)])
    assert [Path(s.path).name for s in sources] == ["a.png", "b.tif"]
    data = HRDataset(sources, 32, seed=0)
    a, b = data[(0, 0)]["gt"], data[(1, 0)]["gt"]
    assert a.shape == b.shape == (3, 32, 32)
    assert abs(float(a.mean()) - 200 / 255) < 1e-6 and abs(float(b.mean()) - 30000 / 65535) < 1e-6


def test_same_sample_for_same_epoch_and_index(image_folder):
    data = HRDataset(find_sources([str(image_folder)]), 32, seed=3)
    assert torch.equal(data[(2, 5)]["gt"], data[(2, 5)]["gt"])
    assert not torch.equal(data[(2, 5)]["gt"], data[(2, 6)]["gt"])


def test_video_frames_are_sources(tmp_path):
    import av

    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width = stream.height = 48
        stream.pix_fmt = "yuv420p"
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((48, 48, 3), i * 25, np.uint8), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    sources = find_sources([str(tmp_path)], video_step=3)
    assert len(sources) == 4 and all(s.kind == "video" for s in sources)
    data = HRDataset(sources, 32, seed=0, hflip=False, rotate=False)
    levels = [float(data[(i, 0)]["gt"].mean()) * 255 for i in range(4)]
    assert levels == sorted(levels) and abs(levels[-1] - 225) < 6  # frames 0, 3, 6, 9 in order


def test_paired_crops_line_up(tmp_path):
    hr_dir, lr_dir = tmp_path / "hr", tmp_path / "lr"
    hr_dir.mkdir(), lr_dir.mkdir()
    rng = np.random.default_rng(0)
    lr = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    hr = np.repeat(np.repeat(lr, 4, 0), 4, 1)  # 4×4 blocks: any flip or transpose keeps the pairing visible
    write_image(hr_dir / "x.png", hr)
    write_image(lr_dir / "x.png", lr)
    data = PairedDataset(find_sources([str(hr_dir)]), [str(lr_dir)], [str(hr_dir)], 4, 32, seed=1)
    for epoch in range(3):
        item = data[(0, epoch)]
        assert item["gt"].shape == (3, 32, 32) and item["lq"].shape == (3, 8, 8)
        assert torch.equal(item["gt"][:, ::4, ::4], item["lq"])


def test_bad_data_gives_one_line(tmp_path):
    with pytest.raises(LdlError, match="does not exist"):
        find_sources([str(tmp_path / "missing")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(LdlError, match="holds no images"):
        find_sources([str(tmp_path / "empty")])
    write_image(tmp_path / "line.png", np.zeros((1, 30, 3), np.uint8))
    with pytest.raises(LdlError, match=r"30×1; an HR image needs at least 2 px each way"):
        HRDataset(find_sources([str(tmp_path / "line.png")]), 32, seed=0)
    (tmp_path / "broken.png").write_bytes(b"not an image")
    data = HRDataset(find_sources([str(tmp_path / "broken.png")]), 32, seed=0)
    with pytest.raises(LdlError, match="cannot read"):
        data[(0, 0)]


def test_sampler_resumes_mid_epoch_and_splits_processes():
    whole = ResumableSampler(10, 1, 0, seed=0, batch_size=2)
    whole.set_position(1, 0)
    order = list(whole)
    whole.set_position(1, 2)
    assert list(whole) == order[4:]
    shares = [ResumableSampler(10, 2, r, seed=0, batch_size=2) for r in range(2)]
    for s in shares:
        s.set_position(1, 0)
    a, b = (list(s) for s in shares)
    assert not {i for i, _ in a} & {i for i, _ in b} and len(a) == len(b) == 5


def test_percentile_levels_come_from_the_whole_image(tmp_path):
    image = np.zeros((64, 64), np.uint16)
    image[:, 32:] = 4000  # 12-bit data: half dark, half bright
    image[:, :32] = 1000
    write_image(tmp_path / "half.tif", image)
    data = HRDataset(find_sources([str(tmp_path)]), 16, seed=0, normalise="percentile", percentiles=(0.0, 100.0))
    values = {round(float(data[(0, e)]["gt"].mean()), 3) for e in range(12)}
    assert values <= {0.0, 1.0, *[round(x / 16, 3) for x in range(17)]} and 0.0 in values  # a dark crop stays dark


def test_small_images_are_padded_by_reflection_101_not_refused(tmp_path):
    """RealESRGANDataset pads images smaller than its 400 px crop with cv2.BORDER_REFLECT_101
    (mirror about the edge pixel, which is not repeated), bottom and right."""
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    write_image(tmp_path / "small.png", image)
    crop = HRDataset(find_sources([str(tmp_path / "small.png")]), 32, seed=0, hflip=False)[(0, 0)]["gt"]

    def reflect101(i: int, n: int) -> int:
        return i if i < n else 2 * (n - 1) - i

    rows = [reflect101(i, 20) for i in range(32)]
    cols = [reflect101(j, 30) for j in range(32)]
    expected = image[np.ix_(rows, cols)].transpose(2, 0, 1).astype(np.float32) / 255
    assert rows[20:23] == [18, 17, 16]
    np.testing.assert_array_equal(crop.numpy(), expected)
    # with flips, the image is flipped before it is padded (RealESRGANDataset: augment, then pad):
    # the mirrored border stays at the bottom and right
    flipping = HRDataset(find_sources([str(tmp_path / "small.png")]), 32, seed=0, hflip=True)
    mirrored = image[:, ::-1][np.ix_(rows, cols)].transpose(2, 0, 1).astype(np.float32) / 255
    crops = [flipping[(0, epoch)]["gt"].numpy() for epoch in range(12)]
    assert all(np.array_equal(c, expected) or np.array_equal(c, mirrored) for c in crops)
    assert any(np.array_equal(c, mirrored) for c in crops)


def test_meta_info_lists_name_the_training_images(tmp_path):
    """BasicSR's meta_info layout: datasets/DF2K/meta_info/x.txt lists paths under datasets/DF2K."""
    root = tmp_path / "DF2K"
    (root / "sub").mkdir(parents=True)
    (root / "meta_info").mkdir()
    for name in ("a", "b", "c"):
        write_image(root / "sub" / f"{name}.png", np.zeros((8, 8, 3), np.uint8))
    (root / "meta_info" / "list.txt").write_text("sub/c.png\nsub/a.png (8,8,3)\n", encoding="utf-8")
    sources = find_sources([str(root / "meta_info" / "list.txt")])
    assert [Path(s.path).name for s in sources] == ["c.png", "a.png"]
    (root / "meta_info" / "list.txt").write_text("sub/missing.png\n", encoding="utf-8")
    with pytest.raises(LdlError, match="line 1 names .*missing.png, which does not exist"):
        find_sources([str(root / "meta_info" / "list.txt")])
