"""`ldl-video IN_DIR OUT_DIR`: a real folder tree of PyAV-made videos (with audio), Pillow and
OpenCV images, a broken file, a finished result and the OUTPUT folder inside INPUT."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image
from video_media import Clip, assert_same_packets, packet_digests, write_clip

from ldl_video import Upscaler, load_model
from ldl_video.cli import build_parser, main


def run_cli(*argv) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, err.getvalue()


def frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def frame_size(path: Path) -> tuple[int, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return stream.codec_context.width, stream.codec_context.height


def bicubic_x2(path: Path) -> np.ndarray:
    """What the upscaler makes of the image as Pillow reads it."""
    return Upscaler(load_model("bicubic", scale=2), scale=2).upscale(np.asarray(Image.open(path).convert("RGB")))


def digest(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def visible_files(folder: Path) -> set[str]:
    """Files under their final names (partial results, locks and job folders are hidden)."""
    found = (p.relative_to(folder) for p in folder.rglob("*") if p.is_file())
    return {p.as_posix() for p in found if not any(part.startswith(".") for part in p.parts)}


def png(path: Path, seed: int, size: tuple[int, int] = (30, 20)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


# ---- one job over a whole tree, run once; the tests below look at what it did ----------------


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("folder")
    src = root / "in"
    (src / "sub" / "deeper").mkdir(parents=True)
    with_audio = Clip(frames=6, audio=[("aac", 2, "eng")])
    videos = {"a.mkv": write_clip(src / "a.mkv", with_audio), "sub/b.mp4": write_clip(src / "sub" / "b.mp4", with_audio),
              "e.avi": write_clip(src / "e.avi", with_audio)}
    png(src / "sub" / "deeper" / "c.png", 1)
    cv2.imwrite(str(src / "sub" / "d.jpg"), np.random.default_rng(2).integers(0, 256, (16, 24, 3), dtype=np.uint8))
    png(src / "sub" / "already.png", 3)
    (src / "broken.mkv").write_text("not a video at all\n" * 50)
    (src / "notes.txt").write_text("not media")
    shutil.copy(videos["a.mkv"], src / ".hidden.mkv")
    out = src / "upscaled"  # OUTPUT inside INPUT: never read back as input
    done_before = png(out / "sub" / "already.png", 4, (60, 40))
    os.utime(done_before, (1_000_000_000, 1_000_000_000))
    sources = {p: digest(p) for p in src.rglob("*") if p.is_file() and out not in p.parents}
    code, err = run_cli(src, out, "-m", "bicubic", "-s", "2")
    return {"src": src, "out": out, "code": code, "err": err, "videos": videos, "sources": sources,
            "done_before": (done_before, digest(done_before), done_before.stat().st_mtime_ns)}


def test_tree_summary_and_exit_status(tree):
    assert tree["code"] == 1
    lines = tree["err"].strip().splitlines()
    assert lines[-1].startswith("ldl-video: error: 5 of 7 done, 1 skipped (already there), 1 failed: broken.mkv: "), lines[-1]
    assert any(line.startswith("ldl-video: broken.mkv: ") for line in lines[:-1]), "the failure is reported when it happens"
    assert "Traceback" not in tree["err"]


def test_tree_outputs_at_the_same_relative_names(tree):
    # .avi becomes .mkv; the broken file, the text file and the hidden file give nothing;
    # nothing from inside OUTPUT was taken as input (no upscaled/upscaled/...)
    assert visible_files(tree["out"]) == {"a.mkv", "sub/b.mp4", "e.mkv", "sub/deeper/c.png", "sub/d.jpg", "sub/already.png"}
    assert not [p for p in tree["out"].rglob(".*") if "ldl-partial" in p.name or p.name.endswith(".ldl-lock")]
    assert "e.avi: written as e.mkv" in tree["err"]


def test_tree_sources_untouched(tree):
    assert {p: digest(p) for p in tree["sources"]} == tree["sources"]


def test_tree_finished_result_skipped_untouched(tree):
    path, before, mtime = tree["done_before"]
    assert digest(path) == before and path.stat().st_mtime_ns == mtime


def test_tree_image_pixels(tree):
    result = np.asarray(Image.open(tree["out"] / "sub" / "deeper" / "c.png"))
    assert np.array_equal(result, bicubic_x2(tree["src"] / "sub" / "deeper" / "c.png"))
    assert Image.open(tree["out"] / "sub" / "d.jpg").size == (48, 32)


@pytest.mark.parametrize("name, result", [("a.mkv", "a.mkv"), ("sub/b.mp4", "sub/b.mp4"), ("e.avi", "e.mkv")])
def test_tree_videos_keep_frames_and_audio(tree, name, result):
    source, output = tree["videos"][name], tree["out"] / result
    assert frame_count(output) == frame_count(source) == 6
    assert frame_size(output) == (128, 96)
    audio = packet_digests(output, "audio")
    assert len(audio) == 1 and len(audio[0]) > 5
    assert_same_packets(audio, packet_digests(source, "audio"))


# ---- smaller jobs ---------------------------------------------------------------------------


def test_finished_results_skipped_then_redone_with_overwrite(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    image = png(src / "p.png", 5)
    stale = png(out / "p.png", 6, (60, 40))
    before = digest(stale)
    code, err = run_cli(src, out, "-m", "bicubic", "-s", "2")
    assert code == 0 and "0 of 1 done, 1 skipped (already there)" in err
    assert digest(stale) == before
    code, err = run_cli(src, out, "-m", "bicubic", "-s", "2", "--overwrite", "--quiet")
    assert code == 0 and err == ""
    assert np.array_equal(np.asarray(Image.open(out / "p.png")), bicubic_x2(image))


def test_artifact_maps_in_a_folder_of_their_own(tmp_path):
    src, out, maps = tmp_path / "in", tmp_path / "out", tmp_path / "maps"
    png(src / "sub" / "p.png", 7)
    write_clip(src / "v.mkv", Clip(frames=3))
    code, err = run_cli(src, out, "-m", "bicubic", "-s", "2", "--artifact-map", maps, "--quiet")
    assert code == 0, err
    assert visible_files(maps) == {"sub/p.png", "v.mkv"}
    assert Image.open(maps / "sub" / "p.png").size == Image.open(out / "sub" / "p.png").size == (60, 40)
    assert frame_count(maps / "v.mkv") == 3 and frame_size(maps / "v.mkv") == (128, 96)


def test_two_sources_for_one_result_name(tmp_path):
    """a.avi and a.mkv both become a.mkv: the first by name gets it, the second fails saying why."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    write_clip(src / "a.avi", Clip(frames=2))
    write_clip(src / "a.mkv", Clip(frames=3))
    code, err = run_cli(src, out, "-m", "bicubic", "-s", "2", "--quiet")
    assert code == 1 and "1 of 2 done, 1 failed: a.mkv: " in err and "rename one" in err
    assert visible_files(out) == {"a.mkv"} and frame_count(out / "a.mkv") == 2


@pytest.mark.parametrize("case, words", [
    ("output is a file", "must be a folder too"),
    ("output has a video suffix", "must be a folder too"),
    ("output is input", "same folder as INPUT"),
    ("input inside output", "inside the OUTPUT folder"),
    ("map is a file name", "--artifact-map takes a folder"),
    ("empty input", "no video or image"),
])
def test_folder_arguments_refused_in_one_line(tmp_path, case, words):
    src, out = tmp_path / "in", tmp_path / "out"
    extra: list = []
    if case != "empty input":
        png(src / "p.png", 8)
    else:
        src.mkdir()
    if case == "output is a file":
        out.write_text("a file")
    elif case == "output has a video suffix":
        out = tmp_path / "out.mkv"
    elif case == "output is input":
        out = src
    elif case == "input inside output":
        out = tmp_path
    elif case == "map is a file name":
        extra = ["--artifact-map", tmp_path / "map.png"]
    before = visible_files(tmp_path)
    code, err = run_cli(src, out, "-m", "bicubic", *extra)
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith("ldl-video: error: ") and words in lines[0], err
    assert visible_files(tmp_path) == before, "nothing written"


def test_unknown_model_stops_the_job_before_any_file(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    png(src / "p.png", 12)
    code, err = run_cli(src, out, "-m", "no-such-model")
    lines = [line for line in err.strip().splitlines() if line.startswith("ldl-video: error: ")]
    assert code == 1 and len(lines) == 1 and "no-such-model" in lines[0] and "Traceback" not in err
    assert not out.exists()


def test_ctrl_c_keeps_finished_files_and_the_same_command_goes_on(tmp_path, long_mkv):
    src, out = tmp_path / "in", tmp_path / "out"
    png(src / "a.png", 9)
    shutil.copy(long_mkv, src / "long.mkv")
    command = [sys.executable, "-m", "ldl_video.cli", str(src), str(out), "-m", "bicubic", "-s", "2", "--quiet"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    # long.mkv has begun once its hidden work file (a partial result or a job folder) is there
    while not list(out.glob(".long*")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process.poll() is None, "finished before it could be interrupted"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    last = err.strip().splitlines()[-1]
    # (a video's job may add where its finished segments are kept)
    assert last.startswith("ldl-video: interrupted; finished files are kept and the same command goes on with the rest")
    assert visible_files(out) == {"a.png"}
    assert not [p for p in out.rglob(".*") if "ldl-partial" in p.name]
    finished = (out / "a.png").stat().st_mtime_ns
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert (out / "a.png").stat().st_mtime_ns == finished, "a finished file was done again"
    assert frame_count(out / "long.mkv") == frame_count(long_mkv)


def test_a_job_folder_stopped_before_its_record_does_not_block_the_same_command(tmp_path):
    """Ctrl-C just as a video begins can leave its hidden job folder made but still empty."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    video = write_clip(src / "v.mkv", Clip(frames=24, gop=6))
    (out / ".v.mkv.ldl-job").mkdir(parents=True)
    code, err = run_cli(src, out, "-m", "bicubic", "-s", "2", "--segment", "0.24", "--quiet")
    assert code == 0, err
    assert frame_count(out / "v.mkv") == frame_count(video) and not (out / ".v.mkv.ldl-job").exists()


# ---- the new flags ----------------------------------------------------------------------------


def test_ray_and_segment_flags_parsed():
    parse = build_parser().parse_args
    assert parse(["in.mkv", "out.mkv"]).ray is None
    assert parse(["in.mkv", "out.mkv", "--ray"]).ray == "local"  # Ray's own name for "start one here"
    assert parse(["in.mkv", "out.mkv", "--ray", "auto"]).ray == "auto"
    assert parse(["in.mkv", "out.mkv", "--ray=ray://head:10001"]).ray == "ray://head:10001"
    args = parse(["in.mkv", "out.mkv"])
    assert args.segment is None and args.restart is False
    assert parse(["in.mkv", "out.mkv", "--segment", "0"]).segment == 0
    assert parse(["in.mkv", "out.mkv", "--segment", "2.5", "--restart"]).segment == 2.5


@pytest.mark.parametrize("value", ["-1", "abc", "nan", "inf"])
def test_bad_segment_length_is_one_line(capsys, tmp_path, value):
    out = tmp_path / "out.mkv"
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path / "in.mkv"), str(out), "--segment", value])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1 and "--segment" in err[0] and value in err[0]
    assert not out.exists()


def test_ray_before_input_does_not_eat_it(capsys, tmp_path):
    image = png(tmp_path / "p.png", 11)
    with pytest.raises(SystemExit) as stop:
        main(["--ray", str(image), str(tmp_path / "big.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1 and "put --ray after INPUT OUTPUT" in err[0]


def test_video_flags_on_a_single_image_run_it_here_with_a_note(tmp_path):
    image, out = png(tmp_path / "p.png", 10), tmp_path / "big.png"
    code, err = run_cli(image, out, "-m", "bicubic", "-s", "2", "--ray", "--segment", "5")
    assert code == 0, err
    assert "--ray, --segment: for videos; an image is upscaled here, in one pass" in err
    assert np.array_equal(np.asarray(Image.open(out)), bicubic_x2(image))
