"""open_video: Y4M and PyAV inputs as one stream of yuv420p frames, and its input errors."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from codeclab.video.frames import Frame, VideoFormat
from codeclab.video.source import VideoInputError, open_video
from codeclab.video.y4m import Y4MWriter

CLIPS = Path(__file__).resolve().parents[2] / ".." / "shared" / "clips"


def _clip(name: str) -> Path:
    path = CLIPS / name
    if not path.is_file():
        pytest.skip(f"real test clip not found at {path} (expects ../shared/clips beside the repo)")
    return path


@pytest.fixture
def carphone_y4m() -> Path:
    return _clip("carphone_qcif.y4m")


@pytest.fixture
def carphone_mp4() -> Path:
    return _clip("carphone_pristine.mp4")


@pytest.fixture
def bikes_mp4() -> Path:
    return _clip("bikes.mp4")


def _read_all(path: Path, **kwargs: int) -> list[Frame]:
    with open_video(path, **kwargs) as video:
        return list(video)


def _same(a: Frame, b: Frame) -> bool:
    return all(np.array_equal(p, q) for p, q in zip((a.y, a.u, a.v), (b.y, b.u, b.v), strict=True))


def _ramp_frames(fmt: VideoFormat, count: int) -> list[Frame]:
    rng = np.random.default_rng(7)
    return [
        Frame(
            rng.integers(16, 236, (fmt.height, fmt.width), dtype=np.uint8),
            rng.integers(16, 241, (fmt.chroma_height, fmt.chroma_width), dtype=np.uint8),
            rng.integers(16, 241, (fmt.chroma_height, fmt.chroma_width), dtype=np.uint8),
        )
        for _ in range(count)
    ]


def test_h264_mp4_decodes_to_exactly_the_y4m_frames(carphone_y4m: Path, carphone_mp4: Path) -> None:
    # The Y4M was decoded from this MP4: H.264 decoding is bit-exact, so every sample matches.
    with open_video(carphone_mp4) as mp4, open_video(carphone_y4m) as y4m:
        assert mp4.format == y4m.format == VideoFormat(176, 144, Fraction(30000, 1001))
        assert y4m.container == "y4m"
        assert "mp4" in mp4.container
        pairs = list(zip(mp4, y4m, strict=True))
    assert len(pairs) == 120
    assert all(_same(a, b) for a, b in pairs)


def test_bikes_mp4_streams_250_frames_at_25_fps(bikes_mp4: Path) -> None:
    with open_video(bikes_mp4) as video:
        assert video.format == VideoFormat(640, 272, Fraction(25))
        count = 0
        for frame in video:
            frame.check(video.format)
            count += 1
    assert count == 250


@pytest.mark.parametrize("name", ["carphone_qcif.y4m", "carphone_pristine.mp4"])
def test_start_and_frames_select_a_window(name: str) -> None:
    path = _clip(name)
    everything = _read_all(path)
    window = _read_all(path, start=100, frames=5)
    assert len(window) == 5
    assert all(_same(a, b) for a, b in zip(window, everything[100:105], strict=True))


def test_frames_past_the_end_yield_what_exists(carphone_y4m: Path) -> None:
    assert len(_read_all(carphone_y4m, start=115, frames=50)) == 5


@pytest.mark.parametrize("name", ["carphone_qcif.y4m", "carphone_pristine.mp4"])
def test_start_beyond_the_end_is_an_input_error(name: str) -> None:
    path = _clip(name)
    with pytest.raises(VideoInputError, match=r"start frame 120 is beyond the end .*120 frames"):
        open_video(path, start=120)


def test_odd_size_lossless_mkv_round_trips_exactly(tmp_path: Path) -> None:
    # Odd width and height exercise the chroma rounding and the decoder's padded line size.
    fmt = VideoFormat(33, 17, Fraction(24))
    frames = _ramp_frames(fmt, 4)
    path = tmp_path / "odd.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=24)
        stream.width, stream.height, stream.pix_fmt = 33, 17, "yuv420p"
        for frame in frames:
            picture = av.VideoFrame(33, 17, "yuv420p")
            for plane, data in zip(picture.planes, (frame.y, frame.u, frame.v), strict=True):
                rows = np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)
                rows[: data.shape[0], : data.shape[1]] = data
            for packet in stream.encode(picture):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    with open_video(path) as video:
        assert video.format == fmt
        assert video.container == "matroska,webm"
        got = list(video)
    assert len(got) == 4
    assert all(_same(a, b) for a, b in zip(got, frames, strict=True))


def test_y4m_is_recognised_by_content_not_by_name(tmp_path: Path) -> None:
    fmt = VideoFormat(8, 6, Fraction(30))
    path = tmp_path / "clip.bin"
    with Y4MWriter(path, fmt) as writer:
        writer.write(Frame.blank(fmt))
    with open_video(path) as video:
        assert video.container == "y4m"
        assert len(list(video)) == 1


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(VideoInputError, match=r"nothere\.mp4: no such file"):
        open_video(tmp_path / "nothere.mp4")


def test_directory_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(VideoInputError, match="not a regular file"):
        open_video(tmp_path)


def test_text_file_named_mp4_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n")
    with pytest.raises(VideoInputError, match=r"notes\.mp4: not a readable video file"):
        open_video(path)


def test_mp4_cut_before_its_index_is_an_input_error(tmp_path: Path, bikes_mp4: Path) -> None:
    # bikes.mp4 keeps its index (moov) at the end: a cut file has none.
    path = tmp_path / "cut.mp4"
    path.write_bytes(bikes_mp4.read_bytes()[:300_000])
    with pytest.raises(VideoInputError, match=r"cut\.mp4: not a readable video file"):
        open_video(path)


def test_mp4_cut_mid_stream_fails_instead_of_silently_shortening(
    tmp_path: Path, carphone_mp4: Path
) -> None:
    # With the index first (faststart), a cut file still opens; the cut must still be caught.
    fast = tmp_path / "fast.mp4"
    with (
        av.open(str(carphone_mp4)) as src,
        av.open(str(fast), "w", options={"movflags": "faststart"}) as out,
    ):
        stream = out.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    data = fast.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with open_video(cut) as video, pytest.raises(VideoInputError, match=r"cut\.mp4: .*truncated"):
        list(video)


def test_file_without_video_stream_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "speech.wav"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 800), np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            out.mux(packet)
    with pytest.raises(VideoInputError, match=r"speech\.wav: the file has no video stream"):
        open_video(path)


def test_video_without_frames_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.y4m"
    with Y4MWriter(path, VideoFormat(8, 6, Fraction(30))):
        pass
    with pytest.raises(VideoInputError, match=r"empty\.y4m: the file holds no video frames"):
        open_video(path)


def test_corrupt_y4m_frame_surfaces_as_input_error_while_streaming(tmp_path: Path) -> None:
    fmt = VideoFormat(8, 6, Fraction(30))
    path = tmp_path / "cut.y4m"
    with Y4MWriter(path, fmt) as writer:
        writer.write(Frame.blank(fmt))
        writer.write(Frame.blank(fmt))
    path.write_bytes(path.read_bytes()[:-1])
    with open_video(path) as video, pytest.raises(VideoInputError, match="frame 1 is truncated"):
        list(video)


@pytest.mark.parametrize(("start", "frames"), [(-1, None), (0, 0), (0, -3)])
def test_invalid_window_is_an_input_error(
    carphone_y4m: Path, start: int, frames: int | None
) -> None:
    with pytest.raises(VideoInputError, match="must be"):
        open_video(carphone_y4m, start=start, frames=frames)


def test_a_source_streams_only_once(carphone_y4m: Path) -> None:
    with open_video(carphone_y4m, frames=2) as video:
        assert len(list(video)) == 2
        with pytest.raises(RuntimeError, match="streams once"):
            iter(video)
