"""How much the VapourSynth front end costs: vspipe frames per second divided by bare Upscaler
frames per second, on the same frames with the same model.

    .venv/bin/python benchmarks/bench_vs.py [--model realesr-animevideov3-x2] [--size 320x180]
                                            [--frames 8] [--repeats 4] [--device cpu]

Both sides run in fresh processes and get one untimed warm-up frame first (vspipe's is
rendered while the script is evaluated). The sides take turns `--repeats` times; the headline is best against best, since
other work on a shared machine only ever slows a run down, and the median of the side-by-side
ratios is given too. All of it runs twice: with OMP_WAIT_POLICY as the environment has it, and
with PASSIVE, which leaves the front end's own cost alone. Writes
benchmarks/results/vapoursynth.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine_info import cpu_name

RESULTS = Path(__file__).parent / "results" / "vapoursynth.md"
BIN = Path(sys.executable).parent

SCRIPT = """
import numpy as np
import vapoursynth as vs
core = vs.core
frames = np.load({frames!r})
blank = core.std.BlankClip(format=vs.RGB24, width=frames.shape[2], height=frames.shape[1], length=len(frames))

def fill(n, f):
    out = f.copy()
    for p in range(3):
        np.asarray(out[p])[...] = frames[n, :, :, p]
    return out

clip = core.ldl.Upscale(core.std.ModifyFrame(blank, blank, fill), model={model!r}, device={device!r})
clip.get_frame(0)  # warm-up, while the script is evaluated; vspipe then starts at frame 1
clip.set_output()
"""


def make_frames(count: int, width: int, height: int) -> np.ndarray:
    """count+1 frames (the first is the warm-up): a slow pan over a natural photo."""
    try:
        import skimage.data

        photo = skimage.data.astronaut()
    except ImportError:  # scikit-image is in the test and napari extras only
        y, x = np.mgrid[0:512, 0:512]
        photo = np.stack([x / 2, y / 2, (x + y) / 4], axis=-1).astype(np.uint8)
    photo = np.pad(photo, ((0, max(0, height + count - photo.shape[0])), (0, max(0, width + 2 * count - photo.shape[1])), (0, 0)),
                   mode="reflect")
    return np.stack([photo[n : n + height, 2 * n : 2 * n + width] for n in range(count + 1)])


def bare_worker(frames_path: str, model: str, device: str) -> None:
    """The bare side, run in a fresh process like vspipe's: prints frames per second."""
    from ldl_video import Upscaler, load_model

    frames = np.load(frames_path)
    upscaler = Upscaler(load_model(model), device=device)
    upscaler.upscale(frames[0])
    start = time.perf_counter()
    for frame in frames[1:]:
        upscaler.upscale(frame)
    print((len(frames) - 1) / (time.perf_counter() - start))


def bare_fps(frames_path: Path, model: str, device: str, env: dict[str, str]) -> float:
    done = subprocess.run([sys.executable, __file__, "--bare-worker", str(frames_path), "--model", model, "--device", device],
                          env=env, capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def vspipe_fps(script: Path, env: dict[str, str]) -> float:
    done = subprocess.run([str(BIN / "vspipe"), str(script), "--start", "1", "--"], env=env,
                          capture_output=True, text=True, check=False)
    found = re.search(r"Output (\d+) frames in ([\d.]+) seconds", done.stderr)
    if done.returncode != 0 or not found:
        raise SystemExit(f"vspipe failed: {done.stderr.strip()}")
    return int(found.group(1)) / float(found.group(2))


def machine() -> str:
    import torch
    import vapoursynth

    cpu = cpu_name()
    load = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    return (f"{cpu}, {os.cpu_count()} logical cores, torch {torch.__version__} with {torch.get_num_threads()} threads, "
            f"VapourSynth R{vapoursynth.__version__.release_major} with {vapoursynth.core.num_threads} threads, "
            f"Python {platform.python_version()}; load average at start {load} (1/5/15 min)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="realesr-animevideov3-x2")
    parser.add_argument("--size", default="320x180", help="input WIDTHxHEIGHT")
    parser.add_argument("--frames", type=int, default=8, help="timed frames per run")
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bare-worker", metavar="FRAMES_NPY", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_worker:
        return bare_worker(args.bare_worker, args.model, args.device)
    width, height = (int(v) for v in args.size.lower().split("x"))
    about = machine()

    policies = [os.environ.get("OMP_WAIT_POLICY", "unset"), "PASSIVE"]
    rows, ratios = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        frames_path = Path(tmp, "frames.npy")
        np.save(frames_path, make_frames(args.frames, width, height))
        script = Path(tmp, "bench.vpy")
        script.write_text(SCRIPT.format(frames=str(frames_path), model=args.model, device=args.device))
        base_env = {**os.environ, "XDG_CONFIG_HOME": str(Path(tmp, "config"))}
        subprocess.run([str(BIN / "vapoursynth"), "config"], env=base_env, check=True, capture_output=True)
        for policy in dict.fromkeys(policies):
            env = {**base_env, "OMP_WAIT_POLICY": policy} if policy != "unset" else base_env
            bare, piped = measure(args, frames_path, script, env, policy)
            paired = sorted(p / b for p, b in zip(piped, bare, strict=True))
            median = (paired[(len(paired) - 1) // 2] + paired[len(paired) // 2]) / 2
            ratios[policy] = (max(piped) / max(bare), median)
            for name, runs in (("bare `Upscaler.upscale`, one frame after another", bare),
                               ("`vspipe` with `core.ldl.Upscale`", piped)):
                rows.append(f"| {policy} | {name} | {max(runs):.3f} | {', '.join(f'{v:.3f}' for v in runs)} |")

    default = policies[0]
    lines = [
        "# VapourSynth front end: vspipe against the bare Upscaler",
        "",
        f"`{' '.join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])}` on {time.strftime('%Y-%m-%d')}.",
        "",
        f"Machine: {about}.",
        "",
        f"Model `{args.model}`, {width}×{height} RGB24 input, device {args.device}, {args.frames} timed frames per run "
        f"after one warm-up frame, {args.repeats} alternating runs per side, each side in a fresh process.",
        "",
        "| OMP_WAIT_POLICY | path | frames/s (best) | all runs |",
        "|---|---|---|---|",
        *rows,
        "",
        f"**vspipe / bare = {ratios[default][0]:.2f}** with OMP_WAIT_POLICY {default} (best against best; target ≥ 0.90; "
        f"median of side-by-side ratios {ratios[default][1]:.2f}).",
        "",
        *[f"- OMP_WAIT_POLICY {policy}: best against best {best:.2f}, median of side-by-side ratios {median:.2f}."
          for policy, (best, median) in ratios.items()],
        "",
        "Reading it: with passive OpenMP threads the ratio is the front end's own cost (copying planes in and out, the "
        "GIL, VapourSynth's scheduling). With the default policy a busy machine also takes CPU time from the bare loop's "
        "two OpenMP threads spinning at barriers (`perf` on the shared 2-core machine: about 40 % of the bare process's "
        "CPU time in libgomp, about 3 % in vspipe's, where torch has run on more threads and libgomp spins less); on an "
        "idle machine that difference should shrink.",
        "",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines))
    print(f"vspipe / bare = {ratios[default][0]:.2f} with OMP_WAIT_POLICY {default}, {ratios['PASSIVE'][0]:.2f} with PASSIVE; "
          f"written to {RESULTS}")


def measure(args: argparse.Namespace, frames_path: Path, script: Path, env: dict[str, str], label: str
            ) -> tuple[list[float], list[float]]:
    """Frames per second of each side, taking turns `args.repeats` times."""
    bare: list[float] = []
    piped: list[float] = []
    for run in range(args.repeats):
        sides = [lambda: bare.append(bare_fps(frames_path, args.model, args.device, env)),
                 lambda: piped.append(vspipe_fps(script, env))]
        for side in sides[:: -1 if run % 2 else 1]:  # alternate who goes first, so a drift in load hits both
            side()
        print(f"OMP_WAIT_POLICY {label}, run {run + 1}: bare Upscaler {bare[-1]:.3f} fps, vspipe {piped[-1]:.3f} fps",
              flush=True)
    return bare, piped


if __name__ == "__main__":
    main()
