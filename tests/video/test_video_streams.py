"""Everything but the picture survives: audio packet for packet, subtitles, chapters, metadata."""

from __future__ import annotations

import av
import pytest
from video_media import assert_same_packets, decoded_pts, decoded_seconds, packet_digests, subtitle_texts

from ldl_video.cli import main


def upscale(src, dst, *extra) -> int:
    return main([str(src), str(dst), "-m", "bicubic", "-s", "2", "--quiet", *extra])


def test_mkv_keeps_every_stream_packet_for_packet(multitrack_mkv, tmp_path):
    out = tmp_path / "out.mkv"
    assert upscale(multitrack_mkv, out) == 0
    assert_same_packets(packet_digests(out, "audio"), packet_digests(multitrack_mkv, "audio"))
    assert subtitle_texts(out) == subtitle_texts(multitrack_mkv) == [(0.2, "Hello"), (0.7, "World")]
    assert decoded_pts(out) == decoded_pts(multitrack_mkv)
    with av.open(str(out)) as result, av.open(str(multitrack_mkv)) as source:
        assert result.metadata["title"] == "A test clip"
        assert [c["metadata"]["title"] for c in result.chapters()] == ["One", "Two"]
        assert [float(c["start"] * c["time_base"]) for c in result.chapters()] == [0.0, 0.5]
        assert [s.metadata.get("language") for s in result.streams.audio] == ["eng", "fra"]
        assert [s.type for s in result.streams] == ["video", "audio", "audio", "subtitle"]
        video = result.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == (128, 96)
        assert len(list(result.demux(result.streams.video[0]))) >= 25
        assert source.streams.video[0].codec_context.width == 64


def test_mp4_copies_aac_and_opus_and_converts_subrip_to_mov_text(multitrack_mkv, tmp_path):
    out = tmp_path / "out.mp4"
    assert upscale(multitrack_mkv, out) == 0
    assert_same_packets(packet_digests(out, "audio"), packet_digests(multitrack_mkv, "audio"))
    with av.open(str(out)) as result:
        assert result.streams.subtitles[0].codec_context.name == "mov_text"
        assert [s.metadata.get("language") for s in result.streams.audio] == ["eng", "fra"]
    assert subtitle_texts(out) == [(0.2, "Hello"), (0.7, "World")]


def test_webm_reencodes_aac_to_opus_in_sync(multitrack_mkv, tmp_path, capsys):
    out = tmp_path / "out.webm"
    assert main([str(multitrack_mkv), str(out), "-m", "bicubic", "-s", "2"]) == 0
    err = capsys.readouterr().err
    assert "re-encoded as libopus" in err  # the AAC track: WebM takes only Opus and Vorbis
    assert_same_packets(packet_digests(out, "audio")[1:], packet_digests(multitrack_mkv, "audio")[1:])
    reencoded = packet_digests(out, "audio")[0]
    source = packet_digests(multitrack_mkv, "audio")[0]
    assert abs(reencoded[0][0] - max(source[0][0], 0)) < 0.03  # starts together with the video
    assert abs(sum(p[1] for p in reencoded) - sum(p[1] for p in source)) < 0.05
    with av.open(str(out)) as result:
        assert result.streams.video[0].codec_context.name == "vp9"
        assert result.streams.subtitles[0].codec_context.name == "webvtt"
    assert [text for _, text in subtitle_texts(out)] == ["Hello", "World"]


def test_webm_without_frame_count(webm_clip, tmp_path):
    with av.open(str(webm_clip)) as source:
        assert source.streams.video[0].frames == 0  # the container does not say
    out = tmp_path / "out.mkv"
    assert upscale(webm_clip, out) == 0
    assert decoded_pts(out) == decoded_pts(webm_clip)
    assert_same_packets(packet_digests(out, "audio"), packet_digests(webm_clip, "audio"))


@pytest.mark.parametrize(("suffix", "copied"), [(".mkv", 2), (".mov", 1)])
def test_mp4_source_into_other_containers(multitrack_mkv, tmp_path, suffix, copied):
    mp4 = tmp_path / "mid.mp4"
    assert upscale(multitrack_mkv, mp4) == 0
    out = tmp_path / f"again{suffix}"
    assert main([str(mp4), str(out), "-m", "bicubic", "-s", "2", "--quiet"]) == 0
    # MOV's muxer refuses Opus (only MP4 takes it), so that track is re-encoded there.
    assert_same_packets(packet_digests(out, "audio")[:copied], packet_digests(mp4, "audio")[:copied])
    with av.open(str(out)) as result:
        assert [s.codec_context.name for s in result.streams.audio] == ["aac", "opus" if copied == 2 else "aac"]
    assert [text for _, text in subtitle_texts(out)] == ["Hello", "World"]


def test_matroska_attachments_are_kept(attachment_mkv, tmp_path):
    out = tmp_path / "out.mkv"
    assert upscale(attachment_mkv, out) == 0
    with av.open(str(out)) as result:
        attachments = [s for s in result.streams if s.type == "attachment"]
        assert [(a.metadata.get("filename"), a.mimetype, a.data) for a in attachments] == [
            ("font.ttf", "application/x-truetype-font", b"not really a font, but bytes to keep")]


def _pictures(path) -> list[tuple[str | None, bytes]]:
    """Attached pictures as FFmpeg reads them back: (file name, bytes) of each; a Matroska image
    attachment and MP4 cover art both come out as video streams marked attached_pic."""
    found = []
    with av.open(str(path)) as container:
        for stream in container.streams.video:
            if int(stream.disposition) & int(av.stream.Disposition.attached_pic):
                with av.open(str(path)) as again:
                    data = next(bytes(p) for p in again.demux(again.streams[stream.index]) if p.size)
                found.append((stream.metadata.get("filename"), data))
    return found


@pytest.mark.parametrize("source_suffix", [".mkv", ".mp4"])  # an image attachment, MP4 cover art
@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_cover_art_stays_cover_art(media, tmp_path, source_suffix, suffix):
    from video_media import Clip, cover_jpeg, write_clip

    picture = cover_jpeg()
    source = write_clip(media / f"cover{source_suffix}", Clip(frames=3, audio=[("aac", 2, "eng")], cover=picture))
    out = tmp_path / f"out{suffix}"
    assert upscale(source, out) == 0
    pictures = _pictures(out)
    assert [data for _, data in pictures] == [picture]  # the same bytes, once
    if suffix == ".mkv":
        assert pictures[0][0] == "cover.jpg"
    with av.open(str(out)) as result:  # and not an ordinary one-frame video track
        ordinary = [s for s in result.streams.video if not int(s.disposition) & int(av.stream.Disposition.attached_pic)]
        assert len(ordinary) == 1 and ordinary[0].codec_context.name == "h264"


def test_cover_art_that_cannot_be_kept_is_said(media, tmp_path, capsys):
    from video_media import Clip, cover_jpeg, write_clip

    source = write_clip(media / "cover-for-mov.mp4", Clip(frames=3, cover=cover_jpeg()))
    out = tmp_path / "out.mov"
    assert main([str(source), str(out), "-m", "bicubic", "-s", "2"]) == 0
    assert "cover art cover.jpg dropped: mov cannot hold it" in capsys.readouterr().err
    with av.open(str(out)) as result:
        assert [s.type for s in result.streams] == ["video"]


@pytest.mark.parametrize(("suffix", "video", "audio"), [
    (".ts", "h264", "aac"),  # a broadcast chain's container: H.264 and the AAC copied
    (".m2ts", "h264", "aac"),
    (".mpg", "mpeg1video", "mp2"),  # MPEG-PS as FFmpeg writes it by default
    (".mxf", "mpeg2video", "pcm_s16le"),  # a broadcast hand-over file
])
def test_containers_people_write_to(moving_mkv, tmp_path, suffix, video, audio):
    out = tmp_path / f"out{suffix}"
    assert upscale(moving_mkv, out) == 0
    with av.open(str(out)) as result:
        assert [s.codec_context.name for s in result.streams] == [video, audio]
    seconds = [round(t - decoded_seconds(out)[0], 3) for t in decoded_seconds(out)]
    assert seconds == [round(t, 3) for t in decoded_seconds(moving_mkv)]  # every frame, same spacing
    if audio == "aac":  # copied, not re-encoded: the same frames behind the 7-byte ADTS header MPEG-TS adds
        assert _audio_payloads(out, skip=7) == _audio_payloads(moving_mkv)


def _audio_payloads(path, skip: int = 0) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p)[skip:] for p in container.demux(audio=0) if p.size]


def test_libx264_into_a_transport_stream(moving_mkv, tmp_path):
    out = tmp_path / "out.ts"
    assert upscale(moving_mkv, out, "--codec", "libx264", "--crf", "20") == 0
    assert len(decoded_pts(out)) == 11
