"""`make demo`: upscale the bundled sample with the default model, offline."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .cli import main as cli_main

SAMPLE = Path(__file__).parent / "data" / "sample.png"


def main() -> int:
    out_dir = Path("demo-output")
    out_dir.mkdir(exist_ok=True)
    target = out_dir / f"{SAMPLE.stem}-x4{SAMPLE.suffix}"
    start = time.perf_counter()
    code = cli_main([str(SAMPLE), str(target), "-s", "4", "--overwrite"])
    if code == 0:
        print(f"demo: upscaled {SAMPLE.name} with the default model in {time.perf_counter() - start:.1f} s -> {target.resolve()}")
    return code


if __name__ == "__main__":
    sys.exit(main())
