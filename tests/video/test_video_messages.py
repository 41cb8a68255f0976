"""What ldl-video says: one line that names the user's own file and the fix, and a note at run
time wherever the output will lack something the source has."""

from __future__ import annotations

import re
import shutil

import av
import pytest
from test_video_errors import assert_failed_cleanly, run
from video_media import Clip, decoded_pts, write_clip, write_timecoded_mov

from ldl_video.cli import main


@pytest.mark.parametrize(("name", "words"), [
    ("out", ["has no suffix", ".mkv"]),
    ("-", ["cannot be -", "file name"]),
])
def test_output_name_without_a_format(capsys, tmp_path, moving_mkv, monkeypatch, name, words):
    monkeypatch.chdir(tmp_path)
    code, err = run(capsys, moving_mkv, name, "-m", "bicubic")
    assert_failed_cleanly(code, err, tmp_path / name, *words)
    assert "ldl-partial" not in err
    assert list(tmp_path.iterdir()) == []


def test_folder_as_output(capsys, tmp_path, moving_mkv):
    folder = tmp_path / "results"
    folder.mkdir()
    code, err = run(capsys, moving_mkv, folder, "-m", "bicubic")
    assert code == 1 and "is a folder" in err and "--overwrite" not in err
    code, err = run(capsys, moving_mkv, folder, "-m", "bicubic", "--overwrite")
    assert code == 1 and "is a folder" in err and folder.is_dir()


def test_names_with_colons_are_files(tmp_path, moving_mkv):
    """FFmpeg reads `12:30:00.mkv` as protocol "12"; a clip named by its time must still work."""
    source = tmp_path / "12:30:00.mkv"
    shutil.copy(moving_mkv, source)
    out = tmp_path / "13:00:00.mkv"
    assert main([str(source), str(out), "-m", "bicubic", "-s", "2", "--quiet"]) == 0
    assert decoded_pts(out) == decoded_pts(moving_mkv)


def test_audio_codec_as_video_codec(capsys, tmp_path, moving_mkv):
    out = tmp_path / "out.mkv"
    assert_failed_cleanly(*run(capsys, moving_mkv, out, "-m", "bicubic", "--codec", "aac"), out, "an audio encoder")


@pytest.mark.parametrize("suffix", [".mov", ".mp4", ".mkv"])
def test_timecode_is_kept_and_not_said_dropped(capsys, tmp_path, suffix):
    source = write_timecoded_mov(tmp_path / "camera.mov", "01:02:03:04")
    with av.open(str(source)) as container:
        assert [s.type for s in container.streams] == ["video", "data"]
    out = tmp_path / f"out{suffix}"
    assert main([str(source), str(out), "-m", "bicubic", "-s", "2"]) == 0
    assert "dropped" not in capsys.readouterr().err
    with av.open(str(out)) as result:
        video = {k.lower(): v for k, v in result.streams.video[0].metadata.items()}
        assert video["timecode"] == "01:02:03:04"
        if suffix != ".mkv":  # MOV and MP4 hold it as a timecode track again
            data = [s for s in result.streams if s.type == "data"]
            assert [s.metadata.get("timecode") for s in data] == ["01:02:03:04"]


def test_interlaced_source_gets_a_note(capsys, tmp_path, media):
    source = write_clip(media / "interlaced.mkv", Clip(frames=3, options={"flags": "+ildct+ilme", "x264-params": "tff=1"}))
    with av.open(str(source)) as container:
        assert next(container.decode(video=0)).interlaced_frame
    assert main([str(source), str(tmp_path / "out.mkv"), "-m", "bicubic", "-s", "2"]) == 0
    assert "interlaced" in capsys.readouterr().err


def test_alpha_source_gets_a_note(capsys, tmp_path, media):
    source = write_clip(media / "alpha.mkv", Clip(frames=3, codec="ffv1", pix_fmt="yuva420p"))
    out = tmp_path / "out.mkv"
    assert main([str(source), str(out), "-m", "bicubic", "-s", "2"]) == 0
    assert "alpha channel (yuva420p) is dropped" in capsys.readouterr().err
    with av.open(str(out)) as result:
        assert result.streams.video[0].codec_context.pix_fmt == "yuv420p"


# 20 frames: half a second, a 1.6 s hole (a paused screen recording), another half second.
GAP_PTS = [i * 40 for i in range(10)] + [2000 + i * 40 for i in range(10)]


@pytest.mark.parametrize("pts", [GAP_PTS, [i * 40 for i in range(20)] + [800 + i * 100 for i in range(20)]])
def test_progress_total_for_gaps_and_variable_rate(capsys, tmp_path, media, pts):
    """Matroska counts no frames, and duration × rate (25 fps here) would promise 60 and 68."""
    source = write_clip(media / f"progress-{len(pts)}.mkv", Clip(frames=len(pts), pts=pts))
    assert main([str(source), str(tmp_path / "out.mkv"), "-m", "bicubic", "-s", "2"]) == 0
    last = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-2]  # before "wrote ..."
    # the total is the clip's real length (its last frame starts at pts[-1]), and all of it was done
    done, total = map(float, re.search(r"([\d.]+)/([\d.]+) s", last).groups())
    assert done == total and pts[-1] / 1000 < total <= pts[-1] / 1000 + 0.1
    assert f"{len(pts)} frames" in last
