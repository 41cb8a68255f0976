"""Assemble benchmarks/RESULTS.md: the summary (benchmarks/SUMMARY.md, written by hand from the
numbers) followed by every results file that the benchmark scripts wrote.

    python benchmarks/collect_results.py
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent
ORDER = ["engine.md", "engine-gpu.md", "engine-gpu-2.md", "gpu-checks.md", "video.md", "vapoursynth.md", "napari.md", "train.md"]


def main() -> None:
    parts = [(HERE / "SUMMARY.md").read_text().strip()]
    files = [HERE / "results" / name for name in ORDER]
    files += sorted(p for p in (HERE / "results").glob("*.md") if p.name not in ORDER)
    for path in files:
        if path.is_file():
            body = path.read_text().strip()
            parts.append(f"<!-- from benchmarks/results/{path.name} -->\n" + body)
    (HERE / "RESULTS.md").write_text("\n\n---\n\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
