"""MPEG program stream (.mpg) output: every picture keeps its own time.

The reference is the systems standard, read byte by byte here: a video packet's PTS belongs to
the picture whose picture start code is the first to begin in that packet (ISO/IEC 13818-1,
2.4.3.7, as in its MPEG-1 predecessor ISO/IEC 11172-1), which is also how FFmpeg's demuxer reads
it back.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
from video_media import Clip, decoded_seconds, write_clip

from ldl_video.cli import main

_PACK, _VIDEO = 0xBA, 0xE0
_NO_PES_HEADER = (0xBC, 0xBE, 0xBF, 0xF0, 0xF1, 0xF2, 0xF8, 0xFF)  # program stream map, padding, private 2, ...
_PICTURE, _SEQUENCE = b"\0\0\1\0", b"\0\0\1\xb3"


@dataclass
class PesPacket:
    start: int  # offset of its payload in the video elementary stream
    pts: int | None  # 90 kHz


def _timestamp(b: bytes) -> int:
    return ((b[0] >> 1) & 7) << 30 | b[1] << 22 | (b[2] >> 1) << 15 | b[3] << 7 | b[4] >> 1


def video_packets(data: bytes) -> tuple[list[PesPacket], bytes]:
    """The video PES packets of a program stream and the elementary stream they carry."""
    packets, stream, i = [], bytearray(), 0
    while (i := data.find(b"\0\0\1", i)) >= 0 and i + 6 <= len(data):
        code = data[i + 3]
        if code == _PACK:
            i += 12 if data[i + 4] >> 4 == 2 else 14 + (data[i + 13] & 7)  # MPEG-1 or MPEG-2 pack header
            continue
        if code < 0xBB:
            i += 1
            continue
        length = int.from_bytes(data[i + 4:i + 6], "big")
        body = data[i + 6:i + 6 + length]
        i += 6 + length
        if code != _VIDEO or code in _NO_PES_HEADER:
            continue
        pts, j = None, 0
        if body[0] >> 6 == 2:  # MPEG-2 PES header
            if body[1] & 0x80:
                pts = _timestamp(body[3:8])
            j = 3 + body[2]
        else:  # MPEG-1: stuffing, buffer size, then the time stamps
            while body[j] == 0xFF:
                j += 1
            if body[j] >> 6 == 1:
                j += 2
            if body[j] >> 4 in (2, 3):
                pts = _timestamp(body[j:j + 5])
            j += {2: 5, 3: 10}.get(body[j] >> 4, 1)
        packets.append(PesPacket(len(stream), pts))
        stream += body[j:]
    return packets, bytes(stream)


def _holder(packets: list[PesPacket], offset: int) -> int:
    return max(k for k, p in enumerate(packets) if p.start <= offset)


def test_every_picture_keeps_its_time_in_a_program_stream(media, tmp_path):
    # 384×288 pictures at q 2: a keyframe's sequence header ends one 2-KiB packet and its picture
    # start code opens the next (picture 108 here), the case FFmpeg's muxer stamped with the next
    # picture's time. A lossless source: x264's bytes vary between runs, its decoded frames do not.
    source = write_clip(media / "gop12-lossless.mkv", Clip(width=96, height=72, frames=150, gop=12, options={"qp": "0"},
                                                           audio=[("aac", 2, "eng")],
                                                           subtitles=[(200, 600, "Hello"), (700, 950, "World")]))
    out = tmp_path / "out.mpg"
    assert main([str(source), str(out), "-m", "bicubic", "-s", "4", "--quiet"]) == 0

    packets, stream = video_packets(out.read_bytes())
    pictures = []  # (offset of the picture start code, offset where its headers begin)
    at = 0
    while (at := stream.find(_PICTURE, at)) >= 0:
        sequence = stream.rfind(_SEQUENCE, pictures[-1][0] if pictures else 0, at)
        pictures.append((at, sequence if sequence >= 0 else at))
        at += 4
    assert len(pictures) == 150
    split = [n for n, (code, headers) in enumerate(pictures) if _holder(packets, headers) != _holder(packets, code)]
    assert split, "no keyframe's headers are split from its picture here: the case is not exercised"

    # the standard's reading: a packet's PTS is the time of the first picture start code in it
    with av.open(str(out)) as result:
        step = round(1 / (result.streams.video[0].average_rate * result.streams.video[0].time_base))
    first_pts = packets[0].pts
    for k, packet in enumerate(packets):
        if packet.pts is None:
            continue
        end = packets[k + 1].start if k + 1 < len(packets) else len(stream)
        starting = [n for n, (code, _) in enumerate(pictures) if packet.start <= code < end]
        assert starting, f"packet {k} has a PTS but no picture begins in it"
        assert packet.pts - first_pts == starting[0] * step, f"packet {k}: PTS of picture {(packet.pts - first_pts) // step}, " \
                                                             f"first picture in it is {starting[0]}"

    # and what a player shows: every source frame at its own time, none twice
    seconds = decoded_seconds(out)
    assert [round(t - seconds[0], 3) for t in seconds] == [round(t, 3) for t in decoded_seconds(source)]


def _sequence_extension(stream: bytes) -> bool:
    """MPEG-2 video: the sequence header is followed by an extension start code (0xB5) whose
    first four bits, the extension id, are 1 (ISO/IEC 13818-2, 6.2.2.3); MPEG-1 has none."""
    at = stream.find(_SEQUENCE)
    extension = stream.find(b"\0\0\1\xb5", at)
    return at >= 0 and extension >= 0 and stream[extension + 4] >> 4 == 1


def test_a_program_stream_takes_either_mpeg_video(media, tmp_path, capsys):
    # FFmpeg's .mpg muxer lists only MPEG-1 video and its .vob muxer only MPEG-2; a program
    # stream carries either, and DVD authoring wants MPEG-2 in .mpg
    source = write_clip(media / "ps-source.mkv", Clip(frames=12, audio=[("aac", 2, "eng")]))
    for suffix, codec, mpeg2 in ((".mpg", "mpeg2video", True), (".vob", "mpeg1video", False), (".mpg", None, False)):
        out = tmp_path / f"{codec}{suffix}"
        assert main([str(source), str(out), "-m", "bicubic", "-s", "2", "--quiet"] + (["--codec", codec] if codec else [])) == 0
        _, stream = video_packets(out.read_bytes())
        assert _sequence_extension(stream) is mpeg2, (suffix, codec)
        assert len(decoded_seconds(out)) == 12
    # H.264 in a program stream is FFmpeg's own habit, not the standard's: still refused in one line
    assert main([str(source), str(tmp_path / "h264.mpg"), "-m", "bicubic", "-s", "2", "--quiet", "--codec", "libx264"]) == 1
    assert "mpeg cannot hold libx264 video" in capsys.readouterr().err
    assert not (tmp_path / "h264.mpg").exists()
