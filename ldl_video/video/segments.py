"""Resumable video jobs: the video is cut at its keyframes into segments that are upscaled and
encoded one by one (or on many machines, see ldl_video.cluster), kept in a job folder beside
OUTPUT, and joined by stream copy at the end, with every other stream muxed as a single pass does.

A segment is the frames whose presentation time lies in [its keyframe, the next segment's
keyframe). It is decoded from its own keyframe, through the next keyframe's leading frames
(open GOPs), and frames outside its range are dropped, so no frame is lost or doubled. Each
segment's encoded packets are stored with their exact timestamps in a small file of our own
(a JSON header and the packet bytes: nothing in it is executed), written under a temporary name
and renamed when complete; a job interrupted in any way continues from the files that exist.
"""

from __future__ import annotations

import bisect
import copy
import hashlib
import io
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import av

from ..errors import LdlError
from .colour import ColourTags, HdrMetadata, PixelFamily
from .convert import PlaneFormat, read_planes
from .ffmpeg_log import ERRORS
from .reader import DecodedFrame, DecodeReport, local_name
from .writer import EncodeSettings, VideoSink

JOB_VERSION = 1
DEFAULT_SEGMENT_S = 6.0
AUTO_SEGMENTS_FROM_S = 60.0  # without --segment, shorter videos run in one pass
_CARRIER = "nut"  # keeps any codec and any time base: how a segment's source packets travel


def job_dir(target: Path) -> Path:
    """The hidden folder beside OUTPUT that keeps a job's finished segments."""
    return target.with_name(f".{target.name}.ldl-job")


# ---- the plan: where the video is cut -------------------------------------------------------
@dataclass(frozen=True)
class Segment:
    index: int
    first: int  # decode-order index of the packet it starts decoding at (its keyframe)
    last: int  # decode-order index of the last packet it needs (inclusive)
    start: int | None  # first presentation timestamp it owns (None: from the very beginning)
    end: int | None  # the next segment's start (exclusive; None: to the very end)
    pts: tuple[int, ...]  # the presentation timestamps it owns, in order (source time base, unshifted)


@dataclass
class Plan:
    time_base: Fraction
    segments: list[Segment]
    reason: str | None = None  # why the video cannot be cut (None: it can)

    @property
    def frames(self) -> int:
        return sum(len(s.pts) for s in self.segments)


def _video_packets(path: Path, stream_index: int) -> tuple[list[tuple[int | None, bool]], Fraction, str | None]:
    """(pts, keyframe) of every video packet in decode order, the stream's time base, and a
    reason the file cannot be cut when reading it showed damage."""
    mark = ERRORS.watch()
    try:
        with av.open(local_name(path)) as container:
            video = container.streams[stream_index]
            time_base = Fraction(video.time_base or Fraction(1, 1000))
            packets = []
            try:
                for packet in container.demux(video):
                    if packet.size:
                        packets.append((packet.pts, bool(packet.is_keyframe)))
            except av.error.FFmpegError:
                return packets, time_base, "it could not be read to its end"
            if ERRORS.errors_from(container.format.name, mark):
                return packets, time_base, "the demuxer skipped damaged data"
            return packets, time_base, None
    finally:
        ERRORS.release()


def plan_segments(path: Path, stream_index: int, seconds: float, at_least: int = 2) -> Plan:
    """Cut at the first keyframe at least `seconds` after the previous cut. A keyframe qualifies
    only when every packet before it in decode order is shown before it (then decoding from it
    cannot miss a frame that belongs after it). Fewer than `at_least` segments is a reason not to cut."""
    packets, time_base, reason = _video_packets(path, stream_index)
    if reason is None:
        reason = _uncuttable(packets)
    if reason is not None:
        return Plan(time_base, [], reason)
    length = max(1, round(Fraction(seconds) / time_base))
    cuts = [0]
    shown_before = packets[0][0]
    for index, (pts, key) in enumerate(packets[1:], start=1):
        if key and pts > shown_before and pts - packets[cuts[-1]][0] >= length:
            cuts.append(index)
        shown_before = max(shown_before, pts)
    starts = [packets[first][0] for first in cuts]
    owned: list[list[int]] = [[] for _ in cuts]
    last = [0] * len(cuts)
    for index, (pts, _) in enumerate(packets):
        number = max(0, bisect.bisect_right(starts, pts) - 1)  # shown before the first keyframe: the first segment's
        owned[number].append(pts)
        last[number] = index
    segments = [Segment(number, first, last[number], None if number == 0 else starts[number],
                        starts[number + 1] if number + 1 < len(cuts) else None, tuple(sorted(owned[number])))
                for number, first in enumerate(cuts)]
    if len(segments) < at_least:
        return Plan(time_base, segments, "it is shorter than two segments" if len(packets) > 1 else "it has one frame")
    return Plan(time_base, segments)


def _uncuttable(packets: list[tuple[int | None, bool]]) -> str | None:
    if not packets:
        return "it has no video packets"
    if any(pts is None for pts, _ in packets):
        return "some video packets carry no timestamp"
    if len({pts for pts, _ in packets}) != len(packets):
        return "video packets repeat timestamps"
    if not packets[0][1]:
        return "it does not start with a keyframe"
    return None


def carried_packets(path: Path, stream_index: int, plan: Plan, wanted: set[int]) -> Iterator[tuple[Segment, bytes]]:
    """Read the file once, front to back, and give each wanted segment's packets in a small
    container of their own (codec parameters included), ready to travel to any machine."""
    pending = sorted((s for s in plan.segments if s.index in wanted), key=lambda s: s.first)
    if not pending:
        return
    with av.open(local_name(path)) as container:
        video = container.streams[stream_index]
        open_carriers: dict[int, tuple[Segment, io.BytesIO, av.container.OutputContainer, av.stream.Stream]] = {}
        upcoming = list(pending)
        position = -1
        for packet in container.demux(video):
            if not packet.size:
                continue
            position += 1
            while upcoming and upcoming[0].first == position:
                segment = upcoming.pop(0)
                buffer = io.BytesIO()
                carrier = av.open(buffer, "w", format=_CARRIER)
                open_carriers[segment.index] = (segment, buffer, carrier, carrier.add_stream_from_template(video))
            for index, (segment, buffer, carrier, stream) in list(open_carriers.items()):
                copy = av.Packet(bytes(packet))
                copy.pts, copy.dts, copy.duration = packet.pts, packet.dts, packet.duration
                copy.time_base, copy.is_keyframe, copy.stream = packet.time_base, packet.is_keyframe, stream
                carrier.mux(copy)
                if position == segment.last:
                    carrier.close()
                    del open_carriers[index]
                    yield segment, buffer.getvalue()
            if not open_carriers and not upcoming:
                return
        for segment, buffer, carrier, _ in open_carriers.values():
            carrier.close()
            yield segment, buffer.getvalue()


# ---- what a worker needs: the source described, the model named ------------------------------
@dataclass(frozen=True)
class SourceInfo:
    """The source as the segment encoder and colour converter see it (the attributes VideoSink
    and the pipeline read of a VideoSource), in a form that travels to another machine."""

    width: int
    height: int
    time_base: Fraction
    rate: Fraction | None
    family: PixelFamily
    tags: ColourTags
    hdr: HdrMetadata
    plane_format: PlaneFormat
    sample_aspect_ratio: Fraction | None
    display_matrix: list[int] | None
    shift: int  # subtracted from every timestamp: the output starts at 0
    video = None  # no stream of its own: stream tags are copied by the join

    @classmethod
    def of(cls, source) -> SourceInfo:
        return cls(source.width, source.height, source.time_base, source.rate, source.family, source.tags, source.hdr,
                   source.plane_format, source.sample_aspect_ratio, source.display_matrix, source._shift)


@dataclass(frozen=True)
class ModelSpec:
    """Enough to build the same Upscaler anywhere."""

    model: str
    scale: int | None
    precision: str = "auto"
    tile: int = 0
    tile_overlap: int = 16
    batch: int = 1
    backend: str = "auto"
    device: str = "auto"

    @classmethod
    def of(cls, args) -> ModelSpec:
        """From the command line's options (device: each worker's own)."""
        return cls(args.model, args.scale, getattr(args, "precision", "auto"), args.tile, args.tile_overlap, args.batch,
                   getattr(args, "backend", "auto"))


def build_upscalers(spec: ModelSpec, devices: list[str]) -> list:
    """One Upscaler per device, each with its own copy of the network (moving a network to a
    device moves it in place)."""
    from ..upscaler import Upscaler
    from ..zoo import load_model

    model = load_model(spec.model, device="cpu", scale=spec.scale)
    upscalers = []
    for index, device in enumerate(devices):
        own = model if index == len(devices) - 1 else copy.deepcopy(model)
        upscalers.append(Upscaler(own, scale=spec.scale, device=device, precision=spec.precision, tile=spec.tile,
                                  tile_overlap=spec.tile_overlap, batch_size=spec.batch, backend=spec.backend))
    return upscalers


@dataclass(frozen=True)
class SegmentTask:
    index: int
    data: bytes  # the segment's packets, in a NUT container
    start: int | None
    end: int | None
    pts: tuple[int, ...]  # the presentation timestamps it owns (source time base, unshifted)
    info: SourceInfo
    container_format: str  # the output's, so the encoder is set up exactly as the join's
    size: tuple[int, int]  # the model's output (width, height) before any even-size crop
    settings: EncodeSettings = field(default_factory=EncodeSettings)
    model: ModelSpec | None = None


@dataclass
class SegmentResult:
    index: int
    frames: int
    time_base: Fraction
    extradata: bytes
    packets: list[tuple[int | None, int | None, int, bool, int]]  # pts, dts, duration, keyframe, size
    data: bytes  # the packets' bytes, one after another

    def to_bytes(self) -> bytes:
        header = {"version": JOB_VERSION, "index": self.index, "frames": self.frames,
                  "time_base": [self.time_base.numerator, self.time_base.denominator],
                  "extradata": self.extradata.hex(), "packets": self.packets}
        return json.dumps(header).encode() + b"\n" + self.data

    @classmethod
    def from_bytes(cls, blob: bytes) -> SegmentResult:
        head, _, data = blob.partition(b"\n")
        header = json.loads(head)
        if header.get("version") != JOB_VERSION:
            raise ValueError("another job format")
        packets = [tuple(p) for p in header["packets"]]
        if sum(p[4] for p in packets) != len(data):
            raise ValueError("truncated")
        return cls(header["index"], header["frames"], Fraction(*header["time_base"]), bytes.fromhex(header["extradata"]),
                   packets, data)

    def av_packets(self) -> Iterator[av.Packet]:
        offset = 0
        for pts, dts, duration, key, size in self.packets:
            packet = av.Packet(self.data[offset:offset + size])
            offset += size
            packet.pts, packet.dts, packet.duration = pts, dts, duration
            packet.time_base, packet.is_keyframe = self.time_base, key
            yield packet


class SegmentSource:
    """A segment's frames, decoded from its carried packets: what the pipeline reads of a VideoSource."""

    def __init__(self, task: SegmentTask) -> None:
        self.task = task
        self.info = task.info
        self.plane_format = task.info.plane_format
        self.width, self.height = task.info.width, task.info.height
        self.report = DecodeReport()

    def _decoded(self) -> Iterator[av.VideoFrame]:
        """The segment's frames in presentation order: from its keyframe on (a carrier may move
        all timestamps by one amount, so the keyframe's own time is the mark), the first
        `len(pts)` of them; those shown before the keyframe belong to the segment before."""
        with av.open(io.BytesIO(self.task.data)) as container:
            stream = container.streams.video[0]
            # Slice threads only: closing a decoder with frame threads mid-stream (an interrupt) could
            # deadlock when those threads log through Python; a segment's decode is not the bottleneck.
            stream.thread_type = "SLICE"
            mark = None
            for packet in container.demux(stream):
                if mark is None and packet.pts is not None:
                    mark = packet.pts
                for frame in packet.decode():
                    if frame.pts is not None and (self.task.start is None or frame.pts >= mark):
                        yield frame

    def items(self) -> Iterator[DecodedFrame]:
        wanted = self.task.pts
        for frame in self._decoded():
            if self.report.frames == 0 and self.task.start is not None and not frame.key_frame:
                raise LdlError(f"segment {self.task.index + 1} does not begin at a frame the decoder can start "
                               "from; run with --segment 0 (one pass)")
            if frame.is_corrupt:
                self.report.corrupt_frames += 1
            pts = wanted[self.report.frames]
            self.report.frames += 1
            yield DecodedFrame(pts - self.info.shift, read_planes(frame, self.plane_format, (self.width, self.height)))
            if self.report.frames == len(wanted):
                return


class SegmentSink(VideoSink):
    """The output's video encoder, set up as for the whole file, recording packets instead of
    muxing them (the container is in memory and thrown away)."""

    def __init__(self, task: SegmentTask) -> None:
        self.recorded: list[av.Packet] = []
        container = av.open(io.BytesIO(), "w", format=task.container_format)
        super().__init__(Path("segment"), task.info, task.size, task.settings, [], carry=False, container=container)
        self.time_base = Fraction(self.video.time_base)
        self.extradata = bytes(self.video.codec_context.extradata or b"")  # after the encoder opened

    def _mux_video(self, packets: list[av.Packet]) -> None:
        self.recorded.extend(packets)

    def result(self, index: int, frames: int) -> SegmentResult:
        packets, chunks = [], []
        time_base = self.time_base
        for packet in self.recorded:
            data = bytes(packet)
            scale = Fraction(packet.time_base or time_base) / time_base
            pts = None if packet.pts is None else int(packet.pts * scale)
            dts = None if packet.dts is None else int(packet.dts * scale)
            packets.append((pts, dts, int((packet.duration or 0) * scale), bool(packet.is_keyframe), len(data)))
            chunks.append(data)
        return SegmentResult(index, frames, time_base, self.extradata, packets, b"".join(chunks))

    def finish(self) -> None:
        self._mux_video(self._ordered(self.video.encode(None)))
        self.close()


# ---- running a segment (here or on a worker) ------------------------------------------------
_UPSCALERS: dict[ModelSpec, list] = {}


def _upscalers_for(spec: ModelSpec) -> list:
    """A worker keeps its model between segments."""
    if spec not in _UPSCALERS:
        _UPSCALERS.clear()
        _UPSCALERS[spec] = build_upscalers(spec, [spec.device])
    return _UPSCALERS[spec]


class SegmentBar:
    """What a segment's pipeline updates: the job's bar (left open when the segment ends), or
    nothing on a worker, whose driver counts finished segments."""

    def __init__(self, bar=None) -> None:
        self.bar = bar

    def update(self, pts: list[int]) -> None:
        if self.bar is not None:
            self.bar.update(len(pts))

    def __enter__(self) -> SegmentBar:
        return self

    def __exit__(self, *exc) -> None:
        pass


def run_segment(task: SegmentTask, upscalers: list | None = None, progress: Callable | None = None) -> bytes:
    """Decode, upscale and encode one segment; the result as stored in the job folder. A Ray
    worker calls this with the task alone (it loads the model once per process)."""
    from .pipeline import Pipeline

    upscalers = upscalers or _upscalers_for(task.model)
    source = SegmentSource(task)
    sink = SegmentSink(task)
    batch = task.model.batch if task.model else 1
    try:
        report = Pipeline(source, sink, upscalers, batch, quiet=True, progress=progress or SegmentBar).run()
        if report.frames != len(task.pts):
            raise LdlError(f"segment {task.index + 1} gave {report.frames} of its {len(task.pts)} frames (damaged?); "
                           "run with --segment 0 (one pass, which reports and can keep damage)")
        sink.finish()
    finally:
        sink.close()
    return sink.result(task.index, report.frames).to_bytes()


# ---- the job folder ----------------------------------------------------------------------------
def file_identity(path: Path) -> dict:
    """What tells a changed source apart: size, modification time and a digest of its first
    and last MiB (cheap on a 50 GB film)."""
    stat = path.stat()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        digest.update(handle.read(1 << 20))
        if stat.st_size > 2 << 20:
            handle.seek(-(1 << 20), os.SEEK_END)
            digest.update(handle.read(1 << 20))
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256_ends": digest.hexdigest()}


def plan_identity(plan: Plan) -> str:
    cuts = [[s.first, s.start, s.end, len(s.pts)] for s in plan.segments]
    return hashlib.sha256(json.dumps(cuts).encode()).hexdigest()


class JobFolder:
    """The job's record (job.json: what made it) and its finished segments (seg-NNNNNN.pkt)."""

    def __init__(self, target: Path) -> None:
        self.path = job_dir(target)

    def segment_path(self, index: int) -> Path:
        return self.path / f"seg-{index:06d}.pkt"

    def open(self, identity: dict, restart: bool) -> list[int]:
        """Create the folder, or reuse it when it was made by the same command on the same file.
        Returns the indices of the segments already finished."""
        record = self.path / "job.json"
        if self.path.exists() and restart:
            shutil.rmtree(self.path)
        if self.path.exists():
            try:
                stored = json.loads(record.read_text())
            except (OSError, ValueError):
                stored = None
            if stored is None and not any(self.path.glob("seg-*.pkt")):
                shutil.rmtree(self.path)  # a run stopped before it wrote its record: nothing was done
                return self.open(identity, restart)
            if stored != identity:
                raise LdlError(f"{self.path.name} holds an unfinished job {_difference(stored, identity)}; run the same "
                               "command to continue it, or add --restart to start over")
        else:
            self.path.mkdir()
            tmp = record.with_suffix(".tmp")
            tmp.write_text(json.dumps(identity, indent=1))
            tmp.replace(record)
        return sorted(self.finished())

    def finished(self) -> set[int]:
        """Segments whose file is whole (its header, and as many bytes as the header counts);
        a damaged one is removed, to be made again."""
        done = set()
        for path in self.path.glob("seg-*.pkt"):
            try:
                with open(path, "rb") as handle:
                    header = json.loads(handle.readline())
                    body = os.fstat(handle.fileno()).st_size - handle.tell()
                if header.get("version") != JOB_VERSION or sum(p[4] for p in header["packets"]) != body:
                    raise ValueError
                done.add(int(path.stem.partition("-")[2]))
            except (OSError, ValueError, KeyError, TypeError, IndexError):
                path.unlink(missing_ok=True)
        return done

    def store(self, index: int, blob: bytes) -> None:
        path = self.segment_path(index)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as handle:
            handle.write(blob)
            handle.flush()
            os.fsync(handle.fileno())  # a finished segment survives a power cut, not only a crash
        tmp.replace(path)

    def load(self, index: int) -> SegmentResult:
        try:
            result = SegmentResult.from_bytes(self.segment_path(index).read_bytes())
        except (OSError, ValueError, KeyError, TypeError):
            self.segment_path(index).unlink(missing_ok=True)
            raise LdlError(f"segment {index + 1} in {self.path} is damaged and was removed; run the same command "
                           "again to redo it") from None
        return result

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _difference(stored: dict | None, identity: dict) -> str:
    if not isinstance(stored, dict):
        return "that cannot be read"
    if stored.get("source") != identity.get("source"):
        return "of another source file (or the source changed since)"
    for key, value in identity.get("command", {}).items():
        if stored.get("command", {}).get(key) != value:
            return f"made with another {key.replace('_', ' ')} ({stored.get('command', {}).get(key)!r}, now {value!r})"
    return "made by another command"


def command_identity(spec: ModelSpec, settings: EncodeSettings, container_format: str, segment_s: float) -> dict:
    """The options that change what a segment holds (not where it runs: device, batch, Ray); the
    job adds a digest of the weights themselves."""
    return {"model": spec.model, "scale": spec.scale, "precision": spec.precision, "tile": spec.tile,
            "tile_overlap": spec.tile_overlap, "backend": spec.backend, "encoder": asdict(settings),
            "container": container_format, "segment": segment_s}
