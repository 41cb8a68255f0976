"""`make demo`: upscale the bundled sample clip with the default model, offline.

The clip (ldl_video/data/sample.mp4, made by benchmarks/make_sample.py) is 1.5 s of 128×72
video with an AAC track; the result keeps the audio, timestamps and colour tags.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .cli import main as cli_main

SAMPLE = Path(__file__).parent / "data" / "sample.mp4"


def main() -> int:
    out_dir = Path("demo-output")
    out_dir.mkdir(exist_ok=True)
    target = out_dir / f"{SAMPLE.stem}-x4{SAMPLE.suffix}"
    start = time.perf_counter()
    code = cli_main([str(SAMPLE), str(target), "-s", "4", "--overwrite"])
    if code == 0:
        print(f"demo: upscaled {SAMPLE.name} (128×72, 18 frames, with its audio) with the default model "
              f"in {time.perf_counter() - start:.1f} s -> {target.resolve()}")
    return code


if __name__ == "__main__":
    sys.exit(main())
