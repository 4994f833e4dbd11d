"""Y4M reading and writing: header tags, streaming frames, and the errors users see."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from codeclab.video.frames import Frame, VideoFormat
from codeclab.video.y4m import Y4MError, Y4MHeader, Y4MReader, Y4MWriter

CLIPS = Path(__file__).resolve().parents[2] / ".." / "shared" / "clips"


@pytest.fixture
def carphone_y4m() -> Path:
    path = CLIPS / "carphone_qcif.y4m"
    if not path.is_file():
        pytest.skip(f"real test clip not found at {path} (expects ../shared/clips beside the repo)")
    return path


def _frames(fmt: VideoFormat, count: int, seed: int = 1) -> list[Frame]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        out.append(
            Frame(
                rng.integers(0, 256, (fmt.height, fmt.width), dtype=np.uint8),
                rng.integers(0, 256, (fmt.chroma_height, fmt.chroma_width), dtype=np.uint8),
                rng.integers(0, 256, (fmt.chroma_height, fmt.chroma_width), dtype=np.uint8),
            )
        )
    return out


def _write_raw_y4m(path: Path, header: bytes, frames: list[Frame], frame_line: bytes) -> Path:
    with path.open("wb") as out:
        out.write(header)
        for frame in frames:
            out.write(frame_line)
            out.write(frame.to_bytes())
    return path


def _assert_same(a: Frame, b: Frame) -> None:
    for pa, pb in zip((a.y, a.u, a.v), (b.y, b.u, b.v), strict=True):
        np.testing.assert_array_equal(pa, pb)


def test_reads_every_tag_of_the_real_carphone_header(carphone_y4m: Path) -> None:
    with Y4MReader(carphone_y4m) as reader:
        header = reader.header
        assert (header.width, header.height) == (176, 144)
        assert header.fps == Fraction(30000, 1001)
        assert header.interlace == "p"
        assert header.pixel_aspect == Fraction(128, 117)
        assert header.colourspace == "420mpeg2"
        assert header.extensions == ("XYSCSS=420MPEG2",)
        assert header.unknown_tags == ()
        assert reader.format == VideoFormat(176, 144, Fraction(30000, 1001))


def test_streams_all_120_carphone_frames_with_natural_content(carphone_y4m: Path) -> None:
    with Y4MReader(carphone_y4m) as reader:
        frames = list(reader)
    assert len(frames) == 120
    for frame in frames:
        frame.check(VideoFormat(176, 144, Fraction(30000, 1001)))
    assert float(frames[0].y.std()) > 20
    assert not np.array_equal(frames[0].y, frames[1].y)


def test_round_trip_keeps_frames_and_header_at_odd_size(tmp_path: Path) -> None:
    fmt = VideoFormat(33, 17, Fraction(30000, 1001))
    frames = _frames(fmt, 4)
    path = tmp_path / "odd.y4m"
    with Y4MWriter(path, fmt, pixel_aspect=Fraction(128, 117), colourspace="420mpeg2") as writer:
        for frame in frames:
            writer.write(frame)
    assert writer.frames_written == 4
    assert path.stat().st_size == len(writer.header.to_line()) + 4 * (6 + fmt.frame_bytes)
    with Y4MReader(path) as reader:
        assert reader.header == Y4MHeader(
            33, 17, Fraction(30000, 1001), "p", Fraction(128, 117), "420mpeg2"
        )
        assert (reader.format.chroma_width, reader.format.chroma_height) == (17, 9)
        got = list(reader)
    assert len(got) == 4
    for a, b in zip(got, frames, strict=True):
        _assert_same(a, b)


def test_writer_writes_the_standard_header_line(tmp_path: Path) -> None:
    path = tmp_path / "h.y4m"
    with Y4MWriter(path, VideoFormat(352, 288, Fraction(30))):
        pass
    assert path.read_bytes() == b"YUV4MPEG2 W352 H288 F30:1 Ip A0:0 C420jpeg\n"


def test_unknown_pixel_aspect_round_trips_as_none(tmp_path: Path) -> None:
    path = tmp_path / "a.y4m"
    with Y4MWriter(path, VideoFormat(4, 4, Fraction(25)), extensions=("XYSCSS=420JPEG",)):
        pass
    with Y4MReader(path) as reader:
        assert reader.header.pixel_aspect is None
        assert reader.header.extensions == ("XYSCSS=420JPEG",)


def test_tags_parse_in_any_order_and_unknown_tags_are_kept(tmp_path: Path) -> None:
    fmt = VideoFormat(6, 4, Fraction(25))
    frames = _frames(fmt, 2)
    header = b"YUV4MPEG2 C420 XCOLORRANGE=LIMITED F25:1 H4  W6 Ip Zfuture\n"
    path = _write_raw_y4m(tmp_path / "order.y4m", header, frames, b"FRAME\n")
    with Y4MReader(path) as reader:
        assert reader.format == fmt
        assert reader.header.colourspace == "420"
        assert reader.header.extensions == ("XCOLORRANGE=LIMITED",)
        assert reader.header.unknown_tags == ("Zfuture",)
        assert len(list(reader)) == 2


def test_missing_colourspace_tag_reads_as_420jpeg(tmp_path: Path) -> None:
    fmt = VideoFormat(4, 2, Fraction(24000, 1001))
    frames = _frames(fmt, 1)
    path = _write_raw_y4m(
        tmp_path / "noc.y4m", b"YUV4MPEG2 W4 H2 F24000:1001\n", frames, b"FRAME\n"
    )
    with Y4MReader(path) as reader:
        assert reader.header.colourspace is None
        _assert_same(next(reader), frames[0])


def test_frame_tags_are_parsed_and_ignored(tmp_path: Path) -> None:
    fmt = VideoFormat(8, 6, Fraction(30))
    frames = _frames(fmt, 3)
    path = _write_raw_y4m(
        tmp_path / "tags.y4m", b"YUV4MPEG2 W8 H6 F30:1 Im\n", frames, b"FRAME Itp1 XTIME=12\n"
    )
    with Y4MReader(path) as reader:
        got = list(reader)
    assert len(got) == 3
    for a, b in zip(got, frames, strict=True):
        _assert_same(a, b)


def test_truncated_last_frame_names_the_file_and_the_frame(tmp_path: Path) -> None:
    fmt = VideoFormat(8, 6, Fraction(30))
    path = _write_raw_y4m(
        tmp_path / "cut.y4m", b"YUV4MPEG2 W8 H6 F30:1\n", _frames(fmt, 3), b"FRAME\n"
    )
    path.write_bytes(path.read_bytes()[:-10])
    with Y4MReader(path) as reader:
        assert reader.read_frame() is not None
        assert reader.read_frame() is not None
        with pytest.raises(Y4MError, match=r"cut\.y4m: frame 2 is truncated: 62 of 72 bytes"):
            reader.read_frame()


def test_file_cut_inside_a_frame_line_is_reported_truncated(tmp_path: Path) -> None:
    fmt = VideoFormat(8, 6, Fraction(30))
    path = _write_raw_y4m(
        tmp_path / "cut.y4m", b"YUV4MPEG2 W8 H6 F30:1\n", _frames(fmt, 1), b"FRAME\n"
    )
    with path.open("ab") as out:
        out.write(b"FRA")
    with Y4MReader(path) as reader, pytest.raises(Y4MError, match="frame 1 is truncated"):
        list(reader)


def test_garbage_instead_of_a_frame_line_names_the_frame(tmp_path: Path) -> None:
    fmt = VideoFormat(8, 6, Fraction(30))
    path = _write_raw_y4m(
        tmp_path / "bad.y4m", b"YUV4MPEG2 W8 H6 F30:1\n", _frames(fmt, 1), b"FRAME\n"
    )
    with path.open("ab") as out:
        out.write(b"JUNK\n" + bytes(fmt.frame_bytes))
    with Y4MReader(path) as reader, pytest.raises(Y4MError, match="frame 1: expected a FRAME line"):
        list(reader)


def test_bad_magic_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "movie.y4m"
    path.write_bytes(b"RIFF\x00\x00\x00\x00AVI LIST")
    with pytest.raises(Y4MError, match=r"movie\.y4m: not a Y4M file"):
        Y4MReader(path)


@pytest.mark.parametrize("colourspace", ["420p10", "420p16", "422", "444", "444alpha", "mono"])
def test_unsupported_colourspace_names_file_tag_and_fix(tmp_path: Path, colourspace: str) -> None:
    path = tmp_path / "carphone.y4m"
    path.write_bytes(f"YUV4MPEG2 W176 H144 F30:1 Ip C{colourspace}\nFRAME\n".encode())
    with pytest.raises(Y4MError) as info:
        Y4MReader(path)
    message = str(info.value)
    assert f"carphone.y4m: colourspace C{colourspace} is not supported" in message
    assert "C420jpeg" in message
    assert "ffmpeg -pix_fmt yuv420p" in message


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        (b"YUV4MPEG2 W176 F30:1\n", "no frame size"),
        (b"YUV4MPEG2 W176 H144\n", "no frame rate"),
        (b"YUV4MPEG2 W176 H144 F0:0\n", "frame rate F0:0 is unknown"),
        (b"YUV4MPEG2 W176 H144 F30\n", "F30 is not a ratio"),
        (b"YUV4MPEG2 W0 H144 F30:1\n", "W0 is not a positive frame size"),
        (b"YUV4MPEG2 W176 H144 F30:1", "not terminated"),
    ],
)
def test_malformed_header_is_rejected_with_the_reason(
    tmp_path: Path, header: bytes, problem: str
) -> None:
    path = tmp_path / "h.y4m"
    path.write_bytes(header)
    with pytest.raises(Y4MError, match=problem):
        Y4MReader(path)


def test_skip_moves_past_frames_without_reading_them(tmp_path: Path) -> None:
    fmt = VideoFormat(8, 6, Fraction(30))
    frames = _frames(fmt, 5)
    path = _write_raw_y4m(tmp_path / "s.y4m", b"YUV4MPEG2 W8 H6 F30:1\n", frames, b"FRAME Ip\n")
    with Y4MReader(path) as reader:
        assert reader.skip(3) == 3
        assert reader.frames_read == 3
        _assert_same(next(reader), frames[3])
        assert reader.skip(10) == 1
        assert reader.read_frame() is None


def test_writer_rejects_a_frame_of_the_wrong_size(tmp_path: Path) -> None:
    path = tmp_path / "w.y4m"
    wrong = Frame.blank(VideoFormat(8, 8, Fraction(30)))
    with (
        Y4MWriter(path, VideoFormat(8, 6, Fraction(30))) as writer,
        pytest.raises(ValueError, match="frame 0: plane y has shape"),
    ):
        writer.write(wrong)


def test_writer_refuses_a_colourspace_it_cannot_write(tmp_path: Path) -> None:
    with pytest.raises(Y4MError, match="C444 is not supported"):
        Y4MWriter(tmp_path / "w.y4m", VideoFormat(8, 6, Fraction(30)), colourspace="444")
