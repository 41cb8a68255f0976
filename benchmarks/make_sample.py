"""Make the bundled sample clip, ldl_video/data/sample.mp4, once (the result is committed).

A slow pan across scikit-image's `chelsea` photograph (a cat: fur, whiskers, a textured
background), 128×72 at 12 frames per second for 1.5 s, H.264 tagged BT.709, with a quiet
AAC chord so that `make demo` shows the audio being carried over. Small enough that the default
model (RRDB ×4) gets through it on a 2-core CPU in under a minute.

    python benchmarks/make_sample.py [OUTPUT]
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

WIDTH, HEIGHT, RATE, FRAMES = 128, 72, 12, 18
SAMPLE_RATE = 48000
DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "ldl_video" / "data" / "sample.mp4"


def pan_frames(width: int = WIDTH, height: int = HEIGHT, count: int = FRAMES, photo: str = "chelsea") -> list[np.ndarray]:
    """`count` frames of a slow left-to-right pan across a scikit-image photograph, shrunk
    (antialiased) from a 16:9 window to width×height."""
    from skimage import data

    image = Image.fromarray(getattr(data, photo)())
    crop_w = min(image.width - 20, round((image.height - 60) * 16 / 9))
    crop_h = round(crop_w * 9 / 16)
    result = []
    for i in range(count):
        t = i / max(1, count - 1)
        left = round(10 + t * (image.width - crop_w - 20))
        top = round(30 + t * 20)
        window = image.crop((left, top, left + crop_w, top + crop_h))
        result.append(np.asarray(window.resize((width, height), Image.Resampling.LANCZOS)))
    return result


def chord(seconds: float) -> np.ndarray:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    tone = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.18, 329.63)) / 3
    fade = np.minimum(1, np.minimum(t / 0.2, (seconds - t) / 0.3))
    return (0.25 * tone * fade).astype(np.float32)


def write(path: Path) -> None:
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as out:
        out.metadata["title"] = "ldl-video sample: a cat, panned"
        video = out.add_stream("libx264", rate=RATE, options={"crf": "20", "preset": "slow"})
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        context = video.codec_context
        context.color_primaries, context.color_trc, context.colorspace, context.color_range = 1, 1, 1, 1
        audio = out.add_stream("aac", rate=SAMPLE_RATE)
        audio.layout = "mono"
        audio.bit_rate = 48000
        audio.metadata["language"] = "eng"
        for i, rgb in enumerate(pan_frames()):
            frame = av.VideoFrame.from_ndarray(rgb).reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")
            frame.pts, frame.time_base = i, Fraction(1, RATE)
            out.mux(video.encode(frame))
        out.mux(video.encode())
        samples = chord(FRAMES / RATE)
        for start in range(0, len(samples), 1024):
            chunk = samples[start : start + 1024]
            frame = av.AudioFrame.from_ndarray(chunk[None], format="flt", layout="mono")
            frame.sample_rate, frame.pts = SAMPLE_RATE, start
            out.mux(audio.encode(frame))
        out.mux(audio.encode())


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUTPUT
    write(path)
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB, {FRAMES} frames of {WIDTH}×{HEIGHT}, {FRAMES / RATE:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
