"""Audio in channel layouts an encoder may refuse, carried into WebM (Opus) and MP4 (PCM copied,
or AAC): each run finishes, and every source channel is heard at its own level in the output,
or the note says the sound was mixed into another layout. The reference is the source as written: a 100 Hz
tone at a different level in each channel, read back from the output by PyAV with the
speakers' names FFmpeg gives them.

libopus takes only the Vorbis layouts of RFC 7845 5.1.1.2 (mono, stereo, 3.0, quad, 5.0, 5.1,
6.1, 7.1), and of these it writes 5.0 and 6.1 with speakers swapped; FFmpeg's AAC encoder takes
no layout without named speakers (its 'downmix' pair DL+DR, a lone front-left channel). Both
refused such a source when the output was opened, and the run stopped with an error that named
the video encoder."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from video_media import Clip

from ldl_video.cli import main
from ldl_video.video.streams import AudioTranscode, plan_streams

RATE = 48000
SECONDS = 0.3
# Opus's layouts (those libopus keeps in place) hold these only by spreading or sharing a speaker.
MIXED_FOR_OPUS = {"3.0(back)", "4.0", "6.0", "6.1", "7.1(wide)", "hexagonal", "octagonal"}
LAYOUTS = ["downmix", "2.1", "3.0(back)", "4.0", "quad(side)", "5.0", "5.1(side)", "6.0", "6.1", "7.1(wide)", "hexagonal",
           "octagonal", "FL"]


def levels_of(layout: str) -> np.ndarray:
    """Each channel's tone amplitude: all different, so a channel can be told by its level."""
    return 0.04 * (1 + np.arange(av.AudioLayout(layout).nb_channels))


def _tone(layout: str, samples: int, start: int, rate: int = RATE) -> av.AudioFrame:
    wave = np.sin(2 * np.pi * 100 * np.arange(start, start + samples) / rate)
    interleaved = (wave[:, None] * levels_of(layout)).astype(np.float32).reshape(1, -1)  # packed: PyAV's planar stops at 8
    frame = av.AudioFrame.from_ndarray(interleaved, format="flt", layout=layout)
    frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
    return frame


def write_mov(path: Path, layout: str, video_frames: int = 0, rate: int = RATE) -> Path:
    """A QuickTime file (its channel layout atom names the speakers, as an editor's export does)
    with 16-bit PCM in `layout`, and `video_frames` H.264 pictures at 25 fps."""
    with av.open(str(path), "w") as out:
        video = None
        if video_frames:
            video = out.add_stream("libx264", rate=25)
            video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = out.add_stream("pcm_s16le", rate=rate)
        audio.layout = layout
        clip = Clip()
        for i in range(video_frames):
            frame = av.VideoFrame.from_ndarray(clip.frame(i)).reformat(format="yuv420p")
            frame.pts = i
            out.mux(video.encode(frame))
        if video is not None:
            out.mux(video.encode())
        total = max(round(SECONDS * rate), video_frames * rate // 25)
        for start in range(0, total, 960):
            out.mux(audio.encode(_tone(layout, min(960, total - start), start, rate)))
        out.mux(audio.encode(None))
    with av.open(str(path)) as check:
        assert check.streams.audio[0].codec_context.layout.name in (layout, f"1 channels ({layout})")  # what the test relies on
    return path


def heard(path: Path) -> tuple[str, list[str], np.ndarray]:
    """(the output's layout, its speaker names, each channel's tone amplitude over the middle of
    the sound)."""
    with av.open(str(path)) as result:
        stream = result.streams.audio[0]
        layout = stream.codec_context.layout.name
        names = [channel.name for channel in stream.codec_context.layout.channels]
        packed = av.AudioResampler(format="dbl")  # one row, channels interleaved (PyAV's planar stops at 8)
        samples = np.concatenate([g.to_ndarray() for f in result.decode(stream) for g in packed.resample(f)], axis=1)
    planes = samples.reshape(-1, len(names)).T
    middle = planes[:, planes.shape[1] // 4 : planes.shape[1] * 3 // 4]
    return layout, names, np.sqrt(2 * np.mean(middle**2, axis=1))


def carry(source: Path, output: Path, codec: str | None = None) -> list[str]:
    """The audio track through the streams code into `output`: as plan_streams decides, or
    re-encoded with `codec`. Returns the notes."""
    notes: list[str] = []
    with av.open(str(source)) as src, av.open(str(output), "w") as out:
        track = src.streams.audio[0]
        if codec is None:
            handler = plan_streams(out, [track], notes)[track.index]
        else:
            handler = AudioTranscode(out, track, codec)
            notes.append(handler.description)
        for packet in src.demux(track):
            if packet.size:
                out.mux(handler.packets(packet))
        out.mux(handler.flush())
    return notes


def assert_every_channel_at_its_level(layout: str, names: list[str], amplitudes: np.ndarray) -> None:
    """Each source channel's level in an output channel of its own (a speaker of the same name
    where the output has one), the output's other channels silent."""
    source_names = [channel.name for channel in av.AudioLayout(layout).channels]
    unused = set(range(len(names)))
    for name, level in zip(source_names, levels_of(layout), strict=True):
        matches = [i for i in unused if amplitudes[i] == pytest.approx(level, rel=0.12)]
        assert matches, f"{name} at {level:.2f} is not in {dict(zip(names, amplitudes.round(3), strict=True))}"
        where = names.index(name) if name in names else matches[0]
        assert where in matches, f"{name} is not in the output's {name}"
        unused.remove(where)
    assert all(amplitudes[i] < 0.004 for i in unused)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(("suffix", "codec"), [(".webm", None), (".mp4", None), (".mp4", "aac")])
def test_every_layout_is_carried_with_its_channels_or_said_to_be_mixed_down(tmp_path, layout, suffix, codec):
    source = write_mov(tmp_path / "in.mov", layout)
    output = tmp_path / f"out{suffix}"
    notes = carry(source, output, codec)
    played, names, amplitudes = heard(output)
    if suffix == ".webm" and layout in MIXED_FOR_OPUS:
        said = [n for n in notes if "mixed into" in n]
        assert len(said) == 1 and f"its {layout} channels mixed into {played} (" in said[0]
        assert (amplitudes > 0.02).sum() >= 4  # sound in most speakers, not a stereo fold
    else:
        assert not any("mixed into" in n for n in notes)
        assert_every_channel_at_its_level(layout, names, amplitudes)


def test_a_downmix_pair_goes_into_webm_as_stereo_through_the_command(capsys, tmp_path):
    """The reported case end to end: a MOV whose PCM is FFmpeg's 'downmix' pair (DL+DR, as
    `ffmpeg -af pan=downmix` writes), upscaled into WebM: the run succeeds and the pair is
    the Opus track's left and right."""
    source = write_mov(tmp_path / "downmix.mov", "downmix", video_frames=8)
    output = tmp_path / "out.webm"
    code = main([str(source), str(output), "-m", "bicubic", "-s", "2", "--quiet"])
    assert code == 0, capsys.readouterr().err
    _, names, amplitudes = heard(output)
    assert names == ["FL", "FR"]
    assert amplitudes == pytest.approx(levels_of("downmix"), rel=0.12)


def test_a_gap_in_eight_channel_audio_is_filled_with_silence(tmp_path):
    """7.1 AAC (decoded as planar float) that has no packets between 1 s and 2 s, re-encoded as
    Opus: the hole is silence and the sound after it starts at 2 s. Filling it stopped the run
    (PyAV cannot hand out the planes of a planar frame of 8 channels)."""
    from video_media import audio_timeline

    source = tmp_path / "gap71.mkv"
    with av.open(str(source), "w") as out:
        audio = out.add_stream("aac", rate=RATE)
        audio.layout = "7.1"
        for start in [*range(0, RATE, 1024), *range(2 * RATE, 3 * RATE, 1024)]:
            for frame in av.AudioResampler(format="fltp", layout="7.1", rate=RATE).resample(_tone("7.1", 1024, start)):
                frame.pts = start
                out.mux(audio.encode(frame))
        out.mux(audio.encode())
    output = tmp_path / "gap71.webm"
    carry(source, output)
    timeline = audio_timeline(output)
    sounding = np.flatnonzero(np.abs(timeline) > 0.01) / RATE
    assert sounding[sounding < 1.5][-1] == pytest.approx(1.0, abs=0.01)
    assert sounding[sounding > 1.5][0] == pytest.approx(2.0, abs=0.01)
    assert heard(output)[0] == "7.1"


@pytest.mark.parametrize(("layout", "target", "fate"), [
    ("downmix", "stereo", "carried as stereo, each at its level"),  # DL+DR are a stereo pair: nothing mixed
    # FL FR FC BC: Opus has FC, but no back centre (RFC 7845 5.1.1.2), so BC is spread over 5.1's rear pair
    ("4.0", "5.1", "mixed into 5.1 (libopus cannot code 4.0; use .mkv to keep it as it is)"),
])
def test_the_note_names_the_track_its_new_codec_and_what_became_of_its_speakers(tmp_path, layout, target, fate):
    """The run's note is one sentence: which track, re-encoded as what and why, then what became
    of its speakers; the layout it names is the one a player finds in the file."""
    output = tmp_path / "out.webm"
    notes = carry(write_mov(tmp_path / "in.mov", layout), output)
    assert heard(output)[0] == target
    assert notes == [f"audio #0 (pcm_s16le) re-encoded as libopus: the container cannot take it; its {layout} channels {fate}"]


def test_pcm_of_more_than_two_channels_goes_into_flv_as_aac_at_its_levels(tmp_path):
    """FLV's audio tag flags mono or stereo only (Adobe's FLV specification 10.1, E.4.2.1); more
    channels need enhanced FLV's multichannel header, which names the codec by a FourCC, and PCM
    has none. A MOV with 5.1 PCM at 44.1 kHz (a rate FLV's tag can flag) upscaled into FLV: the
    run finishes and the FLV's AAC has every speaker at its level. FFmpeg's muxer aborted the
    whole process (an assertion) while the streams were being planned, so the command runs in a
    process of its own."""
    source = write_mov(tmp_path / "in.mov", "5.1", video_frames=8, rate=44100)
    output = tmp_path / "out.flv"
    done = subprocess.run([sys.executable, "-m", "ldl_video.cli", str(source), str(output), "-m", "bicubic", "-s", "2",
                           "--quiet"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-800:]
    played, names, amplitudes = heard(output)
    assert played == "5.1"
    assert_every_channel_at_its_level("5.1", names, amplitudes)
