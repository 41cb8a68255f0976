"""Builders and readers for the video tests' media, made with PyAV: tiny clips with real audio,
subtitle and chapter streams, variable frame rates, 10-bit HDR tags."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.subtitles.subtitle import SubtitleSet

from ldl_video.video.streams import DEFAULT_ASS_HEADER as ASS_HEADER

BT709 = (1, 1, 1, 1)  # primaries, transfer, matrix, range (limited)
PATCH_RGB = (200, 39, 28)


# An HDR10 grade: BT.2020 primaries, PQ transfer, BT.2020 matrix, limited range.
HDR10 = (9, 16, 9, 1)
MASTER_DISPLAY = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50)"
MAX_CLL = "1000,400"
VFR_PTS = [0, 40, 80, 200, 240, 250, 260, 400, 433, 467, 500, 700]  # milliseconds


@dataclass
class Clip:
    """How to make a clip; `frame(i)` gives frame i's RGB pixels."""

    width: int = 64
    height: int = 48
    frames: int = 10
    rate: int = 25
    pts: list[int] | None = None  # in 1/1000 s; None = constant rate
    codec: str = "libx264"
    pix_fmt: str = "yuv420p"
    tags: tuple[int, int, int, int] | None = BT709
    depth: int = 8
    audio: list[tuple[str, int, str]] = field(default_factory=list)  # (encoder, channels, language)
    subtitles: list[tuple[int, int, str]] = field(default_factory=list)  # (start ms, end ms, text)
    chapters: list[tuple[int, int, str]] = field(default_factory=list)
    title: str | None = None
    rotation: int | None = None
    gop: int | None = None
    options: dict[str, str] = field(default_factory=dict)
    container_options: dict[str, str] = field(default_factory=dict)
    colour: tuple[int, int, int] | None = None  # a flat frame instead of the moving pattern
    sar: Fraction | None = None  # pixel aspect ratio (anamorphic DVD: 64:45 wide, 8:9 narrow)
    cover: bytes | None = None  # a JPEG: an image attachment in Matroska, cover art (attached picture) elsewhere

    def frame(self, i: int) -> np.ndarray:
        top = 255 if self.depth == 8 else 65535
        if self.colour is not None:
            value = np.array(self.colour, np.float64) / 255 * top
            return np.broadcast_to(value.round().astype(self.dtype), (self.height, self.width, 3)).copy()
        y, x = np.mgrid[0 : self.height, 0 : self.width]
        # A gradient whose brightness marks the frame index, so order can be checked after upscaling.
        base = (40 + (i * 16) % 180) / 255
        img = np.stack([base + 0.2 * x / self.width, base + 0.1 * y / self.height, np.full_like(x, base, dtype=float)], -1)
        return (np.clip(img, 0, 1) * top).round().astype(self.dtype)

    @property
    def dtype(self):
        return np.uint8 if self.depth == 8 else np.uint16


def frame_brightness(index: int) -> float:
    """The blue channel level of frame `index` of a moving-pattern clip (0-255 scale)."""
    return 40 + (index * 16) % 180


def write_clip(path: Path, clip: Clip) -> Path:
    out = av.open(str(path), "w", options=clip.container_options)
    if clip.title:
        out.metadata["title"] = clip.title
    video = out.add_stream(clip.codec, rate=clip.rate, options=dict(clip.options))
    video.width, video.height, video.pix_fmt = clip.width, clip.height, clip.pix_fmt
    context = video.codec_context
    context.time_base = Fraction(1, 1000) if clip.pts else Fraction(1, clip.rate)
    if clip.gop:
        context.gop_size = clip.gop
    if clip.sar:
        context.sample_aspect_ratio = clip.sar
    if clip.tags:
        context.color_primaries, context.color_trc, context.colorspace, context.color_range = clip.tags
    if clip.rotation is not None:
        video.set_display_rotation(clip.rotation)
    audio_streams = []
    for encoder, channels, language in clip.audio:
        stream = out.add_stream(encoder, rate=48000)
        stream.layout = "stereo" if channels == 2 else "mono"
        stream.metadata["language"] = language
        audio_streams.append((stream, channels))
    subtitle_stream = None
    if clip.subtitles:
        subtitle_codec = "mov_text" if path.suffix in (".mp4", ".mov") else "webvtt" if path.suffix == ".webm" else "subrip"
        subtitle_stream = out.add_stream(subtitle_codec)
        subtitle_stream.codec_context.time_base = Fraction(1, 1000)
        subtitle_stream.codec_context.subtitle_header = ASS_HEADER
        subtitle_stream.metadata["language"] = "eng"
    if clip.chapters:
        out.set_chapters([{"id": i + 1, "start": a, "end": b, "time_base": Fraction(1, 1000), "metadata": {"title": t}}
                          for i, (a, b, t) in enumerate(clip.chapters)])
    cover_stream = None
    if clip.cover is not None and path.suffix in (".mkv", ".webm"):
        out.add_attachment("cover.jpg", "image/jpeg", clip.cover)
    elif clip.cover is not None:
        cover_stream = out.add_stream("mjpeg")
        cover_stream.width = cover_stream.height = 32
        cover_stream.pix_fmt = "yuvj420p"
        cover_stream.disposition = av.stream.Disposition.attached_pic
    out.start_encoding()
    if cover_stream is not None:
        packet = av.Packet(clip.cover)
        packet.stream, packet.time_base, packet.pts, packet.dts = cover_stream, Fraction(1, 90000), 0, 0
        out.mux(packet)
    for i in range(clip.frames):
        rgb = av.VideoFrame.from_ndarray(clip.frame(i), format="rgb24" if clip.depth == 8 else "rgb48le")
        if clip.colour is not None and clip.tags:
            frame = flat_frame(clip)
        elif clip.tags:
            sws = {1: "ITU709", 9: "BT2020", 6: "ITU601", 5: "ITU601"}[clip.tags[2]]
            frame = rgb.reformat(format=clip.pix_fmt, dst_colorspace=sws, dst_color_range="JPEG" if clip.tags[3] == 2 else "MPEG")
        else:
            frame = rgb.reformat(format=clip.pix_fmt)
        frame.pts = clip.pts[i] if clip.pts else i
        frame.time_base = context.time_base
        out.mux(video.encode(frame))
    out.mux(video.encode())
    seconds = (clip.pts[-1] / 1000 + 0.04) if clip.pts else clip.frames / clip.rate
    for stream, channels in audio_streams:
        _write_tone(out, stream, channels, seconds)
    for start, end, text in clip.subtitles:
        subtitle = SubtitleSet.create(text=b"0,0,Default,,0,0,0,," + text.encode(), start=0, end=end - start, pts=start * 1000)
        packet = subtitle_stream.codec_context.encode_subtitle(subtitle)
        packet.stream = subtitle_stream
        packet.time_base = Fraction(1, 1000)
        packet.pts = packet.dts = start
        packet.duration = end - start
        out.mux(packet)
    out.close()
    return path


def flat_frame(clip: Clip) -> av.VideoFrame:
    """A frame of one colour, its Y, Cb, Cr worked out with the textbook formulas (swscale's
    full-range 4:2:0 output is off by one in most chroma rows)."""
    primaries, transfer, matrix, range_ = clip.tags
    kr, kb = _KR_KB[matrix]
    r, g, b = (c / 255 for c in clip.colour)
    y = kr * r + (1 - kr - kb) * g + kb * b
    cb, cr = (b - y) / (2 * (1 - kb)), (r - y) / (2 * (1 - kr))
    depth = 8 if clip.pix_fmt in ("yuv420p", "yuv444p") else 10
    if range_ == 2:
        top = 2**depth - 1
        codes = (y * top, cb * top + 2 ** (depth - 1), cr * top + 2 ** (depth - 1))
    else:
        unit = 2 ** (depth - 8)
        codes = ((219 * y + 16) * unit, (224 * cb + 128) * unit, (224 * cr + 128) * unit)
    frame = av.VideoFrame(clip.width, clip.height, clip.pix_fmt)
    dtype = np.uint8 if depth == 8 else np.uint16
    for plane, code in zip(frame.planes, codes, strict=True):
        np.frombuffer(plane, dtype)[:] = round(code)
    frame.color_range, frame.colorspace = range_, matrix
    return frame


def _write_tone(out, stream, channels: int, seconds: float) -> None:
    total, t, size = int(seconds * 48000), 0, 960
    while t < total:
        n = min(size, total - t)
        wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(t, t + n) / 48000)).astype(np.float32)
        layout = "stereo" if channels == 2 else "mono"
        frame = av.AudioFrame.from_ndarray(np.tile(wave, (channels, 1)), format="fltp", layout=layout)
        frame.sample_rate, frame.pts = 48000, t
        out.mux(stream.encode(frame))
        t += n
    out.mux(stream.encode())


# ---- reading results back --------------------------------------------------------------------


def decoded_pts(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        return [f.pts for f in container.decode(container.streams.video[0])]


def decoded_seconds(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [round(float(f.pts * stream.time_base), 4) for f in container.decode(stream)]


def decoded_rgb(path: Path, fmt: str = "rgb24") -> list[np.ndarray]:
    """Frames as the file's own tags say to convert them (PyAV follows the frame's tags)."""
    with av.open(str(path)) as container:
        return [f.to_ndarray(format=fmt) for f in container.decode(container.streams.video[0])]


_KR_KB = {1: (0.2126, 0.0722), 5: (0.299, 0.114), 6: (0.299, 0.114), 9: (0.2627, 0.0593)}


def centre_rgb(frame: av.VideoFrame) -> np.ndarray:
    """The RGB (0-255 scale) of a frame's centre, worked out from its raw Y, Cb, Cr planes with
    the textbook formulas and the frame's own matrix and range tags (swscale is not used: its
    full-range path is off by a few levels)."""
    depth = 8 if frame.format.name.replace("yuvj", "yuv") in ("yuv420p", "yuv422p", "yuv444p") else 10
    dtype = np.uint8 if depth == 8 else np.uint16

    def sample(index: int) -> float:
        plane = frame.planes[index]
        rows = np.frombuffer(plane, dtype).reshape(plane.height, plane.line_size // dtype().itemsize)
        return float(rows[plane.height // 2 - 2 : plane.height // 2 + 2, plane.width // 2 - 2 : plane.width // 2 + 2].mean())

    y, cb, cr = (sample(i) for i in range(3))
    unit = 2 ** (depth - 8)
    if frame.color_range == 2 or frame.format.name.startswith("yuvj"):
        top = 2**depth - 1
        y, cb, cr = y / top, (cb - 2 ** (depth - 1)) / top, (cr - 2 ** (depth - 1)) / top
    else:
        y, cb, cr = (y / unit - 16) / 219, (cb / unit - 128) / 224, (cr / unit - 128) / 224
    kr, kb = _KR_KB[frame.colorspace]
    r, b = y + 2 * (1 - kr) * cr, y + 2 * (1 - kb) * cb
    g = (y - kr * r - kb * b) / (1 - kr - kb)
    return np.array([r, g, b]) * 255


def centre_colours(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [centre_rgb(f) for f in container.decode(container.streams.video[0])]


def packet_digests(path: Path, kind: str) -> list[list[tuple]]:
    """Per stream of `kind`: (pts in seconds, duration in seconds, md5 of the payload) of every packet."""
    with av.open(str(path)) as container:
        streams = [s for s in container.streams if s.type == kind]
        found: dict[int, list[tuple]] = {s.index: [] for s in streams}
        for packet in container.demux(streams):
            if packet.dts is None and packet.size == 0:
                continue
            tb = packet.stream.time_base
            found[packet.stream.index].append((round(float(packet.pts * tb), 3), round(float((packet.duration or 0) * tb), 3),
                                               hashlib.md5(bytes(packet)).hexdigest()))
        return [found[s.index] for s in streams]


def assert_same_packets(result: list[list[tuple]], source: list[list[tuple]]) -> None:
    """The same payloads in the same order at the same times (to the millisecond: Matroska
    keeps milliseconds, MP4 keeps samples)."""
    assert len(result) == len(source)
    for got, want in zip(result, source, strict=True):
        assert [p[2] for p in got] == [p[2] for p in want]
        assert all(abs(a[0] - b[0]) <= 0.0015 for a, b in zip(got, want, strict=True))


def subtitle_texts(path: Path) -> list[tuple[float, str]]:
    with av.open(str(path)) as container:
        stream = container.streams.subtitles[0]
        texts = []
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            subtitles = stream.codec_context.decode2(packet)
            for rect in subtitles or []:
                texts.append((round(float(packet.pts * stream.time_base), 3), rect.dialogue.decode().strip()))
        return texts


# ---- audio on a timeline ---------------------------------------------------------------------

TONE_HZ = 440


def write_gapped_audio(path: Path, codec: str, chunks: list[tuple[float, float]], seconds: float) -> Path:
    """A video of `seconds` with an audio track that sounds only during `chunks` (start, end in
    seconds) and has no packets in between: the timestamps jump, as in an edited or recorded
    file with a dropout. The tone is a sine of absolute time, so any sample's place is known."""
    out = av.open(str(path), "w")
    video = out.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
    video.width, video.height, video.pix_fmt = 32, 24, "yuv420p"
    video.codec_context.time_base = Fraction(1, 25)
    options = {"strict": "experimental"} if codec == "vorbis" else {}
    audio = out.add_stream(codec, rate=48000, options=options)
    audio.layout = "stereo"
    clip = Clip(width=32, height=24)
    for i in range(round(seconds * 25)):
        frame = av.VideoFrame.from_ndarray(clip.frame(i)).reformat(format="yuv420p")
        frame.pts, frame.time_base = i, Fraction(1, 25)
        out.mux(video.encode(frame))
    out.mux(video.encode())
    size = audio.codec_context.frame_size or 1024
    for start, end in chunks:
        t = round(start * 48000)
        while t < round(end * 48000):
            n = min(size, round(end * 48000) - t)
            wave = (0.3 * np.sin(2 * np.pi * TONE_HZ * np.arange(t, t + n) / 48000)).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(np.tile(wave, (2, 1)), format="fltp", layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = 48000, t, Fraction(1, 48000)
            for resampled in av.AudioResampler(format=audio.format.name, layout="stereo", rate=48000).resample(frame):
                resampled.pts, resampled.time_base = t, Fraction(1, 48000)
                out.mux(audio.encode(resampled))
            t += n
    out.mux(audio.encode())
    out.close()
    return path


def audio_timeline(path: Path, rate: int = 48000) -> np.ndarray:
    """The first audio track's left channel laid out on the file's timeline by each decoded
    frame's own timestamp (what a player does), silence where nothing is."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        pieces = []
        for frame in container.decode(stream):
            resampled = av.AudioResampler(format="fltp", layout="stereo", rate=rate).resample(frame)
            for piece in resampled:
                pieces.append((round(frame.pts * frame.time_base * rate), piece.to_ndarray()[0]))
        end = max(start + len(samples) for start, samples in pieces)
        timeline = np.zeros(end, np.float32)
        for start, samples in pieces:
            if start < 0:
                samples, start = samples[-start:], 0
            timeline[start : start + len(samples)] = samples
        return timeline


def loudness(timeline: np.ndarray, start: float, end: float, rate: int = 48000) -> float:
    """RMS level between two times in seconds."""
    part = timeline[round(start * rate) : round(end * rate)]
    return float(np.sqrt(np.mean(part.astype(np.float64) ** 2))) if len(part) else 0.0


def write_transport_stream(path: Path, start: float, frames: int = 50, gop: int | None = None) -> Path:
    """An MPEG-TS recording (H.264 + AAC, 90 kHz clock) whose clock reads `start` seconds at its
    first frame, as a broadcast capture's does. A start just below 2**33 / 90000 s (26.5 h)
    makes the timestamps wrap to zero part-way through."""
    clip = Clip(frames=frames)
    out = av.open(str(path), "w", format="mpegts")
    video = out.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
    video.width, video.height, video.pix_fmt = clip.width, clip.height, "yuv420p"
    video.codec_context.time_base = Fraction(1, 90000)
    if gop:
        video.codec_context.gop_size = gop
    audio = out.add_stream("aac", rate=48000)
    audio.layout = "stereo"
    first = round(start * 90000)
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(clip.frame(i)).reformat(format="yuv420p", dst_colorspace="ITU709",
                                                                 dst_color_range="MPEG")
        frame.pts, frame.time_base = first + i * 3600, Fraction(1, 90000)
        out.mux(video.encode(frame))
    out.mux(video.encode())
    first_sample, total, t = round(start * 48000), frames * 48000 // 25, 0
    while t < total:
        n = min(1024, total - t)
        wave = (0.3 * np.sin(2 * np.pi * TONE_HZ * np.arange(t, t + n) / 48000)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.tile(wave, (2, 1)), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = 48000, first_sample + t, Fraction(1, 48000)
        out.mux(audio.encode(frame))
        t += n
    out.mux(audio.encode())
    out.close()
    return path


def stream_starts(path: Path) -> dict[str, float]:
    """Each stream type's first presented time in seconds (first decoded video frame, first audio packet)."""
    with av.open(str(path)) as container:
        video = next(container.decode(video=0))
        first = {"video": float(video.pts * video.time_base)}
    with av.open(str(path)) as container:
        packet = next(p for p in container.demux(audio=0) if p.pts is not None)
        first["audio"] = float(packet.pts * packet.time_base)
    return first


def write_timecoded_mov(path: Path, timecode: str) -> Path:
    """A camera-style MOV whose video carries a start timecode: FFmpeg's MOV muxer writes it as
    a timecode (tmcd) track, which readers see as a data stream."""
    clip = Clip(frames=3)
    out = av.open(str(path), "w")
    video = out.add_stream("libx264", rate=25)
    video.width, video.height, video.pix_fmt = clip.width, clip.height, "yuv420p"
    video.metadata["timecode"] = timecode
    for i in range(clip.frames):
        frame = av.VideoFrame.from_ndarray(clip.frame(i)).reformat(format="yuv420p")
        frame.pts, frame.time_base = i, Fraction(1, 25)
        out.mux(video.encode(frame))
    out.mux(video.encode())
    out.close()
    return path


def cover_jpeg(size: int = 32, level: int = 200) -> bytes:
    """A small gray JPEG, as a cover picture."""
    context = av.CodecContext.create("mjpeg", "w")
    context.width, context.height, context.pix_fmt, context.time_base = size, size, "yuvj420p", Fraction(1, 25)
    frame = av.VideoFrame.from_ndarray(np.full((size, size, 3), level, np.uint8)).reformat(format="yuvj420p")
    return bytes(context.encode(frame)[0])
