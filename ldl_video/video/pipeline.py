"""decode -> upscale -> encode as three kinds of threads joined by bounded queues.

The decoder thread demuxes and decodes into batches of planar frames in the source's own pixel
format. One upscaling thread per device takes batches as it frees up (so `--device cpu,cpu` or
`cuda:0,cuda:1` split the work by batch), converts them to RGB, upscales and converts back, all
on its device. The calling thread muxes in file order: every passthrough packet and every batch
in the order the decoder saw them, waiting for a batch's result when it is not back yet. A
fixed number of batches may be in flight at once, so memory does not grow with the video's
length, and no batch is lost, repeated or reordered whichever device finishes first.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from dataclasses import dataclass

import av
import numpy as np
import torch

from ..errors import raise_if_interrupted
from ..upscaler import Upscaler
from .convert import PlaneFormat, planes_to_rgb, rgb_to_planes, stack_planes
from .reader import DecodedFrame, DecodeReport, VideoSource
from .writer import VideoSink

_POLL_S = 0.1


@dataclass
class Batch:
    seq: int
    pts: list[int]
    planes: list[np.ndarray]  # one N×h×w array per plane, in the source's PlaneFormat


@dataclass
class Result:
    seq: int
    pts: list[int]
    planes: list[np.ndarray]  # in the output's PlaneFormat
    artifact: list[np.ndarray] | None  # in the artifact sink's PlaneFormat


@dataclass
class _Slot:
    """A batch's place in the muxing order."""

    seq: int


@dataclass
class _End:
    report: DecodeReport


@dataclass(frozen=True)
class Conversion:
    """What a batch goes through besides the model: source planes -> RGB -> output planes."""

    source: PlaneFormat
    output: PlaneFormat
    size: tuple[int, int]  # output (width, height); the model's result is cropped to it
    artifact: PlaneFormat | None = None


def upscale_batch(upscaler: Upscaler, planes: list[np.ndarray], conversion: Conversion):
    """One batch through colour conversion and the model (and the blind artifact map when asked).
    A tiled run converts in host memory so that only tiles travel to the device."""
    from ..artifacts import blind_artifact_map, to_display

    device = torch.device("cpu") if upscaler.tile else upscaler.device
    rgb = planes_to_rgb(planes, conversion.source, device)
    width, height = conversion.size
    full = upscaler.upscale_tensor(rgb)
    out = full[..., :height, :width]
    artifact = None
    if conversion.artifact is not None:  # the map reuses the result: the model runs once
        weights = to_display(blind_artifact_map(upscaler, rgb, sr=full))[..., :height, :width]
        artifact = rgb_to_planes(weights.expand(-1, 3, -1, -1), conversion.artifact)
    return rgb_to_planes(out, conversion.output), artifact


class Progress:
    """The bar on stderr. In frames when the container counts them; otherwise in seconds of
    video, which stays right where duration × frame rate does not (variable frame rate, gaps)."""

    def __init__(self, source: VideoSource, quiet: bool) -> None:
        from tqdm import tqdm

        self.time_base = float(source.time_base)
        counted = source.video.frames or None
        seconds = None if counted else source.seconds
        self.frames = 0
        if seconds:
            self.bar = tqdm(total=round(seconds, 2), unit="s", desc="upscaling", file=sys.stderr, disable=quiet,
                            dynamic_ncols=True, smoothing=0.1,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.2f}/{total:.2f} s [{elapsed}<{remaining}{postfix}]")
        else:
            self.bar = tqdm(total=counted, unit="frame", desc="upscaling", file=sys.stderr, disable=quiet,
                            dynamic_ncols=True, smoothing=0.1)
        self.by_time = bool(seconds)
        self.started = time.perf_counter()

    def update(self, pts: list[int]) -> None:
        self.frames += len(pts)
        if not self.by_time:
            self.bar.update(len(pts))
            return
        position = min(self.bar.total, max(self.bar.n, round(pts[-1] * self.time_base, 2)))
        self.bar.update(position - self.bar.n)
        self.bar.set_postfix_str(f"{self.frames} frames, {self.frames / max(1e-9, time.perf_counter() - self.started):.1f} fps",
                                 refresh=False)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        if self.by_time and exc[0] is None:
            self.bar.update(self.bar.total - self.bar.n)
        self.bar.close()


class Pipeline:
    """Run once with `run()`; returns the decoder's report (frames, damage)."""

    def __init__(self, source: VideoSource, sink: VideoSink, upscalers: list[Upscaler], batch_size: int,
                 map_sink: VideoSink | None = None, quiet: bool = False, progress=None) -> None:
        self.source, self.sink, self.map_sink = source, sink, map_sink
        self.conversion = Conversion(source.plane_format, sink.plane_format, sink.size,
                                     map_sink.plane_format if map_sink is not None else None)
        self.upscalers = upscalers
        self.batch_size = max(1, batch_size)
        self.quiet = quiet
        self.progress = progress  # a callable giving the bar (a job of many segments shares one)
        workers = len(upscalers)
        self.work: queue.Queue[Batch] = queue.Queue(maxsize=2 * workers)
        self.order: queue.Queue[av.Packet | _Slot | _End] = queue.Queue(maxsize=512)
        self.in_flight = threading.BoundedSemaphore(3 * workers + 1)
        self.results: dict[int, Result] = {}
        self.results_ready = threading.Condition()
        self.stop = threading.Event()
        self.failure: BaseException | None = None
        self.threads: list[threading.Thread] = []
        # OpenMP settings belong to the thread that made them: a new thread may run torch's CPU
        # kernels on one core. The upscaling threads take the caller's count.
        self.torch_threads = torch.get_num_threads()

    # ---- helpers shared by the threads ------------------------------------------------------
    def _fail(self, exc: BaseException) -> None:
        if self.failure is None:
            self.failure = exc
        self.stop.set()
        with self.results_ready:
            self.results_ready.notify_all()

    def _put(self, q: queue.Queue, item) -> bool:
        while not self.stop.is_set():
            try:
                q.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _acquire_slot(self) -> bool:
        while not self.stop.is_set():
            if self.in_flight.acquire(timeout=_POLL_S):
                return True
        return False

    # ---- decoder thread -----------------------------------------------------------------------
    def _decode(self) -> None:
        try:
            seq = 0
            frames: list[DecodedFrame] = []
            for item in self.source.items():
                if self.stop.is_set():
                    return
                if isinstance(item, DecodedFrame):
                    frames.append(item)
                    if len(frames) == self.batch_size:
                        if not self._send_batch(seq, frames):
                            return
                        seq, frames = seq + 1, []
                elif not self._put(self.order, item):
                    return
            if frames and not self._send_batch(seq, frames):
                return
            self._put(self.order, _End(self.source.report))
        except BaseException as exc:  # handed to the writer, which raises it
            self._fail(exc)

    def _send_batch(self, seq: int, frames: list[DecodedFrame]) -> bool:
        batch = Batch(seq, [f.pts for f in frames], stack_planes([f.planes for f in frames]))
        return self._acquire_slot() and self._put(self.work, batch) and self._put(self.order, _Slot(seq))

    # ---- upscaling threads -------------------------------------------------------------------
    def _upscale(self, upscaler: Upscaler) -> None:
        try:
            torch.set_num_threads(self.torch_threads)
            while not self.stop.is_set():
                try:
                    batch = self.work.get(timeout=_POLL_S)
                except queue.Empty:
                    continue
                planes, artifact = upscale_batch(upscaler, batch.planes, self.conversion)
                with self.results_ready:
                    self.results[batch.seq] = Result(batch.seq, batch.pts, planes, artifact)
                    self.results_ready.notify_all()
        except BaseException as exc:
            self._fail(exc)

    # ---- the calling thread: mux in order ------------------------------------------------------
    def _result(self, seq: int) -> Result:
        with self.results_ready:
            while seq not in self.results:
                raise_if_interrupted()
                if self.failure is not None:
                    raise self.failure
                self.results_ready.wait(timeout=_POLL_S)
            return self.results.pop(seq)

    def _next(self):
        while True:
            raise_if_interrupted()
            if self.failure is not None:
                raise self.failure
            try:
                return self.order.get(timeout=_POLL_S)
            except queue.Empty:
                continue

    def _progress(self):
        return self.progress() if self.progress is not None else Progress(self.source, self.quiet)

    def run(self) -> DecodeReport:
        self.threads = [threading.Thread(target=self._decode, name="ldl-decode", daemon=True)]
        self.threads += [threading.Thread(target=self._upscale, args=(u,), name=f"ldl-upscale-{i}", daemon=True)
                         for i, u in enumerate(self.upscalers)]
        self.started = time.perf_counter()
        try:
            for thread in self.threads:
                thread.start()
            with self._progress() as bar:
                while True:
                    item = self._next()
                    if isinstance(item, _End):
                        return item.report
                    if isinstance(item, _Slot):
                        result = self._result(item.seq)
                        self.sink.write_frames(result.planes, result.pts)
                        if self.map_sink is not None and result.artifact is not None:
                            self.map_sink.write_frames(result.artifact, result.pts)
                        self.in_flight.release()
                        bar.update(result.pts)
                    else:
                        self.sink.write_packet(item)
        finally:
            self.shutdown()

    def shutdown(self, timeout: float = 10.0) -> bool:
        """Stop the threads and wait for them; True when all have ended (only then may the
        input container be closed under them)."""
        self.stop.set()
        with self.results_ready:
            self.results_ready.notify_all()
        deadline = time.monotonic() + timeout
        started = [thread for thread in self.threads if thread.ident is not None]  # a signal can come between starts
        for thread in started:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in started)
