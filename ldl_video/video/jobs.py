"""A video job of many segments: keep finished ones in the job folder, run the rest here or on
a Ray cluster, then join them with every other stream of the source into OUTPUT."""

from __future__ import annotations

import argparse
import atexit
import io
import sys
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av

from ..errors import LdlError, add_interrupt_note, raise_if_interrupted
from ..files import atomic_output
from .reader import VideoSource
from .segments import (
    DEFAULT_SEGMENT_S,
    JobFolder,
    ModelSpec,
    Plan,
    SegmentBar,
    SegmentTask,
    SourceInfo,
    carried_packets,
    command_identity,
    file_identity,
    plan_identity,
    run_segment,
)
from .writer import VideoSink, open_output


def _say(message: str, quiet: bool) -> None:
    if not quiet:
        print(f"ldl-video: {message}", file=sys.stderr)


class JobProgress:
    """One bar for the whole job, in frames; finished segments count from the start."""

    def __init__(self, total: int, done: int, quiet: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, initial=done, unit="frame", desc="upscaling", file=sys.stderr, disable=quiet,
                        dynamic_ncols=True, smoothing=0.1)

    def segment_bar(self) -> SegmentBar:
        return SegmentBar(self.bar)

    def close(self) -> None:
        self.bar.close()


def _model_facts(args: argparse.Namespace, source: VideoSource) -> tuple[tuple[int, int], str]:
    """The output size, and a digest of the network's weights: segments made with other weights
    under the same name (a newer release of a shipped model) are not mixed with new ones."""
    import hashlib

    from ..zoo import load_model

    model = load_model(args.model, device="cpu", scale=args.scale)
    digest = hashlib.sha256()
    for name, tensor in sorted(model.net.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    scale = args.scale or model.scale
    return (source.width * scale, source.height * scale), digest.hexdigest()


def run_job(args: argparse.Namespace, source: VideoSource, job, plan: Plan,
            make_upscalers: Callable[[], list]) -> tuple[int, int]:
    """Run `plan`'s segments that are not finished yet, then join them into `job.target`.
    Closes `source`. Returns the output (width, height)."""
    joined: list[JobFolder] = []
    try:
        with atomic_output(job.target, job.overwrite, lock=True) as tmp:  # held for the whole job: one writer
            tmp.touch()  # the run's partial file is there from the start, as in one pass
            size, folder = _run(args, source, job, plan, make_upscalers, tmp)
            joined.append(folder)
        folder.remove()  # only once OUTPUT is complete under its name
        return size
    except BaseException:
        if joined:  # everything was done but the result could not take its name (a file appeared there)
            joined[0].remove()
        raise
    finally:
        source.close()


def _run(args, source: VideoSource, job, plan: Plan, make_upscalers, tmp: Path) -> tuple[tuple[int, int], JobFolder]:
    probe = open_output(tmp)
    container_format = probe.format.name
    probe.close()
    spec = ModelSpec.of(args)
    segment_s = getattr(args, "segment", None) or DEFAULT_SEGMENT_S
    size, weights = _model_facts(args, source)
    identity = {"source": {"path": str(job.source.resolve()), **file_identity(job.source)},
                "command": {**command_identity(spec, job.settings, container_format, segment_s), "weights": weights},
                "plan": plan_identity(plan)}
    notes = source.notes() + _output_notes(source, job, size, container_format)  # a bad --codec is refused here
    folder = JobFolder(job.target)
    total = len(plan.segments)
    progress = None
    try:  # from the folder's creation on: an interrupt anywhere leaves it only if a segment was finished
        done = folder.open(identity, bool(getattr(args, "restart", False)))
        if done:
            _say(f"resuming {folder.path.name}: {len(done)} of {total} segments already done, {total - len(done)} to go",
                 job.quiet)
        for note in notes:
            _say(note, job.quiet)
        info = SourceInfo.of(source)
        frames_done = sum(len(s.pts) for s in plan.segments if s.index in done)
        progress = JobProgress(plan.frames, frames_done, job.quiet)
        todo = {s.index for s in plan.segments} - set(done)
        tasks = (SegmentTask(segment.index, data, segment.start, segment.end, segment.pts, info, container_format, size,
                             job.settings, spec)
                 for segment, data in carried_packets(job.source, source.video.index, plan, todo))
        if todo:
            _run_segments(getattr(args, "ray", None), tasks, folder, make_upscalers, progress)
    except BaseException as exc:
        kept = len(folder.finished())
        if not kept:
            folder.remove()  # nothing done yet: nothing to keep, nothing left beside OUTPUT
        elif isinstance(exc, KeyboardInterrupt):  # Ctrl-C, SIGTERM, SIGHUP: said in the interrupt's one line
            add_interrupt_note(f"{kept} of {total} segments are kept in {folder.path}, and the same command "
                               "continues from them (--restart starts over)")
        raise
    finally:
        if progress is not None:
            progress.close()
    _join(source, job, plan, folder, size, tmp)
    return size, folder


def _output_notes(source: VideoSource, job, size: tuple[int, int], container_format: str) -> list[str]:
    """What the output will lose or change (streams re-encoded or dropped, format limits), said
    when the job starts rather than after its last segment: the output set up in memory."""
    notes: list[str] = []
    VideoSink(job.target, source, size, job.settings, notes,
              container=av.open(io.BytesIO(), "w", format=container_format)).close()
    return notes


def _run_segments(ray: str | None, tasks: Iterator[SegmentTask], folder: JobFolder, make_upscalers,
                  progress: JobProgress) -> None:
    if ray:
        _run_on_ray(ray, tasks, folder, progress)
        return
    upscalers = make_upscalers()
    for task in tasks:
        folder.store(task.index, run_segment(task, upscalers, progress.segment_bar))
        raise_if_interrupted()


def _run_on_ray(address: str, tasks: Iterator[SegmentTask], folder: JobFolder, progress: JobProgress) -> None:
    """Segments as Ray tasks, their packets and results through the object store; the source is
    read lazily, so only the segments in flight are held in memory."""
    submitted: list[tuple[int, int]] = []  # (segment, frames) in the order handed to Ray

    def handed() -> Iterator[SegmentTask]:
        for task in tasks:
            submitted.append((task.index, len(task.pts)))
            yield task

    cluster = _joined(address)
    for position, blob in cluster.map_unordered(run_segment, handed()):
        index, frames = submitted[position]
        folder.store(index, blob)
        progress.bar.update(frames)
        raise_if_interrupted()


_CLUSTERS: dict[str, object] = {}


def _joined(address: str):
    """One connection per process: a folder of videos joins the cluster (or starts the local
    instance) once, and leaves it when the command ends."""
    from ..cluster import connect

    if address not in _CLUSTERS:
        cluster = connect(None if address == "local" else address)
        atexit.register(cluster.close)
        _CLUSTERS[address] = cluster
    return _CLUSTERS[address]


# ---- the join ------------------------------------------------------------------------------------
def _seconds(packet_time: int | None, time_base: Fraction) -> Fraction:
    return Fraction(packet_time or 0) * time_base


def _video_packets(folder: JobFolder, plan: Plan, sink: VideoSink) -> Iterator[av.Packet]:
    """Every segment's packets in order, on the sink's video stream, with decode times kept increasing."""
    headers = bytes(sink.video.codec_context.extradata or b"")
    last_dts = None
    frames = 0
    for segment in plan.segments:
        result = folder.load(segment.index)
        if not same_headers(result.extradata, headers):
            raise LdlError(f"segment {segment.index + 1} was encoded with other encoder headers than this machine's "
                           f"{sink.encoder.codec} gives (another encoder build?); add --restart to encode all segments anew")
        frames += result.frames
        for packet in result.av_packets():
            if packet.dts is not None and last_dts is not None:
                last = Fraction(last_dts[0]) * last_dts[1]
                if _seconds(packet.dts, packet.time_base) <= last:
                    packet.dts = int(last / packet.time_base) + 1
            if packet.dts is not None:
                last_dts = (packet.dts, packet.time_base)
            packet.stream = sink.video
            yield packet
    if frames != plan.frames:
        raise LdlError(f"the segments hold {frames} frames, the source {plan.frames}; add --restart to redo the job")


_HEVC_SEI = (39, 40)


def _hevc_parameter_sets(header: bytes) -> list[bytes] | None:
    """The NAL units of an Annex B HEVC header (what FFmpeg's x265 wrapper gives) without its
    SEI messages, or None if `header` is not one."""
    if not header.startswith((b"\0\0\1", b"\0\0\0\1")):
        return None
    units = [unit.strip(b"\0") for unit in header.split(b"\0\0\1")]
    return [unit for unit in units if unit and (unit[0] >> 1) & 0x3F not in _HEVC_SEI]


def same_headers(a: bytes, b: bytes) -> bool:
    """Whether packets encoded under header `a` can be muxed under header `b`. x265 writes its
    options (thread counts, the CPU's instruction sets) into an SEI message of its header, which
    differs between machines of one cluster; the parameter sets decoders use must be equal."""
    if a == b:
        return True
    sets_a, sets_b = _hevc_parameter_sets(a), _hevc_parameter_sets(b)
    return sets_a is not None and sets_a == sets_b


def _join(source: VideoSource, job, plan: Plan, folder: JobFolder, size: tuple[int, int], tmp: Path) -> None:
    sink = VideoSink(tmp, source, size, job.settings, [])  # its notes were said when the job started
    try:
        video = _video_packets(folder, plan, sink)
        waiting = next(video, None)
        for packet in source.passthrough_packets():
            when = _seconds(packet.dts if packet.dts is not None else packet.pts, packet.time_base)
            while waiting is not None and _seconds(waiting.dts, waiting.time_base) <= when:
                sink.mux_video([waiting])
                waiting = next(video, None)
            sink.write_packet(packet)
        while waiting is not None:
            sink.mux_video([waiting])
            waiting = next(video, None)
        for note in sink.timeline_notes():
            _say(note, job.quiet)
        sink.finish()
    finally:
        sink.close()
