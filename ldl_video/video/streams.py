"""Every stream but the upscaled video: copied packet for packet when the output container takes
its codec, re-encoded only when it does not (AAC in WebM becomes Opus, SubRip in MP4 becomes
mov_text), dropped with a note when neither is possible (bitmap subtitles in MP4)."""

from __future__ import annotations

import io
from fractions import Fraction

import av

from ..errors import LdlError

# A minimal ASS header for text subtitle encoders when the source has none (SubRip has none).
DEFAULT_ASS_HEADER = b"""[Script Info]
ScriptType: v4.00+
PlayResX: 384
PlayResY: 288
ScaledBorderAndShadow: yes

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, \
StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding
Style: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,1

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text

"""

# Stream metadata that describes the old encoding rather than the content.
_STALE_STREAM_TAGS = {"duration", "encoder", "bps", "number_of_frames", "number_of_bytes", "_statistics_tags",
                      "_statistics_writing_app", "_statistics_writing_date_utc", "vendor_id"}


def copy_stream_info(source: av.stream.Stream, target: av.stream.Stream) -> None:
    """Language, title, handler name and disposition (default, forced, ...)."""
    for key, value in source.metadata.items():
        if key.lower() not in _STALE_STREAM_TAGS and not key.lower().startswith(("duration-", "bps-", "number_of_")):
            target.metadata[key] = value
    try:
        target.disposition = source.disposition
    except (AttributeError, TypeError, ValueError):
        pass


def codec_id_name(stream: av.stream.Stream) -> str:
    """The codec's descriptor name (what containers list), e.g. 'subrip' for the srt decoder."""
    context = stream.codec_context
    if context is None:
        return "unknown"
    return context.codec.canonical_name


class CopiedStream:
    """Packets go out as they came in, only re-labelled with the new stream."""

    def __init__(self, output: av.container.OutputContainer, source: av.stream.Stream) -> None:
        self.source = source
        self.stream = output.add_stream_from_template(source)
        copy_stream_info(source, self.stream)
        self.description = f"{source.type} #{source.index} ({codec_id_name(source)}) copied"

    def packets(self, packet: av.Packet) -> list[av.Packet]:
        packet.stream = self.stream
        return [packet]

    def flush(self) -> list[av.Packet]:
        return []


class AudioTranscode:
    """Decode, resample to what the encoder takes, encode; timestamps continue from the source's."""

    def __init__(self, output: av.container.OutputContainer, source: av.audio.AudioStream, codec: str) -> None:
        self.source = source
        source_context = source.codec_context
        encoder = av.Codec(codec, "w")
        rates = list(encoder.audio_rates or [])
        rate = source_context.sample_rate if not rates or source_context.sample_rate in rates else max(rates)
        self.stream = output.add_stream(codec, rate=rate)
        layout = source_context.layout
        if codec in ("libopus", "opus") and layout.nb_channels > 2 and layout.name not in ("5.1", "5.1(side)", "7.1"):
            layout = av.AudioLayout("stereo")
        self.stream.layout = layout
        formats = [f.name for f in (encoder.audio_formats or [])]
        self.stream.format = formats[0] if formats else "fltp"
        copy_stream_info(source, self.stream)
        self.resampler = av.AudioResampler(format=self.stream.format, layout=self.stream.layout, rate=rate)
        self.rate = rate
        self.next_pts: int | None = None
        self.description = f"audio #{source.index} ({codec_id_name(source)}) re-encoded as {codec}: the container cannot take it"

    def _encode(self, frames) -> list[av.Packet]:
        out = []
        for frame in frames:
            for resampled in self.resampler.resample(frame):
                if self.next_pts is None:
                    start = frame.pts if frame is not None and frame.pts is not None else 0
                    start_tb = frame.time_base if frame is not None and frame.time_base else Fraction(1, self.rate)
                    self.next_pts = round(start * start_tb * self.rate)
                resampled.pts = self.next_pts
                resampled.time_base = Fraction(1, self.rate)
                self.next_pts += resampled.samples
                out.extend(self.stream.encode(resampled))
        return out

    def packets(self, packet: av.Packet) -> list[av.Packet]:
        try:
            frames = self.source.decode(packet)
        except av.error.FFmpegError:
            return []
        return self._encode(frames)

    def flush(self) -> list[av.Packet]:
        try:
            frames = self.source.decode(None)
        except av.error.FFmpegError:
            frames = []
        out = self._encode(frames)
        if self.next_pts is not None:
            for resampled in self.resampler.resample(None):
                resampled.pts = self.next_pts
                resampled.time_base = Fraction(1, self.rate)
                self.next_pts += resampled.samples
                out.extend(self.stream.encode(resampled))
        out.extend(self.stream.encode(None))
        return out


class SubtitleTranscode:
    """Text subtitles from one text codec to another (SubRip -> mov_text for MP4, -> WebVTT for
    WebM); timing is taken from the source packets."""

    def __init__(self, output: av.container.OutputContainer, source: av.stream.Stream, codec: str) -> None:
        self.source = source
        self.stream = output.add_stream(codec)
        context = self.stream.codec_context
        context.time_base = Fraction(1, 1000)
        context.subtitle_header = source.codec_context.subtitle_header or DEFAULT_ASS_HEADER
        copy_stream_info(source, self.stream)
        self.description = (f"subtitle #{source.index} ({codec_id_name(source)}) converted to {codec}: "
                            "the container cannot take it")

    def packets(self, packet: av.Packet) -> list[av.Packet]:
        try:
            subtitles = self.source.codec_context.decode2(packet)
        except av.error.FFmpegError:
            return []
        if subtitles is None or not len(subtitles) or any(rect.type == b"bitmap" for rect in subtitles):
            return []
        encoded = self.stream.codec_context.encode_subtitle(subtitles)
        if encoded is None or encoded.size == 0:
            return []
        encoded.stream = self.stream
        encoded.time_base = packet.time_base
        encoded.pts, encoded.dts, encoded.duration = packet.pts, packet.pts, packet.duration
        return [encoded]

    def flush(self) -> list[av.Packet]:
        return []


def container_takes(output: av.container.OutputContainer, source: av.stream.Stream) -> bool:
    """Whether the output's format accepts this stream's packets as they are. The format's codec
    list is not the whole truth (MOV lists Opus but its muxer refuses it), so a header is
    written to a throwaway in-memory file with that stream alone."""
    if codec_id_name(source) not in output.supported_codecs:
        return False
    try:
        with av.open(io.BytesIO(), "w", format=output.format.name) as trial:
            trial.add_stream_from_template(source)
            trial.start_encoding()
        return True
    except (av.error.FFmpegError, ValueError):
        return False


def _is_text_subtitle(stream: av.stream.Stream) -> bool:
    try:
        return bool(av.Codec(codec_id_name(stream), "r").text_sub)
    except (av.error.FFmpegError, ValueError):
        return False


def _audio_target(output: av.container.OutputContainer) -> str | None:
    supported = output.supported_codecs
    for codec, name in (("aac", "aac"), ("libopus", "opus"), ("flac", "flac")):
        if name in supported:
            return codec
    default = output.default_audio_codec
    return None if default in (None, "none") else default


def _subtitle_target(output: av.container.OutputContainer) -> str | None:
    supported = output.supported_codecs
    for name in ("subrip", "mov_text", "webvtt", "ass"):
        if name in supported:
            return name
    return None


def plan_streams(output: av.container.OutputContainer, sources: list[av.stream.Stream], notes: list[str]) -> dict:
    """A handler per source stream index: copy, transcode, or (missing) dropped, with a note."""
    handlers: dict[int, CopiedStream | AudioTranscode | SubtitleTranscode] = {}
    for source in sources:
        name = codec_id_name(source)
        try:
            if container_takes(output, source):
                handlers[source.index] = CopiedStream(output, source)
            elif source.type == "audio" and source.codec_context is not None and (target := _audio_target(output)):
                handlers[source.index] = AudioTranscode(output, source, target)
                notes.append(handlers[source.index].description)
            elif source.type == "subtitle" and _is_text_subtitle(source) and (target := _subtitle_target(output)):
                handlers[source.index] = SubtitleTranscode(output, source, target)
                notes.append(handlers[source.index].description)
            else:
                notes.append(f"{source.type} #{source.index} ({name}) dropped: {output.format.name} cannot hold it "
                             "(use .mkv to keep it)")
        except (av.error.FFmpegError, ValueError) as exc:
            raise LdlError(f"cannot carry {source.type} stream #{source.index} ({name}) "
                           f"into {output.format.name}: {exc}") from None
    return handlers
