"""What the reader tells a user about an input before and after the upscale: its length and frame
count (the progress bar's total), whether it was cut short or damaged (the closing warning),
which files a numbered sequence takes, which images are animations, and names FFmpeg would read
as protocols. References: the container's own numbers through PyAV, Matroska's DURATION tag
worked out by hand, the file system, Pillow's writer.

Written against the survivors of `make mutation MODULES=reader` (benchmarks/results/mutation.md)."""

from __future__ import annotations

import shutil
import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from video_media import ASS_HEADER, Clip, write_clip, write_transport_stream

from ldl_video.cli import main
from ldl_video.video.reader import (
    DecodeReport,
    VideoSource,
    _parse_duration_tag,
    is_animated,
    is_sequence,
    sequence_files,
)


def _frames(source: VideoSource) -> list:
    """The decoded frames of `source.items()` (the other streams' packets left out)."""
    return [item for item in source.items() if hasattr(item, "planes")]


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
        items = _frames(source)
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


def test_an_hour_long_matroska_tag_is_read_as_hours_minutes_seconds(tmp_path):
    """Two frames an hour, two minutes and three seconds apart (a VFR recording with a long gap)."""
    path = write_clip(tmp_path / "gap.mkv", Clip(frames=2, pts=[0, 3723_000]))
    with av.open(str(path)) as container:
        tag = container.streams.video[0].metadata["DURATION"]
    assert tag.startswith("01:02:03")  # what the test relies on
    assert _parse_duration_tag(tag) == pytest.approx(_matroska_tag_seconds(tag))  # FFmpeg also states a duration here
    source = VideoSource(path)
    try:
        assert source.report.expected_end == pytest.approx(_matroska_tag_seconds(tag))
        assert source.seconds == pytest.approx(_matroska_tag_seconds(tag))
    finally:
        source.close()


def test_a_file_without_video_says_what_it_has(audio_only_m4a):
    from ldl_video.errors import LdlError

    with pytest.raises(LdlError, match=r"^song\.m4a has no video stream to upscale \(it has: audio\)$"):
        VideoSource(audio_only_m4a)


def test_a_folder_and_a_file_ffmpeg_cannot_read_are_named(tmp_path):
    from ldl_video.errors import LdlError

    with pytest.raises(LdlError, match=r"is a folder, not a video$"):
        VideoSource(tmp_path)
    junk = tmp_path / "notes.mkv"
    junk.write_text("not a video at all\n" * 20)
    with pytest.raises(av.error.FFmpegError) as by_ffmpeg:
        av.open(str(junk))
    with pytest.raises(LdlError) as caught:
        VideoSource(junk)
    assert str(caught.value) == (f"notes.mkv is not a video FFmpeg can read, or it is damaged beyond use "
                                 f"({by_ffmpeg.value.strerror})")


def test_the_default_video_track_is_upscaled_and_the_others_kept_apart(tmp_path):
    """A recording with a picture-in-picture track first and the main picture second, flagged default."""
    path = tmp_path / "two.mkv"
    with av.open(str(path), "w") as out:
        inset = out.add_stream("libx264", rate=25)
        inset.width, inset.height, inset.pix_fmt = 32, 24, "yuv420p"
        inset.disposition = 0
        main = out.add_stream("libx264", rate=25)
        main.width, main.height, main.pix_fmt = 64, 48, "yuv420p"
        main.disposition = av.stream.Disposition.default
        sound = out.add_stream("aac", rate=48000)
        sound.layout = "stereo"
        for i in range(3):
            for stream in (inset, main):
                frame = av.VideoFrame.from_ndarray(np.zeros((stream.height, stream.width, 3), np.uint8)).reformat(
                    format="yuv420p")
                frame.pts, frame.time_base = i, Fraction(1, 25)
                out.mux(stream.encode(frame))
        for stream in (inset, main):
            out.mux(stream.encode())
        tone = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp", layout="stereo")
        tone.sample_rate, tone.pts = 48000, 0
        out.mux(sound.encode(tone))
        out.mux(sound.encode())
    source = VideoSource(path)
    try:
        assert (source.video.index, source.width, source.height) == (1, 64, 48)
        assert [s.index for s in source.extra_videos] == [0]
        assert [s.type for s in source.others] == ["audio"]
    finally:
        source.close()


def test_a_numbered_sequence_plays_at_the_asked_rate(tmp_path):
    for i in range(1, 4):
        Image.fromarray(np.full((16, 16, 3), 60 * i, np.uint8)).save(tmp_path / f"{i:03d}.png")
    source = VideoSource(tmp_path / "%03d.png", fps=Fraction(10))
    try:
        assert source.rate == 10 and (source.width, source.height) == (16, 16)
        frames = _frames(source)
        assert [float(f.pts * source.time_base) for f in frames] == pytest.approx([0.0, 0.1, 0.2])
    finally:
        source.close()


def test_what_the_first_frame_says_about_the_picture(full_range_mkv, rotated_mp4, tmp_path):
    source = VideoSource(full_range_mkv)
    try:  # as written: BT.709 primaries, transfer and matrix, full range
        tags = source.source_tags
        assert (tags.matrix, tags.range, tags.primaries, tags.transfer) == (1, 2, 1, 1)
    finally:
        source.close()
    source = VideoSource(rotated_mp4)
    try:  # ISO/IEC 14496-12's matrix for 90°, 16.16 fixed point with w in 2.30
        with av.open(str(rotated_mp4)) as container:
            rotation = container.streams.video[0].codec_context.coded_side_data  # what the test relies on
            assert rotation
        assert source.display_matrix is not None and len(source.display_matrix) == 9
        assert source.display_matrix[8] == 1 << 30 and {abs(v) for v in source.display_matrix[:2]} == {0, 65536}
    finally:
        source.close()
    wide = write_clip(tmp_path / "anamorphic.mkv", Clip(frames=2, sar=Fraction(64, 45)))
    source = VideoSource(wide)
    try:
        assert source.sample_aspect_ratio == Fraction(64, 45)
    finally:
        source.close()


def test_interlaced_and_alpha_sources_are_told(tmp_path):
    interlaced = write_clip(tmp_path / "tv.mkv", Clip(frames=4, options={"flags": "+ildct+ilme", "x264-params": "tff=1"}))
    with av.open(str(interlaced)) as container:
        assert next(container.decode(video=0)).interlaced_frame  # what the test relies on
    source = VideoSource(interlaced)
    try:
        assert source.interlaced
        assert source.notes() == ["the source is interlaced; its frames are upscaled as progressive pictures, fields "
                                  "together (deinterlace first, e.g. ffmpeg -vf bwdif, for a clean result)"]
    finally:
        source.close()
    alpha = write_clip(tmp_path / "logo.mkv", Clip(frames=2, codec="ffv1", pix_fmt="yuva420p", tags=None))
    source = VideoSource(alpha)
    try:
        assert source.notes() == ["the source's alpha channel (yuva420p) is dropped: the output is opaque"]
    finally:
        source.close()


def test_a_cover_picture_is_handed_out_as_its_bytes(tmp_path):
    from video_media import cover_jpeg

    jpeg = cover_jpeg()
    path = write_clip(tmp_path / "song-video.mp4", Clip(frames=3, cover=jpeg))
    source = VideoSource(path)
    try:
        covers = [s for s in source.container.streams if int(s.disposition) & int(av.stream.Disposition.attached_pic)]
        assert len(covers) == 1 and source.picture(covers[0]) == jpeg
    finally:
        source.close()


def test_two_cover_pictures_are_each_handed_out_as_their_own_bytes(tmp_path):
    """An MP4 with a front and a back cover (two attached pictures): each stream's own JPEG."""
    from video_media import cover_jpeg

    path = tmp_path / "two-covers.mp4"
    jpegs = [cover_jpeg(level=60), cover_jpeg(level=200)]
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        covers = []
        for _ in jpegs:
            cover = out.add_stream("mjpeg")
            cover.width = cover.height = 32
            cover.pix_fmt, cover.disposition = "yuvj420p", av.stream.Disposition.attached_pic
            covers.append(cover)
        out.start_encoding()
        for cover, jpeg in zip(covers, jpegs, strict=True):
            packet = av.Packet(jpeg)
            packet.stream, packet.time_base, packet.pts, packet.dts = cover, Fraction(1, 90000), 0, 0
            out.mux(packet)
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8)).reformat(format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            out.mux(video.encode(frame))
        out.mux(video.encode())
    source = VideoSource(path)
    try:
        found = [s for s in source.container.streams if int(s.disposition) & int(av.stream.Disposition.attached_pic)]
        assert [source.picture(s) for s in found] == jpegs
    finally:
        source.close()


def test_a_pattern_with_a_ten_digit_width(tmp_path):
    for name in ("0000000001.png", "0000000002.png", "01.png"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in sequence_files(tmp_path / "%010d.png")] == ["0000000001.png", "0000000002.png"]


def test_a_raw_h264_stream_without_timestamps_gets_them_from_its_rate(tmp_path):
    """An elementary stream (.h264) carries no timestamps: frames are placed 1/rate apart from 0."""
    raw = tmp_path / "camera.h264"
    with av.open(str(raw), "w", format="h264") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * i, np.uint8)).reformat(format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    source = VideoSource(raw)
    try:
        frames = _frames(source)
        assert [float(f.pts * source.time_base) for f in frames] == pytest.approx([0.0, 0.04, 0.08, 0.12, 0.16])
        assert source.report.frames == 5 and source.report.decoded_end == pytest.approx(0.2)
        assert source.report.retimed == 0 and not source.report.damaged
    finally:
        source.close()


def _transport_stream(path, width: int, height: int, frames: int) -> bytes:
    with av.open(str(path), "w", format="mpegts") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), 90, np.uint8)).reformat(format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path.read_bytes()


def test_two_recordings_joined_byte_for_byte_are_counted_frame_for_frame(tmp_path):
    """Two .ts captures appended with `cat`: the second is smaller and its clock starts again at 0.
    Every frame is kept; the 4 smaller ones are scaled to the first size and nudged after the
    last timestamp, one tick apart."""
    joined = tmp_path / "joined.ts"
    joined.write_bytes(_transport_stream(tmp_path / "a.ts", 64, 48, 6) + _transport_stream(tmp_path / "b.ts", 32, 24, 4))
    source = VideoSource(joined)
    try:
        frames = _frames(source)
        assert len(frames) == source.report.frames == 10
        assert all(plane.shape[-2:] == (48, 64) for plane in frames[-1].planes[:1])
        assert (source.report.resized, source.report.retimed) == (4, 4)
        pts = [f.pts for f in frames]
        assert pts[:6] == [i * 3600 for i in range(6)] and pts[6:] == [pts[5] + k for k in range(1, 5)]
    finally:
        source.close()


# ---- damage: the demuxer, the decoder, a file cut short -----------------------------------------
# YUV4MPEG2 (the .y4m raw format) puts "FRAME\n" before each picture. FFmpeg's reader takes one
# line per call and refuses (AVERROR_INVALIDDATA) a line that is not a frame header, so every
# junk line written between pictures is one failed read, and the pictures after it still read.

Y4M_FRAMES = 10


def _y4m_pictures(tmp_path) -> tuple[bytes, list[bytes]]:
    """A 64×48 4:2:0 .y4m at 25 fps, each frame flat and brighter than the one before; (header
    line, frame chunks)."""
    path = tmp_path / "clean.y4m"
    with av.open(str(path), "w", format="yuv4mpegpipe") as out:
        stream = out.add_stream("rawvideo", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(Y4M_FRAMES):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64), 16 + 20 * i, np.uint8), format="gray")
            frame = frame.reformat(format="yuv420p")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    header, *chunks = path.read_bytes().split(b"FRAME\n")
    assert len(chunks) == Y4M_FRAMES and all(len(c) == 64 * 48 * 3 // 2 for c in chunks)  # what the test relies on
    return header, chunks


def _y4m_with_junk(tmp_path, junk: dict[int, int]) -> tuple[Path, list[int]]:
    """The clip with junk[i] lines of garbage written before frame i's header; (path, each
    frame's luma level as written)."""
    header, chunks = _y4m_pictures(tmp_path)
    data = header + b"".join(b"junk\n" * junk.get(i, 0) + b"FRAME\n" + chunk for i, chunk in enumerate(chunks))
    path = tmp_path / "junk.y4m"
    path.write_bytes(data)
    return path, [chunk[0] for chunk in chunks]


def _failed_reads(path: Path) -> tuple[int, int]:
    """(failed reads, pictures) of plain PyAV reading the whole file, starting again after every
    failure: FFmpeg's own count. Opening the file reads ahead and takes the first failure itself."""
    failures, pictures = 0, 0
    with av.open(str(path)) as container:
        while True:
            try:
                for packet in container.demux(video=0):
                    pictures += bool(packet.size)
                return failures, pictures
            except av.error.InvalidDataError:
                failures += 1


def _levels(frames) -> list[int]:
    return [int(np.median(f.planes[0])) for f in frames]


def test_fifteen_unreadable_spots_in_a_row_are_read_past_each_time(tmp_path):
    """16 junk lines before the first picture (opening the file meets one of them) and 15 after
    the fifth: 30 failed reads, every picture delivered in order at i/25 s."""
    path, levels = _y4m_with_junk(tmp_path, {0: 16, 5: 15})
    assert _failed_reads(path) == (30, Y4M_FRAMES)
    source = VideoSource(path)
    try:
        frames = _frames(source)
        assert _levels(frames) == levels
        assert [f.pts * source.time_base for f in frames] == [Fraction(i, 25) for i in range(Y4M_FRAMES)]
        assert source.report.demux_errors == 30 and source.report.frames == Y4M_FRAMES
        assert not source.report.truncated
        assert source.report.describe() == "30 unreadable packet(s)"
    finally:
        source.close()


def test_sixteen_unreadable_spots_in_a_row_end_the_reading(tmp_path):
    """A demuxer failing 16 times at the same spot is at the end of what it can read: the five
    pictures before it are delivered and the file is reported cut short there."""
    path, levels = _y4m_with_junk(tmp_path, {5: 16})
    assert _failed_reads(path) == (16, Y4M_FRAMES)  # read on by hand, the rest is there
    with av.open(str(path)) as container:
        stated = float(container.streams.video[0].duration * container.streams.video[0].time_base)
    assert stated == pytest.approx(Y4M_FRAMES / 25)
    source = VideoSource(path)
    try:
        frames = _frames(source)
        assert _levels(frames) == levels[:5]
        assert source.report.demux_errors == 16 and source.report.truncated
        assert source.report.describe() == "the video stops at 0.20 s of 0.40 s; 16 unreadable packet(s)"
    finally:
        source.close()


def test_a_timecode_track_is_not_handed_on_as_a_stream_to_copy(tmp_path):
    """A camera MOV's timecode (tmcd) track is a data stream: it is neither upscaled nor copied,
    so none of its packets comes out beside the frames."""
    from video_media import write_timecoded_mov

    path = write_timecoded_mov(tmp_path / "camera.mov", "01:00:00:00")
    with av.open(str(path)) as container:  # what the test relies on: FFmpeg demuxes a data packet
        assert [s.type for s in container.streams] == ["video", "data"]
        assert any(p.size for p in container.demux(container.streams.data[0]))
    source = VideoSource(path)
    try:
        items = list(source.items())
        assert len(items) == 3 and all(hasattr(item, "planes") for item in items)
    finally:
        source.close()


def test_the_other_streams_alone_for_a_job_that_encodes_its_own_video(tmp_path):
    """`passthrough_packets` gives the audio packets exactly as FFmpeg demuxes them, none of the
    video's, the first one read before the first frame decoded included."""
    path = write_clip(tmp_path / "clip.mkv", Clip(frames=12, audio=[("aac", 2, "eng")]))
    with av.open(str(path)) as container:
        audio = [(p.pts, bytes(p)) for p in container.demux(audio=0) if p.size]
    source = VideoSource(path)
    try:
        assert any(hasattr(item, "stream") for item in source._pending)  # what the test relies on
        packets = list(source.passthrough_packets())
        assert all(p.stream.type == "audio" for p in packets)
        assert [bytes(p) for p in packets] == [data for _, data in audio]
        assert [p.pts - packets[0].pts for p in packets] == [pts - audio[0][0] for pts, _ in audio]
    finally:
        source.close()


def _write_raw(path: Path, rate: int, frames: int, short: tuple[int, ...] = ()) -> list[tuple[int, bytes]]:
    """Uncompressed 64×48 4:2:0 pictures in Matroska (1 ms clock), frame i flat at 20 + 10·i;
    the packets of the frames in `short` keep only their first 1000 bytes, as a damaged copy
    would. Returns each packet's (pts in ms, bytes) as written."""
    written = []
    with av.open(str(path), "w") as out:
        stream = out.add_stream("rawvideo", rate=rate)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64), 20 + 10 * i, np.uint8), format="gray")
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, rate)
            for packet in stream.encode(frame):
                if i in short:
                    cut = av.Packet(bytes(packet)[:1000])
                    cut.pts, cut.dts, cut.time_base, cut.stream = packet.pts, packet.dts, packet.time_base, packet.stream
                    packet = cut
                out.mux(packet)
                written.append((round(packet.pts * packet.time_base * 1000), bytes(packet)))
        out.mux(stream.encode())
    return written


def _unreadable_packets(path: Path) -> tuple[int, list[int]]:
    """(packets plain PyAV fails to decode, pts of the frames it decodes)."""
    failures, pts = 0, []
    with av.open(str(path)) as container:
        for packet in container.demux(video=0):
            try:
                pts += [frame.pts for frame in packet.decode()]
            except av.error.FFmpegError:
                failures += 1
    return failures, [p for p in pts if p is not None]


def _demuxer_errors(path: Path) -> int:
    """Error lines FFmpeg's demuxer logs while plain PyAV reads the file through."""
    import av.logging

    level = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture(local=False) as logs, av.open(str(path)) as container:
            name = container.format.name
            for _ in container.demux(video=0):
                pass
    finally:
        av.logging.set_level(level)
    return sum(1 for lvl, source, _ in logs if lvl <= av.logging.ERROR and source == name)


def test_packets_the_decoder_refuses_are_counted_and_the_rest_delivered(tmp_path):
    """Two raw pictures cut to 1000 of their 4608 bytes: the decoder refuses both; the six
    others come out at their own times."""
    path = tmp_path / "short.mkv"
    written = _write_raw(path, 25, 8, short=(3, 5))
    assert _unreadable_packets(path) == (2, [ms for i, (ms, _) in enumerate(written) if i not in (3, 5)])
    source = VideoSource(path)
    try:
        frames = _frames(source)
        assert [f.pts * source.time_base for f in frames] == [Fraction(i, 25) for i in (0, 1, 2, 4, 6, 7)]
        assert source.report.decode_errors == 2 and source.report.frames == 6
        assert source.report.describe() == "2 unreadable packet(s)"
    finally:
        source.close()


def test_frames_decoded_with_concealed_errors_are_counted(tmp_path):
    """MPEG-4 Part 2 in AVI with eight bytes overwritten in the middle of packets 4 and 7: FFmpeg
    conceals the damage and flags those two pictures corrupt; every picture still comes out."""
    clean = tmp_path / "clean.avi"
    with av.open(str(clean), "w") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        y, x = np.mgrid[0:48, 0:64]
        for i in range(12):
            picture = ((x * 4 + y * 3 + i * 10) % 256).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(np.stack([picture, picture[::-1], picture[:, ::-1]], -1))
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    data = bytearray(clean.read_bytes())
    with av.open(str(clean)) as container:
        packets = [bytes(p) for p in container.demux(video=0) if p.size]
    for k in (4, 7):
        at = data.find(packets[k]) + len(packets[k]) // 2
        data[at : at + 8] = b"\xff" * 8
    path = tmp_path / "damaged.avi"
    path.write_bytes(bytes(data))
    with av.open(str(path)) as container:  # FFmpeg's own verdict
        flagged = [frame.pts for frame in container.decode(video=0) if frame.is_corrupt]
    assert flagged == [4, 7]
    source = VideoSource(path)
    try:
        frames = _frames(source)
        assert [f.pts * source.time_base for f in frames] == [Fraction(i, 25) for i in range(12)]
        assert source.report.corrupt_frames == 2 and source.report.decode_errors == 0
    finally:
        source.close()


@pytest.mark.parametrize(("lost", "cut_short"), [(3, False), (4, True)])
def test_a_file_cut_short_is_told_when_more_than_two_and_a_half_frames_are_missing(tmp_path, lost, cut_short):
    """16 pictures at 100 fps, the file cut at the start of picture 16 − lost. Matroska states
    the track's length (DURATION tag) at the start of the file, so the cut file still says
    0.16 s. A stated end may run past the last picture by reordering delay and rounding, so up to
    2.5 frames + 10 ms (35 ms here) missing passes as whole: 30 ms does, 40 ms is told."""
    whole = tmp_path / "whole.mkv"
    _write_raw(whole, 100, 16)
    with av.open(str(whole)) as container:
        tag = container.streams.video[0].metadata["DURATION"]
        starts = [p.pos for p in container.demux(video=0) if p.size]
    path = tmp_path / "cut.mkv"
    path.write_bytes(whole.read_bytes()[: starts[16 - lost]])
    assert _unreadable_packets(path) == (0, [10 * i for i in range(16 - lost)])  # FFmpeg reads the rest cleanly
    source = VideoSource(path)
    try:
        assert len(_frames(source)) == 16 - lost
        assert source.report.expected_end == pytest.approx(_matroska_tag_seconds(tag)) == pytest.approx(0.16)
        assert source.report.decoded_end == pytest.approx((16 - lost) / 100)
        assert source.report.truncated is cut_short
        # FFmpeg's Matroska reader also logs the cut: the warning says so either way
        assert source.report.skipped == _demuxer_errors(path) == 1
        assert source.report.describe().startswith(f"the video stops at 0.{16 - lost} s of 0.16 s") is cut_short
        assert source.report.describe().endswith("the demuxer skipped over damaged data 1 time(s)")
    finally:
        source.close()


def _untagged_matroska(tmp_path: Path, clip: Clip) -> Path:
    """The clip in Matroska with its per-track DURATION tag's name overwritten, as muxers other
    than FFmpeg's write it: only the Segment states a duration."""
    data = write_clip(tmp_path / "tagged.mkv", clip).read_bytes()
    assert data.count(b"DURATION") == 1
    path = tmp_path / "untagged.mkv"
    path.write_bytes(data.replace(b"DURATION", b"DURATIOX"))
    with av.open(str(path)) as container:  # what the tests rely on
        stream = container.streams.video[0]
        assert not stream.duration and "DURATION" not in stream.metadata
    return path


def _assert_whole(path: Path, end: float) -> None:
    """12 frames at 25 fps ending at `end`: 0.48 s long, nothing reported cut."""
    source = VideoSource(path)
    try:
        assert source.report.expected_end == pytest.approx(end, abs=1e-9)
        assert source.seconds == pytest.approx(0.48, abs=1e-9) and source.frame_estimate == 12
        assert len(_frames(source)) == 12 and not source.report.truncated
    finally:
        source.close()


def test_a_matroska_file_without_a_duration_tag_takes_the_segment_duration(tmp_path):
    """With the video the only stream, the segment's duration is the video's length: 12 frames
    at 25 fps, 0.48 s."""
    path = _untagged_matroska(tmp_path, Clip(frames=12, rate=25))
    with av.open(str(path)) as container:
        assert (container.start_time, container.duration) == (0, 480_000)
    _assert_whole(path, 0.48)


def test_a_matroska_file_starting_late_without_a_duration_tag_is_whole(tmp_path):
    """The same with the first frame at 1 s (a capture cut from a longer recording): FFmpeg's
    muxer writes the end of the last frame as the Segment's Duration (1.48 s), and that is where
    the file ends, not 1 s later."""
    path = _untagged_matroska(tmp_path, Clip(frames=12, pts=[1000 + 40 * i for i in range(12)]))
    with av.open(str(path)) as container:
        assert (container.start_time, container.duration) == (1_000_000, 1_480_000)
    _assert_whole(path, 1.48)
    out = tmp_path / "out.mkv"
    assert main([str(path), str(out), "-m", "bicubic", "-s", "2", "--quiet"]) == 0
    with av.open(str(out)) as result:
        assert sum(1 for _ in result.decode(video=0)) == 12


def test_a_transport_stream_starting_late_counts_its_duration_from_its_start(tmp_path):
    """MPEG-TS: FFmpeg's duration is the length from the first timestamp (a broadcast capture
    whose clock reads 10 s), so 20 frames at 25 fps last 0.8 s."""
    path = write_transport_stream(tmp_path / "late.ts", start=10.0, frames=20)
    source = VideoSource(path)
    try:
        with av.open(str(path)) as container:
            assert container.start_time / 1e6 == pytest.approx(10.0, abs=0.1)  # what the test relies on
        assert source.seconds == pytest.approx(0.8, abs=0.05)
        assert source.frame_estimate == 20
    finally:
        source.close()


@pytest.mark.parametrize(("suffix", "stated"), [(".flv", 480_000), (".nut", 1_440_000)])
def test_a_file_starting_late_whose_container_alone_states_a_duration_is_whole(tmp_path, suffix, stated):
    """12 frames at 25 fps from 1 s, no B-frames, in containers whose video track states no
    duration: 0.48 s long, ending at 1.48 s. FLV's duration (its onMetaData) is that length; FFmpeg's NUT
    demuxer hands on its index's largest timestamp instead, the last frame's start (1.44 s). A late
    NUT was reported cut short (expected to end at 2.44 s) and refused."""
    clip = Clip(frames=12, pts=[1000 + 40 * i for i in range(12)], options={"bf": "0"})
    path = write_clip(tmp_path / f"late{suffix}", clip)
    with av.open(str(path)) as container:  # what the test relies on
        stream = container.streams.video[0]
        assert not stream.duration and not stream.metadata.get("DURATION") and len(container.streams) == 1
        assert (container.start_time, container.duration) == (1_000_000, stated)
    source = VideoSource(path)
    try:
        assert source.seconds == pytest.approx(0.48, abs=1e-9) and source.frame_estimate == 12
        frames = _frames(source)
        assert [f.pts * source.time_base for f in frames] == [Fraction(i, 25) for i in range(12)]
        assert not source.report.truncated and source.report.describe() == ""
    finally:
        source.close()


def test_files_without_video_say_what_they_hold(tmp_path):
    from ldl_video.errors import LdlError

    metadata = tmp_path / "chapters.txt"  # FFmpeg's metadata file: it opens, with no stream at all
    metadata.write_text(";FFMETADATA1\ntitle=Nothing to see\n")
    with av.open(str(metadata)) as container:
        assert len(container.streams) == 0  # what the test relies on
    with pytest.raises(LdlError, match=r"^chapters\.txt has no video stream to upscale \(it has: no streams at all\)$"):
        VideoSource(metadata)
    talk = tmp_path / "talk.mkv"
    with av.open(str(talk), "w") as out:
        sound = out.add_stream("aac", rate=48000)
        sound.layout = "mono"
        words = out.add_stream("subrip")
        words.codec_context.time_base = Fraction(1, 1000)
        words.codec_context.subtitle_header = ASS_HEADER
        tone = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        tone.sample_rate, tone.pts = 48000, 0
        out.mux(sound.encode(tone))
        out.mux(sound.encode())
    with pytest.raises(LdlError, match=r"^talk\.mkv has no video stream to upscale \(it has: audio, subtitle\)$"):
        VideoSource(talk)


def test_a_codec_without_a_decoder_and_a_video_without_one_whole_picture_are_refused(tmp_path):
    from ldl_video.errors import LdlError

    data = write_clip(tmp_path / "clip.mkv", Clip(frames=2)).read_bytes()
    unknown = tmp_path / "unknown.mkv"
    unknown.write_bytes(data.replace(b"V_MPEG4/ISO/AVC", b"V_QQQQQ/ISO/ZZZ"))  # a codec ID no decoder knows
    with av.open(str(unknown)) as container:
        assert container.streams.video[0].codec_context is None  # what the test relies on
    with pytest.raises(LdlError, match=rf"^unknown\.mkv: its video codec cannot be decoded by this FFmpeg build "
                                       rf"\(PyAV {av.__version__}\)$"):
        VideoSource(unknown)
    broken = tmp_path / "broken.mkv"
    _write_raw(broken, 25, 3, short=(0, 1, 2))
    assert _unreadable_packets(broken) == (3, [])
    with pytest.raises(LdlError, match=r"^no frame of broken\.mkv's video could be decoded \(damaged, or its first "
                                       r"packets are missing\)$"):
        VideoSource(broken)


def test_two_frames_stamped_alike_are_kept_one_tick_apart(tmp_path):
    """Raw pictures at 0, 40, 40 and 80 ms (a muxer that repeated a timestamp): both frames at
    40 ms are kept, the second one tick (1 ms) later, and the nudge is counted."""
    path = tmp_path / "repeat.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("rawvideo", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for i, ms in enumerate((0, 40, 40, 80)):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64), 30 + 40 * i, np.uint8), format="gray")
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = ms, Fraction(1, 1000)
            out.mux(stream.encode(frame))
    with av.open(str(path)) as container:
        assert [p.pts for p in container.demux(video=0) if p.size] == [0, 40, 40, 80]  # as written
    source = VideoSource(path)
    try:
        frames = _frames(source)
        assert [f.pts * source.time_base for f in frames] == [Fraction(ms, 1000) for ms in (0, 40, 41, 80)]
        assert source.report.retimed == 1
    finally:
        source.close()


def test_closing_lets_go_of_the_file_and_may_be_done_twice(tmp_path):
    import os

    path = write_clip(tmp_path / "clip.mkv", Clip(frames=3))

    def holding() -> int:  # the process's open files that are this clip (Linux's /proc)
        return sum(os.path.realpath(f"/proc/self/fd/{fd}") == str(path.resolve()) for fd in os.listdir("/proc/self/fd"))

    source = VideoSource(path)
    assert holding() == 1
    source.close()
    assert holding() == 0
    source.close()
    assert holding() == 0


@pytest.fixture
def stdin_from():
    """Points file descriptor 0 (what FFmpeg's pipe:0 reads) at a file for the test's length."""
    import os

    saved = os.dup(0)

    def point(path: Path) -> None:
        fd = os.open(path, os.O_RDONLY)
        os.dup2(fd, 0)
        os.close(fd)

    yield point
    os.dup2(saved, 0)
    os.close(saved)


def test_standard_input_is_read_once_as_a_stream(tmp_path, stdin_from):
    """`-` is standard input: the video is read from the pipe; its cover picture cannot be read
    a second time, so none is handed out (and nothing tries to open a file named "-")."""
    from video_media import cover_jpeg

    path = write_clip(tmp_path / "piped.mkv", Clip(frames=4, cover=cover_jpeg()))
    stdin_from(path)
    source = VideoSource(Path("-"))
    try:
        covers = [s for s in source.container.streams if int(s.disposition) & int(av.stream.Disposition.attached_pic)]
        assert len(covers) == 1  # what the test relies on: the attachment is a picture stream
        assert len(_frames(source)) == 4
        assert source.picture(covers[0]) == b""
    finally:
        source.close()


def test_standard_input_is_not_read_to_ask_whether_it_is_an_animation(tmp_path, stdin_from):
    pictures = [Image.fromarray(np.full((8, 8, 3), v, np.uint8)) for v in (0, 120, 240)]
    pictures[0].save(tmp_path / "moving.gif", save_all=True, append_images=pictures[1:], duration=100, loop=0)
    stdin_from(tmp_path / "moving.gif")
    assert not is_animated(Path("-"))
    assert (tmp_path / "moving.gif").read_bytes() == open(0, "rb", closefd=False).read()  # stdin untouched


def test_hdr10_metadata_comes_from_the_first_frame(tmp_path):
    """x265 writes the mastering display and light levels into the bitstream (SEI): the first
    frame carries them, the Matroska track does not, and the reader hands on what x265 was given."""
    from video_media import HDR10, MASTER_DISPLAY, MAX_CLL, PATCH_RGB

    params = f"log-level=error:hdr10=1:master-display={MASTER_DISPLAY}:max-cll={MAX_CLL}"
    path = write_clip(tmp_path / "hdr10.mkv", Clip(frames=2, codec="libx265", pix_fmt="yuv420p10le", tags=HDR10, depth=16,
                                                   colour=PATCH_RGB, options={"x265-params": params}))
    with av.open(str(path)) as container:  # what the test relies on
        assert not container.streams.video[0].codec_context.coded_side_data
    source = VideoSource(path)
    try:
        assert (source.hdr.master_display, source.hdr.max_cll) == (MASTER_DISPLAY, MAX_CLL)
    finally:
        source.close()


def _with_sample_entry_boxes(data: bytes, extra: bytes) -> bytes:
    """An MP4 (index at the end) with `extra` boxes appended to its first video sample entry, and
    every box around it (moov/trak/mdia/minf/stbl/stsd/the entry, ISO/IEC 14496-12) grown to hold them."""
    containers = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}

    def walk(start: int, end: int, path: list[int]) -> tuple[list[int], int] | None:
        while start < end:
            size, kind = struct.unpack(">I4s", data[start: start + 8])
            if kind == b"stsd":
                entry = start + 16  # after its version, flags and entry count
                return [*path, start, entry], entry + struct.unpack(">I", data[entry: entry + 4])[0]
            if kind in containers and (found := walk(start + 8, start + size, [*path, start])):
                return found
            start += size
        return None

    boxes, at = walk(0, len(data), [])
    out = bytearray(data[:at] + extra + data[at:])
    for box in boxes:
        out[box: box + 4] = struct.pack(">I", struct.unpack(">I", out[box: box + 4])[0] + len(extra))
    return bytes(out)


def test_hdr10_metadata_of_an_mp4_track_is_handed_on(tmp_path):
    """An MP4 whose sample entry states the mastering display ('mdcv': G, B, R and white point in
    1/50000, luminance in 1/10000 cd/m², as in HEVC's SEI) and the light levels ('clli'), over an
    x264 bitstream that carries none: the reader hands on the track's, in x265's spelling. (FFmpeg 7's
    decoders also attach the track's to every frame, so either way of reading it finds them.)"""
    mdcv = struct.pack(">8H2I", 8500, 39850, 6550, 2300, 35400, 14600, 15635, 16450, 10_000_000, 50)
    clli = struct.pack(">2H", 1000, 400)
    boxes = struct.pack(">I4s", 8 + len(mdcv), b"mdcv") + mdcv + struct.pack(">I4s", 8 + len(clli), b"clli") + clli
    path = tmp_path / "hdr-track.mp4"
    path.write_bytes(_with_sample_entry_boxes(write_clip(tmp_path / "sdr.mp4", Clip(frames=2)).read_bytes(), boxes))
    source = VideoSource(path)
    try:
        assert source.hdr.master_display == "G(8500,39850)B(6550,2300)R(35400,14600)WP(15635,16450)L(10000000,50)"
        assert source.hdr.max_cll == "1000,400"
    finally:
        source.close()


def test_the_nominal_rate_of_a_variable_rate_mp4_is_its_average(tmp_path):
    """Frames 20 or 60 ms apart: FFmpeg states the average (ffprobe's avg_frame_rate, 12 frames
    over 380 ms) and a 50 fps grid (r_frame_rate) that holds every timestamp. The output's rate
    is the average."""
    pts = [0, 20, 40, 60, 120, 180, 240, 260, 280, 300, 360, 420]
    path = write_clip(tmp_path / "vfr.mp4", Clip(frames=len(pts), pts=pts))
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        average, grid = stream.average_rate, stream.guessed_rate
    assert (average, grid) == (Fraction(600, 19), 50)  # what the test relies on
    source = VideoSource(path)
    try:
        assert source.rate == Fraction(600, 19)
    finally:
        source.close()


def test_a_file_that_may_not_be_read_is_named(tmp_path):
    import os
    import re

    from ldl_video.errors import LdlError

    locked = tmp_path / "locked.mkv"
    write_clip(locked, Clip(frames=2)).chmod(0)
    if os.access(locked, os.R_OK):  # root reads anything: take a file the kernel refuses to everyone
        locked = Path("/proc/sys/vm/drop_caches")
    assert not os.access(locked, os.R_OK)  # what the test relies on
    with pytest.raises(LdlError, match=rf"^cannot read {re.escape(str(locked))}: permission denied$"):
        VideoSource(locked)
