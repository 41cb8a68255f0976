"""The work of one run, off the GUI thread: measure intensities, then upscale plane by plane
and compute the artifact map, reporting progress and stopping when asked.

`run_upscale` is a plain generator (the widget wraps it in napari's `thread_worker`): it
yields a Progress after each plane and returns an UpscaleResult, None when cancelled, or a
Failure. Failures are returned rather than raised: in napari 0.9.2 an erroring worker reaches
neither napari's notifications (its relay is never connected) nor its task-status slot (which
takes the wrong number of arguments), only the bare event loop.
Within a plane, the engine calls back after each batch of tiles; that callback reports tile
progress and raises Cancelled when the user has pressed Cancel, so a cancel lands within a
plane when tiling is on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import numpy as np

from ldl_video.errors import LdlError

from ._intensity import Normalisation, measure
from ._planes import PlaneLayout


class Cancelled(Exception):
    """Raised inside the worker thread to unwind a run the user cancelled."""


class UpscaleFailed(Exception):
    """Why a run failed: a one-line message for the notification, the cause chained."""


@dataclass(frozen=True)
class Failure:
    error: UpscaleFailed


@dataclass(frozen=True)
class UpscaleRequest:
    data: object  # the layer's array: numpy, dask, zarr, ... (read plane by plane)
    layout: PlaneLayout
    name: str
    model: str
    scale: int
    tile: int = 256
    device: str = "auto"
    normalisation: str = "auto"
    artifact_map: bool = True
    ground_truth: object | None = None  # an array with the output's shape: the reference map
    backend: str = "auto"  # what runs the network: auto, torch, tensorrt (ldl_video.backends)


@dataclass(frozen=True)
class Progress:
    stage: str  # "loading", "measuring", "upscaling"
    done: int = 0  # planes finished
    total: int = 1
    tiles_done: int = 0  # within the current plane
    tiles_total: int = 0

    @property
    def fraction(self) -> float:
        within = self.tiles_done / self.tiles_total if self.tiles_total else 0.0
        return min(1.0, (self.done + within) / max(self.total, 1))


@dataclass
class UpscaleResult:
    image: np.ndarray
    artifact_map: np.ndarray | None
    factors: tuple[float, float]  # output / input size along y and x
    normalisation: Normalisation
    model: str
    device: str
    map_kind: str | None  # "blind", "reference" or None
    backend: str = "torch"  # the backend that ran the network
    seconds_per_plane: list[float] = field(default_factory=list)


Report = Callable[[Progress], None]


def _check_memory(request: UpscaleRequest, out_h: int, out_w: int) -> None:
    layout = request.layout
    itemsize = np.dtype(request.data.dtype).itemsize
    needed = int(np.prod(layout.output_shape(out_h, out_w), dtype=np.int64)) * itemsize
    if request.artifact_map:
        needed += int(np.prod(layout.map_shape(out_h, out_w), dtype=np.int64)) * 4
    try:
        import psutil

        available = psutil.virtual_memory().available
    except ImportError:  # psutil comes with napari; without it, do not guess
        return
    if needed > 0.8 * available:
        raise LdlError(f"the result of “{request.name}” needs {needed / 2**30:.1f} GiB but {available / 2**30:.1f} GiB "
                              f"is free; crop the layer, or pick fewer planes, or a smaller scale")


def run_upscale(request: UpscaleRequest, cancel: threading.Event, report: Report | None = None
                ) -> Generator[Progress, None, UpscaleResult | Failure | None]:
    """The run; every failure comes back as Failure(UpscaleFailed("napari-ldl: ..."))."""
    import torch

    try:
        return (yield from _run(request, cancel, report or (lambda progress: None)))
    except Cancelled:
        return None
    except Exception as error:
        if isinstance(error, LdlError):
            message = str(error)
        elif isinstance(error, torch.cuda.OutOfMemoryError):
            message = f"the GPU ran out of memory upscaling “{request.name}”; set a smaller tile size or use the CPU"
        else:
            message = f"upscaling “{request.name}” failed: {type(error).__name__}: {error}"
        failure = UpscaleFailed(f"napari-ldl: {message}")
        failure.__cause__ = error
        return Failure(failure)


def _run(request: UpscaleRequest, cancel: threading.Event, report: Report) -> Generator[Progress, None, UpscaleResult]:
    from ldl_video.artifacts import blind_artifact_map, reference_artifact_map, to_display

    from ._models import make_upscaler

    layout = request.layout

    def check(*_) -> None:
        if cancel.is_set():
            raise Cancelled

    report(Progress("loading"))
    upscaler = make_upscaler(request.model, request.scale, request.device, request.tile, backend=request.backend)
    out_h, out_w = upscaler.output_size(layout.height, layout.width)
    _check_memory(request, out_h, out_w)
    check()
    normalisation = measure(request.data, layout, request.normalisation,
                            lambda done, total: (check(), report(Progress("measuring", done, total))))
    dtype = np.dtype(request.data.dtype)
    image = np.empty(layout.output_shape(out_h, out_w), dtype=dtype)
    weights = np.empty(layout.map_shape(out_h, out_w), dtype=np.float32) if request.artifact_map else None
    timings: list[float] = []
    total = layout.plane_count
    for done, index in enumerate(layout.planes()):
        start = time.perf_counter()
        channel = layout.channel_of(index)
        x = _tensor(normalisation.to_unit(np.asarray(request.data[index]), channel), layout.rgb)

        def on_tiles(tiles_done: int, tiles_total: int, done: int = done) -> None:
            check()
            report(Progress("upscaling", done, total, tiles_done, tiles_total))

        sr = upscaler.upscale_tensor(x, progress=on_tiles).cpu()
        check()
        image[index] = normalisation.from_unit(_array(sr, layout.rgb), dtype, channel)
        if weights is not None:
            if request.ground_truth is not None:
                gt = _tensor(normalisation.to_unit(np.asarray(request.ground_truth[index]), channel), layout.rgb)
                raw = reference_artifact_map(upscaler, x, gt, sr=sr)
            else:
                raw = blind_artifact_map(upscaler, x, sr=sr)
            weights[index] = to_display(raw)[0, 0].numpy()
        timings.append(time.perf_counter() - start)
        yield Progress("upscaling", done + 1, total)
    map_kind = None if weights is None else ("reference" if request.ground_truth is not None else "blind")
    return UpscaleResult(image, weights, (out_h / layout.height, out_w / layout.width), normalisation,
                         upscaler.model.name, str(upscaler.device), map_kind, upscaler.backend.name, timings)


def _tensor(unit: np.ndarray, rgb: bool):
    """H×W or H×W×C float32 -> 1×C×H×W tensor."""
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(unit))
    return tensor.permute(2, 0, 1)[None] if rgb else tensor[None, None]


def _array(sr, rgb: bool) -> np.ndarray:
    """1×C×H×W tensor -> H×W or H×W×C float32."""
    return sr[0].permute(1, 2, 0).numpy() if rgb else sr[0, 0].numpy()
