"""Fixtures: the video tests' media, built once per session with PyAV (see video_media.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from video_media import HDR10, MASTER_DISPLAY, MAX_CLL, PATCH_RGB, VFR_PTS, Clip, write_clip

# ---- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def multitrack_mkv(media) -> Path:
    """Two audio tracks (AAC stereo, Opus mono), a SubRip track, two chapters, a title."""
    clip = Clip(frames=25, audio=[("aac", 2, "eng"), ("libopus", 1, "fra")], subtitles=[(200, 600, "Hello"), (700, 950, "World")],
                chapters=[(0, 500, "One"), (500, 1000, "Two")], title="A test clip")
    return write_clip(media / "multitrack.mkv", clip)



@pytest.fixture(scope="session")
def vfr_mkv(media) -> Path:
    return write_clip(media / "vfr.mkv", Clip(frames=len(VFR_PTS), pts=VFR_PTS, audio=[("aac", 2, "eng")]))


@pytest.fixture(scope="session")
def vfr_mp4(media) -> Path:
    return write_clip(media / "vfr.mp4", Clip(frames=len(VFR_PTS), pts=VFR_PTS, audio=[("aac", 2, "eng")]))


@pytest.fixture(scope="session")
def hdr10_mkv(media) -> Path:
    """10-bit HEVC with BT.2020 / PQ tags and HDR10 mastering metadata, a flat colour."""
    params = f"log-level=error:hdr10=1:master-display={MASTER_DISPLAY}:max-cll={MAX_CLL}"
    clip = Clip(frames=4, codec="libx265", pix_fmt="yuv420p10le", tags=HDR10, depth=16, colour=PATCH_RGB,
                options={"x265-params": params, "crf": "8"})
    return write_clip(media / "hdr10.mkv", clip)


@pytest.fixture(scope="session")
def patch_mp4(media) -> Path:
    """A flat BT.709 colour, as a camera or editor would tag it."""
    return write_clip(media / "patch709.mp4", Clip(frames=3, colour=PATCH_RGB, options={"qp": "0"}))


@pytest.fixture(scope="session")
def webm_clip(media) -> Path:
    """VP9 + Opus in WebM: the container announces no frame count."""
    clip = Clip(frames=8, codec="libvpx-vp9", audio=[("libopus", 2, "eng")], options={"deadline": "realtime", "cpu-used": "8"})
    return write_clip(media / "clip.webm", clip)


@pytest.fixture(scope="session")
def truncated_mkv(media) -> tuple[Path, int]:
    """30 frames of which the last part of the file is cut off; returns (path, frames in full)."""
    full = write_clip(media / "full.mkv", Clip(frames=30, audio=[("aac", 2, "eng")]))
    data = full.read_bytes()
    cut = media / "truncated.mkv"
    cut.write_bytes(data[: int(len(data) * 0.55)])
    return cut, 30


@pytest.fixture(scope="session")
def no_keyframe_start_mkv(media) -> Path:
    """A stream cut mid-GOP: its first packets reference a keyframe that is not in the file."""
    import av

    whole = write_clip(media / "gop10.mkv", Clip(frames=30, gop=10))
    cut = media / "no-keyframe-start.mkv"
    with av.open(str(whole)) as source, av.open(str(cut), "w") as out:
        stream = out.add_stream_from_template(source.streams.video[0])
        packets = [p for p in source.demux(source.streams.video[0]) if p.size]
        for packet in packets[4:]:
            packet.stream = stream
            out.mux(packet)
    return cut


@pytest.fixture(scope="session")
def odd_mkv(media) -> Path:
    """63×47 in 4:4:4 (4:2:0 cannot hold odd sizes)."""
    return write_clip(media / "odd.mkv", Clip(width=63, height=47, frames=3, pix_fmt="yuv444p"))


@pytest.fixture(scope="session")
def rotated_mp4(media) -> Path:
    """A phone clip: stored landscape, shown portrait (display matrix, 90°)."""
    return write_clip(media / "rotated.mp4", Clip(frames=3, rotation=90))


@pytest.fixture(scope="session")
def moving_mkv(media) -> Path:
    """Frames whose brightness encodes their index, to check order after a split run."""
    return write_clip(media / "moving.mkv", Clip(frames=11, audio=[("aac", 2, "eng")], options={"qp": "0"}))


@pytest.fixture(scope="session")
def untagged_sd_mkv(media) -> Path:
    """No colour tags at all, SD size: players (and we) read it as BT.601 limited range."""
    import av

    path = media / "untagged-sd.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"qp": "0"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        clip = Clip(colour=PATCH_RGB)
        for i in range(2):
            frame = av.VideoFrame.from_ndarray(clip.frame(i)).reformat(format="yuv420p", dst_colorspace="ITU601",
                                                                     dst_color_range="MPEG")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


@pytest.fixture(scope="session")
def full_range_mkv(media) -> Path:
    """BT.709 matrix with full-range levels (0-255), as some cameras and screen recorders write."""
    return write_clip(media / "full-range.mkv", Clip(frames=2, colour=PATCH_RGB, tags=(1, 1, 1, 2), options={"qp": "0"}))


@pytest.fixture(scope="session")
def audio_only_m4a(media) -> Path:
    import av
    from video_media import _write_tone

    path = media / "song.m4a"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=48000)
        stream.layout = "stereo"
        _write_tone(out, stream, 2, 0.2)
    return path


@pytest.fixture(scope="session")
def unknown_codec_mkv(media) -> Path:
    """A Matroska file whose video track names a codec no decoder knows."""
    whole = write_clip(media / "for-unknown-codec.mkv", Clip(frames=2))
    data = whole.read_bytes()
    assert b"V_MPEG4/ISO/AVC" in data
    path = media / "unknown-codec.mkv"
    path.write_bytes(data.replace(b"V_MPEG4/ISO/AVC", b"V_QQQQQ/ISO/ZZZ"))
    return path


@pytest.fixture(scope="session")
def noise_mkv(media) -> Path:
    """Random pixels: the encoder cannot compress them, so the output grows fast."""
    import numpy as np

    class Noise(Clip):
        def frame(self, i: int) -> np.ndarray:
            return np.random.default_rng(i).integers(0, 256, (self.height, self.width, 3), dtype=np.uint8)

    return write_clip(media / "noise.mkv", Noise(width=128, height=96, frames=10))


@pytest.fixture(scope="session")
def long_mkv(media) -> Path:
    """Long enough (600 frames) to be interrupted half-way."""
    return write_clip(media / "long.mkv", Clip(width=64, height=48, frames=600, audio=[("aac", 2, "eng")],
                                               options={"preset": "ultrafast"}))


@pytest.fixture(scope="session")
def attachment_mkv(media) -> Path:
    """Matroska with an attached font, as anime releases carry for their styled subtitles."""
    import av

    whole = write_clip(media / "for-attachment.mkv", Clip(frames=3))
    path = media / "attachment.mkv"
    with av.open(str(whole)) as source, av.open(str(path), "w") as out:
        stream = out.add_stream_from_template(source.streams.video[0])
        out.add_attachment("font.ttf", "application/x-truetype-font", b"not really a font, but bytes to keep")
        for packet in source.demux(source.streams.video[0]):
            if packet.size:
                packet.stream = stream
                out.mux(packet)
    return path


@pytest.fixture(scope="session")
def gapped_audio(media):
    """Per audio codec, a 3 s clip whose sound starts at 0.5 s and has no packets between 1 s
    and 2 s (a dropout in a recording, or a cut in an edited file)."""
    from video_media import write_gapped_audio

    made: dict[str, Path] = {}

    def make(codec: str) -> Path:
        if codec not in made:
            made[codec] = write_gapped_audio(media / f"gap-{codec}.mkv", codec, [(0.5, 1.0), (2.0, 3.0)], 3.0)
        return made[codec]

    return make


@pytest.fixture(scope="session")
def late_ts(media) -> Path:
    """A broadcast capture whose clock reads one hour at its first frame."""
    from video_media import write_transport_stream

    return write_transport_stream(media / "late.ts", 3600.0)


@pytest.fixture(scope="session")
def wrapping_ts(media) -> Path:
    """A transport stream whose 33-bit clock wraps to zero 1.32 s in."""
    from video_media import write_transport_stream

    return write_transport_stream(media / "wrap.ts", 2**33 / 90000 - 1.32)


@pytest.fixture(scope="session")
def damaged_mkv(media) -> tuple[Path, int]:
    """3 s of Matroska in half-second clusters (as muxers cut them at keyframes), 2000 random
    bytes written over the middle of the file: the demuxer resyncs at the next cluster and
    frames go missing without any failed call. Returns (path, frames in full)."""
    import numpy as np

    whole = write_clip(media / "for-damage.mkv", Clip(frames=75, gop=12, audio=[("aac", 2, "eng")],
                                                       container_options={"cluster_time_limit": "500"}))
    data = bytearray(whole.read_bytes())
    start = int(len(data) * 0.4)
    data[start : start + 2000] = np.random.default_rng(3).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    path = media / "damaged.mkv"
    path.write_bytes(bytes(data))
    return path, 75
