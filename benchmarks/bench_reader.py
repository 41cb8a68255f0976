"""What the video reader's recovery of a cut file costs: decode speed of `VideoSource` on a whole
H.264 file and on the same file cut mid-packet, now and at a baseline revision (before the
packets since the last keyframe were kept for decoding the end of a damaged file again), and
the memory those kept packets take (the largest GOP's bytes).

    python benchmarks/bench_reader.py                      # baseline 01d76ec, 640×360, 300 frames
    python benchmarks/bench_reader.py --baseline HEAD~5 --repeats 3

Each measurement runs in its own process (the baseline's package extracted with `git archive`),
alternating current and baseline so a busy machine slows both alike. Results go to
benchmarks/results/reader.md (or --output), with the machine they came from.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import av

sys.path.insert(0, str(Path(__file__).parent))
from bench_segments import make_clip  # noqa: E402
from machine_info import cpu_name  # noqa: E402

HERE = Path(__file__).parent
ROOT = HERE.parent

# Run in a child process with the package under test first on the path: read every frame, time it.
MEASURE = """
import json, sys, time
from pathlib import Path
from ldl_video.video.reader import VideoSource
start = time.perf_counter()
source = VideoSource(Path(sys.argv[1]))
frames = sum(1 for item in source.items() if hasattr(item, "planes"))
errors = source.report.decode_errors
source.close()
print(json.dumps({"seconds": time.perf_counter() - start, "frames": frames, "errors": errors}))
"""


def measure(package_root: Path, video: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(package_root), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", MEASURE, str(video)], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"reading {video.name} with {package_root} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def faststart_mp4(source: Path) -> Path:
    """The video track remuxed into an MP4 with its index first, as phones and web files have it:
    a copy cut short still opens, and its last packet is cut mid-picture."""
    target = source.with_suffix(".mp4")
    with av.open(str(source)) as inp, av.open(str(target), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(video=0):
            if packet.size:
                packet.stream = stream
                out.mux(packet)
    return target


def cut_copy(video: Path, fraction: float) -> Path:
    """The file cut halfway into the video packet at `fraction` of the stream (an interrupted copy)."""
    with av.open(str(video)) as container:
        packets = [(p.pos, p.size) for p in container.demux(video=0) if p.size]
    pos, size = packets[int(len(packets) * fraction)]
    cut = video.with_name(f"{video.stem}-cut{round(fraction * 100)}{video.suffix}")
    cut.write_bytes(video.read_bytes()[: pos + size // 2])
    return cut


def largest_gop_bytes(video: Path) -> int:
    largest = current = 0
    with av.open(str(video)) as container:
        for packet in container.demux(video=0):
            if not packet.size:
                continue
            current = packet.size if packet.is_keyframe else current + packet.size
            largest = max(largest, current)
    return largest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="01d76ec", help="git revision to compare with")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--seconds", type=float, default=12.0, help="at 25 fps")
    parser.add_argument("--gop", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cuts", default="0.35,0.6,0.85", help="where copies are cut, as fractions of the video packets")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "reader.md")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        baseline = folder / "baseline"
        baseline.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline, "ldl_video"], capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(baseline)], input=archive, check=True)
        whole = faststart_mp4(make_clip(folder / "clip.mkv", args.width, args.height, args.seconds, args.gop))
        files = [("whole", whole)] + [(f"cut at {float(f):.0%}", cut_copy(whole, float(f))) for f in args.cuts.split(",")]
        results: dict[tuple[str, str], list[dict]] = {}
        for _ in range(args.repeats):
            for name, video in files:
                for version, root in (("current", ROOT), (args.baseline, baseline)):
                    results.setdefault((name, version), []).append(measure(root, video))
        gop_bytes = largest_gop_bytes(whole)

    lines = ["## Video reader: recovering a cut file (`python benchmarks/bench_reader.py`)", "",
             f"Machine: {cpu_name()}, {os.cpu_count()} cores, Python {platform.python_version()}, PyAV {av.__version__}. "
             f"H.264 in a faststart MP4, {args.width}×{args.height}, {round(args.seconds * 25)} frames at 25 fps, "
             "a keyframe every "
             f"{args.gop}; `VideoSource` reads every frame (decode + conversion, frame threads as in a run), each in "
             f"its own process; median of {args.repeats}, runs alternated. A cut file stops halfway into the "
             "video packet at that fraction of the stream.", "",
             "| file | reader | frames | decode errors | seconds (median) | frames/s |", "|---|---|---|---|---|---|"]
    for (name, version), runs in results.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        lines.append(f"| {name} | {version} | {runs[0]['frames']} | {runs[0]['errors']} | {seconds:.2f} | "
                     f"{runs[0]['frames'] / seconds:.0f} |")
    lines += ["", "A cut file is decoded again from its last keyframe on one thread once the frame-threaded "
              "decoder has failed there: the difference in seconds between the readers on a cut file is that "
              "second decode. Whether the baseline lost pictures depends on where the cut falls and on what the "
              "frame threads hold at that moment (tests/video/test_video_cut_threads.py pins cases where it lost "
              "two); a frames column equal on both rows means it did not lose any on this file.",
              "", f"Memory the reader keeps for a re-decode: the packets since the last keyframe, at most "
              f"{gop_bytes / 1024:.0f} KiB for this file (its largest GOP); bounded at 1024 packets and 64 MiB."]
    args.output.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
