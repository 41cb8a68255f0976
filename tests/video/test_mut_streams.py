"""The other streams, as the output's tags and codecs show them: a track's name, language and
flags survive, the statistics an old muxer wrote about the old encoding do not; audio and
subtitles that must be re-encoded get a codec the container's specification allows.
References: mkvmerge's documented statistics tags, and the WebM, MP4 (ISO/IEC 14496-12/-17/-30),
MPEG-PS (ISO/IEC 13818-1), MXF (SMPTE 382M) and MPEG-TS codec lists.

Written against the survivors of `make mutation MODULES=streams` (benchmarks/results/mutation.md)."""

from __future__ import annotations

import io
from fractions import Fraction

import av
import numpy as np
import pytest

from ldl_video.video.streams import _audio_target, _subtitle_target, copy_stream_info

# What mkvmerge writes about each track's encoding ("statistics tags"), and the encoder's name:
# they describe the old file, not the content, and would be wrong in the new one.
STATISTICS = {"BPS": "128000", "DURATION": "00:00:01.000000000", "NUMBER_OF_FRAMES": "47", "NUMBER_OF_BYTES": "1234",
              "_STATISTICS_WRITING_APP": "mkvmerge v80.0", "_STATISTICS_WRITING_DATE_UTC": "2024-01-01 00:00:00",
              "_STATISTICS_TAGS": "BPS DURATION NUMBER_OF_FRAMES NUMBER_OF_BYTES", "BPS-eng": "128000",
              "DURATION-eng": "00:00:01.000000000", "NUMBER_OF_FRAMES-eng": "47", "ENCODER": "Lavc61 aac"}
CONTENT = {"language": "ger", "title": "Director's commentary", "COMMENT": "recorded 1998"}


@pytest.fixture(scope="module")
def tagged_mkv(tmp_path_factory):
    """An MKV as mkvmerge leaves it: a commentary track with statistics tags, default+forced+comment."""
    path = tmp_path_factory.mktemp("tags") / "tagged.mkv"
    out = av.open(str(path), "w")
    video = out.add_stream("libx264", rate=25)
    video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
    audio = out.add_stream("aac", rate=48000)
    audio.layout = "stereo"
    for key, value in {**STATISTICS, **CONTENT}.items():
        audio.metadata[key] = value
    audio.disposition = av.stream.Disposition.default | av.stream.Disposition.forced | av.stream.Disposition.comment
    for i in range(5):
        frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8)).reformat(format="yuv420p")
        frame.pts, frame.time_base = i, Fraction(1, 25)
        out.mux(video.encode(frame))
    out.mux(video.encode())
    sound = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp", layout="stereo")
    sound.sample_rate, sound.pts = 48000, 0
    out.mux(audio.encode(sound))
    out.mux(audio.encode())
    out.close()
    return path


def test_a_tracks_name_language_and_flags_are_kept_and_old_statistics_dropped(tagged_mkv):
    with av.open(str(tagged_mkv)) as source:
        track = source.streams.audio[0]
        assert set(STATISTICS) - {"DURATION"} <= set(track.metadata)  # what the test relies on
        output = av.open(io.BytesIO(), "w", format="matroska")
        target = output.add_stream("aac", rate=48000)
        copy_stream_info(track, target)
        assert dict(target.metadata) == CONTENT
        wanted = av.stream.Disposition.default | av.stream.Disposition.forced | av.stream.Disposition.comment
        assert int(target.disposition) == int(track.disposition) == int(wanted)


@pytest.mark.parametrize(("container", "allowed"), [
    ("mp4", {"aac"}),  # lossy and everywhere: what phones and browsers play from MP4
    ("mov", {"aac"}),
    ("matroska", {"aac"}),
    ("mpegts", {"aac"}),  # broadcast H.264/HEVC transport streams carry AAC
    ("webm", {"libopus", "libvorbis"}),  # the only audio WebM allows
    ("mpeg", {"mp2", "ac3"}),  # MPEG-PS: MPEG audio or AC-3 (DVD)
    ("mxf", {"pcm_s16le", "pcm_s24le"}),  # SMPTE 382M: PCM
    ("ogg", {"flac", "libopus", "libvorbis"}),  # Xiph's Ogg mappings (.ogv with Theora or VP8)
    ("gif", {None}),  # no audio at all: dropped with a note
])
def test_reencoded_audio_gets_a_codec_the_container_allows(container, allowed):
    assert _audio_target(av.open(io.BytesIO(), "w", format=container)) in allowed


@pytest.mark.parametrize(("container", "expected"), [
    ("mp4", "mov_text"),  # MP4's timed text (3GPP)
    ("mov", "mov_text"),
    ("webm", "webvtt"),  # the only subtitles WebM allows
    ("matroska", "subrip"),
    ("nut", "ass"),  # NUT's codec table has ASS among text subtitles, not SubRip
    ("mpegts", None),  # no text subtitle format: dropped with a note
    ("mpeg", None),
])
def test_text_subtitles_get_the_containers_own_text_format(container, expected):
    assert _subtitle_target(av.open(io.BytesIO(), "w", format=container)) == expected


@pytest.mark.parametrize(("fmt", "layout", "zero"), [
    ("u8", "stereo", 128),  # unsigned 8-bit PCM is silent at mid-scale (the WAV format's rule)
    ("u8p", "mono", 128),
    ("s16", "stereo", 0),  # packed: the channels interleave in one row
    ("fltp", "5.1", 0.0),
])
def test_silence_for_a_gap_is_silent_in_every_sample_format(fmt, layout, zero):
    from ldl_video.video.streams import drop_leading, silence_like

    channels = av.AudioLayout(layout).nb_channels
    dtype = {"u8": np.uint8, "u8p": np.uint8, "s16": np.int16, "fltp": np.float32}[fmt]
    planar = fmt.endswith("p")
    shape = (channels, 10) if planar else (1, 10 * channels)
    template = av.AudioFrame.from_ndarray(np.full(shape, 7, dtype), format=fmt, layout=layout)
    template.sample_rate = 44100
    gap = silence_like(template, 300)
    assert (gap.samples, gap.format.name, gap.layout.name, gap.sample_rate) == (300, fmt, layout, 44100)
    assert np.all(gap.to_ndarray() == zero)
    rest = drop_leading(template, 4)
    assert rest.samples == 6 and np.all(rest.to_ndarray() == 7)


def test_converted_subtitles_are_said_by_track_and_codec(tmp_path):
    from video_media import Clip, write_clip

    from ldl_video.video.streams import plan_streams

    path = write_clip(tmp_path / "film.mkv", Clip(frames=3, audio=[("aac", 2, "eng")], subtitles=[(0, 80, "Hello")]))
    notes: list[str] = []
    with av.open(str(path)) as source:
        output = av.open(io.BytesIO(), "w", format="mp4")
        plan_streams(output, [s for s in source.streams if s.type != "video"], notes)
    assert "subtitle #2 (subrip) converted to mov_text: the container cannot take it" in notes


# ---- re-encoded audio on the source's timeline, to the sample ------------------------------------
#
# The source is 8 kHz mono PCM: every sample is a distinct random value, so where each one lands
# in the output is known by arithmetic on the rate. Packets are made the way a demuxer hands them
# over (a timestamp in samples, or none; late, with holes, overlapping as after a splice), decoded
# by the real PCM decoder of a PyAV-written file's track, re-encoded as PCM (what MXF gets: no
# encoder delay) and muxed into NUT, whose timestamps are in samples too. The output is read back
# with plain PyAV.

RATE = 8000
SIGNAL = np.random.default_rng(15).integers(-20000, 20000, 20 * RATE, dtype=np.int16)


def pcm_file(path, rate: int):
    """A real mono PCM file (its track's decoder does the decoding of the test's packets)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=rate)
        stream.layout = "mono"
        packet = av.Packet(bytes(2 * 80))
        packet.stream, packet.time_base, packet.pts, packet.dts = stream, Fraction(1, rate), 0, 0
        out.mux(packet)
    return path


@pytest.fixture
def pcm_track(tmp_path):
    with av.open(str(pcm_file(tmp_path / "pcm.nut", RATE))) as source:
        yield source.streams.audio[0]


def reencode(track, path, packets: list[tuple[int | None, int, int]], codec: str = "pcm_s16le"):
    """Feed (timestamp or None, first signal sample, count) packets through AudioTranscode into `path`."""
    from ldl_video.video.streams import AudioTranscode

    with av.open(str(path), "w") as out:
        handler = AudioTranscode(out, track, codec)
        for stamp, first, count in packets:
            packet = av.Packet(SIGNAL[first : first + count].tobytes())
            packet.time_base, packet.pts, packet.dts, packet.duration = Fraction(1, RATE), stamp, stamp, count
            out.mux(handler.packets(packet))
        out.mux(handler.flush())
    return handler


def read_back(path) -> tuple[Fraction, np.ndarray, int, int]:
    """(time of the first sample, every sample, rate, channels) of the output's audio, which must play
    without holes of its own (each frame starts where the one before ended)."""
    with av.open(str(path)) as result:
        frames = list(result.decode(audio=0))
    rate = frames[0].sample_rate
    starts = [Fraction(f.pts) * f.time_base for f in frames]
    lengths = [Fraction(f.samples, rate) for f in frames]
    joined = zip(starts[:-1], starts[1:], lengths[:-1], strict=True)
    assert all(b == a + n for a, b, n in joined), "the output's own timestamps jump"
    return starts[0], np.concatenate([f.to_ndarray() for f in frames], axis=1), rate, frames[0].layout.nb_channels


def test_reencoded_audio_keeps_late_start_gaps_and_overlaps_to_the_sample(pcm_track, tmp_path):
    packets = [
        (2000, 2000, 800),  # sound starts 0.25 s in
        (2800, 2800, 800),
        (None, 3600, 800),  # no timestamp (MPEG-PS stamps some packets only): it follows on
        (4400, 4400, 800),
        (13201, 13201, 1),  # a hole of 1 s + 1 sample, then a packet of one sample
        (13602, 13602, 800),  # straight after it a second hole of 50 ms
        (14002, 14002, 800),  # a splice: 50 ms sent again, then 50 ms new
        (14002, 14002, 800),  # a packet sent twice: nothing new in it
        (14562, 14562, 800),  # 30 ms again
        (15362, 15362, 800),
    ]
    handler = reencode(pcm_track, tmp_path / "out.nut", packets)
    first, samples, rate, channels = read_back(tmp_path / "out.nut")
    assert (first, rate, channels) == (Fraction(2000, RATE), RATE, 1)
    # What was sent, each sample at its timestamp; silence where nothing was; a sample sent twice, once.
    expected = np.zeros(16162 - 2000, np.int16)
    for start, end in ((2000, 5200), (13201, 13202), (13602, 16162)):
        expected[start - 2000 : end - 2000] = SIGNAL[start:end]
    assert samples.shape == (1, len(expected))
    assert np.array_equal(samples[0], expected)
    # What the run's note reports: the holes filled, the repeats cut.
    assert (handler.padded, handler.trimmed) == (Fraction(8001 + 400, RATE), Fraction(400 + 800 + 240, RATE))


def test_jitter_of_up_to_a_fiftieth_of_a_second_is_rounding_not_a_hole(pcm_track, tmp_path):
    """Matroska keeps milliseconds, so timestamps a little off are rounding: the samples play on
    back to back, nothing added or cut, up to 1/50 s (160 samples at 8 kHz) either way."""
    packets = [(0, 0, 800), (960, 800, 800), (1440, 1600, 800)]  # 160 samples late, then 160 early
    handler = reencode(pcm_track, tmp_path / "out.nut", packets)
    first, samples, _, _ = read_back(tmp_path / "out.nut")
    assert first == 0
    assert np.array_equal(samples[0], SIGNAL[:2400])
    assert (handler.padded, handler.trimmed) == (0, 0)


def test_audio_whose_first_packets_have_no_timestamp_starts_at_zero(pcm_track, tmp_path):
    packets = [(None, 0, 800), (None, 800, 800), (1600, 1600, 800), (4000, 4000, 400)]
    handler = reencode(pcm_track, tmp_path / "out.nut", packets)
    first, samples, _, _ = read_back(tmp_path / "out.nut")
    assert first == 0
    expected = np.concatenate([SIGNAL[:2400], np.zeros(1600, np.int16), SIGNAL[4000:4400]])
    assert np.array_equal(samples[0], expected)
    assert (handler.padded, handler.trimmed) == (Fraction(1600, RATE), 0)


# ---- the encoder's set-up: rate and channels as the output's player sees them -----------------------


def tone_wav(path, layout: str, rate: int, seconds: float = 0.2):
    """A PCM WAV (its channel mask names the layout) with one 100 Hz tone at a different level per channel."""
    channels = av.AudioLayout(layout).nb_channels
    levels = 0.05 * (1 + np.arange(channels))
    wave = np.sin(2 * np.pi * 100 * np.arange(round(seconds * rate)) / rate)
    interleaved = (wave[:, None] * levels).astype(np.float32).reshape(1, -1)  # packed: PyAV's planar stops at 8
    frame = av.AudioFrame.from_ndarray(interleaved, format="flt", layout=layout)
    frame.sample_rate, frame.pts = rate, 0
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=rate)
        stream.layout = layout
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path, levels / np.sqrt(2)  # a sine's RMS


def reencode_file(source_path, path, codec: str) -> None:
    from ldl_video.video.streams import AudioTranscode

    with av.open(str(source_path)) as source, av.open(str(path), "w") as out:
        track = source.streams.audio[0]
        handler = AudioTranscode(out, track, codec)
        for packet in source.demux(track):
            if packet.size:
                out.mux(handler.packets(packet))
        out.mux(handler.flush())


def played(path) -> tuple[int, int, np.ndarray]:
    """(the stream's sample rate, its channels, each channel's RMS over the middle of the sound)."""
    with av.open(str(path)) as result:
        stream = result.streams.audio[0]
        rate, channels = stream.codec_context.sample_rate, stream.codec_context.layout.nb_channels
        planar = av.AudioResampler(format="dbl")  # packed: one row, the channels interleaved
        samples = np.concatenate([g.to_ndarray() for f in result.decode(stream) for g in planar.resample(f)], axis=1)
    planes = samples.reshape(-1, channels).T
    middle = planes[:, planes.shape[1] // 4 : planes.shape[1] // 2]
    return rate, channels, np.sqrt(np.mean(middle**2, axis=1))


@pytest.mark.parametrize(("layout", "rate", "codec", "suffix", "wanted_rate", "wanted_channels"), [
    ("mono", 8000, "aac", ".mp4", 8000, 1),  # AAC codes 8 kHz (ISO/IEC 14496-3 sampling frequency index 11)
    ("quad", 48000, "flac", ".mkv", 48000, 4),  # FLAC codes up to 8 channels in any layout
    ("stereo", 44100, "libopus", ".webm", 48000, 2),  # Opus has no 44.1 kHz mode: the next rate up
    ("2.1", 48000, "libopus", ".webm", 48000, 6),  # no Opus mapping for 2.1: within 5.1, its LFE kept
    ("5.1", 48000, "libopus", ".webm", 48000, 6),  # Opus mapping family 1 (RFC 7845): 5.1 and 7.1 kept
    ("7.1", 48000, "libopus", ".webm", 48000, 8),
    ("5.1(side)", 48000, "libopus", ".webm", 48000, 6),  # DVD AC-3's 5.1: sides carried as Opus's rear pair
])
def test_reencoded_audio_keeps_its_rate_and_channels_where_the_codec_can(tmp_path, layout, rate, codec, suffix,
                                                                         wanted_rate, wanted_channels):
    source, levels = tone_wav(tmp_path / "in.wav", layout, rate)
    reencode_file(source, tmp_path / f"out{suffix}", codec)
    played_rate, channels, rms = played(tmp_path / f"out{suffix}")
    assert (played_rate, channels) == (wanted_rate, wanted_channels)
    if channels == len(levels):  # each speaker's sound where it was (for 5.1(side): the sides in the rear pair)
        assert rms == pytest.approx(levels, rel=0.15)


def test_audio_resampled_for_the_encoder_keeps_its_hole_in_place(tmp_path):
    """44.1 kHz PCM with a half-second hole, re-encoded as Opus (48 kHz only) into WebM: the sound
    after the hole starts at 1 s in the output, counted at the new rate, not drifting by 48/44.1."""
    from video_media import audio_timeline

    from ldl_video.video.streams import AudioTranscode

    rate, tone = 44100, (0.3 * np.sin(2 * np.pi * 440 * np.arange(2 * 44100) / 44100) * 32767).astype(np.int16)
    with av.open(str(pcm_file(tmp_path / "pcm.nut", rate))) as source, av.open(str(tmp_path / "out.webm"), "w") as out:
        handler = AudioTranscode(out, source.streams.audio[0], "libopus")
        for first in [*range(0, rate // 2, 1470), *range(rate, rate * 3 // 2, 1470)]:  # 1/30 s packets
            packet = av.Packet(tone[first : first + 1470].tobytes())
            packet.time_base, packet.pts, packet.dts = Fraction(1, rate), first, first
            out.mux(handler.packets(packet))
        out.mux(handler.flush())
    timeline = audio_timeline(tmp_path / "out.webm")
    sounding = np.flatnonzero(np.abs(timeline) > 0.1) / 48000
    assert sounding[0] == pytest.approx(0.0, abs=0.002)
    assert sounding[sounding < 0.75][-1] == pytest.approx(0.5, abs=0.002)
    assert sounding[sounding > 0.75][0] == pytest.approx(1.0, abs=0.002)
    assert sounding[-1] == pytest.approx(1.5, abs=0.002)


@pytest.fixture(scope="module")
def unknown_codecs_mkv(tmp_path_factory):
    """A film whose audio and subtitle tracks name codecs nobody knows (a newer muxer, a typo)."""
    from video_media import Clip, write_clip

    folder = tmp_path_factory.mktemp("unknown")
    whole = write_clip(folder / "film.mkv", Clip(frames=3, audio=[("aac", 2, "eng")], subtitles=[(0, 80, "Hello")]))
    data = whole.read_bytes()
    assert data.count(b"A_AAC") == data.count(b"S_TEXT/UTF8") == 1
    path = folder / "unknown.mkv"
    path.write_bytes(data.replace(b"A_AAC", b"A_QQQ").replace(b"S_TEXT/UTF8", b"S_TEXT/QQQQ"))
    return whole, path


@pytest.mark.parametrize(("which", "container", "expected"), [
    ("unknown", "mp4", ["audio #1 (unknown) dropped: mp4 cannot hold it (use .mkv to keep it)",
                        "subtitle #2 (unknown) dropped: mp4 cannot hold it (use .mkv to keep it)"]),
    ("known", "gif", ["audio #1 (aac) dropped: gif cannot hold it (use .mkv to keep it)",
                      "subtitle #2 (subrip) dropped: gif cannot hold it (use .mkv to keep it)"]),
    # already Matroska: no advice to write what the user asked for
    ("unknown", "matroska", ["audio #1 (unknown) dropped: matroska cannot hold it",
                             "subtitle #2 (unknown) dropped: matroska cannot hold it"]),
])
def test_streams_that_cannot_be_carried_are_dropped_with_a_note_naming_them(unknown_codecs_mkv, which, container,
                                                                             expected):
    from ldl_video.video.streams import plan_streams

    path = unknown_codecs_mkv[which == "unknown"]
    notes: list[str] = []
    with av.open(str(path)) as source:
        handlers = plan_streams(av.open(io.BytesIO(), "w", format=container),
                                [s for s in source.streams if s.type != "video"], notes)
    assert (handlers, notes) == ({}, expected)


def transcode_subrip(tmp_path, cues: list[tuple[int, int, str]], suffix: str, codec: str):
    """An MKV with these SubRip cues (ms), its subtitles alone converted by SubtitleTranscode into out`suffix`."""
    from video_media import Clip, write_clip

    from ldl_video.video.streams import SubtitleTranscode

    path = write_clip(tmp_path / "film.mkv", Clip(frames=3, subtitles=cues))
    target = tmp_path / f"out{suffix}"
    with av.open(str(path)) as source, av.open(str(target), "w") as out:
        track = source.streams.subtitles[0]
        handler = SubtitleTranscode(out, track, codec)
        for packet in source.demux(track):
            if packet.size:
                out.mux(handler.packets(packet))
    return target


def test_subrip_cues_converted_for_mp4_keep_their_milliseconds(tmp_path):
    """SubRip times are in milliseconds (00:00:01,001); as MP4 timed text they start and end on the same ms."""
    cues = [(1001, 2333, "Hello"), (2999, 3457, "World")]
    with av.open(str(transcode_subrip(tmp_path, cues, ".mp4", "mov_text"))) as result:
        samples = [p for p in result.demux(result.streams.subtitles[0]) if p.size > 2]  # 2 bytes: the empty gap sample
        times = [(p.pts * p.time_base * 1000, (p.pts + p.duration) * p.time_base * 1000) for p in samples]
    assert times == [(start, end) for start, end, _ in cues]


def test_pcm_is_copied_into_mp4_only_with_a_named_channel_layout(tmp_path):
    """MP4's sample description needs a channel layout for PCM (ISO/IEC 23003-5 'chnl'): a WAV's
    5.1 (named by its channel mask) is copied, Matroska's bare two channels are re-encoded."""
    from ldl_video.video.streams import container_takes

    wav, _ = tone_wav(tmp_path / "in.wav", "5.1", 48000)
    bare = tmp_path / "bare.mkv"
    with av.open(str(wav)) as source, av.open(str(bare), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=48000)
        stream.layout = "stereo"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 2 * 480), np.int16), format="s16", layout="stereo")
        frame.sample_rate, frame.pts = 48000, 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        named = source.streams.audio[0]
        assert named.codec_context.layout.name == "5.1"
        assert container_takes(av.open(io.BytesIO(), "w", format="mp4"), named)
    with av.open(str(bare)) as source:
        track = source.streams.audio[0]
        assert track.codec_context.layout.name == "2 channels"  # what the test relies on
        assert not container_takes(av.open(io.BytesIO(), "w", format="mp4"), track)
        assert container_takes(av.open(io.BytesIO(), "w", format="matroska"), track)


def test_audio_resampled_for_opus_keeps_its_last_samples(tmp_path):
    """0.2 s of 44.1 kHz PCM re-encoded as Opus (48 kHz only) plays for 0.2 s at 48 kHz, to the
    sample: the resampler's filter holds back the last few samples until it is drained, and
    WebM's end trimming (RFC 7845's pre-skip and discard padding) cuts the codec's own padding."""
    source, _ = tone_wav(tmp_path / "in.wav", "stereo", 44100, seconds=0.2)
    reencode_file(source, tmp_path / "out.webm", "libopus")
    with av.open(str(tmp_path / "out.webm")) as result:
        frames = list(result.decode(audio=0))
    assert frames[0].sample_rate == 48000
    assert sum(frame.samples for frame in frames) == round(0.2 * 48000)


def test_audio_no_encoder_here_can_write_for_the_container_is_refused_naming_the_track(tmp_path):
    """An AMR file (3GPP TS 26.101) holds AMR-NB only, and this FFmpeg has no AMR-NB encoder: the
    refusal names the track and the container, before anything is written."""
    from video_media import Clip, write_clip

    from ldl_video.errors import LdlError
    from ldl_video.video.streams import plan_streams

    assert "libopencore_amrnb" not in av.codecs_available  # what the test relies on
    path = write_clip(tmp_path / "film.mkv", Clip(frames=3, audio=[("aac", 2, "eng")]))
    with av.open(str(path)) as source, pytest.raises(LdlError) as refused:
        plan_streams(av.open(io.BytesIO(), "w", format="amr"), list(source.streams.audio), [])
    assert str(refused.value).startswith("cannot carry audio stream #1 (aac) into amr: ")


def test_pcm_without_a_channel_order_is_reencoded_with_every_channel_at_its_level(tmp_path):
    """Matroska keeps only a channel count, so three PCM channels come back with no order ("3
    channels", as from a field recorder's WAV without a channel mask): into MP4 they are
    re-encoded as three-channel AAC, each channel's tone at its level in a speaker of its own."""
    rate, seconds = 48000, 0.2
    levels = np.array([0.05, 0.1, 0.15])
    wave = np.sin(2 * np.pi * 100 * np.arange(round(seconds * rate)) / rate)
    frame = av.AudioFrame.from_ndarray((wave[:, None] * levels).astype(np.float32).reshape(1, -1), format="flt",
                                       layout="3.0")
    frame.sample_rate, frame.pts = rate, 0
    bare = tmp_path / "bare.mkv"
    with av.open(str(bare), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=rate)
        stream.layout = "3.0"
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with av.open(str(bare)) as source:
        assert source.streams.audio[0].codec_context.layout.name == "3 channels"  # what the test relies on
    reencode_file(bare, tmp_path / "out.mp4", "aac")
    played_rate, channels, rms = played(tmp_path / "out.mp4")
    assert (played_rate, channels) == (rate, 3)
    assert sorted(rms[rms > 0.01]) == pytest.approx(levels / np.sqrt(2), rel=0.15)


def test_a_one_character_subtitle_is_kept(tmp_path):
    """A cue of one character ("?") is one byte of WebVTT: it is a cue, not an empty packet."""
    cues = [(1000, 2000, "?"), (2500, 3000, "Yes")]
    with av.open(str(transcode_subrip(tmp_path, cues, ".webm", "webvtt"))) as result:
        cues = [(p.pts * p.time_base * 1000, bytes(p)) for p in result.demux(result.streams.subtitles[0]) if p.size]
    assert cues == [(1000, b"?"), (2500, b"Yes")]
