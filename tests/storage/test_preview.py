"""Preview MP4s: H.264 yuv420p with faststart, labelled as previews, odd sizes padded not scaled.

Every test encodes real frames of the carphone clip with the real ffmpeg and probes the result
with PyAV.
"""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from codeclab.storage.preview import DEFAULT_CRF, PreviewError, make_preview
from codeclab.video.frames import Frame, VideoFormat
from codeclab.video.rawfile import RawVideo, write_raw
from codeclab.video.y4m import Y4MReader

pytestmark = pytest.mark.slow

CLIP = "carphone_qcif.y4m"
FRAMES = 30
MIN_PSNR_Y = 37.0  # CRF 16 on carphone: 39.9-44.5 dB a frame; one pixel off or rescaled: < 28


def top_level_boxes(path: Path) -> list[str]:
    """Types of the top-level ISO-BMFF boxes of `path`, in file order."""
    data = path.read_bytes()
    boxes, pos = [], 0
    while pos < len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, pos + 8)
        elif size == 0:
            size = len(data) - pos
        assert size >= 8, f"box {kind!r} at {pos} has size {size}"
        boxes.append(kind.decode("latin-1"))
        pos += size
    assert pos == len(data)
    return boxes


def decoded_luma(path: Path) -> list[npt.NDArray[np.uint8]]:
    with av.open(str(path)) as container:
        frames = []
        for frame in container.decode(video=0):
            planes = frame.to_ndarray(format="yuv420p")
            frames.append(planes[: frame.height])
    return frames


def psnr(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255**2 / mse) if mse else float("inf")


@pytest.fixture(scope="module")
def source(clips_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> RawVideo:
    """The first FRAMES frames of the clip as a raw yuv420p file."""
    with Y4MReader(clips_dir / CLIP) as reader:
        frames = [frame for _, frame in zip(range(FRAMES), reader, strict=False)]
        fmt = reader.format
    return write_raw(tmp_path_factory.mktemp("preview") / "carphone.yuv", fmt, frames)


@pytest.fixture(scope="module")
def odd_source(source: RawVideo, tmp_path_factory: pytest.TempPathFactory) -> RawVideo:
    """The same frames cropped to 175x143 (chroma 88x72 covers the odd size already)."""
    fmt = VideoFormat(175, 143, source.format.fps)
    frames = [Frame(np.ascontiguousarray(f.y[:143, :175]), f.u, f.v) for f in source]
    return write_raw(tmp_path_factory.mktemp("odd") / "carphone-odd.yuv", fmt, frames)


def test_preview_is_h264_yuv420p_at_the_source_size_rate_and_length(
    source: RawVideo, tmp_path: Path
) -> None:
    out = tmp_path / "source.mp4"
    info = make_preview(source, out, label="source: carphone_qcif")
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert stream.codec_context.profile == "High"
        assert (stream.width, stream.height) == (176, 144)
        assert stream.average_rate == Fraction(30000, 1001)
        assert stream.frames == FRAMES
    assert len(decoded_luma(out)) == FRAMES
    assert info.path == out
    assert info.size_bytes == out.stat().st_size
    assert info.duration_seconds == pytest.approx(FRAMES * 1001 / 30000)
    assert (info.frame_count, info.width, info.height, info.padded) == (FRAMES, 176, 144, False)
    assert info.crf == DEFAULT_CRF
    assert info.ffmpeg_version
    assert not list(tmp_path.glob("*.partial"))


def test_preview_puts_the_moov_index_before_the_media_data(
    source: RawVideo, tmp_path: Path
) -> None:
    out = tmp_path / "source.mp4"
    make_preview(source, out, label="source")
    boxes = top_level_boxes(out)
    assert boxes[0] == "ftyp"
    assert boxes.index("moov") < boxes.index("mdat")


def test_preview_metadata_says_it_is_a_preview_and_not_the_measured_stream(
    source: RawVideo, tmp_path: Path
) -> None:
    out = tmp_path / "reconstruction.mp4"
    make_preview(source, out, label="reconstruction of exp-1 (inter_dct q50)", crf=20)
    with av.open(str(out)) as container:
        metadata = container.metadata
    assert metadata["title"] == "PREVIEW for viewing: reconstruction of exp-1 (inter_dct q50)"
    assert "not the codec's bitstream and not what was measured" in metadata["comment"]
    assert "crf 20" in metadata["comment"]


def test_preview_keeps_the_picture_at_high_quality(source: RawVideo, tmp_path: Path) -> None:
    out = tmp_path / "source.mp4"
    make_preview(source, out, label="source")
    lumas = decoded_luma(out)
    scores = [psnr(luma, frame.y) for luma, frame in zip(lumas, source, strict=True)]
    assert min(scores) > MIN_PSNR_Y


def test_odd_frame_size_is_padded_by_one_pixel_never_scaled(
    odd_source: RawVideo, tmp_path: Path
) -> None:
    out = tmp_path / "odd.mp4"
    info = make_preview(odd_source, out, label="odd")
    assert (info.width, info.height, info.padded) == (176, 144, True)
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (176, 144)
        assert "Padded from 175x143 to 176x144" in container.metadata["comment"]
    lumas = decoded_luma(out)
    assert len(lumas) == FRAMES
    for luma, frame in zip(lumas, odd_source, strict=True):
        assert psnr(luma[:143, :175], frame.y) > MIN_PSNR_Y
        # the added column and row repeat the last ones (up to the encoder's error)
        assert np.abs(luma[:, 175].astype(int) - luma[:, 174]).mean() < 3
        assert np.abs(luma[143].astype(int) - luma[142]).mean() < 3


def test_ffmpeg_failure_is_reported_with_its_stderr(tmp_path: Path) -> None:
    fmt = VideoFormat(20000, 2, Fraction(25))  # wider than x264 accepts
    raw = write_raw(tmp_path / "wide.yuv", fmt, [Frame.blank(fmt)])
    out = tmp_path / "wide.mp4"
    with pytest.raises(PreviewError, match="ffmpeg failed") as failure:
        make_preview(raw, out, label="too wide")
    assert "invalid width x height (20000x2)" in str(failure.value)
    assert str(raw.path) in str(failure.value)
    assert not list(tmp_path.glob("wide.mp4*"))


@pytest.mark.parametrize("crf", [0, 52])
def test_crf_outside_what_browsers_play_is_refused(
    source: RawVideo, tmp_path: Path, crf: int
) -> None:
    with pytest.raises(ValueError, match=f"crf {crf} is outside 1..51"):
        make_preview(source, tmp_path / "x.mp4", label="source", crf=crf)


def test_preview_needs_a_label_and_an_existing_directory(source: RawVideo, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs a label"):
        make_preview(source, tmp_path / "x.mp4", label=" ")
    with pytest.raises(PreviewError, match="is not a directory"):
        make_preview(source, tmp_path / "missing" / "x.mp4", label="source")
