"""How well the video pipeline keeps the model busy, and whether its memory stays flat.

1. Pipeline efficiency: end-to-end frames per second of the video front end (open, decode,
   convert, upscale, encode, mux, including the audio track) divided by the frames per second
   of the bare `Upscaler.upscale` on the same decoded frames, same model, device, precision
   and batch. Measured interleaved (bare, pipeline, bare, pipeline, ...) so that a busy machine
   slows both sides alike; the table gives every pair's ratio and their median.
2. Peak memory: the peak RSS of `ldl-video` (a fresh process each) on a 30- and a 300-frame
   clip of the same content; the ratio should stay near 1.

    python benchmarks/bench_video.py                      # CPU: 320×180, the three models
    python benchmarks/bench_video.py --quick              # a smoke run in a minute or two
    python benchmarks/bench_video.py --device cuda --precision fp16,bf16 --batch 4
                                                         # GPU: 1280×720, animevideov3-x4 and RRDB

Results go to benchmarks/results/video.md (or --output), with the machine they came from.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

# OpenMP threads spin while they wait, and libgomp spins far less once a process has more
# threads than cores, which the pipeline has and a bare Upscaler call does not. On a machine
# shared with other jobs, full spinning slows the bare call several-fold and the ratio would
# measure that; both sides are measured with passive waiting instead (--omp-wait to change).
if "--omp-wait" not in sys.argv:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import av  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine_info import cpu_name  # noqa: E402
from make_sample import pan_frames  # noqa: E402

from ldl_video.upscaler import Upscaler  # noqa: E402
from ldl_video.video.reader import VideoSource  # noqa: E402
from ldl_video.video.run import VideoJob, transcode  # noqa: E402
from ldl_video.video.writer import EncodeSettings  # noqa: E402
from ldl_video.zoo import load_model  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "video.md"


def make_clip(path: Path, width: int, height: int, frames: int, rate: int = 24) -> Path:
    """A natural-looking pan (H.264, BT.709) with an AAC track, like a real input."""
    pictures = pan_frames(width, height, min(frames, 60), photo="astronaut")
    pictures = pictures + pictures[::-1]  # back and forth, so long clips need no more photos
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=rate, options={"crf": "18", "preset": "veryfast"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        context = video.codec_context
        context.color_primaries, context.color_trc, context.colorspace, context.color_range = 1, 1, 1, 1
        audio = out.add_stream("aac", rate=48000)
        audio.layout = "stereo"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(pictures[i % len(pictures)]).reformat(
                format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")
            frame.pts, frame.time_base = i, Fraction(1, rate)
            out.mux(video.encode(frame))
        out.mux(video.encode())
        samples, t = round(frames / rate * 48000), 0
        while t < samples:
            n = min(1024, samples - t)
            wave = (0.2 * np.sin(2 * np.pi * 330 * np.arange(t, t + n) / 48000)).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(np.stack([wave, wave]), format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = 48000, t
            out.mux(audio.encode(frame))
            t += n
        out.mux(audio.encode())
    return path


def decoded_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Run:
    fps: float  # frames per wall-clock second
    cpu: float  # CPU seconds (all threads of this process) per frame


def bare_run(upscaler: Upscaler, frames: list[np.ndarray], batch: int) -> Run:
    stack = np.stack(frames)
    synchronise(upscaler.device)
    start, cpu = time.perf_counter(), time.process_time()
    for first in range(0, len(stack), batch):
        upscaler.upscale(stack[first : first + batch])
    synchronise(upscaler.device)
    return Run(len(frames) / (time.perf_counter() - start), (time.process_time() - cpu) / len(frames))


def pipeline_run(upscaler: Upscaler, clip: Path, out: Path, batch: int, settings: EncodeSettings) -> Run:
    out.unlink(missing_ok=True)
    start, cpu = time.perf_counter(), time.process_time()
    source = VideoSource(clip)
    frames = source.frame_estimate
    _, report = transcode(source, VideoJob(clip, out, settings, batch, quiet=True), [upscaler])
    synchronise(upscaler.device)
    elapsed = time.perf_counter() - start
    assert report.frames == frames, (report.frames, frames)
    return Run(report.frames / elapsed, (time.process_time() - cpu) / report.frames)


@dataclass
class Efficiency:
    model: str
    precision: str
    size: tuple[int, int]
    frames: int
    batch: int
    bare: list[Run]
    pipeline: list[Run]

    @property
    def ratios(self) -> list[float]:
        return [p.fps / b.fps for p, b in zip(self.pipeline, self.bare, strict=True)]

    @property
    def cpu_ratio(self) -> float:
        """Bare CPU time per frame over the pipeline's: the share of the pipeline's CPU work
        that is the model (what a fully busy CPU-only machine would reach)."""
        return statistics.median(b.cpu for b in self.bare) / statistics.median(p.cpu for p in self.pipeline)


def measure_efficiency(model_name: str, device: str, precision: str, size: tuple[int, int], frames: int, batch: int,
                       repeats: int, settings: EncodeSettings, work: Path) -> Efficiency:
    width, height = size
    clip = make_clip(work / f"clip-{width}x{height}-{frames}.mp4", width, height, frames)
    pictures = decoded_frames(clip)
    upscaler = Upscaler(load_model(model_name), device=device, precision=precision, batch_size=batch)
    # Warm-up, discarded: kernels, allocator, thread pools, encoder libraries (the first pair
    # otherwise favours whichever side runs second).
    warm = make_clip(work / f"warm-{width}x{height}.mp4", width, height, max(2 * batch, 4))
    bare_run(upscaler, decoded_frames(warm), batch)
    pipeline_run(upscaler, warm, work / "warm-out.mkv", batch, settings)
    bare, piped = [], []
    for _ in range(repeats):
        bare.append(bare_run(upscaler, pictures, batch))
        piped.append(pipeline_run(upscaler, clip, work / "out.mkv", batch, settings))
        print(f"  {model_name} {precision} batch {batch}: bare {bare[-1].fps:.3f} fps ({bare[-1].cpu:.3f} CPU s/frame), "
              f"pipeline {piped[-1].fps:.3f} fps ({piped[-1].cpu:.3f} CPU s/frame), ratio {piped[-1].fps / bare[-1].fps:.3f}",
              flush=True)
    return Efficiency(model_name, str(upscaler.dtype).replace("torch.", ""), size, len(pictures), batch, bare, piped)


_RUN_AND_REPORT_PEAK = """
import sys
from ldl_video.cli import main
code = main(sys.argv[1:])
peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(int(peak.split()[1]) / 1024, file=sys.stderr)
sys.exit(code)
"""


def peak_rss_mib(cli_args: list[str]) -> float:
    """Peak resident memory of a fresh `ldl-video` process, read by the process itself from
    /proc/self/status (VmHWM): the kernel's rusage would also count the benchmark's own pages,
    which the child shares for a moment between fork and exec."""
    done = subprocess.run([sys.executable, "-c", _RUN_AND_REPORT_PEAK, *cli_args], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ldl-video {' '.join(cli_args)} failed: {done.stderr[-400:]}")
    return float(done.stderr.strip().splitlines()[-1])


def measure_memory(model_name: str, device: str, precision: str, size: tuple[int, int], counts: list[int], batch: int,
                   work: Path) -> list[tuple[int, float]]:
    rows = []
    for count in counts:
        clip = make_clip(work / f"mem-{count}.mp4", *size, count)
        out = work / f"mem-{count}-out.mkv"
        rows.append((count, peak_rss_mib([str(clip), str(out), "-m", model_name, "--device", device, "--precision", precision,
                                          "--batch", str(batch), "--quiet", "--overwrite"])))
        print(f"  peak RSS, {count} frames: {rows[-1][1]:.0f} MiB", flush=True)
    return rows


def machine() -> str:
    cpu = cpu_name()
    parts = [f"{cpu}, {os.cpu_count()} logical CPUs (torch uses {torch.get_num_threads()} threads)",
             f"Python {platform.python_version()}, torch {torch.__version__}, PyAV {av.__version__} "
             f"(libavcodec {'.'.join(map(str, av.library_versions['libavcodec']))})"]
    if torch.cuda.is_available():
        parts.append(f"GPU: {torch.cuda.get_device_name(0)}")
    return "; ".join(parts)


def write_report(path: Path, args: argparse.Namespace, efficiencies: list[Efficiency], memory: list[tuple[int, float]],
                 memory_setup: str, loads: tuple[str, str]) -> None:
    lines = ["# Video pipeline benchmark", "", f"Machine: {machine()}.", "",
             f"Load average (1/5/15 min) at the start: {loads[0]}; at the end: {loads[1]}. On a shared machine the "
             "absolute numbers are noisy; the ratios are measured interleaved to cancel most of that.", "",
             f"Command: `python benchmarks/bench_video.py {' '.join(sys.argv[1:])}` "
             f"(OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')})", ""]
    if efficiencies:
        lines += ["## Pipeline efficiency (end-to-end fps / bare Upscaler fps)", "",
                  "End-to-end: open the file, decode, convert YUV→RGB→YUV, upscale, encode "
                  f"({args.codec or 'default codec'}, preset {args.preset or 'default'}), mux with the AAC track copied. "
                  "Bare: `Upscaler.upscale` on the same frames already decoded to RGB.", "",
                  "The CPU column divides the bare call's CPU seconds per frame by the pipeline's (all threads): "
                  "the share of the pipeline's CPU work that is the model itself, which is what the wall-clock ratio "
                  "tends to on a CPU-only machine with nothing else running. On a GPU it says little.", "",
                  "| model | precision | input | frames | batch | bare fps | pipeline fps | ratio per run | median ratio "
                  "| CPU-time ratio |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for e in efficiencies:
            lines.append(f"| {e.model} | {e.precision} | {e.size[0]}×{e.size[1]} | {e.frames} | {e.batch} | "
                         f"{statistics.median(r.fps for r in e.bare):.3f} | {statistics.median(r.fps for r in e.pipeline):.3f} | "
                         f"{', '.join(f'{r:.3f}' for r in e.ratios)} | **{statistics.median(e.ratios):.3f}** | "
                         f"{e.cpu_ratio:.3f} |")
        lines.append("")
    if memory:
        base = memory[0][1]
        lines += ["## Peak memory (RSS of a fresh `ldl-video` process)", "", memory_setup, "",
                  "| frames | peak RSS (MiB) | ratio to the first |", "|---|---|---|"]
        lines += [f"| {count} | {rss:.0f} | {rss / base:.3f} |" for count, rss in memory]
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    print(f"wrote {path}")


def parse_size(text: str) -> tuple[int, int]:
    width, height = text.lower().split("x")
    return int(width), int(height)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--precision", default=None, help="comma list of auto/fp32/fp16/bf16 (default fp32 on CPU, fp16,bf16 on GPU)")
    p.add_argument("--models", default=None, help="comma list (default: animevideov3 x2 and x4 and realesrgan-x4plus on CPU; "
                   "animevideov3-x4 and realesrgan-x4plus on GPU)")
    p.add_argument("--size", type=parse_size, default=None, help="input WxH (default 320x180 on CPU, 1280x720 on GPU)")
    p.add_argument("--frames", type=int, default=None, help="frames per efficiency run (default 48; 6 for RRDB on the CPU)")
    p.add_argument("--batch", type=int, default=None, help="frames per model call (default 1 on CPU, 4 on GPU)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved bare/pipeline pairs per configuration (default 3)")
    p.add_argument("--codec", default=None, help="video encoder for the pipeline runs (default: the CLI's)")
    p.add_argument("--preset", default=None, help="encoder preset for the pipeline runs (default: the CLI's)")
    p.add_argument("--memory-frames", default="30,300", help="clip lengths for the RSS comparison (default 30,300)")
    p.add_argument("--memory-model", default="realesr-animevideov3-x2")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--skip-efficiency", action="store_true")
    p.add_argument("--quick", action="store_true", help="small sizes, few frames, one repeat: a smoke run")
    p.add_argument("--output", type=Path, default=RESULTS)
    p.add_argument("--omp-wait", action="store_true", help="leave OMP_WAIT_POLICY as the environment has it")
    args = p.parse_args()

    gpu = args.device.startswith("cuda")
    models = args.models.split(",") if args.models else (
        ["realesr-animevideov3-x4", "realesrgan-x4plus"] if gpu else
        ["realesr-animevideov3-x2", "realesr-animevideov3-x4", "realesrgan-x4plus"])
    precisions = args.precision.split(",") if args.precision else (["fp16", "bf16"] if gpu else ["fp32"])
    size = args.size or ((1280, 720) if gpu else (320, 180))
    batch = args.batch or (4 if gpu else 1)
    memory_counts = [int(n) for n in args.memory_frames.split(",")]
    memory_size = size if gpu else (320, 180)
    repeats = args.repeats
    if args.quick:
        size, repeats = (min(size[0], 160), min(size[1], 90)), 1
        memory_counts, memory_size = [10, 60], (160, 90)
    settings = EncodeSettings(codec=args.codec, preset=args.preset)
    loads_start = " / ".join(f"{x:.1f}" for x in os.getloadavg())

    efficiencies: list[Efficiency] = []
    memory: list[tuple[int, float]] = []
    with tempfile.TemporaryDirectory(prefix="ldl-bench-video-") as tmp:
        work = Path(tmp)
        if not args.skip_efficiency:
            for model_name in models:
                slow = "realesrgan" in model_name and not gpu
                frames = args.frames or (6 if slow else 48)
                if args.quick:
                    frames = min(frames, 3 if slow else 8)
                for precision in precisions:
                    efficiencies.append(measure_efficiency(model_name, args.device, precision, size, frames, batch, repeats,
                                                           settings, work))
        if not args.skip_memory:
            memory = measure_memory(args.memory_model, args.device, precisions[0], memory_size, memory_counts, batch, work)
    memory_setup = (f"{args.memory_model} on {args.device} ({precisions[0]}), input {memory_size[0]}×{memory_size[1]}, "
                    f"batch {batch}, default encoder settings, an AAC track copied.")
    loads_end = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    write_report(args.output, args, efficiencies, memory, memory_setup, (loads_start, loads_end))
    return 0


if __name__ == "__main__":
    sys.exit(main())
