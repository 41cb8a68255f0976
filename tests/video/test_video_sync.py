"""Sound stays with its picture: gaps and late starts in re-encoded audio, transport-stream
clocks that start late or wrap. The reference is FFmpeg's own CLI: it keeps audio gaps, and
`-c copy` starts the output of a .ts at 0 with every stream moved by the same amount."""

from __future__ import annotations

import re

import av
import pytest
from video_media import audio_timeline, decoded_seconds, loudness, stream_starts

from ldl_video.cli import main


def upscale(src, dst, *extra) -> int:
    return main([str(src), str(dst), "-m", "bicubic", "-s", "2", "--quiet", *extra])


@pytest.mark.parametrize(("codec", "suffix", "reencoded"), [
    ("pcm_s16le", ".webm", "opus"),  # PCM cannot go into WebM: Opus
    ("vorbis", ".mov", "aac"),  # nor Vorbis into MOV: AAC
    ("pcm_s16le", ".mp4", "aac"),  # MP4 takes PCM only with a named channel layout
])
def test_reencoded_audio_keeps_its_gaps_and_late_start(gapped_audio, tmp_path, capsys, codec, suffix, reencoded):
    source = gapped_audio(codec)
    out = tmp_path / f"out{suffix}"
    assert main([str(source), str(out), "-m", "bicubic", "-s", "2"]) == 0
    assert re.search(r"gaps of 1\.0\d s filled with silence", capsys.readouterr().err)
    with av.open(str(out)) as result:
        assert result.streams.audio[0].codec_context.name == reencoded
    timeline = audio_timeline(out)
    tone = loudness(audio_timeline(source), 0.55, 0.95)
    assert tone > 0.15
    # quiet before 0.5 s and inside the hole, sounding where the source sounds (±50 ms)
    assert loudness(timeline, 0.0, 0.45) < 0.01
    assert loudness(timeline, 0.55, 0.95) == pytest.approx(tone, rel=0.1)
    assert loudness(timeline, 1.05, 1.95) < 0.01
    assert loudness(timeline, 2.05, 2.95) == pytest.approx(tone, rel=0.1)
    assert len(decoded_seconds(out)) == 75


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_transport_stream_that_starts_an_hour_in_starts_at_zero(late_ts, tmp_path, suffix):
    out = tmp_path / f"out{suffix}"
    assert upscale(late_ts, out) == 0
    source, result = stream_starts(late_ts), stream_starts(out)
    assert source["video"] == pytest.approx(3600.0)
    assert min(result.values()) == pytest.approx(0.0, abs=0.002)
    # the audio still leads the picture by what it did in the source (AAC priming, 21 ms)
    assert result["video"] - result["audio"] == pytest.approx(source["video"] - source["audio"], abs=0.002)
    with av.open(str(out)) as container:
        assert container.duration / av.time_base < 2.5  # 2 s of video, not an hour of nothing
    seconds = decoded_seconds(out)
    assert len(seconds) == 50 and seconds[-1] - seconds[0] == pytest.approx(49 / 25, abs=0.002)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_transport_stream_whose_clock_wraps_keeps_every_frame(wrapping_ts, tmp_path, suffix):
    out = tmp_path / f"out{suffix}"
    source = stream_starts(wrapping_ts)
    assert source["video"] < -1.3  # the demuxer unwraps the early timestamps to negative times
    assert upscale(wrapping_ts, out) == 0
    seconds = decoded_seconds(out)
    assert len(seconds) == 50 and min(seconds) >= 0  # none hidden before the start by an edit list
    result = stream_starts(out)
    assert result["audio"] == pytest.approx(0.0, abs=0.002)
    assert result["video"] - result["audio"] == pytest.approx(source["video"] - source["audio"], abs=0.002)
    assert loudness(audio_timeline(out), 0.05, 0.5) > 0.15  # the first sound is there
