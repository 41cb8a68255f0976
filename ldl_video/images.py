"""Still images in and out: PNG through PyAV (8/16-bit gray, RGB, RGBA), TIFF through tifffile
(any dtype), JPEG and WebP through Pillow (8-bit). Arrays are H×W×C, C = 1..4."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .errors import LdlError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp"}

# PNG pixel formats -> (format to decode to, channels to keep)
_PNG_DECODE = {
    "gray": ("gray", None), "monob": ("gray", None), "gray16be": ("gray16le", None),
    "ya8": ("rgba", [0, 3]), "ya16be": ("rgba64le", [0, 3]),
    "rgb24": ("rgb24", None), "rgb48be": ("rgb48le", None),
    "rgba": ("rgba", None), "rgba64be": ("rgba64le", None), "pal8": ("rgba", None),
}
# (bits, channels) -> (array format, PNG format)
_PNG_ENCODE = {
    (8, 1): ("gray", "gray"), (8, 3): ("rgb24", "rgb24"), (8, 4): ("rgba", "rgba"),
    (16, 1): ("gray16le", "gray16be"), (16, 3): ("rgb48le", "rgb48be"), (16, 4): ("rgba64le", "rgba64be"),
}


_MAX_SIDE = {".webp": 16383, ".jpg": 65535, ".jpeg": 65535}


def check_image_size(path: str | Path, height: int, width: int) -> None:
    """Refuse, before any work, a result the output format cannot hold."""
    limit = _MAX_SIDE.get(Path(path).suffix.lower())
    if limit and max(height, width) > limit:
        raise LdlError(f"{path}: a {width}×{height} result exceeds the {Path(path).suffix} limit of {limit} pixels a side; "
                       "write .png or .tif")


def is_image(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def read_image(path: str | Path) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise LdlError(f"input {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".png":
            image = _read_png(path)
        elif suffix in (".tif", ".tiff"):
            image = _read_tiff(path)
        else:
            image = _read_pillow(path)
    except LdlError:
        raise
    except Exception as exc:  # every reader has its own exception types
        detail = str(exc).splitlines()[0] if str(exc) else ""
        raise LdlError(f"cannot read {path} as an image ({type(exc).__name__}: {detail})") from None
    image = image[..., None] if image.ndim == 2 else image
    if image.ndim != 3 or not 1 <= image.shape[-1] <= 4 or min(image.shape[:2]) < 1:
        raise LdlError(f"{path}: unsupported image shape {image.shape}; expected a 2-D gray, RGB or RGBA image")
    return image


def _read_png(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
    target, keep = _PNG_DECODE.get(frame.format.name, ("rgba64le", None))
    array = frame.to_ndarray(format=target)
    return array[..., keep] if keep else array


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    array = tifffile.imread(path)
    if array.ndim == 3 and array.shape[0] <= 4 < array.shape[-1]:  # planar C×H×W
        array = np.moveaxis(array, 0, -1)
    if array.dtype.kind == "f":
        array = array.astype(np.float32)
    elif array.dtype not in (np.uint8, np.uint16):
        raise LdlError(f"{path}: {array.dtype} TIFF is not supported; use 8/16-bit integers or float")
    return array


def _read_pillow(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps

    with Image.open(path) as opened:
        image = ImageOps.exif_transpose(opened)  # phone photos: pixels as the viewer shows them
        mode = {"L": "L", "LA": "LA", "RGB": "RGB", "RGBA": "RGBA", "I;16": "I;16"}.get(image.mode)
        if mode is None:
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        array = np.asarray(image)
    return array.astype(np.uint16) if array.dtype.kind in "iu" and array.dtype.itemsize == 2 else array


def write_image(path: str | Path, image: np.ndarray, format_suffix: str | None = None) -> None:
    """Write H×W×C (or H×W). `format_suffix` overrides the path's suffix (for temporary names)."""
    path = Path(path)
    suffix = (format_suffix or path.suffix).lower()
    image = image[..., None] if image.ndim == 2 else image
    if suffix == ".png":
        _write_png(path, image)
    elif suffix in (".tif", ".tiff"):
        import tifffile

        photometric = "rgb" if image.shape[-1] in (3, 4) else "minisblack"
        tifffile.imwrite(path, image[..., 0] if image.shape[-1] == 1 else image, photometric=photometric,
                         extrasamples=["unassalpha"] if image.shape[-1] in (2, 4) else None, compression="zlib")
    elif suffix in (".jpg", ".jpeg", ".webp"):
        _write_pillow(path, image, suffix)
    else:
        raise LdlError(f"unknown image format {suffix!r}; use one of {', '.join(sorted(IMAGE_SUFFIXES))}")


def _to_bits(image: np.ndarray, bits: int) -> np.ndarray:
    if image.dtype == np.float32 or image.dtype.kind == "f":
        top = 255 if bits == 8 else 65535
        return (np.clip(image, 0, 1) * top).round().astype(np.uint8 if bits == 8 else np.uint16)
    if bits == 8 and image.dtype == np.uint16:
        return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    return image


def _write_png(path: Path, image: np.ndarray) -> None:
    import av

    bits = 8 if image.dtype == np.uint8 else 16
    image = _to_bits(image, bits)
    if image.shape[-1] == 2:  # PNG gray+alpha goes through RGBA
        image = image[..., [0, 0, 0, 1]]
    array_format, png_format = _PNG_ENCODE[(bits, image.shape[-1])]
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image if image.shape[-1] > 1 else image[..., 0]), format=array_format)
    with av.open(str(path), "w", format="image2") as container:
        stream = container.add_stream("png")
        stream.width, stream.height, stream.pix_fmt = frame.width, frame.height, png_format
        container.mux(stream.encode(frame.reformat(format=png_format)))
        container.mux(stream.encode(None))


def _write_pillow(path: Path, image: np.ndarray, suffix: str) -> None:
    from PIL import Image

    image = _to_bits(image, 8)
    channels = image.shape[-1]
    if suffix != ".webp" and channels in (2, 4):
        warnings.warn(f"{suffix} has no alpha channel: alpha dropped; write .png or .webp to keep it", stacklevel=3)
        image = image[..., : channels - 1]
    pil = Image.fromarray(np.ascontiguousarray(image[..., 0] if image.shape[-1] == 1 else image))
    if suffix == ".webp":
        pil.save(path, format="WEBP", quality=95)
    else:
        pil.save(path, format="JPEG", quality=95, subsampling=0)
