"""The input side: open a file, pick its video stream, decode frames to planar arrays and hand
every other packet on untouched. Damage is counted, not fatal: what decodes is delivered, and
`report` says afterwards how much was lost."""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.codec.context import ThreadType

from ..errors import LdlError
from .colour import ColourTags, HdrMetadata, PixelFamily, effective_tags, hdr_from_frame, hdr_from_stream, pixel_family
from .convert import PlaneFormat, read_planes
from .ffmpeg_log import ERRORS

# A demuxer that keeps failing at the same spot is at the end of what can be read.
MAX_CONSECUTIVE_DEMUX_ERRORS = 16
# The video packets since the last keyframe are kept, up to these bounds, so that the end of a
# damaged file can be decoded again without frame threads (VideoSource._redecoded_tail).
MAX_KEPT_PACKETS = 1024
MAX_KEPT_BYTES = 64 << 20


@dataclass
class DecodedFrame:
    pts: int
    planes: list[np.ndarray]  # in the source's PlaneFormat


@dataclass
class DecodeReport:
    frames: int = 0
    decode_errors: int = 0
    demux_errors: int = 0
    corrupt_frames: int = 0
    retimed: int = 0  # frames whose timestamp had to be nudged to stay increasing
    resized: int = 0  # frames at another size than the first, scaled to it
    expected_end: float | None = None  # seconds, from the container's own duration
    decoded_end: float | None = None
    tolerance: float = 0.1  # seconds the video may end early without counting as cut short
    skipped: int = 0  # times the demuxer's own log says it read past damage

    @property
    def truncated(self) -> bool:
        if self.expected_end is None or self.decoded_end is None:
            return False
        return self.decoded_end < self.expected_end - self.tolerance

    @property
    def damaged(self) -> bool:
        return bool(self.decode_errors or self.demux_errors or self.skipped or self.truncated)

    def describe(self) -> str:
        parts = []
        if self.truncated:
            parts.append(f"the video stops at {self.decoded_end:.2f} s of {self.expected_end:.2f} s")
        if self.decode_errors or self.demux_errors:
            parts.append(f"{self.decode_errors + self.demux_errors} unreadable packet(s)")
        if self.skipped:
            parts.append(f"the demuxer skipped over damaged data {self.skipped} time(s)")
        return "; ".join(parts)


def _parse_duration_tag(text: str | None) -> float | None:
    """Matroska's per-track DURATION tag, e.g. '00:00:02.000000000'."""
    match = re.fullmatch(r"(\d+):(\d+):(\d+(?:\.\d+)?)", (text or "").strip())
    if not match:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def is_cover_art(stream: av.stream.Stream) -> bool:
    return bool(int(stream.disposition) & int(av.stream.Disposition.attached_pic))


STDIN = "-"
_SEQUENCE_NUMBER = re.compile(r"%0?\d*d")


def local_name(path: Path) -> str:
    """The name to give FFmpeg for a local file (`-` is standard input). FFmpeg reads anything
    before a colon as a protocol, so `12:30:00.mp4` would be "protocol not found"; `file:` says
    it is a file."""
    return "pipe:0" if str(path) == STDIN else f"file:{path}"


def is_sequence(path: Path) -> bool:
    """`frames/%05d.png`: numbered images, read as one video (FFmpeg's image2 pattern)."""
    return bool(_SEQUENCE_NUMBER.search(path.name))


def sequence_files(path: Path) -> list[Path]:
    def digits(match: re.Match) -> str:
        width = match.group(0)[1:-1].lstrip("0")
        return rf"\d{{{width}}}" if match.group(0).startswith("%0") and width else r"\d+"

    pattern = re.compile(_SEQUENCE_NUMBER.sub(digits, re.escape(path.name)))
    folder = path.parent
    return sorted(p for p in folder.iterdir() if pattern.fullmatch(p.name)) if folder.is_dir() else []


# FFmpeg's demuxers for images with more than one frame (a still PNG or WebP gets an image pipe).
ANIMATED_FORMATS = {"apng", "webp_anim", "gif"}


def is_animated(path: Path) -> bool:
    """Whether an image file holds an animation, which is then upscaled as a video, every frame."""
    if str(path) == STDIN or is_sequence(path):
        return False  # a pipe cannot be read twice; a sequence is a video anyway
    try:
        with av.open(local_name(path)) as container:
            return container.format.name in ANIMATED_FORMATS
    except (av.error.FFmpegError, OSError):
        return False  # the image reader says what is wrong with it


def open_input(path: Path, fps: Fraction | None = None) -> av.container.InputContainer:
    try:
        if is_sequence(path):
            return av.open(local_name(path), format="image2", options={"framerate": str(fps or 25)})
        return av.open(local_name(path))
    except PermissionError:
        raise LdlError(f"cannot read {path}: permission denied") from None
    except IsADirectoryError:
        raise LdlError(f"{path} is a folder, not a video") from None
    except av.error.FFmpegError as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise LdlError(f"{path.name} is not a video FFmpeg can read, or it is damaged beyond use ({reason})") from None


class VideoSource:
    """One input file. Construction decodes up to the first frame, so size, pixel format,
    colour tags and HDR metadata are those of real frames, not of a header's claims."""

    def __init__(self, path: Path, fps: Fraction | None = None) -> None:
        self.path = path
        self._log_mark = ERRORS.watch()
        try:
            self.container = open_input(path, fps)
        except BaseException:
            ERRORS.release()
            raise
        try:
            self._setup()
        except BaseException:
            self.close()
            raise

    def _setup(self) -> None:
        container = self.container
        videos = [s for s in container.streams.video if not is_cover_art(s)]
        if not videos:
            kinds = sorted({s.type for s in container.streams})
            has = ", ".join(kinds) if kinds else "no streams at all"
            raise LdlError(f"{self.path.name} has no video stream to upscale (it has: {has})")
        self.video = next((s for s in videos if int(s.disposition) & int(av.stream.Disposition.default)), videos[0])
        if self.video.codec_context is None:
            raise LdlError(f"{self.path.name}: its video codec cannot be decoded by this FFmpeg build (PyAV {av.__version__})")
        self.video.thread_type = "AUTO"
        self.time_base: Fraction = Fraction(self.video.time_base or Fraction(1, 1000))
        rate = self.video.average_rate or self.video.guessed_rate or self.video.base_rate
        self.rate: Fraction | None = Fraction(rate) if rate else None
        self.others = [s for s in container.streams if s is not self.video and s.type in ("audio", "subtitle", "video")]
        self.extra_videos = [s for s in self.others if s.type == "video" and not is_cover_art(s)]
        self.others = [s for s in self.others if s not in self.extra_videos]
        self.report = DecodeReport()
        self.start = self._common_start()
        self._shift = round(self.start / self.time_base)
        self._pending: list[av.Packet | DecodedFrame] = []
        self._last_pts: int | None = None
        self._last_decoded_pts: int | None = None  # the source's own, before any retiming
        self._since_key: list[av.Packet] | None = []
        self._kept_bytes = 0
        self._errors_at_key = 0
        self._logged_at_key = 0
        self._demux = self._packets()
        first = self._prime()
        self.width, self.height = first.width, first.height
        self.family: PixelFamily = pixel_family(first.format.name)
        self.source_tags = ColourTags(first.colorspace, first.color_range, first.color_primaries, first.color_trc)
        self.tags = effective_tags(self.source_tags, self.family, self.width, self.height)
        hdr = hdr_from_frame(first)
        self.hdr: HdrMetadata = hdr if hdr else hdr_from_stream(self._coded_side_data())
        self.sample_aspect_ratio = self.video.sample_aspect_ratio or None
        self.display_matrix = self._display_matrix()
        self.plane_format = PlaneFormat(self.family, self.tags)
        self.interlaced = bool(first.interlaced_frame)
        self._frame_duration = self._guess_frame_duration()
        self.report.expected_end = self._expected_end()
        self.report.tolerance = 2.5 * self._frame_duration * float(self.time_base) + 0.01
        self._pending.append(self._convert(first))

    # ---- what the container says ----------------------------------------------------------
    def _coded_side_data(self) -> dict:
        try:
            return dict(self.video.codec_context.coded_side_data or {})
        except (AttributeError, ValueError):
            return {}

    def _display_matrix(self) -> list[int] | None:
        data = self._coded_side_data().get("display_matrix")
        if not data or len(data) < 36:
            return None
        matrix = list(struct.unpack("<9i", bytes(data)[:36]))
        return None if matrix == [65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30] else matrix

    def _common_start(self) -> Fraction:
        """The earliest start of the streams carried over, in seconds. It becomes 0 in the output
        (as `ffmpeg -c copy` does without -copyts), every stream moved by the same amount: a
        broadcast recording that starts at 3600 s, or a transport stream whose timestamps wrap
        (the demuxer unwraps them to a negative start), would otherwise play an hour of nothing
        or hide its beginning behind an edit list."""
        starts = [Fraction(s.start_time) * s.time_base for s in (self.video, *self.others)
                  if s.start_time is not None and s.time_base and not is_cover_art(s)]
        return min(starts) if starts else Fraction(0)

    def _shifted(self, packet: av.Packet) -> av.Packet:
        if self.start and packet.time_base:
            shift = round(self.start / packet.time_base)
            if packet.pts is not None:
                packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
        return packet

    def _guess_frame_duration(self) -> int:
        """One frame's duration in stream time-base units (for the last frame and for
        streams without timestamps)."""
        if self.rate:
            return max(1, round(1 / (self.rate * self.time_base)))
        return max(1, round(Fraction(1, 25) / self.time_base))

    def _expected_end(self) -> float | None:
        stream, tb = self.video, float(self.time_base)
        if stream.duration:
            return (stream.start_time or 0) * tb + stream.duration * tb
        tagged = _parse_duration_tag(stream.metadata.get("DURATION"))
        if tagged is not None:
            return tagged
        if not self.others:
            return self._container_end()
        return None

    def _container_end(self) -> float | None:
        """Where the container says the file ends, in seconds on its timeline. FFmpeg hands on
        Matroska's Segment Duration as it is, and its Matroska muxer writes there the end of the
        last frame (Segment timestamps count from the Segment's start, 0): a file whose first
        frame is at 1 s states its end. FFmpeg's NUT demuxer hands on its index's largest
        timestamp, the last frame's start. Elsewhere FFmpeg's duration counts from the first timestamp."""
        if not self.container.duration:
            return None
        end = self.container.duration / av.time_base
        if self.container.format.name == "nut":
            end += float(self._frame_duration * self.time_base)
        elif "matroska" not in self.container.format.name:
            end += (self.container.start_time or 0) / av.time_base
        return end

    def notes(self) -> list[str]:
        """What the output will lack that the source has (the README's video limits, said at run time)."""
        notes = []
        if self.family.alpha:
            notes.append(f"the source's alpha channel ({self.video.codec_context.pix_fmt}) is dropped: "
                         "the output is opaque")
        if self.interlaced:
            notes.append("the source is interlaced; its frames are upscaled as progressive pictures, fields "
                         "together (deinterlace first, e.g. ffmpeg -vf bwdif, for a clean result)")
        return notes

    @property
    def seconds(self) -> float | None:
        """How long the video lasts on the output's timeline (which starts at 0), if known."""
        end = self.report.expected_end
        if end is None:
            end = self._container_end()
        return max(0.0, end - float(self.start)) if end else None

    @property
    def frame_estimate(self) -> int | None:
        """The number of frames the container announces, or duration × rate; None if unknown."""
        if self.video.frames:
            return self.video.frames
        end = self.report.expected_end
        if end is None:
            end = self._container_end()
        if end and self.rate:
            start = float((self.video.start_time or 0) * self.time_base)
            return max(1, round((end - start) * float(self.rate)))
        return None

    # ---- decoding ---------------------------------------------------------------------------
    def _packets(self) -> Iterator[av.Packet]:
        """Every packet of the streams we use, in file order; demuxing errors are counted and
        reading resumes after them."""
        streams = [self.video, *self.others]
        failures = 0
        while True:
            try:
                for count, packet in enumerate(self.container.demux(streams)):
                    failures = 0
                    if count % 1024 == 1023:
                        ERRORS.fold()  # keeps the captured log short on long files
                    yield packet
                return
            except av.error.EOFError:
                return
            except av.error.FFmpegError:
                self.report.demux_errors += 1
                failures += 1
                if failures >= MAX_CONSECUTIVE_DEMUX_ERRORS:
                    return

    def _decode(self, packet: av.Packet | None) -> list[av.VideoFrame]:
        """Frames out of one packet (None drains the decoder); a packet that fails is counted."""
        if packet is not None and packet.size:
            self._keep(packet)
        try:
            return self.video.decode(packet)
        except av.error.EOFError:
            return []
        except av.error.FFmpegError:
            self.report.decode_errors += 1
            return []

    def _keep(self, packet: av.Packet) -> None:
        if packet.is_keyframe:
            self._since_key, self._kept_bytes = [], 0
            self._errors_at_key, self._logged_at_key = self.report.decode_errors, self._decoder_log_errors()
        if self._since_key is None:
            return
        self._since_key.append(packet)
        self._kept_bytes += packet.size
        if len(self._since_key) > MAX_KEPT_PACKETS or self._kept_bytes > MAX_KEPT_BYTES:
            self._since_key = None  # a very long GOP: its end is not decoded again

    def _decoder_log_errors(self) -> int:
        return ERRORS.errors_from(self.video.codec_context.name, self._log_mark)

    def _redecoded_tail(self) -> list[av.VideoFrame]:
        """The pictures a frame-threaded decoder held when it failed at the end of the file.
        PyAV stops taking frames out of a decoder at an error once it has some, and a draining
        decoder takes no more packets: the pictures still in its other threads were lost and
        the error went uncounted (FFmpeg's own tools keep receiving). The packets since the last
        keyframe are decoded again on one thread, as FFmpeg without frame threads would, and the
        frames after the last one delivered are handed on; that decode's failures are counted."""
        packets, self._since_key = self._since_key, None
        context = self.video.codec_context
        failed = self.report.decode_errors > self._errors_at_key or self._decoder_log_errors() > self._logged_at_key
        if not packets or not failed or ThreadType.FRAME not in context.active_thread_type:
            return []
        decoder = av.CodecContext.create(context.name, "r")
        decoder.extradata = context.extradata
        decoder.width, decoder.height = context.width, context.height
        decoder.pkt_timebase = context.pkt_timebase
        decoder.thread_type = "SLICE"
        last, after, errors, placed = self._last_decoded_pts, [], 0, True
        for packet in [*packets, None]:
            try:
                frames = decoder.decode(packet)
            except av.error.EOFError:
                frames = []
            except av.error.FFmpegError:
                frames, errors = [], errors + 1
            placed = placed and all(frame.pts is not None for frame in frames)
            after.extend(frame for frame in frames if placed and (last is None or frame.pts > last))
        self.report.decode_errors = max(self.report.decode_errors, self._errors_at_key + errors)
        return after if placed else []  # without timestamps the frames delivered cannot be told apart

    def _prime(self) -> av.VideoFrame:
        """Demux until the first frame decodes, keeping the other streams' packets for later."""
        for packet in self._demux:
            if packet.stream is not self.video:
                if packet.size:  # empty packets only flush decoders
                    self._pending.append(self._shifted(packet))
                continue
            frames = self._decode(packet)
            if frames:
                self._held_frames = frames[1:]
                return frames[0]
        frames = self._redecoded_tail()
        if frames:
            self._held_frames = frames[1:]
            return frames[0]
        packet = None  # the error's traceback keeps this frame, and a packet keeps its decoder
        raise LdlError(f"no frame of {self.path.name}'s video could be decoded (damaged, or its first packets are missing)")

    def _next_pts(self, frame: av.VideoFrame) -> int:
        pts = frame.pts
        if pts is None:
            pts = 0 if self._last_pts is None else self._last_pts + self._frame_duration
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1
            self.report.retimed += 1
        if frame.duration:
            self._frame_duration = frame.duration
        self._last_pts = pts
        return pts

    def _convert(self, frame: av.VideoFrame) -> DecodedFrame:
        if (frame.width, frame.height) != (self.width, self.height):
            self.report.resized += 1
        if frame.is_corrupt:
            self.report.corrupt_frames += 1
        if frame.pts is not None:
            self._last_decoded_pts = frame.pts if self._last_decoded_pts is None else max(frame.pts, self._last_decoded_pts)
        pts = self._next_pts(frame)
        self.report.frames += 1
        self.report.decoded_end = (pts + self._frame_duration) * float(self.time_base)
        return DecodedFrame(pts - self._shift, read_planes(frame, self.plane_format, (self.width, self.height)))

    def items(self) -> Iterator[av.Packet | DecodedFrame]:
        """Decoded frames of the video stream and raw packets of the other streams, in file order."""
        pending, self._pending = self._pending, []
        yield from pending
        for frame in self._held_frames:
            yield self._convert(frame)
        for packet in self._demux:
            if packet.stream is self.video:
                frames = self._decode(packet)
                packet = None  # a video packet holds its decoder: not kept while suspended (see _quiet_decoder)
                for frame in frames:
                    yield self._convert(frame)
            elif packet.size:
                yield self._shifted(packet)
        for frame in self._decode(None):  # frames still inside the decoder after a read error are good
            yield self._convert(frame)
        for frame in self._redecoded_tail():
            yield self._convert(frame)
        self.report.skipped = ERRORS.errors_from(self.container.format.name, self._log_mark)

    def passthrough_packets(self) -> Iterator[av.Packet]:
        """The other streams' packets alone, in file order, on the output's timeline; the video
        is demuxed but not decoded (a segmented job muxes its own encoded video with them)."""
        pending, self._pending = self._pending, []
        yield from (item for item in pending if isinstance(item, av.Packet))
        for packet in self._demux:
            if packet.stream is not self.video and packet.size:
                yield self._shifted(packet)

    def _quiet_decoder(self) -> None:
        """Lets the frame-threaded decoder finish the frames it holds, and drops the demuxer's
        last packet. A decoder stopped mid-stream was otherwise freed whenever its last
        reference went, at worst during interpreter exit, where freeing it hung (seen after a
        refused job: its threads still had work while the exiting thread waited for them). A
        drain that stops at an error leaves threads busy, so the decoder is also flushed, which
        waits for every thread to be idle (with the GIL released, so that they may log)."""
        demux = getattr(self, "_demux", None)
        if demux is not None:
            demux.close()
        self._held_frames = []
        self._pending = []
        self._since_key = None
        if getattr(self, "video", None) is not None and self.video.codec_context is not None:
            try:
                self.video.decode(None)
            except av.error.FFmpegError:
                pass
            self.video.codec_context.flush_buffers()

    def picture(self, stream: av.stream.Stream) -> bytes:
        """The bytes of an attached picture (cover art, a Matroska image attachment): FFmpeg hands
        them out once, as the first packet, so a second reader takes them without disturbing this one."""
        if str(self.path) == STDIN:
            return b""  # standard input cannot be read twice
        with av.open(local_name(self.path)) as other:
            for packet in other.demux(other.streams[stream.index]):
                if packet.size:
                    return bytes(packet)
        return b""

    def close(self) -> None:
        if self.container is not None:
            self._quiet_decoder()
            self.container.close()
            self.container = None
            ERRORS.release()
