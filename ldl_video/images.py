"""Still images in and out: PNG, JPEG and WebP through OpenCV (the headless build, which never
brings its own Qt into napari's process), TIFF through tifffile (any dtype, scientific
metadata). Arrays are H×W×C, C = 1..4, RGB order.

OpenCV works in BGR(A) order and, for PNG, decodes gray+alpha as BGRA; both are undone here. JPEG
and opaque WebP are decoded with IMREAD_ANYCOLOR, which applies the EXIF orientation (phone photos
come out as a viewer shows them); PNG and WebP with alpha need IMREAD_UNCHANGED, which keeps the
stored orientation (PNG has no EXIF orientation in practice). Files are read and written as bytes
(imdecode/imencode) so that any path works and a failed decode can say why.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .errors import LdlError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp"}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_GRAY_ALPHA, _PNG_RGBA = 4, 6  # IHDR colour types


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
        image = _read_tiff(path) if suffix in (".tif", ".tiff") else _read_opencv(path)
    except LdlError:
        raise
    except Exception as exc:  # every reader has its own exception types
        detail = str(exc).splitlines()[0] if str(exc) else ""
        raise LdlError(f"cannot read {path} as an image ({type(exc).__name__}: {detail})") from None
    image = image[..., None] if image.ndim == 2 else image
    if image.ndim != 3 or not 1 <= image.shape[-1] <= 4 or min(image.shape[:2]) < 1:
        raise LdlError(f"{path}: unsupported image shape {image.shape}; expected a 2-D gray, RGB or RGBA image")
    return image


def _read_opencv(path: Path) -> np.ndarray:
    import cv2

    data = np.fromfile(path, dtype=np.uint8)
    alpha = _has_alpha(data)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED if alpha else cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH)
    if image is None:
        raise LdlError(f"cannot read {path} as an image (not a PNG, JPEG or WebP file OpenCV can decode)")
    if image.ndim == 3:
        image = image[..., [2, 1, 0, 3][: image.shape[-1]]]  # BGR(A) -> RGB(A)
    if image.dtype not in (np.uint8, np.uint16):
        raise LdlError(f"{path}: {image.dtype} images are not supported; use 8/16-bit PNG, JPEG or WebP, or TIFF")
    if data[:8].tobytes() == _PNG_SIGNATURE and len(data) > 25 and data[25] == _PNG_GRAY_ALPHA:
        image = image[..., [0, 3]]
    return image


def _has_alpha(data: np.ndarray) -> bool:
    """Whether a PNG or WebP file carries alpha (read from its header, before decoding)."""
    head = data[:40].tobytes()
    if head[:8] == _PNG_SIGNATURE and len(head) > 25:
        # gray+alpha, RGBA, or a palette with a transparency chunk
        return head[25] in (_PNG_GRAY_ALPHA, _PNG_RGBA) or b"tRNS" in data[:4096].tobytes()
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        if head[12:16] == b"VP8X":
            return bool(head[20] & 0x10)
        return head[12:16] == b"VP8L" and bool(head[24] & 0x10)  # lossless: alpha_is_used bit of the header
    return False


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        pages = len(tif.series[0].pages) if tif.series else len(tif.pages)
        if pages > 1:
            raise LdlError(f"{path} is a stack of {pages} images; upscale one image per file (save the pages "
                           "separately), or open the stack in napari, whose LDL plugin upscales every plane")
        array = tif.asarray()
        planar = array.ndim == 3 and len(tif.pages) == 1 and tif.pages[0].planarconfig == tifffile.PLANARCONFIG.SEPARATE
    if planar:  # C×H×W as the file says, whatever the picture's shape (a 3-pixel-wide RGB strip too)
        array = np.moveaxis(array, 0, -1)
    if array.dtype.kind == "f":
        array = array.astype(np.float32)
    elif array.dtype not in (np.uint8, np.uint16):
        raise LdlError(f"{path}: {array.dtype} TIFF is not supported; use 8/16-bit integers or float")
    return array


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
        _write_lossy(path, image, suffix)
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
    bits = 8 if image.dtype == np.uint8 else 16
    _encode(path, _to_bits(image, bits), ".png", [])


def _write_lossy(path: Path, image: np.ndarray, suffix: str) -> None:
    import cv2

    image = _to_bits(image, 8)
    channels = image.shape[-1]
    if suffix != ".webp" and channels in (2, 4):
        warnings.warn(f"{suffix} has no alpha channel: alpha dropped; write .png or .webp to keep it", stacklevel=3)
        image = image[..., : channels - 1]
    if suffix == ".webp":
        _encode(path, image, ".webp", [cv2.IMWRITE_WEBP_QUALITY, 95])
    else:  # 4:4:4: no chroma subsampling, as the Pillow path before this wrote
        _encode(path, image, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 95,
                                      cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444])


def _encode(path: Path, image: np.ndarray, extension: str, params: list[int]) -> None:
    import cv2

    if image.shape[-1] == 2:  # OpenCV writes no gray+alpha: RGBA holds it
        image = image[..., [0, 0, 0, 1]]
    if image.shape[-1] >= 3:
        image = image[..., [2, 1, 0, 3][: image.shape[-1]]]  # RGB(A) -> BGR(A)
    ok, encoded = cv2.imencode(extension, np.ascontiguousarray(image if image.shape[-1] > 1 else image[..., 0]), params)
    if not ok:
        raise LdlError(f"OpenCV could not encode {path} as {extension}")
    encoded.tofile(path)
