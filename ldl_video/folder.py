"""`ldl-video IN_DIR OUT_DIR`: every video and image under a folder, written at the same relative
names under another. Each file goes through the same per-file entry point as a single INPUT; this
module only plans the job (which files, which output names, what is already done), loads the
model once, keeps going past a file that fails and sums up."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import LdlError, one_line, signal_received
from .images import is_image

# What users keep videos in and FFmpeg demuxes; an animated GIF/PNG/WebP is a video too.
VIDEO_SUFFIXES = frozenset({
    ".mkv", ".mp4", ".m4v", ".mov", ".qt", ".webm", ".ts", ".m2ts", ".mts", ".mpg", ".mpeg", ".mxf",
    ".avi", ".wmv", ".asf", ".flv", ".f4v", ".vob", ".ogv", ".3gp", ".3g2", ".dv", ".y4m", ".gif",
})
# Outputs keep these suffixes: the writer carries timestamps, audio and subtitles in them. The
# others become Matroska: AVI, ASF/WMV and FLV have no per-frame timestamps for B-frames or
# variable rates and cannot hold HEVC/10-bit, Y4M has no audio, a GIF no full colour, and a
# DVD's VOB, OGV, 3GP/F4V and DV are rarely played back from an upscale.
KEPT_VIDEO_SUFFIXES = frozenset({".mkv", ".mp4", ".m4v", ".mov", ".webm", ".ts", ".m2ts", ".mts", ".mpg", ".mpeg", ".mxf"})
FALLBACK_SUFFIX = ".mkv"

UpscaleFile = Callable[[argparse.Namespace, Path, Path, list | None], str]


@dataclass(frozen=True)
class Task:
    """One file of the job: where it comes from, where its result (and map) go."""

    source: Path
    target: Path
    artifact_map: Path | None
    name: str  # the source's path relative to IN_DIR, as messages show it
    note: str | None = None  # why the result's suffix differs from the source's


@dataclass
class Tally:
    total: int
    done: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{self.done} of {self.total} done"
        if self.skipped:
            text += f", {self.skipped} skipped (already there)"
        if self.failed:
            name, reason = self.failed[0]
            more = f" (and {len(self.failed) - 1} more, listed above)" if len(self.failed) > 1 else ""
            text += f", {len(self.failed)} failed: {name}: {reason}{more}"
        return text


def is_folder_job(source: Path) -> bool:
    return source.is_dir()


def check_folders(in_dir: Path, out_dir: Path, map_dir: Path | None) -> None:
    """Refuse, before any work, folders that cannot make a sensible job."""
    if out_dir.exists() and not out_dir.is_dir():
        raise LdlError(f"INPUT is a folder, so OUTPUT must be a folder too, and {out_dir} is a file")
    if not out_dir.exists() and (is_image(out_dir) or out_dir.suffix.lower() in VIDEO_SUFFIXES):
        raise LdlError(f"INPUT is a folder, so OUTPUT must be a folder too (results keep their names), not {out_dir.name!r}")
    if not out_dir.exists() and not out_dir.parent.is_dir():
        raise LdlError(f"the folder {out_dir.parent} does not exist; create it first")
    inside, outside = in_dir.resolve(), out_dir.resolve()
    if outside == inside:
        raise LdlError("OUTPUT is the same folder as INPUT; give another folder (sources are never touched)")
    if inside.is_relative_to(outside):
        raise LdlError("INPUT lies inside the OUTPUT folder, where results could land among the sources; "
                       "give an OUTPUT folder outside INPUT (a subfolder of INPUT is fine)")
    if map_dir is not None:
        if map_dir.exists() and not map_dir.is_dir() or not map_dir.exists() and map_dir.suffix:
            raise LdlError("for a folder INPUT, --artifact-map takes a folder: the maps get the results' names there")
        if map_dir.resolve() in (inside, outside) or inside.is_relative_to(map_dir.resolve()):
            raise LdlError("--artifact-map needs a folder of its own, apart from INPUT and OUTPUT")


def find_sources(in_dir: Path, leave_out: list[Path]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Videos and images under `in_dir`, sorted, without hidden files and folders (ours included:
    partial results, locks, job folders) and without the folders in `leave_out` (an OUTPUT or map
    folder inside INPUT holds results, not sources). Also (folder, reason) for each subfolder
    that could not be listed: its files would otherwise be missing without a word."""
    excluded = {folder.resolve() for folder in leave_out}
    found: list[Path] = []
    unreadable: list[tuple[str, str]] = []

    def refused(exc: OSError) -> None:
        where = Path(exc.filename or in_dir)
        name = where.relative_to(in_dir).as_posix() if where.is_relative_to(in_dir) else str(where)
        unreadable.append((name + "/", f"cannot list the folder ({exc.strerror or type(exc).__name__})"))

    for root, dirs, files in os.walk(in_dir, onerror=refused):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (here / d).resolve() not in excluded)
        for name in sorted(files):
            path = here / name
            if not name.startswith(".") and (is_image(path) or path.suffix.lower() in VIDEO_SUFFIXES):
                found.append(path)
    return found, unreadable


def _output_suffix(source: Path) -> tuple[str, str | None]:
    """The result's suffix, and a note when it is not the source's."""
    from .video.reader import is_animated

    if is_image(source):
        if is_animated(source):
            return FALLBACK_SUFFIX, "an animation, upscaled as a video"
        return source.suffix, None
    if source.suffix.lower() in KEPT_VIDEO_SUFFIXES:
        return source.suffix, None
    return FALLBACK_SUFFIX, f"{source.suffix} would lose timestamps, streams or depth; Matroska keeps them"


def plan(in_dir: Path, out_dir: Path, map_dir: Path | None) -> tuple[list[Task], list[tuple[str, str]]]:
    """The files to upscale, and the subfolders that could not be read."""
    tasks = []
    sources, unreadable = find_sources(in_dir, [out_dir] + ([map_dir] if map_dir else []))
    for source in sources:
        relative = source.relative_to(in_dir)
        suffix, note = _output_suffix(source)
        named = relative.with_suffix(suffix)
        tasks.append(Task(source, out_dir / named, map_dir / named if map_dir else None, relative.as_posix(), note))
    return tasks, unreadable


def _clashes(tasks: list[Task]) -> dict[Path, str]:
    """Targets that two sources would both write (a.avi and a.mkv both give a.mkv): the later
    source by name fails with the reason; the first keeps the name."""
    owner: dict[Path, str] = {}
    clash: dict[Path, str] = {}
    for task in tasks:
        if task.target in owner:
            clash[task.source] = f"its result {task.target.name} is also {owner[task.target]}'s; rename one of the two"
        else:
            owner[task.target] = task.name
    return clash


class _Display:
    """One bar over the files to do; a video's own frame bar shows beneath it while it runs."""

    def __init__(self, total: int, quiet: bool) -> None:
        from tqdm import tqdm

        self.quiet = quiet
        self.bar = tqdm(total=total, unit="file", desc="files", file=sys.stderr, disable=quiet, dynamic_ncols=True,
                        position=0)

    def say(self, message: str, always: bool = False) -> None:
        from tqdm import tqdm

        if always or not self.quiet:
            tqdm.write(f"ldl-video: {message}", file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


def run_folder(args: argparse.Namespace, in_dir: Path, out_dir: Path, upscale_file: UpscaleFile,
               load_upscalers: Callable[[], list]) -> int:
    """Upscale every source under `in_dir` with `upscale_file(args_for_file, source, target,
    upscalers)`. Results already there are skipped (they only ever get their name when complete)
    unless --overwrite. Returns 0 when every file is done or skipped; raises LdlError with the
    summary when any failed."""
    map_dir = Path(args.artifact_map) if args.artifact_map else None
    check_folders(in_dir, out_dir, map_dir)
    tasks, unreadable = plan(in_dir, out_dir, map_dir)
    if not tasks and not unreadable:
        raise LdlError(f"no video or image in {in_dir} (looked for {', '.join(sorted(VIDEO_SUFFIXES))} "
                       "and .png, .jpg, .tif, .webp)")
    tally = Tally(len(tasks) + len(unreadable), failed=list(unreadable))
    clashes = _clashes(tasks)
    todo = [task for task in tasks if args.overwrite or task.source in clashes or not task.target.exists()]
    tally.skipped = len(tasks) - len(todo)
    display = _Display(len(todo), args.quiet)
    already = f", {tally.skipped} already in {out_dir} (skipped; --overwrite redoes them)" if tally.skipped else ""
    display.say(f"{len(tasks)} file(s) in {in_dir}: {len(todo)} to upscale{already}")
    for name, reason in unreadable:
        display.say(f"{name}: {reason}", always=True)
    start = time.perf_counter()
    try:
        # once for the whole folder, and not at all when nothing is left to do; a bad -m stops
        # the job here, before OUT_DIR is made
        upscalers = load_upscalers() if any(task.source not in clashes for task in todo) else []
        out_dir.mkdir(exist_ok=True)
        for task in todo:
            display.bar.set_postfix_str(task.name, refresh=True)
            reason = clashes.get(task.source)
            if reason is None:
                reason = _upscale_one(args, task, upscale_file, upscalers, display)
            if reason is None:
                tally.done += 1
            else:
                tally.failed.append((task.name, reason))
                display.say(f"{task.name}: {reason}", always=True)
            display.bar.update(1)
    finally:
        display.close()
    if tally.failed:
        raise LdlError(tally.summary())
    display.say(f"{tally.summary()} in {time.perf_counter() - start:.1f} s")
    return 0


def _upscale_one(args: argparse.Namespace, task: Task, upscale_file: UpscaleFile, upscalers: list,
                 display: _Display) -> str | None:
    """None when the file is done, else the one-line reason it failed. Ctrl-C stops the job."""
    file_args = argparse.Namespace(**{**vars(args), "input": str(task.source), "output": str(task.target),
                                      "artifact_map": str(task.artifact_map) if task.artifact_map else None})
    try:
        for folder in filter(None, (task.target.parent, task.artifact_map and task.artifact_map.parent)):
            folder.mkdir(parents=True, exist_ok=True)
        if task.note:
            display.say(f"{task.name}: written as {task.target.name} ({task.note})")
        size = upscale_file(file_args, task.source, task.target, upscalers)
    except LdlError as exc:
        if signal_received():
            raise KeyboardInterrupt from None
        return one_line(exc)
    except Exception as exc:  # one broken file must not stop the others
        if signal_received():
            raise KeyboardInterrupt from None
        return f"{type(exc).__name__}: {one_line(exc)}"
    display.say(f"wrote {task.target} ({size})")
    return None
