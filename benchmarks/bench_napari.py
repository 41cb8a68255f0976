"""What the napari front end costs and how responsive the viewer stays while it works.

    xvfb-run -a .venv/bin/python benchmarks/bench_napari.py [--model realesr-animevideov3-x2]
                                                            [--planes 4] [--tile 256] [--repeats 3]

1. Engine alone: seconds per 512×512 plane (gray `camera`, RGB `astronaut`) for the model,
   untiled and tiled, best of --repeats (other work on a shared machine only slows a run).
2. The plugin's worker on the same planes, with and without the blind artifact map.
3. A real viewer (shown, under Xvfb) running the Upscale widget on a stack of --planes
   512×512 planes, while a 10 ms QTimer measures how late the event loop serves it
   (lateness = gap between ticks - 10 ms); the same timer on the idle viewer first, for scale.
   The worker phase and the final step (adding the two layers, on the GUI thread, which
   includes napari building their textures) are reported apart.

Prints markdown; the numbers go in benchmarks/results/napari.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import threading
import time

import numpy as np
import skimage.data
import torch

from ldl_video import Upscaler, load_model

TICK_MS = 10


def best_of(repeats: int, function) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def engine_and_worker(model: str, tile: int, repeats: int) -> list[str]:
    from napari_ldl._planes import PlaneLayout
    from napari_ldl._worker import UpscaleRequest, run_upscale

    net = load_model(model)
    rows = []
    for name, image in (("gray camera", skimage.data.camera()), ("RGB astronaut", skimage.data.astronaut())):
        for t in (0, tile):
            upscaler = Upscaler(net, device="cpu", tile=t)
            upscaler.upscale(image[:64, :64])  # warm-up
            seconds = best_of(repeats, lambda u=upscaler, i=image: u.upscale(i))
            rows.append(f"| engine `Upscaler.upscale` | {name} | {t or 'none'} | {seconds:.2f} |")
        for with_map in (False, True):
            request = UpscaleRequest(image, PlaneLayout(image.shape, image.ndim == 3), name, model, 2, tile=tile,
                                     device="cpu", artifact_map=with_map)

            def run(r=request):
                for _ in run_upscale(r, threading.Event()):
                    pass

            seconds = best_of(repeats, run)
            rows.append(f"| plugin worker{' + blind map' if with_map else ''} | {name} | {tile} | {seconds:.2f} |")
    return rows


def lateness(samples: list[float]) -> str:
    late = np.maximum(np.diff(samples) * 1000 - TICK_MS, 0)
    return (f"{len(late)} ticks, lateness median {np.median(late):.1f} ms, 95th pct {np.percentile(late, 95):.1f} ms, "
            f"99th pct {np.percentile(late, 99):.1f} ms, max {late.max():.0f} ms")


def pump_until(condition, limit_s: float) -> None:
    """Serve the Qt event loop until `condition()` or `limit_s` seconds."""
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    end = time.perf_counter() + limit_s
    while not condition() and time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.001)


def start_ticking():
    """A running 10 ms QTimer, its tick times, and the ticks of 2 s of the idle viewer before."""
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    for _ in range(50):  # let the window settle
        QApplication.instance().processEvents()
    ticks: list[float] = []
    timer = QTimer(interval=TICK_MS)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    pump_until(lambda: False, 2.0)
    idle, ticks[:] = list(ticks), []
    return timer, ticks, idle


def viewer_responsiveness(model: str, planes: int, tile: int) -> list[str]:
    import napari

    viewer = napari.Viewer(show=True)
    camera = skimage.data.camera()
    stack = np.stack([np.roll(camera, 37 * k, axis=1) for k in range(planes)])
    viewer.add_image(stack, name="stack")
    _, widget = viewer.window.add_plugin_dock_widget("napari-ldl", "Upscale")
    widget.model.value = model
    widget.tile.value = tile
    widget.device.value = "cpu"
    timer, ticks, idle = start_ticking()
    inserted: list[float] = []
    viewer.layers.events.inserted.connect(lambda event: inserted.append(time.perf_counter()))
    start = time.perf_counter()
    widget.run_button.native.click()
    pump_until(lambda: not widget.running, 1800)
    pump_until(lambda: False, 0.5)
    wall = time.perf_counter() - start
    timer.stop()
    working = [t for t in ticks if t < inserted[0]]
    adding = max(np.diff([working[-1]] + [t for t in ticks if t >= inserted[0]]) * 1000)
    upscaled = viewer.layers[1]
    per_plane = upscaled.metadata["ldl"]["seconds_per_plane"]
    viewer.close()
    return [f"- idle viewer: {lateness(idle)}",
            f"- during the run ({planes} planes of 512×512, tile {tile}, blind map on; {wall:.1f} s wall, "
            f"{np.median(per_plane):.2f} s per plane in the worker): {lateness(working)}",
            f"- adding the two result layers at the end: one stall of {adding:.0f} ms"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="realesr-animevideov3-x2")
    parser.add_argument("--planes", type=int, default=4)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-viewer", action="store_true")
    args = parser.parse_args()
    print(f"{args.model} on the CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads)\n")
    print(f"| what | 512×512 plane | tile | seconds per plane (best of {args.repeats}) |")
    print("|---|---|---|---|")
    for row in engine_and_worker(args.model, args.tile, args.repeats):
        print(row, flush=True)
    if not args.skip_viewer:
        print("\nViewer event loop, 10 ms QTimer:\n")
        for line in viewer_responsiveness(args.model, args.planes, args.tile):
            print(line, flush=True)


if __name__ == "__main__":
    main()
