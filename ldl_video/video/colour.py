"""How a video stream describes its pixels and colour: pixel format family, the four colour
tags, HDR static metadata; and which of them an output gets.

Decoding follows the source's own matrix and range (an untagged stream gets the usual guess:
BT.709 from HD up, BT.601 below), and the output is converted with, and tagged with, the same
matrix and range. Primaries and transfer (including HDR's PQ and HLG) are carried over as
tags; pixels are not converted between them.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

import av

# AVColorSpace values (libavutil/pixfmt.h), and (Kr, Kb) of those that are a plain
# luma/colour-difference matrix (BT.2020 constant-luminance is read as its non-constant twin).
MATRIX_RGB, MATRIX_BT709, MATRIX_BT601 = 0, 1, 6
LUMA_WEIGHTS = {1: (0.2126, 0.0722), 4: (0.30, 0.11), 5: (0.299, 0.114), 6: (0.299, 0.114), 7: (0.212, 0.087),
                9: (0.2627, 0.0593), 10: (0.2627, 0.0593)}
RANGE_LIMITED, RANGE_FULL = 1, 2


@dataclass(frozen=True)
class PixelFamily:
    """What a pixel format is, apart from its memory layout: nv12 and yuv420p are one family."""

    kind: str  # "yuv", "gray" or "rgb"
    chroma: str  # "420", "422", "444", "440", "411", "410" ("444" for rgb, "" for gray)
    depth: int
    alpha: bool

    @property
    def needs_even_width(self) -> bool:
        return self.kind == "yuv" and self.chroma in ("420", "422", "411", "410")

    @property
    def needs_even_height(self) -> bool:
        return self.kind == "yuv" and self.chroma in ("420", "440", "410")


def pixel_family(pix_fmt: str) -> PixelFamily:
    fmt = av.VideoFormat(pix_fmt)
    depth = max((c.bits for c in fmt.components), default=8)
    alpha = any(c.is_alpha for c in fmt.components)
    if fmt.is_rgb or pix_fmt.startswith(("gbr", "rgb", "bgr", "argb", "abgr", "0rgb", "0bgr")):
        return PixelFamily("rgb", "444", depth, alpha)
    if fmt.has_palette:
        return PixelFamily("rgb", "444", 8, alpha)
    if len([c for c in fmt.components if not c.is_alpha]) < 3:
        return PixelFamily("gray", "", depth, alpha)
    sub_w, sub_h = 16 // max(1, fmt.chroma_width(16)), 16 // max(1, fmt.chroma_height(16))
    chroma = {(1, 1): "444", (2, 1): "422", (2, 2): "420", (1, 2): "440", (4, 1): "411", (4, 4): "410"}.get((sub_w, sub_h), "420")
    return PixelFamily("yuv", chroma, depth, alpha)


def planar_name(family: PixelFamily) -> str:
    """The planar pixel format of a family (alpha dropped), e.g. yuv420p10le, gray, gbrp12le."""
    suffix = "" if family.depth == 8 else f"{family.depth}le"
    if family.kind == "gray":
        return f"gray{suffix}"
    if family.kind == "rgb":
        return f"gbrp{suffix}"
    return f"yuv{family.chroma}p{suffix}"


def choose_pix_fmt(source: PixelFamily, supported: list[str]) -> str:
    """The encoder format nearest the source: same chroma layout and the source's bit depth when
    the encoder has it, else the deepest it has below (or the shallowest above), else 4:2:0."""
    wanted = source if source.kind != "rgb" else PixelFamily("yuv", "444", source.depth, source.alpha)
    depths = (8, 9, 10, 12, 14, 16)
    below = [d for d in depths if d <= wanted.depth][::-1]
    above = [d for d in depths if d > wanted.depth]
    for family in (wanted, PixelFamily("yuv", "420", wanted.depth, False)):
        for depth in below + above:
            name = planar_name(PixelFamily(family.kind, family.chroma, depth, False))
            if name in supported:
                return name
    return supported[0]


@dataclass(frozen=True)
class ColourTags:
    """The four colour tags of a stream (AVColorSpace, AVColorRange, AVColorPrimaries,
    AVColorTransferCharacteristic values)."""

    matrix: int
    range: int
    primaries: int
    transfer: int


def guess_matrix(width: int, height: int) -> int:
    """What players assume for an untagged stream: BT.709 from HD up, BT.601 below."""
    return MATRIX_BT709 if width >= 1280 or height > 576 else MATRIX_BT601


def effective_tags(tags: ColourTags, family: PixelFamily, width: int, height: int) -> ColourTags:
    """The tags with the blanks filled the way the pixels are actually converted."""
    if family.kind == "rgb":
        return ColourTags(MATRIX_RGB, RANGE_FULL, tags.primaries, tags.transfer)
    matrix = tags.matrix if tags.matrix in LUMA_WEIGHTS else guess_matrix(width, height)
    # untagged: YUV is limited range, but FFmpeg reads untagged gray (ffv1, PNG sequences) as full
    default_range = RANGE_FULL if family.kind == "gray" else RANGE_LIMITED
    range_ = tags.range if tags.range in (RANGE_LIMITED, RANGE_FULL) else default_range
    return ColourTags(matrix, range_, tags.primaries, tags.transfer)


def output_tags(source: ColourTags, family: PixelFamily, width: int, height: int) -> ColourTags:
    """The tags to write for an output of pixel family `family`: the source's matrix and range
    (made explicit), BT.709 limited when the source was RGB but the output is YUV."""
    if family.kind == "rgb":
        return ColourTags(MATRIX_RGB, RANGE_FULL, source.primaries, source.transfer)
    if source.matrix == MATRIX_RGB:
        return ColourTags(MATRIX_BT709, RANGE_LIMITED, source.primaries, source.transfer)
    return effective_tags(source, family, width, height)


# ---- HDR static metadata ------------------------------------------------------------------


@dataclass(frozen=True)
class HdrMetadata:
    """Mastering display colour volume and content light level, as x265 spells them."""

    master_display: str | None = None  # "G(x,y)B(x,y)R(x,y)WP(x,y)L(max,min)"
    max_cll: str | None = None  # "MaxCLL,MaxFALL"

    def __bool__(self) -> bool:
        return bool(self.master_display or self.max_cll)

    def svtav1_params(self) -> list[str]:
        """The same for SVT-AV1, which takes chromaticity as fractions and luminance in cd/m²."""
        params = []
        if self.master_display:
            n = [int(v) for v in re.findall(r"\d+", self.master_display)]  # G, B, R, WP (x, y), L (max, min)

            def xy(i: int) -> str:
                return f"({n[i] / 50000:.5f},{n[i + 1] / 50000:.5f})"

            params.append(f"mastering-display=G{xy(0)}B{xy(2)}R{xy(4)}WP{xy(6)}L({n[8] / 10000:g},{n[9] / 10000:g})")
        if self.max_cll:
            params.append(f"content-light={self.max_cll}")
        return params

    def x265_params(self) -> list[str]:
        params = []
        if self.master_display:
            params.append(f"master-display={self.master_display}")
        if self.max_cll:
            params.append(f"max-cll={self.max_cll}")
        if params:
            params.append("hdr10=1")
        return params


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


def parse_mastering_display(data: bytes) -> str | None:
    """AVMasteringDisplayMetadata (10 AVRationals, then has_primaries, has_luminance) -> x265's
    master-display string (chromaticity in 1/50000, luminance in 1/10000 cd/m²)."""
    if len(data) < 88:
        return None
    values = struct.unpack_from("<20i2i", data)
    r = [_ratio(values[2 * i], values[2 * i + 1]) for i in range(10)]
    has_primaries, has_luminance = values[20], values[21]
    if not (has_primaries and has_luminance):
        return None
    red, green, blue, white = (r[0], r[1]), (r[2], r[3]), (r[4], r[5]), (r[6], r[7])

    def xy(p: tuple[float, float]) -> str:
        return f"({round(p[0] * 50000)},{round(p[1] * 50000)})"

    return f"G{xy(green)}B{xy(blue)}R{xy(red)}WP{xy(white)}L({round(r[9] * 10000)},{round(r[8] * 10000)})"


def parse_content_light(data: bytes) -> str | None:
    """AVContentLightMetadata (MaxCLL, MaxFALL as unsigned ints) -> "MaxCLL,MaxFALL"."""
    if len(data) < 8:
        return None
    max_cll, max_fall = struct.unpack_from("<2I", data)
    return f"{max_cll},{max_fall}"


def hdr_from_frame(frame: av.VideoFrame) -> HdrMetadata:
    from av.sidedata.sidedata import Type

    master = light = None
    side = frame.side_data
    if Type.MASTERING_DISPLAY_METADATA in side:
        master = parse_mastering_display(bytes(side[Type.MASTERING_DISPLAY_METADATA]))
    if Type.CONTENT_LIGHT_LEVEL in side:
        light = parse_content_light(bytes(side[Type.CONTENT_LIGHT_LEVEL]))
    return HdrMetadata(master, light)


def hdr_from_stream(coded_side_data: dict) -> HdrMetadata:
    master = coded_side_data.get("mastering_display_metadata")
    light = coded_side_data.get("content_light_level")
    return HdrMetadata(parse_mastering_display(master) if master else None, parse_content_light(light) if light else None)
