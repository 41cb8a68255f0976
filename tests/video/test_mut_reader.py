"""What the reader tells a user about an input before and after the upscale: its length and frame
count (the progress bar's total), whether it was cut short or damaged (the closing warning),
which files a numbered sequence takes, which images are animations, and names FFmpeg would read
as protocols. References: the container's own numbers through PyAV, Matroska's DURATION tag
worked out by hand, the file system, Pillow's writer.

Written against the survivors of `make mutation MODULES=reader` (benchmarks/results/mutation.md)."""

from __future__ import annotations

import shutil
from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image
from video_media import Clip, write_clip, write_transport_stream

from ldl_video.video.reader import DecodeReport, VideoSource, is_animated, is_sequence, sequence_files


def _matroska_tag_seconds(tag: str) -> float:
    hours, minutes, seconds = tag.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


@pytest.mark.parametrize("frames", [10, 37])
def test_length_and_frame_count_of_a_matroska_file_come_from_its_duration_tag(tmp_path, frames):
    path = write_clip(tmp_path / "clip.mkv", Clip(frames=frames, rate=25))
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert not stream.frames and not stream.duration  # Matroska states neither: the tag is all there is
        tag = stream.metadata["DURATION"]
    source = VideoSource(path)
    try:
        assert source.report.expected_end == pytest.approx(_matroska_tag_seconds(tag)) == pytest.approx(frames / 25)
        assert source.seconds == pytest.approx(frames / 25)
        assert source.frame_estimate == frames
    finally:
        source.close()


def test_an_mp4_states_its_frame_count(tmp_path):
    path = write_clip(tmp_path / "clip.mp4", Clip(frames=12, rate=25))
    with av.open(str(path)) as container:
        stated = container.streams.video[0].frames
    source = VideoSource(path)
    try:
        assert source.frame_estimate == stated == 12
        assert source.seconds == pytest.approx(12 / 25)
    finally:
        source.close()


def test_a_broadcast_recording_an_hour_in_is_as_long_as_its_pictures(tmp_path):
    path = write_transport_stream(tmp_path / "late.ts", 3600.0, frames=20)
    with av.open(str(path)) as container:
        first = float(container.streams.video[0].start_time * container.streams.video[0].time_base)
    source = VideoSource(path)
    try:
        assert abs(float(source.start) - 3600.0) < 0.1 and float(source.start) <= first
        assert 0.8 <= source.seconds < 0.9  # 20 frames at 25 fps (the AAC track runs a little longer)
        assert source.frame_estimate == 20
        items = [item for item in source.items() if hasattr(item, "planes")]
        assert items[0].pts * source.time_base == pytest.approx(Fraction(first) - source.start, abs=1e-3)
    finally:
        source.close()


def test_a_name_with_colons_is_a_file_not_a_protocol(tmp_path):
    path = write_clip(tmp_path / "12:30:00.mkv", Clip(frames=3))
    source = VideoSource(path)
    try:
        assert (source.width, source.height) == (64, 48)
    finally:
        source.close()


@pytest.mark.parametrize(("report", "truncated", "damaged", "said"), [
    (DecodeReport(), False, False, ""),
    (DecodeReport(expected_end=10.0, decoded_end=9.95, tolerance=0.1), False, False, ""),
    (DecodeReport(expected_end=10.0, decoded_end=9.85, tolerance=0.1), True, True, "the video stops at 9.85 s of 10.00 s"),
    (DecodeReport(expected_end=None, decoded_end=3.0), False, False, ""),
    (DecodeReport(expected_end=10.0, decoded_end=None), False, False, ""),
    (DecodeReport(decode_errors=2, demux_errors=1), False, True, "3 unreadable packet(s)"),
    (DecodeReport(demux_errors=1), False, True, "1 unreadable packet(s)"),
    (DecodeReport(skipped=4), False, True, "the demuxer skipped over damaged data 4 time(s)"),
    (DecodeReport(expected_end=5.0, decoded_end=2.5, decode_errors=1, skipped=1), True, True,
     "the video stops at 2.50 s of 5.00 s; 1 unreadable packet(s); the demuxer skipped over damaged data 1 time(s)"),
])
def test_what_the_closing_warning_says(report, truncated, damaged, said):
    assert (report.truncated, report.damaged, report.describe()) == (truncated, damaged, said)


def test_a_numbered_sequence_takes_only_names_of_its_pattern(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for name in ("00002.png", "00001.png", "00010.png", "0003.png", "000004.png", "x00005.png", "00006.jpg"):
        (frames / name).write_bytes(b"")
    assert is_sequence(frames / "%05d.png") and is_sequence(frames / "%d.png") and not is_sequence(frames / "100.png")
    assert [p.name for p in sequence_files(frames / "%05d.png")] == ["00001.png", "00002.png", "00010.png"]
    # %d: any number of digits (the command line only asks whether the pattern names any file)
    assert {p.name for p in sequence_files(frames / "%d.png")} == {"000004.png", "0003.png", "00001.png", "00002.png",
                                                                   "00010.png"}
    assert sequence_files(tmp_path / "missing" / "%05d.png") == []


def test_animations_are_told_from_still_images(tmp_path):
    pictures = [Image.fromarray(np.full((8, 8, 3), v, np.uint8)) for v in (0, 120, 240)]
    pictures[0].save(tmp_path / "moving.gif", save_all=True, append_images=pictures[1:], duration=100, loop=0)
    pictures[0].save(tmp_path / "moving.png", save_all=True, append_images=pictures[1:], duration=100)
    pictures[0].save(tmp_path / "still.png")
    assert is_animated(tmp_path / "moving.gif") and is_animated(tmp_path / "moving.png")
    assert not is_animated(tmp_path / "still.png")
    assert not is_animated(tmp_path / "missing.gif")  # the image reader says what is wrong with it
    shutil.copy(tmp_path / "moving.gif", tmp_path / "%03d.gif")
    assert not is_animated(tmp_path / "%03d.gif")  # a pattern names a sequence, read as a video anyway
