"""`ldl-video IN.mkv OUT.mkv`: the video front end that the command line calls."""

from __future__ import annotations

import argparse
import errno
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LdlError
from ..files import atomic_output
from ..upscaler import Upscaler
from .pipeline import Pipeline
from .reader import DecodeReport, VideoSource, is_animated
from .segments import ModelSpec, build_upscalers
from .writer import EncodeSettings, VideoSink

_DISK_ERRORS = {errno.ENOSPC: "no space left on the device", errno.EFBIG: "the file grew past the size limit",
                errno.EDQUOT: "the disk quota is exhausted"}


def parse_devices(spec: str | None) -> list[str]:
    """'cuda:0,cuda:1' -> ['cuda:0', 'cuda:1']; a single name stays one device."""
    devices = [part.strip() for part in (spec or "auto").split(",") if part.strip()]
    if not devices:
        raise LdlError("--device needs a device name, e.g. cpu, cuda or cuda:0,cuda:1")
    return devices


def make_upscalers(args: argparse.Namespace, devices: list[str]) -> list[Upscaler]:
    """One Upscaler per device, from the command line's options."""
    return build_upscalers(ModelSpec.of(args), devices)


def _say(message: str, quiet: bool) -> None:
    if not quiet:
        print(f"ldl-video: {message}", file=sys.stderr)


def _damage_message(source: Path, report: DecodeReport) -> str:
    return f"{source.name} is damaged: {report.frames} frame(s) recovered ({report.describe()})"


@dataclass(frozen=True)
class VideoJob:
    """One video to upscale, and how (the command line's options, minus the model)."""

    source: Path
    target: Path
    settings: EncodeSettings = field(default_factory=EncodeSettings)
    batch: int = 1
    artifact_map: Path | None = None
    keep_partial: bool = False
    quiet: bool = False
    overwrite: bool = False


def upscale_video(args: argparse.Namespace, source_path: Path, target: Path, upscalers: list[Upscaler] | None = None) -> str:
    """Upscale every frame of `source_path` into `target`, carrying all other streams over.
    `upscalers` (one per device of `args.device`) lets a folder job load the model once.
    Returns the output size as 'W×H'. Raises LdlError with a one-line reason."""
    from ..images import is_image

    map_path = Path(args.artifact_map) if getattr(args, "artifact_map", None) else None
    if map_path is not None and is_image(map_path):
        raise LdlError("for a video INPUT, --artifact-map needs a video suffix too (.mkv, .mp4, .mov, .webm)")
    if is_image(target):
        kind = "an animated image, upscaled as a video" if is_animated(source_path) else "a video"
        raise LdlError(f"INPUT is {kind}, so OUTPUT needs a video suffix (.mkv, .mp4, .mov, .webm), not {target.suffix!r}")
    settings = EncodeSettings(getattr(args, "codec", None), getattr(args, "crf", None), getattr(args, "preset", None),
                              getattr(args, "pix_fmt", None))
    job = VideoJob(source_path, target, settings, args.batch, map_path, bool(getattr(args, "keep_partial", False)),
                   bool(getattr(args, "quiet", False)), bool(getattr(args, "overwrite", False)))
    devices = parse_devices(getattr(args, "device", "auto"))
    source = VideoSource(source_path, getattr(args, "fps", None))  # a bad input is reported before the model loads
    try:
        plan = _plan(args, source, job)
        if plan is not None:
            from .jobs import run_job

            size = run_job(args, source, job, plan, lambda: upscalers or make_upscalers(args, devices))
            return f"{size[0]}×{size[1]}"
        upscalers = upscalers or make_upscalers(args, devices)
    except BaseException:
        source.close()
        raise
    size, _ = transcode(source, job, upscalers)
    return f"{size[0]}×{size[1]}"


def _plan(args: argparse.Namespace, source: VideoSource, job: VideoJob):
    """Where to cut the video into resumable segments, or None for one pass: pipes, image
    sequences, animations, an artifact map, and (unless --segment or --ray asks) videos shorter
    than a minute run in one pass; so does a file that cannot be cut safely (said when asked)."""
    from .reader import STDIN, is_sequence
    from .segments import AUTO_SEGMENTS_FROM_S, DEFAULT_SEGMENT_S, plan_segments

    asked = getattr(args, "segment", None)
    ray = getattr(args, "ray", None)
    if asked == 0:
        if ray:
            raise LdlError("--ray runs segments on the cluster; leave out --segment 0")
        return None
    seconds = asked or DEFAULT_SEGMENT_S
    if str(job.source) == STDIN or is_sequence(job.source) or is_animated(job.source):
        reason = "a pipe, an image sequence or an animation is upscaled in one pass"
    elif job.artifact_map is not None:
        reason = "--artifact-map is written in one pass"
    elif not (asked or ray) and (source.seconds is None or source.seconds < max(2 * seconds, AUTO_SEGMENTS_FROM_S)):
        return None  # a short clip is quicker redone than resumed: one pass, as before there were segments
    else:
        plan = plan_segments(job.source, source.video.index, seconds, at_least=1 if ray else 2)  # a short one: one task
        if plan.reason is None:
            return plan
        reason = f"{job.source.name} cannot be cut into segments ({plan.reason}), so it is upscaled in one pass"
    if asked or ray:
        _say(f"{reason}{' here, not on the cluster' if ray else ''}; no resume for this run", job.quiet)
    return None


def transcode(source: VideoSource, job: VideoJob, upscalers: list[Upscaler]) -> tuple[tuple[int, int], DecodeReport]:
    """Stream `source` through the upscalers into `job.target` (and the artifact map); closes
    `source`. Returns the output (width, height) and the decoder's report."""
    pipeline = None
    try:
        out_h, out_w = upscalers[0].output_size(source.height, source.width)
        notes: list[str] = source.notes()
        try:
            with ExitStack() as stack:
                sink_tmp = stack.enter_context(atomic_output(job.target, job.overwrite, lock=True))
                sink = VideoSink(sink_tmp, source, (out_w, out_h), job.settings, notes)
                stack.callback(sink.close)
                map_sink = None
                if job.artifact_map is not None:
                    map_tmp = stack.enter_context(atomic_output(job.artifact_map, job.overwrite, lock=True))
                    map_sink = VideoSink(map_tmp, source, (out_w, out_h), EncodeSettings(), [], carry=False, gray=True)
                    stack.callback(map_sink.close)
                for note in notes:
                    _say(note, job.quiet)
                pipeline = Pipeline(source, sink, upscalers, job.batch, map_sink, job.quiet)
                report = pipeline.run()
                for note in _report_notes(report) + sink.timeline_notes():
                    _say(note, job.quiet)
                if report.damaged and not job.keep_partial:
                    raise LdlError(f"{_damage_message(job.source, report)}; nothing written "
                                   "(--keep-partial keeps what was recovered)")
                if report.frames == 0:
                    raise LdlError(f"no frame of {job.source.name} could be decoded")
                sink.finish()
                if map_sink is not None:
                    map_sink.finish()
        except OSError as exc:
            reason = _DISK_ERRORS.get(exc.errno or 0)
            if reason:
                raise LdlError(f"{reason} while writing {job.target}; free space or write elsewhere") from None
            raise
        if report.damaged:
            raise LdlError(_damage_message(job.source, report) + f"; what was recovered is in {job.target} (--keep-partial)")
    finally:
        if pipeline is None or pipeline.shutdown():
            source.close()
    return sink.size, report


def _report_notes(report: DecodeReport) -> list[str]:
    notes = []
    if report.retimed:
        notes.append(f"{report.retimed} frame(s) had repeated or missing timestamps and were nudged to keep order")
    if report.resized:
        notes.append(f"{report.resized} frame(s) changed size mid-stream and were scaled to the first frame's size")
    if report.corrupt_frames:
        notes.append(f"{report.corrupt_frames} frame(s) were decoded with concealed errors")
    return notes
