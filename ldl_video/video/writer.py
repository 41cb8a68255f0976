"""The output side: one container with the upscaled video (source timestamps, pixel format
family, colour tags, rotation, aspect) and every other stream carried over, plus chapters and
metadata. A second, video-only sink writes the artifact-map video."""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import LdlError
from .colour import ColourTags, HdrMetadata, PixelFamily, choose_pix_fmt, output_tags, pixel_family
from .convert import PlaneFormat, write_frame
from .reader import VideoSource, is_cover_art, local_name
from .streams import codec_id_name, copy_stream_info, may_hold, plan_streams

DEFAULT_CRF = 18
DEFAULT_PRESET = "medium"
SAR_IN_BITSTREAM = ("libx264", "libx265")  # encoders that write the pixel aspect ratio into the video itself
_CHROMA_DETAIL = {"444": 4, "422": 2, "440": 2, "420": 1, "411": 1, "410": 0, "": 0}
CFR_ENCODERS = ("mpeg1video", "mpeg2video")
_PICTURE_SUFFIX = {"mjpeg": "jpg", "png": "png", "bmp": "bmp", "webp": "webp", "gif": "gif", "tiff": "tiff"}
HDR_ENCODERS = ("libx265", "libsvtav1")  # those that take mastering-display and content-light metadata
_STALE_GLOBAL_TAGS = {"encoder", "major_brand", "minor_version", "compatible_brands"}
PROGRAM_STREAM_FORMATS = ("mpeg", "vob", "dvd", "svcd", "vcd")  # FFmpeg's MPEG-PS muxer under its names
_PICTURE_START_CODE = b"\x00\x00\x01\x00"


@dataclass(frozen=True)
class EncodeSettings:
    """The user's --codec, --crf, --preset and --pix-fmt (None = choose from the source)."""

    codec: str | None = None
    crf: int | None = None
    preset: str | None = None
    pix_fmt: str | None = None


@dataclass(frozen=True)
class Encoder:
    codec: str
    pix_fmt: str
    options: dict[str, str]


def _full_colour(pix_fmt: str) -> bool:
    """At least 8 bits a component and no palette: what the converter writes."""
    try:
        fmt = av.VideoFormat(pix_fmt)
    except (ValueError, av.error.FFmpegError):
        return True  # an unknown name is refused where the encoder's list is checked
    return not fmt.has_palette and min((c.bits for c in fmt.components), default=8) >= 8


def _format_loss(source: PixelFamily, output: PixelFamily, encoder: Encoder, container: str) -> list[str]:
    """A note when the encoder cannot take the source's chroma detail or bit depth (SVT-AV1
    has only 4:2:0, this libvpx-vp9 only 8 bits), saying what was given up and what keeps it."""
    lost = []
    if source.kind != "gray" and _CHROMA_DETAIL[source.chroma] > _CHROMA_DETAIL[output.chroma]:
        lost.append(f"chroma {source.chroma[0]}:{source.chroma[1]}:{source.chroma[2]} -> "
                    f"{output.chroma[0]}:{output.chroma[1]}:{output.chroma[2]}")
    if output.depth < source.depth:
        lost.append(f"{source.depth} -> {output.depth} bits")
    if not lost:
        return []
    return [f"{encoder.codec} in {container} cannot keep the source's format ({', '.join(lost)}; written as "
            f"{encoder.pix_fmt}); .mkv with libx265 or ffv1 keeps it"]


def _data_kind(stream: av.stream.Stream) -> str:
    return stream.metadata.get("handler_name") or stream.codec_tag or f"#{stream.index}"


def _moved_chapter(chapter: dict, start: Fraction) -> dict:
    """A chapter on the output's timeline, where the source's `start` became 0."""
    shift = round(start / chapter["time_base"]) if start else 0
    return {**chapter, "start": max(0, chapter["start"] - shift), "end": max(0, chapter["end"] - shift)}


def open_output(path: Path) -> av.container.OutputContainer:
    try:
        return av.open(local_name(path), "w")
    except ValueError:
        raise LdlError(f"unknown video container {path.suffix!r}; use .mkv, .mp4, .mov or .webm") from None
    except av.error.FFmpegError as exc:
        raise LdlError(f"cannot create {path}: {getattr(exc, 'strerror', None) or exc}") from None


def _private_options(codec: str) -> set[str]:
    return {option.name for option in av.CodecContext.create(codec, "w").supported_options.private}


# FFmpeg's program-stream muxers (.mpg, .vob, .dvd) each list one MPEG video codec, but a program
# stream carries either MPEG-1 or MPEG-2 video (ISO/IEC 13818-1) and the muxers write both.
_PROGRAM_STREAMS = {"mpeg", "vob", "svcd", "dvd"}
_PROGRAM_STREAM_VIDEO = {"mpeg1video", "mpeg2video"}


def _holds_video(container: av.container.OutputContainer, codec_name: str) -> bool:
    if container.format.name in _PROGRAM_STREAMS and codec_name in _PROGRAM_STREAM_VIDEO:
        return True
    return may_hold(container, codec_name)


def default_codec(container: av.container.OutputContainer, depth: int) -> str:
    """libx264 for 8-bit and libx265 above (libvpx-vp9 / SVT-AV1 in WebM), else the container's own."""
    supported = container.supported_codecs
    if container.format.name == "webm" or not may_hold(container, "h264"):
        if depth > 8 and "av1" in supported and "libsvtav1" in av.codecs_available:
            return "libsvtav1"
        if "vp9" in supported and "libvpx-vp9" in av.codecs_available:
            return "libvpx-vp9"
        return container.default_video_codec
    return "libx264" if depth <= 8 else "libx265"


def choose_encoder(container: av.container.OutputContainer, source_family: PixelFamily, settings: EncodeSettings,
                   hdr: HdrMetadata) -> Encoder:
    codec = settings.codec or default_codec(container, source_family.depth)
    try:
        described = av.Codec(codec, "w")
    except (av.error.FFmpegError, ValueError):
        raise LdlError(f"unknown video encoder {codec!r}; try libx264, libx265, libvpx-vp9, libsvtav1 or ffv1") from None
    if described.type != "video":
        article = "an" if described.type[0] in "aeiou" else "a"
        raise LdlError(f"{codec} is {article} {described.type} encoder; --codec takes a video encoder such as libx264")
    if not _holds_video(container, described.canonical_name):
        raise LdlError(f"{container.format.name} cannot hold {codec} video; pick another --codec or another OUTPUT suffix")
    formats = [f.name for f in described.video_formats or []]
    if settings.pix_fmt:
        if formats and settings.pix_fmt not in formats:
            raise LdlError(f"{codec} cannot encode --pix-fmt {settings.pix_fmt}; it takes {', '.join(formats)}")
        pix_fmt = settings.pix_fmt
    else:
        pix_fmt = choose_pix_fmt(source_family, formats) if formats else "yuv420p"
    if not _full_colour(pix_fmt):
        raise LdlError(f"{codec} would take only palette or few-bit pixels ({pix_fmt}) for this full-colour result: "
                       "write .mkv, .mp4 or .webm (FFmpeg's palettegen and paletteuse make a GIF from it)")
    private = _private_options(codec)
    options: dict[str, str] = {}
    if "crf" in private:
        top = 51 if codec in ("libx264", "libx265") else 63  # x264/x265 clamp silently above 51
        if settings.crf is not None and not 0 <= settings.crf <= top:
            raise LdlError(f"--crf {settings.crf} is out of range for {codec}; use 0 to {top} (lower is better)")
        options["crf"] = str(DEFAULT_CRF if settings.crf is None else settings.crf)
    elif settings.crf is not None:
        raise LdlError(f"{codec} has no CRF setting; leave out --crf")
    if "preset" in private and codec in ("libx264", "libx265"):
        options["preset"] = settings.preset or DEFAULT_PRESET
    elif settings.preset is not None:
        if "preset" not in private:
            raise LdlError(f"{codec} has no presets; leave out --preset")
        options["preset"] = settings.preset
    if codec in CFR_ENCODERS and settings.crf is None:
        # constant quantiser 2 (ffmpeg -q:v 2): the encoder's default 200 kb/s would smear the result
        options.update({"flags": "+qscale", "global_quality": str(2 * 118)})
    if codec == "libvpx-vp9":
        options.update({"b": "0", "row-mt": "1", "deadline": "good", "cpu-used": "4"})
    if codec == "libx265":
        options["x265-params"] = ":".join(["log-level=error", *hdr.x265_params()])
    if codec == "libsvtav1":
        os.environ.setdefault("SVT_LOG", "1")  # errors only: SVT-AV1 prints its set-up to stderr
        if hdr:
            options["svtav1-params"] = ":".join(hdr.svtav1_params())
    return Encoder(codec, pix_fmt, options)



class PictureStartAligner:
    """MPEG-1/2 video packets re-cut at picture start codes, for FFmpeg's MPEG-PS muxer.

    A program stream packet's PTS belongs to the first picture whose picture start code begins in
    it (ISO/IEC 13818-1, 2.4.3.7), and FFmpeg's demuxer reads it so. FFmpeg's muxer instead gives
    it to the first *encoder packet* beginning in it, and a keyframe's packet begins with the
    sequence and GOP headers: when those end one muxer packet and the picture start code opens the
    next, that packet is stamped with the following picture's time, and players show one time
    twice and skip one. Moving the headers to the end of the packet before leaves the byte stream
    as it was and makes both rules agree. Holds one packet back; `drain()` gives it."""

    def __init__(self) -> None:
        self.held: av.Packet | None = None

    def push(self, packet: av.Packet) -> list[av.Packet]:
        data = bytes(packet)
        start = data.find(_PICTURE_START_CODE)
        out = []
        if self.held is not None:
            if start > 0:
                out.append(_with_payload(self.held, bytes(self.held) + data[:start]))
                packet = _with_payload(packet, data[start:])
            else:
                out.append(self.held)
        self.held = packet
        return out

    def drain(self) -> list[av.Packet]:
        held, self.held = self.held, None
        return [held] if held is not None else []


def _with_payload(packet: av.Packet, data: bytes) -> av.Packet:
    made = av.Packet(data)
    made.pts, made.dts, made.duration = packet.pts, packet.dts, packet.duration
    made.time_base, made.is_keyframe, made.stream = packet.time_base, packet.is_keyframe, packet.stream
    return made


def even_size(width: int, height: int, family: PixelFamily) -> tuple[int, int]:
    return (width - width % 2 if family.needs_even_width else width,
            height - height % 2 if family.needs_even_height else height)


class VideoSink:
    """The output file. `carry=False` makes a video-only file (the artifact map)."""

    def __init__(self, path: Path, source: VideoSource, size: tuple[int, int], settings: EncodeSettings,
                 notes: list[str], carry: bool = True, gray: bool = False,
                 container: av.container.OutputContainer | None = None) -> None:
        self.path = path
        self.container = container if container is not None else open_output(path)
        try:
            self._setup(source, size, settings, notes, carry, gray)
        except BaseException:
            self.container.close()
            raise

    def _setup(self, source: VideoSource, size: tuple[int, int], settings: EncodeSettings, notes: list[str],
               carry: bool, gray: bool) -> None:
        out = self.container
        family = PixelFamily("yuv", "420", 8, False) if gray else source.family
        hdr = HdrMetadata() if gray else source.hdr
        encoder = choose_encoder(out, family, settings if not gray else EncodeSettings(), hdr)
        self.encoder = encoder
        self.family = pixel_family(encoder.pix_fmt)
        if not gray and not settings.pix_fmt:
            notes.extend(_format_loss(source.family, self.family, encoder, out.format.name))
        width, height = even_size(*size, self.family)
        if (width, height) != size:
            notes.append(f"{encoder.pix_fmt} needs even sizes: output cropped from {size[0]}×{size[1]} to {width}×{height}")
        self.size = (width, height)
        # A map is not a picture of the scene: plain BT.709, whatever the source's gamut and transfer.
        self.tags: ColourTags = ColourTags(1, 1, 1, 1) if gray else output_tags(source.tags, self.family, *size)
        self.plane_format = PlaneFormat(self.family, self.tags)
        if hdr and encoder.codec not in HDR_ENCODERS:
            notes.append(f"HDR mastering metadata is written only by {' and '.join(HDR_ENCODERS)}; "
                         f"{encoder.codec} keeps the colour tags alone")
        rate = source.rate or 25
        stream = out.add_stream(encoder.codec, rate=rate, options=encoder.options)
        stream.width, stream.height, stream.pix_fmt = width, height, encoder.pix_fmt
        context = stream.codec_context
        # MPEG-1/2 video takes only the standard frame rates as its clock (frames are re-timed to it)
        clock = Fraction(1, 1) / Fraction(rate) if encoder.codec in CFR_ENCODERS else source.time_base
        context.time_base = clock
        stream.time_base = clock
        context.colorspace, context.color_range = self.tags.matrix, self.tags.range
        context.color_primaries, context.color_trc = self.tags.primaries, self.tags.transfer
        if source.sample_aspect_ratio:
            context.sample_aspect_ratio = source.sample_aspect_ratio
            sar = source.sample_aspect_ratio
            if sar != 1 and out.format.name in ("matroska", "webm") and encoder.codec not in SAR_IN_BITSTREAM:
                # Matroska keeps the ratio only in the stream's own field, which PyAV cannot set;
                # MP4/MOV take it from the codec parameters (pasp box), H.264/HEVC in the bitstream.
                notes.append(f"the pixel aspect ratio {sar.numerator}:{sar.denominator} is lost: {encoder.codec} in "
                             f"{out.format.name} cannot carry it here, so players show square pixels; use "
                             f"{' or '.join(SAR_IN_BITSTREAM)}, or .mp4/.mov, to keep it")
        if source.display_matrix:
            stream.set_display_matrix(source.display_matrix)
        if encoder.codec == "libx265" and out.format.name in ("mp4", "mov"):
            context.codec_tag = "hvc1"  # the tag Apple's players need; FFmpeg's default hev1 they refuse
        if source.video is not None:  # a segment's encoder has no source stream; the join copies its tags
            copy_stream_info(source.video, stream)
        self.video = stream
        self.aligner = (PictureStartAligner() if encoder.codec in CFR_ENCODERS and out.format.name in PROGRAM_STREAM_FORMATS
                        else None)
        self.pts_time_base = source.time_base
        self._last_dts: int | None = None
        self.handlers = {}
        if carry:
            pictures = [s for s in source.others if is_cover_art(s)]
            keeps_pictures = out.format.name in ("mp4", "ipod")  # as cover art ('covr'); MOV's muxer cannot
            carried = [s for s in source.others if keeps_pictures or s not in pictures]
            self.handlers = plan_streams(out, carried, notes)
            if not keeps_pictures:
                self._carry_pictures(source, pictures, notes)
            for extra in source.extra_videos:
                notes.append(f"video #{extra.index} dropped: only the main video stream (#{source.video.index}) is upscaled")
            self._carry_container_info(source, notes)
        try:
            out.start_encoding()
        except av.error.FFmpegError as exc:
            raise LdlError(f"cannot start {encoder.codec} ({encoder.pix_fmt}, {width}×{height}) in {out.format.name}: "
                           f"{getattr(exc, 'strerror', None) or exc}") from None

    def _carry_pictures(self, source: VideoSource, pictures: list[av.stream.Stream], notes: list[str]) -> None:
        """Cover art and image attachments: Matroska keeps them as attachments (copied as a
        stream they would become a one-frame video track); elsewhere they are dropped, said."""
        for picture in pictures:
            codec = codec_id_name(picture)
            name = picture.metadata.get("filename") or f"cover.{_PICTURE_SUFFIX.get(codec, codec)}"
            if self.container.format.name == "matroska":
                mimetype = picture.metadata.get("mimetype") or f"image/{_PICTURE_SUFFIX.get(codec, codec).replace('jpg', 'jpeg')}"
                self.container.add_attachment(name, mimetype, source.picture(picture))
            else:
                notes.append(f"cover art {name} dropped: {self.container.format.name} cannot hold it (.mkv or .mp4 keep it)")

    def _carry_container_info(self, source: VideoSource, notes: list[str]) -> None:
        out, inp = self.container, source.container
        for key, value in inp.metadata.items():
            if key.lower() not in _STALE_GLOBAL_TAGS:
                out.metadata[key] = value
        chapters = inp.chapters()
        if chapters:
            out.set_chapters([_moved_chapter(c, source.start) for c in chapters])
        attachments = [s for s in inp.streams if s.type == "attachment"]
        for attachment in attachments:
            name = attachment.metadata.get("filename") or f"attachment{attachment.index}"
            if out.format.name == "matroska":
                out.add_attachment(name, attachment.mimetype or "application/octet-stream", attachment.data)
            else:
                notes.append(f"attachment {name} dropped: only Matroska holds attachments")
        data = [s for s in inp.streams if s.type == "data"]
        timecodes = [s for s in data if s.metadata.get("timecode")]
        if timecodes and not any(key.lower() == "timecode" for key in self.video.metadata):
            self.video.metadata["timecode"] = timecodes[0].metadata["timecode"]
        # The timecode lives on as the video's tag: MOV and MP4 muxers write a timecode track from it.
        others = [s for s in data if s not in timecodes]
        if others:
            notes.append(f"{len(others)} data stream(s) dropped (non-media tracks: {', '.join(_data_kind(s) for s in others)})")

    def write_frames(self, planes: list[np.ndarray], pts: list[int]) -> None:
        """One batch: N×h×w arrays per plane of `plane_format`, at `size`."""
        for index, stamp in enumerate(pts):
            frame = write_frame([plane[index] for plane in planes], self.plane_format, self.encoder.pix_fmt)
            frame.pts = stamp
            frame.time_base = self.pts_time_base  # PyAV re-times it to the encoder's clock where that differs
            # Some encoders (prores_ks) tag their bitstream from each frame, not from the stream.
            frame.colorspace, frame.color_range = self.tags.matrix, self.tags.range
            frame.color_primaries, frame.color_trc = self.tags.primaries, self.tags.transfer
            self._mux_video(self._ordered(self.video.encode(frame)))

    def _mux_video(self, packets: list[av.Packet]) -> None:
        self.mux_video(packets)

    def mux_video(self, packets: list[av.Packet]) -> None:
        """Encoded packets of the video stream into the file (the join of segments hands its here)."""
        if self.aligner is None:
            self.container.mux(packets)
            return
        for packet in packets:
            self.container.mux(self.aligner.push(packet))

    def _ordered(self, packets: list[av.Packet]) -> list[av.Packet]:
        """x265 gives a clip shorter than its look-ahead decode times of about -3e11; MKV shrugs,
        the MP4/MOV muxer fails ("not yet implemented"). A decode time that is missing, after its
        presentation time or more than 10 s before it is rebuilt: increasing, never after pts."""
        for packet in packets:
            if packet.pts is None or not packet.time_base:
                continue
            bound = round(10 / packet.time_base)
            if packet.dts is None or packet.dts > packet.pts or packet.pts - packet.dts > bound:
                packet.dts = packet.pts if self._last_dts is None or packet.pts > self._last_dts else self._last_dts + 1
            self._last_dts = packet.dts
        return packets

    def timeline_notes(self) -> list[str]:
        """What re-encoded audio did to stay on the source's timeline (after the last packet)."""
        notes = []
        for handler in self.handlers.values():
            padded, trimmed = float(getattr(handler, "padded", 0)), float(getattr(handler, "trimmed", 0))
            if padded or trimmed:
                notes.append(f"audio #{handler.source.index}: timestamp gaps of {padded:.2f} s filled with silence and "
                             f"{trimmed:.2f} s of overlap trimmed, to stay in sync with the picture")
        return notes

    def write_packet(self, packet: av.Packet) -> None:
        handler = self.handlers.get(packet.stream.index)
        if handler is not None:
            self.container.mux(handler.packets(packet))

    def finish(self) -> None:
        """Drain the encoders and write the trailer (the file is complete after this)."""
        self._mux_video(self._ordered(self.video.encode(None)))
        if self.aligner is not None:
            self.container.mux(self.aligner.drain())
        for handler in self.handlers.values():
            self.container.mux(handler.flush())
        self.container.close()

    def close(self) -> None:
        """Close after a failure or an interrupt; the file is deleted, so a muxer that cannot
        finish it must not hide the reason the run stopped."""
        try:
            self.container.close()
        except av.error.FFmpegError:
            pass
