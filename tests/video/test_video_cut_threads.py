"""A file cut short in the middle of a picture, read with frame threads: every picture FFmpeg can
decode is delivered and the unreadable packet is counted, as FFmpeg decoding on one thread gives
them (the reference: plain PyAV with threading off). The reader keeps frame threads on for
speed; with them, PyAV's decode() stops at the first error once it holds frames, and the
pictures in the other threads were lost, the error unseen.

Frame threads need more than one core (FFmpeg's automatic thread count is one per core, plus one);
on a single core the decoder runs on one thread and these tests pass either way."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from video_media import Clip, write_clip

from ldl_video.cli import main
from ldl_video.video import reader
from ldl_video.video.reader import VideoSource

FRAMES = 40


def _cut_mp4(folder: Path, frames: int, packet: int) -> Path:
    """A faststart MP4 (its index first, as web videos are) of H.264 pictures with B-frames,
    cut in the middle of packet `packet` (from 0): an interrupted download or copy."""
    whole = write_clip(folder / f"whole{frames}.mp4", Clip(frames=frames, container_options={"movflags": "faststart"}))
    with av.open(str(whole)) as container:
        packets = [(p.pos, p.size) for p in container.demux(video=0) if p.size]
    assert len(packets) == frames
    position, size = packets[packet]
    cut = folder / f"cut{frames}-{packet}.mp4"
    cut.write_bytes(whole.read_bytes()[: position + size // 2])
    return cut


@pytest.fixture(scope="module")
def cut_mp4(tmp_path_factory) -> Path:
    """40 pictures cut in the 20th."""
    return _cut_mp4(tmp_path_factory.mktemp("cut-threads"), FRAMES, 19)


def _one_thread_decode(path: Path, thread_type: str = "NONE") -> tuple[list[av.VideoFrame], int]:
    """FFmpeg's own result: (pictures, packets refused), decoding without threads."""
    frames, errors = [], 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = thread_type
        for packet in container.demux(stream):
            try:
                frames.extend(stream.decode(packet))
            except av.error.EOFError:
                pass
            except av.error.FFmpegError:
                errors += 1
    return frames, errors


def _luma(frame: av.VideoFrame) -> np.ndarray:
    plane = frame.planes[0]
    return np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]


def test_a_file_cut_mid_picture_gives_every_decodable_picture_and_counts_the_bad_packet(cut_mp4):
    reference, errors = _one_thread_decode(cut_mp4)
    assert errors == 1 and 0 < len(reference) < FRAMES  # what the test relies on
    source = VideoSource(cut_mp4)
    try:
        frames = [item for item in source.items() if hasattr(item, "planes")]
        assert [f.pts for f in frames] == [f.pts for f in reference]
        for got, want in zip(frames, reference, strict=True):
            assert np.array_equal(got.planes[0], _luma(want))  # the same picture, not a copy of another
        assert source.report.decode_errors == errors
        assert source.report.truncated
        assert "; 1 unreadable packet(s)" in source.report.describe()
    finally:
        source.close()


def test_keep_partial_keeps_every_decodable_picture(capsys, cut_mp4, tmp_path):
    reference, _ = _one_thread_decode(cut_mp4)
    out = tmp_path / "partial.mkv"
    code = main([str(cut_mp4), str(out), "-m", "bicubic", "-s", "2", "--quiet", "--keep-partial"])
    err = capsys.readouterr().err
    assert code != 0 and out.exists()
    assert f"damaged: {len(reference)} frame" in err
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        seconds = [f.pts * stream.time_base for f in container.decode(stream)]
    assert seconds == [Fraction(f.pts) * f.time_base for f in reference]


@pytest.mark.parametrize(("frames", "packet"), [(5, 2), (8, 4)])
def test_a_short_clip_cut_while_all_its_pictures_are_in_the_threads_is_read(tmp_path, frames, packet):
    """Cut before the decoder has handed out any picture: the first is still found (it was
    refused as having no decodable frame), and the others follow."""
    cut = _cut_mp4(tmp_path, frames, packet)
    reference, errors = _one_thread_decode(cut)
    assert errors == 1 and reference  # what the test relies on
    source = VideoSource(cut)
    try:
        delivered = [item.pts for item in source.items() if hasattr(item, "planes")]
        assert delivered == [f.pts for f in reference] and source.report.decode_errors == errors
    finally:
        source.close()


@pytest.mark.parametrize("bound", [None, 4])
def test_an_undamaged_file_is_read_whole_without_counting_errors(monkeypatch, tmp_path, bound):
    """Also with the kept-packet bound far below its GOP (32 pictures from one keyframe): past the
    bound nothing more is kept, and nothing is lost."""
    whole = write_clip(tmp_path / "whole.mp4", Clip(frames=FRAMES, container_options={"movflags": "faststart"}))
    if bound is not None:
        monkeypatch.setattr(reader, "MAX_KEPT_PACKETS", bound)
        with av.open(str(whole)) as container:
            keys = [p.is_keyframe for p in container.demux(video=0) if p.size]
        assert keys[:32] == [True] + [False] * 31  # what the test relies on
    source = VideoSource(whole)
    try:
        frames = [item for item in source.items() if hasattr(item, "planes")]
        assert len(frames) == FRAMES and not source.report.damaged
    finally:
        source.close()


def _nut_cut(folder: Path, name: str, change: Callable[[av.Packet], None], into: int, gop: int | None = None) -> Path:
    """The 40 pictures remuxed into NUT, each packet through `change` first, and cut `into` bytes
    into the 20th packet (`gop`: a keyframe every so many pictures; default: the clip's own)."""
    whole = write_clip(folder / "whole.mkv", Clip(frames=FRAMES) if gop is None else Clip(frames=FRAMES, gop=gop))
    remuxed = folder / f"{name}.nut"
    with av.open(str(whole)) as source, av.open(str(remuxed), "w") as out:
        stream = out.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(video=0):
            if packet.size:
                change(packet)
                packet.stream = stream
                out.mux(packet)
    with av.open(str(remuxed)) as container:
        position = [p.pos for p in container.demux(video=0) if p.size][19]
    cut = folder / f"{name}-cut.nut"
    cut.write_bytes(remuxed.read_bytes()[: position + into])
    return cut


def _unflagged_cut(folder: Path) -> Path:
    """The 40 pictures again, in a NUT file whose packets carry no keyframe flag (a remux that
    lost them; FFmpeg does not need the flag to decode from the first picture, an IDR picture),
    cut 2 bytes into the 20th: the decoder logs one error for it."""

    def unflag(packet: av.Packet) -> None:
        packet.is_keyframe = False

    cut = _nut_cut(folder, "unflagged", unflag, 2)
    with av.open(str(cut)) as container:
        keys = [p.is_keyframe for p in container.demux(video=0) if p.size]
    assert len(keys) == 20 and not any(keys)  # what the test relies on
    return cut


@pytest.fixture(scope="module")
def unflagged_cut(tmp_path_factory) -> Path:
    return _unflagged_cut(tmp_path_factory.mktemp("unflagged"))


def _read(path: Path) -> tuple[list[Fraction], int]:
    """(the frames' times on the file's own clock, packets counted unreadable) as VideoSource delivers them."""
    source = VideoSource(path)
    try:
        times = [item.pts * source.time_base + source.start for item in source.items() if hasattr(item, "planes")]
        return times, source.report.decode_errors
    finally:
        source.close()


def _times(frames: list[av.VideoFrame]) -> list[Fraction]:
    return [Fraction(f.pts) * f.time_base for f in frames]


def test_a_cut_file_whose_keyframes_are_not_flagged_is_read_as_ffmpeg_reads_it(unflagged_cut):
    reference, errors = _one_thread_decode(unflagged_cut)
    assert errors == 1 and 0 < len(reference) < FRAMES  # what the test relies on
    assert _read(unflagged_cut) == (_times(reference), errors)


@pytest.mark.parametrize("bound", ["MAX_KEPT_PACKETS", "MAX_KEPT_BYTES"])
def test_a_gop_holding_exactly_the_kept_bound_is_still_recovered(monkeypatch, unflagged_cut, bound):
    """The reader keeps at most MAX_KEPT_PACKETS packets and MAX_KEPT_BYTES bytes since the last
    keyframe: a cut GOP holding exactly that much (counted here by plain PyAV demuxing: the 20
    packets up to the cut, the cut one as short as it is) is still decoded again whole."""
    with av.open(str(unflagged_cut)) as container:
        sizes = [p.size for p in container.demux(video=0) if p.size]
    assert len(sizes) == 20  # what the test relies on
    monkeypatch.setattr(reader, bound, len(sizes) if bound == "MAX_KEPT_PACKETS" else sum(sizes))
    reference, errors = _one_thread_decode(unflagged_cut)
    assert _read(unflagged_cut) == (_times(reference), errors)


def test_a_flagged_gop_holding_exactly_the_kept_bytes_is_still_recovered(monkeypatch, tmp_path):
    """As above with keyframe flags: the count starts again at the last keyframe before the cut,
    so a GOP of exactly MAX_KEPT_BYTES from there (counted by plain PyAV) is decoded again whole."""
    cut = _nut_cut(tmp_path, "flagged", lambda packet: None, 2, gop=12)
    with av.open(str(cut)) as container:
        packets = [(p.is_keyframe, p.size) for p in container.demux(video=0) if p.size]
    last_key = max(i for i, (key, _) in enumerate(packets) if key)
    assert 0 < last_key < len(packets) - 2  # what the test relies on: a GOP after the first
    monkeypatch.setattr(reader, "MAX_KEPT_BYTES", sum(size for _, size in packets[last_key:]))
    reference, errors = _one_thread_decode(cut)
    assert errors == 1
    assert _read(cut) == (_times(reference), errors)


def test_a_timestamp_running_back_before_a_cut_does_not_repeat_a_picture(tmp_path):
    """Two neighbouring pictures with their timestamps swapped (a muxer's slip), the later of them
    the last picture the frame threads hand out before the cut: what is decoded again after the
    cut starts after the latest timestamp delivered, not after the last one, so no picture comes
    twice. Reference: one-thread decoding, picture for picture."""
    plain = _nut_cut(tmp_path, "plain", lambda packet: None, 14)
    threaded, _ = _one_thread_decode(plain, "AUTO")  # what the frame threads hand out, as the reader's decoder
    with av.open(str(tmp_path / "whole.mkv")) as container:  # the timestamps `change` meets
        times = sorted(p.pts for p in container.demux(video=0) if p.size)
    swap = {times[len(threaded) - 2]: times[len(threaded) - 1], times[len(threaded) - 1]: times[len(threaded) - 2]}

    def swapped(packet: av.Packet) -> None:
        packet.pts = swap.get(packet.pts, packet.pts)

    cut = _nut_cut(tmp_path, "swapped", swapped, 14)
    reference, errors = _one_thread_decode(cut)
    assert errors == 1 and len(reference) == 19  # what the test relies on
    assert [f.pts for f in reference] != sorted(f.pts for f in reference)
    source = VideoSource(cut)
    try:
        frames = [item for item in source.items() if hasattr(item, "planes")]
        assert len(frames) == len(reference) and source.report.decode_errors == errors
        for got, want in zip(frames, reference, strict=True):
            assert np.array_equal(got.planes[0], _luma(want))
    finally:
        source.close()
