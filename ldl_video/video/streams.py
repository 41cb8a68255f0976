"""Every stream but the upscaled video: copied packet for packet when the output container takes
its codec, re-encoded only when it does not (AAC in WebM becomes Opus, SubRip in MP4 becomes
mov_text), dropped with a note when neither is possible (bitmap subtitles in MP4)."""

from __future__ import annotations

import io
from contextlib import contextmanager
from fractions import Fraction

import av
import numpy as np

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


# How far the second look at an input may read to find an audio track's frame size.
_PROBE_BYTES = 64 << 20
_PROBE_MICROSECONDS = 3600 * 10**6
# Codecs whose frame size FFmpeg learns only by decoding a frame (AC-3, MP3 and the like have it
# from their headers or codec id, Opus and FLAC vary it from packet to packet).
_FRAME_SIZE_BY_DECODING = ("aac",)


@contextmanager
def _with_frame_size(source: av.stream.Stream):
    """`source`, or the same track from a second opening of its file that reads on until it has
    decoded a frame. FFmpeg's first look stops after about 5 s; when a file's AAC comes later
    (a muxer that wrote the video first) the track's frame size stays unknown, and Matroska then
    writes neither the default duration nor the last block's own shorter one: the copy's packets
    read back without durations."""
    context = source.codec_context
    name = source.container.name if source.container is not None else ""
    if (source.type != "audio" or context is None or context.frame_size or codec_id_name(source) not in _FRAME_SIZE_BY_DECODING
            or not name.startswith("file:")):  # standard input cannot be read twice
        yield source
        return
    try:
        probe = av.open(name, options={"probesize": str(_PROBE_BYTES), "analyzeduration": str(_PROBE_MICROSECONDS)})
    except (av.error.FFmpegError, OSError, ValueError):
        yield source
        return
    with probe:
        probed = probe.streams[source.index] if source.index < len(probe.streams) else None
        same = probed is not None and probed.type == "audio" and codec_id_name(probed) == codec_id_name(source)
        yield probed if same and probed.codec_context.frame_size else source


class CopiedStream:
    """Packets go out as they came in, only re-labelled with the new stream."""

    def __init__(self, output: av.container.OutputContainer, source: av.stream.Stream) -> None:
        self.source = source
        with _with_frame_size(source) as template:
            self.stream = output.add_stream_from_template(template)
        copy_stream_info(source, self.stream)
        self.description = f"{source.type} #{source.index} ({codec_id_name(source)}) copied"

    def packets(self, packet: av.Packet) -> list[av.Packet]:
        packet.stream = self.stream
        return [packet]

    def flush(self) -> list[av.Packet]:
        return []


# Timestamp jitter up to this much is rounding (Matroska keeps milliseconds); beyond it a
# re-encoded track is padded with silence or trimmed so that it stays on the source's timeline.
AUDIO_SYNC_TOLERANCE = Fraction(1, 50)
_SILENCE_CHUNK_S = 1


def _reformat(frame: av.AudioFrame, sample_format: str) -> av.AudioFrame:
    """The same samples in another sample format (a change of format alone: no delay, one frame)."""
    resampler = av.AudioResampler(format=sample_format, layout=frame.layout.name, rate=frame.sample_rate)
    (converted,) = resampler.resample(frame)
    return converted


def _interleaved(frame: av.AudioFrame) -> np.ndarray:
    """The samples as one row, channels interleaved: PyAV cannot hand out the planes of a planar
    frame of 8 channels or more (7.1, 7.1.4)."""
    return (_reformat(frame, frame.format.packed.name) if frame.format.is_planar else frame).to_ndarray()


def _samples_like(frame: av.AudioFrame, interleaved: np.ndarray) -> av.AudioFrame:
    made = av.AudioFrame.from_ndarray(np.ascontiguousarray(interleaved), format=frame.format.packed.name,
                                      layout=frame.layout.name)
    made.sample_rate = frame.sample_rate
    return _reformat(made, frame.format.name) if frame.format.is_planar else made


def silence_like(frame: av.AudioFrame, samples: int) -> av.AudioFrame:
    """`samples` of silence in `frame`'s sample format, layout and rate."""
    zero = 128 if frame.format.name.startswith("u8") else 0  # unsigned 8-bit silence is mid-scale
    dtype = _interleaved(frame).dtype
    return _samples_like(frame, np.full((1, samples * frame.layout.nb_channels), zero, dtype=dtype))


def drop_leading(frame: av.AudioFrame, samples: int) -> av.AudioFrame:
    return _samples_like(frame, _interleaved(frame)[:, samples * frame.layout.nb_channels:])


# FFmpeg's named channel layouts, the candidates when an encoder refuses a source's layout.
NAMED_LAYOUTS = ("mono", "stereo", "2.1", "3.0", "3.0(back)", "4.0", "quad", "quad(side)", "3.1", "5.0", "5.0(side)",
                 "4.1", "5.1", "5.1(side)", "6.0", "6.0(front)", "hexagonal", "6.1", "6.1(back)", "6.1(front)", "7.0",
                 "7.0(front)", "7.1", "7.1(wide)", "7.1(wide-side)", "octagonal")

# Layouts an encoder takes but writes with speakers swapped: FFmpeg's libopus wrapper puts 5.0's
# centre and rear pair, and 6.1's centre, back centre and side pair, in each other's places (read
# back by FFmpeg's and libopus's own decoders alike; HandBrake issue 5847 saw the same with 6.1).
MISPLACED_LAYOUTS = {"libopus": {"5.0", "6.1"}}


def encoder_takes(codec: str, layout: av.AudioLayout, rate: int, sample_format: str) -> bool:
    """Whether the encoder opens with this layout and keeps its speakers in place: each keeps its
    own list (libopus takes the Vorbis layouts of RFC 7845 5.1.1.2, FFmpeg's AAC encoder no
    layout without named speakers)."""
    if layout.name in MISPLACED_LAYOUTS.get(codec, ()):
        return False
    context = av.CodecContext.create(codec, "w")
    context.sample_rate, context.format, context.layout = rate, sample_format, layout
    context.time_base = Fraction(1, rate)
    try:
        context.open()
    except (av.error.FFmpegError, ValueError):
        return False
    return True


def channel_gains(source: av.AudioLayout, target: av.AudioLayout) -> np.ndarray:
    """How swresample mixes each source channel into the target's (source × target gains): one
    impulse per channel, through the same conversion the re-encoding uses."""
    channels = source.nb_channels
    impulses = av.AudioFrame.from_ndarray(np.eye(channels, dtype=np.float32).reshape(1, -1), format="flt", layout=source.name)
    impulses.sample_rate, impulses.pts = 48000, 0
    resampler = av.AudioResampler(format="flt", layout=target, rate=48000)
    out = [*resampler.resample(impulses), *resampler.resample(None)]
    return np.concatenate([frame.to_ndarray() for frame in out], axis=1).reshape(-1, target.nb_channels)


def kept_channels(gains: np.ndarray) -> int:
    """Source channels that reach a target channel of their own, at their full level."""
    mixed = np.round(gains, 3) != 0
    return sum(1 for row, to in enumerate(mixed) if to.sum() == 1 and mixed[:, to.argmax()].sum() == 1
               and np.isclose(gains[row, to.argmax()], 1.0, atol=1e-3))


def encodable_layout(codec: str, layout: av.AudioLayout, rate: int, sample_format: str) -> tuple[av.AudioLayout, int]:
    """The layout to encode a source of `layout` in, and how many of its channels keep their
    own speaker at their level. A layout the encoder refuses becomes the fewest-channel one it
    takes that keeps every channel (FFmpeg's downmix pair as stereo, 5.1's side pair as the rear
    one, 2.1 within 5.1, a lone front-left speaker as mono), or failing that the one that keeps
    most (octagonal as 7.1, its back centre shared by the rear pair)."""
    if encoder_takes(codec, layout, rate, sample_format):
        return layout, layout.nb_channels
    taken = [av.AudioLayout(name) for name in NAMED_LAYOUTS if encoder_takes(codec, av.AudioLayout(name), rate, sample_format)]
    if not taken:
        raise LdlError(f"the {codec} encoder takes no channel layout at {rate} Hz; use .mkv to copy the audio as it is")
    channels = layout.nb_channels
    scored = [(kept_channels(channel_gains(layout, target)), target) for target in taken]
    # Every channel kept: the fewest speakers that do it. Not all: as many as the source had.
    kept, target = max(scored, key=lambda item: (item[0], -item[1].nb_channels if item[0] == channels
                                                 else min(item[1].nb_channels, channels)))
    return target, kept


class AudioTranscode:
    """Decode, resample to what the encoder takes, encode. The encoded samples are contiguous, so
    the source's timeline is kept by padding its gaps with silence and trimming its overlaps (as
    FFmpeg's aresample async mode does): after a 1 s hole the sound still plays with its picture."""

    def __init__(self, output: av.container.OutputContainer, source: av.audio.AudioStream, codec: str) -> None:
        self.source = source
        source_context = source.codec_context
        encoder = av.Codec(codec, "w")
        rates = list(encoder.audio_rates or [])
        rate = source_context.sample_rate if not rates or source_context.sample_rate in rates else max(rates)
        formats = [f.name for f in (encoder.audio_formats or [])]
        sample_format = formats[0] if formats else "fltp"
        layout = source_context.layout
        if layout.name.endswith(" channels"):  # no named order (raw PCM): MP4 refuses it, take the usual one
            layout = av.AudioLayout(f"{layout.nb_channels}c")
        target, kept = encodable_layout(codec, layout, rate, sample_format)
        self.stream = output.add_stream(codec, rate=rate)
        self.stream.layout = target
        self.stream.format = sample_format
        copy_stream_info(source, self.stream)
        self.resampler = av.AudioResampler(format=self.stream.format, layout=self.stream.layout, rate=rate)
        self.rate = rate
        self.next_pts: int | None = None
        self.expected: Fraction | None = None  # source time (s) at which the next decoded sample belongs
        self.padded = Fraction(0)
        self.trimmed = Fraction(0)
        self.description = f"audio #{source.index} ({codec_id_name(source)}) re-encoded as {codec}: the container cannot take it"
        if target.name != layout.name and kept == layout.nb_channels:
            self.description += f"; its {layout.name} channels carried as {target.name}, each at its level"
        elif target.name != layout.name:
            self.description += (f"; its {layout.name} channels mixed into {target.name} ({codec} cannot code "
                                 f"{layout.name}; use .mkv to keep it as it is)")

    def _on_timeline(self, frame: av.AudioFrame) -> list[av.AudioFrame]:
        """`frame`, preceded by silence for a gap before it or cut by an overlap with what came before."""
        if frame.pts is None or not frame.time_base or not frame.sample_rate:
            if self.expected is not None and frame.sample_rate:
                self.expected += Fraction(frame.samples, frame.sample_rate)
            return [frame]
        start = Fraction(frame.pts) * frame.time_base
        end = start + Fraction(frame.samples, frame.sample_rate)
        if self.expected is None:
            self.expected = start
        drift = start - self.expected
        out: list[av.AudioFrame] = []
        if drift > AUDIO_SYNC_TOLERANCE:
            self.padded += drift
            missing = round(drift * frame.sample_rate)
            while missing > 0:
                chunk = min(missing, _SILENCE_CHUNK_S * frame.sample_rate)
                out.append(silence_like(frame, chunk))
                missing -= chunk
        elif drift < -AUDIO_SYNC_TOLERANCE:
            overlap = min(frame.samples, round(-drift * frame.sample_rate))
            self.trimmed += Fraction(overlap, frame.sample_rate)
            if overlap == frame.samples:
                return []
            frame = drop_leading(frame, overlap)
        else:
            end = self.expected + Fraction(frame.samples, frame.sample_rate)  # rounding is not a gap
        self.expected = end
        out.append(frame)
        return out

    def _encode(self, frames) -> list[av.Packet]:
        out = []
        for decoded in frames:
            if self.next_pts is None and decoded.pts is not None and decoded.time_base:
                self.next_pts = round(decoded.pts * decoded.time_base * self.rate)
            for frame in self._on_timeline(decoded):
                for resampled in self.resampler.resample(frame):
                    if self.next_pts is None:
                        self.next_pts = 0
                    out.extend(self._encode_at_next(resampled))
        return out

    def _encode_at_next(self, resampled: av.AudioFrame) -> list[av.Packet]:
        resampled.pts = self.next_pts
        resampled.time_base = Fraction(1, self.rate)
        self.next_pts += resampled.samples
        return self.stream.encode(resampled)

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
                out.extend(self._encode_at_next(resampled))
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


# Muxers without a codec table cannot answer FFmpeg's "do you hold this codec?", and PyAV's
# supported_codecs then lists only their defaults (MPEG-2 and MP2 for MPEG-TS, which carries
# H.264, HEVC and AAC as well): for them a trial header decides.
UNLISTED_FORMATS = {"mpegts"}


def may_hold(output: av.container.OutputContainer, codec_id: str) -> bool:
    return codec_id in output.supported_codecs or output.format.name in UNLISTED_FORMATS


def container_takes(output: av.container.OutputContainer, source: av.stream.Stream) -> bool:
    """Whether the output's format accepts this stream's packets as they are. The format's codec
    list is not the whole truth (MOV lists Opus but its muxer refuses it), so a header is
    written to a throwaway in-memory file with that stream alone."""
    if not may_hold(output, codec_id_name(source)):
        return False
    if (output.format.name == "flv" and codec_id_name(source).startswith("pcm_") and source.codec_context is not None
            and source.codec_context.layout.nb_channels > 2):
        # FLV's audio tag flags mono or stereo only; more channels need enhanced FLV's multichannel
        # header, which names the codec by a FourCC that PCM lacks. FFmpeg's muxer reaches an
        # assertion there and the process aborts, so the trial header below cannot be used.
        return False
    try:
        with av.open(io.BytesIO(), "w", format=output.format.name) as trial:
            stream = trial.add_stream_from_template(source)
            trial.start_encoding()
            if codec_id_name(source).startswith("pcm_"):
                # MP4 refuses PCM without a named channel layout only when it writes a sample
                # table; any bytes are valid PCM, so one block of silence tells.
                _mux_silence(trial, stream)
        return True
    except (av.error.FFmpegError, ValueError):
        return False


def _mux_silence(container: av.container.OutputContainer, stream: av.stream.Stream) -> None:
    packet = av.Packet(bytes(64))
    packet.stream, packet.time_base = stream, Fraction(1, stream.codec_context.sample_rate or 48000)
    packet.pts = packet.dts = 0
    container.mux(packet)


def _is_text_subtitle(stream: av.stream.Stream) -> bool:
    try:
        return bool(av.Codec(codec_id_name(stream), "r").text_sub)
    except (av.error.FFmpegError, ValueError):
        return False


def _audio_target(output: av.container.OutputContainer) -> str | None:
    for codec, name in (("aac", "aac"), ("libopus", "opus"), ("flac", "flac")):
        if may_hold(output, name):
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
                advice = "" if "matroska" in output.format.name else " (use .mkv to keep it)"
                notes.append(f"{source.type} #{source.index} ({name}) dropped: {output.format.name} cannot hold it{advice}")
        except (av.error.FFmpegError, ValueError) as exc:
            raise LdlError(f"cannot carry {source.type} stream #{source.index} ({name}) "
                           f"into {output.format.name}: {exc}") from None
    return handlers
