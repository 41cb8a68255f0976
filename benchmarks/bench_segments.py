"""What resumable segments cost and what they save, and where the driver of a cluster job
becomes the limit.

1. Segmented vs one pass: wall time of the same `ldl-video` command with `--segment 0` (one
   pass) and segments (the default 6 s, and 2 s), interleaved so a busy machine slows all alike.
2. Resume: a segmented run killed with SIGKILL once half its segments are stored, then the same
   command again: the second run's time over a fresh run's (ideal ≈ 0.5).
3. Ray: the same job with `--ray` (a local Ray instance started by the command) vs without.
4. The driver's own work per segment (reading the source and packing a segment's packets, and
   the join's remux), in CPU seconds, on a longer clip: with N workers each needing S seconds
   per segment, the driver keeps up while N × (driver time per segment) < S.

    python benchmarks/bench_segments.py            # 320×180, 15 s, ldl-compact-x2 (about 10 min here)
    python benchmarks/bench_segments.py --quick    # a smoke run

Results go to benchmarks/results/segments.md (or --output), with the machine they came from.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from machine_info import cpu_name  # noqa: E402

HERE = Path(__file__).parent


def make_clip(path: Path, width: int, height: int, seconds: float, gop: int) -> Path:
    """A moving gradient with a tone, H.264 (B-frames, keyframe every `gop` frames) + AAC."""
    out = av.open(str(path), "w")
    video = out.add_stream("libx264", rate=25, options={"preset": "veryfast", "crf": "20"})
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    video.codec_context.gop_size = gop
    audio = out.add_stream("aac", rate=48000)
    audio.layout = "stereo"
    y, x = np.mgrid[0:height, 0:width]
    frames = round(seconds * 25)
    for i in range(frames):
        rgb = np.stack([(x * 3 + i * 4) % 256, (y * 2 + i) % 256, ((x + y) // 2 + i * 2) % 256], -1).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(rgb).reformat(format="yuv420p")
        frame.pts, frame.time_base = i, Fraction(1, 25)
        out.mux(video.encode(frame))
    out.mux(video.encode())
    samples, t = round(seconds * 48000), 0
    while t < samples:
        n = min(1024, samples - t)
        wave = (0.2 * np.sin(2 * np.pi * 440 * np.arange(t, t + n) / 48000)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.tile(wave, (2, 1)), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = 48000, t, Fraction(1, 48000)
        out.mux(audio.encode(frame))
        t += n
    out.mux(audio.encode())
    out.close()
    return path


def command(source: Path, out: Path, model: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "ldl_video.cli", str(source), str(out), "-m", model, "--quiet", "--overwrite", *extra]


CPU: list[float] = []  # CPU seconds of each timed run, in order


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    """Wall seconds; the run's CPU seconds (user + system) go to CPU. On a machine shared with
    other jobs the CPU time is the steadier measure of the work a mode adds."""
    before = os.times()
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    wall = time.perf_counter() - start
    after = os.times()
    CPU.append(after.children_user + after.children_system - before.children_user - before.children_system)
    return wall


def job_folder(out: Path) -> Path:
    return out.with_name(f".{out.name}.ldl-job")


def resume_ratio(source: Path, out: Path, model: str) -> tuple[float, float, int, int]:
    """(fresh run s, resumed run s, segments reused, segments) after a SIGKILL at half the 2-s segments."""
    from ldl_video.video.segments import plan_segments

    total_segments = len(plan_segments(source, 0, 2.0).segments)
    fresh = timed(command(source, out, model, "--segment", "2", "--restart"))
    fresh_cpu = CPU[-1]
    out.unlink()
    process = subprocess.Popen(command(source, out, model, "--segment", "2", "--restart"))
    while len(list(job_folder(out).glob("seg-*.pkt"))) < total_segments // 2:
        if process.poll() is not None:
            raise RuntimeError("the run ended before half its segments were stored")
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    reused = len(list(job_folder(out).glob("seg-*.pkt")))
    resumed = timed(command(source, out, model, "--segment", "2"))
    print(f"resume CPU: fresh {fresh_cpu:.1f} s, resumed {CPU[-1]:.1f} s")
    return fresh, resumed, reused, total_segments


def driver_costs(source: Path, seconds: float, folder: Path) -> dict[str, float]:
    """CPU seconds of the driver's own steps on `source`: the scan, packing each segment's
    packets for a worker, and the join (remux of the stored segments with the audio), per
    segment. The segments themselves are made here with bicubic and x264 ultrafast."""
    from types import SimpleNamespace

    from ldl_video.upscaler import Upscaler
    from ldl_video.video.jobs import _join
    from ldl_video.video.reader import VideoSource
    from ldl_video.video.segments import JobFolder, SegmentTask, SourceInfo, carried_packets, plan_segments, run_segment
    from ldl_video.video.writer import EncodeSettings
    from ldl_video.zoo import load_model

    start = time.process_time()
    plan = plan_segments(source, 0, seconds)
    scan = time.process_time() - start
    start = time.process_time()
    carried = list(carried_packets(source, 0, plan, {s.index for s in plan.segments}))
    pack = time.process_time() - start
    video = VideoSource(source)
    settings = EncodeSettings("libx264", None, "ultrafast")
    size = (video.width * 2, video.height * 2)
    target = folder / "joined.mkv"
    jobs = JobFolder(target)
    jobs.path.mkdir(exist_ok=True)
    upscalers = [Upscaler(load_model("bicubic", scale=2), scale=2, device="cpu")]
    info = SourceInfo.of(video)
    for segment, data in carried:
        task = SegmentTask(segment.index, data, segment.start, segment.end, segment.pts, info, "matroska", size, settings)
        jobs.store(segment.index, run_segment(task, upscalers))
    job = SimpleNamespace(settings=settings, quiet=True)
    start = time.process_time()
    _join(video, job, plan, jobs, size, target)
    join = time.process_time() - start
    video.close()
    count = len(plan.segments)
    return {"segments": count, "scan_s": scan, "pack_s_per_segment": pack / count, "join_s_per_segment": join / count,
            "mean_segment_bytes": statistics.mean(len(d) for _, d in carried)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--model", default="ldl-compact-x2")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=15.0, help="length of the clip (default 15)")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "segments.md")
    args = parser.parse_args()
    seconds = 6.0 if args.quick else args.seconds
    width, height = (160, 90) if args.quick else (320, 180)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = make_clip(folder / "clip.mkv", width, height, seconds, gop=25)
        out = folder / "out.mkv"
        modes = {"one pass": ["--segment", "0"], "segments of 6 s (default)": [], "segments of 2 s": ["--segment", "2"]}
        if args.quick:
            modes["segments of 6 s (default)"] = ["--segment", "3"]
        times: dict[str, list[float]] = {name: [] for name in modes}
        cpu: dict[str, list[float]] = {name: [] for name in modes}
        for _ in range(args.repeats):
            for name, extra in modes.items():
                times[name].append(timed(command(source, out, args.model, *extra)))
                cpu[name].append(CPU[-1])
        base, base_cpu = statistics.median(times["one pass"]), statistics.median(cpu["one pass"])
        for name, values in times.items():
            rows.append(f"| {name} | {' / '.join(f'{v:.1f}' for v in values)} | {statistics.median(values) / base:.3f} | "
                        f"{' / '.join(f'{v:.1f}' for v in cpu[name])} | {statistics.median(cpu[name]) / base_cpu:.3f} |")
        fresh, resumed, reused, total = resume_ratio(source, out, args.model)
        ray_local = timed(command(source, out, args.model, "--segment", "2", "--ray"))
        no_ray = timed(command(source, out, args.model, "--segment", "2"))
        sys.path.insert(0, str(HERE.parent / "tests" / "cluster"))
        from ray_processes import ray_cluster

        with ray_cluster(nodes=2, cpus_per_node=1) as nodes:
            two_nodes = timed(command(source, out, args.model, "--segment", "2", "--ray", nodes.address),
                              env={**os.environ, **nodes.env})
        long_source = make_clip(folder / "long.mkv", 640, 360, 20.0 if args.quick else 60.0, gop=50)
        costs = driver_costs(long_source, 2.0, folder)
    machine = f"{cpu_name()}, {os.cpu_count()} cores, {platform.system()} (shared with other jobs while measured)"
    lines = [
        "## Resumable segments and Ray (`benchmarks/bench_segments.py`)",
        "",
        f"Machine: {machine}. Source: {width}×{height}, {seconds:.0f} s at 25 fps, H.264 (keyframe every 1 s, B-frames) "
        f"+ AAC; model {args.model}, output MKV with libx264 (CRF 18).",
        "",
        "| mode | wall s (each run) | median / one pass | CPU s (each run) | median / one pass |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"Resume: killed with SIGKILL once half of the {total} 2-s segments were stored ({reused} reused); fresh run "
        f"{fresh:.1f} s, the same command afterwards {resumed:.1f} s: ratio {resumed / fresh:.2f}.",
        "",
        f"Ray, a local instance started by the command (one node, {os.cpu_count()} CPUs: one task at a time using every "
        f"core): {ray_local:.1f} s vs {no_ray:.1f} s without Ray (2-s segments), ratio {ray_local / no_ray:.2f}; "
        "(Ray adds its start-up and a worker loading the model; on a shared machine the wall times vary more "
        "than that.) "
        f"A two-node cluster on this machine (`ray start`, one CPU per node, two segments at once): {two_nodes:.1f} s, "
        f"ratio {two_nodes / no_ray:.2f} against one local process using both cores.",
        "",
        f"Driver work (640×360, 2-s segments, {costs['segments']} segments, mean {costs['mean_segment_bytes'] / 1e3:.0f} kB "
        f"of source packets each): the scan {costs['scan_s'] * 1e3:.0f} ms for the whole file; per segment, packing its "
        f"packets for a worker {costs['pack_s_per_segment'] * 1e3:.1f} ms and the join "
        f"{costs['join_s_per_segment'] * 1e3:.1f} ms of CPU. A driver with one core to spare keeps N workers busy while "
        f"N × {(costs['pack_s_per_segment'] + costs['join_s_per_segment']) * 1e3:.0f} ms stays below the time a worker "
        "needs for one segment (seconds to minutes with a real model), i.e. for hundreds of GPUs; the driver's limit is "
        "then its network link (each segment's packets out, its encoded result back).",
    ]
    args.output.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
