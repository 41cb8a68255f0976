"""A copied AAC track keeps every packet's duration, the short last one included, when the
source's audio comes late in the file (PyAV's muxer wrote the video first), in one pass and in
segments."""

from __future__ import annotations

import av
import pytest
from video_media import Clip, write_clip

from ldl_video.cli import main
from ldl_video.video.segments import plan_segments

SAMPLE_RATE, AAC_FRAME = 48000, 1024


def audio_durations_ms(path) -> list[int]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return [round(p.duration * stream.time_base * 1000) for p in container.demux(stream) if p.size]


@pytest.fixture(scope="module")
def late_audio_mkv(tmp_path_factory):
    # 16.48 s: past FFmpeg's 5-s first look at the file, and 791040 samples end on half a frame
    clip = Clip(width=64, height=36, frames=412, gop=25, audio=[("aac", 2, "eng")], options={"preset": "ultrafast"})
    path = write_clip(tmp_path_factory.mktemp("late-audio") / "late-audio.mkv", clip)
    with av.open(str(path)) as source:
        assert not source.streams.audio[0].codec_context.frame_size, "the audio is not late: the case is not exercised"
    return path


@pytest.mark.parametrize("segment", ["0", "4"])
def test_copied_aac_keeps_its_last_short_packet(late_audio_mkv, tmp_path, segment):
    out = tmp_path / "out.mkv"
    assert main([str(late_audio_mkv), str(out), "-m", "bicubic", "-s", "2", "--segment", segment, "--quiet"]) == 0
    if segment != "0":
        assert len(plan_segments(late_audio_mkv, 0, float(segment)).segments) >= 2
    samples = round(412 / 25 * SAMPLE_RATE)
    last_ms = round((samples % AAC_FRAME) / SAMPLE_RATE * 1000)  # 512 samples: 10.7 ms
    durations = audio_durations_ms(out)
    assert durations[-1] == last_ms == 11
    assert set(durations[:-1]) == {round(AAC_FRAME / SAMPLE_RATE * 1000)}  # 21 ms each
    assert durations == audio_durations_ms(late_audio_mkv)
