"""Open any video file as a stream of 8-bit 4:2:0 frames.

Y4M files (recognised by their magic bytes, whatever their name) go through
`Y4MReader` and are taken exactly as stored. Everything else (MP4, MKV, AVI, WebM,
...) is decoded with PyAV and each decoded picture is converted to yuv420p 8-bit by
FFmpeg's swscale (a no-op for yuv420p sources). Every problem with the input (missing,
unreadable or corrupt file, no video stream, unknown frame rate, no frames, a start
beyond the end) raises `VideoInputError` with a one-line message naming the file.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import av.error
import numpy as np

from codeclab.video.frames import Frame, Plane, VideoFormat
from codeclab.video.y4m import MAGIC, Y4MError, Y4MReader

Y4M_CONTAINER = "y4m"


class VideoInputError(ValueError):
    """An input video that cannot be used; the message names the file and the problem."""


class VideoSource:
    """Frames of one video file, streamed once from frame `start`, at most `frames` of them.

    Built by `open_video`, which has already decoded the first frame to serve, so a
    source always yields at least one frame. Iterate it once; close it (or use it as a
    context manager) to release the file.
    """

    def __init__(
        self,
        path: Path,
        fmt: VideoFormat,
        container: str,
        frames: Iterator[Frame],
        close: Callable[[], None],
    ) -> None:
        self.path = path
        self.format = fmt
        self.container = container
        self._frames = frames
        self._close = close
        self._iterated = False

    def __iter__(self) -> Iterator[Frame]:
        if self._iterated:
            raise RuntimeError(f"{self.path}: a VideoSource streams once; open the file again")
        self._iterated = True
        return self._frames

    def close(self) -> None:
        self._close()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_video(path: Path | str, *, start: int = 0, frames: int | None = None) -> VideoSource:
    """Open `path` and position it at frame `start` (0-based); yield at most `frames` frames."""
    path = Path(path)
    if start < 0:
        raise VideoInputError(f"{path}: start frame must be 0 or more, got {start}")
    if frames is not None and frames < 1:
        raise VideoInputError(f"{path}: frame count must be 1 or more, got {frames}")
    if not path.exists():
        raise VideoInputError(f"{path}: no such file")
    if not path.is_file():
        raise VideoInputError(f"{path}: not a regular file")
    try:
        with path.open("rb") as probe:
            magic = probe.read(len(MAGIC) + 1)
    except OSError as exc:
        raise VideoInputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if magic[: len(MAGIC)] == MAGIC:
        return _open_y4m(path, start, frames)
    return _open_with_pyav(path, start, frames)


def _limited(first: Frame, rest: Iterator[Frame], frames: int | None) -> Iterator[Frame]:
    chained = itertools.chain([first], rest)
    return chained if frames is None else itertools.islice(chained, frames)


def _beyond_end(path: Path, start: int, available: int) -> VideoInputError:
    if available == 0:
        return VideoInputError(f"{path}: the file holds no video frames")
    return VideoInputError(
        f"{path}: start frame {start} is beyond the end (the file has {available} frames)"
    )


# --- Y4M -----------------------------------------------------------------------------


def _open_y4m(path: Path, start: int, frames: int | None) -> VideoSource:
    try:
        reader = Y4MReader(path)
    except Y4MError as exc:
        raise VideoInputError(str(exc)) from None
    try:
        skipped = reader.skip(start)
        first = reader.read_frame()
    except Y4MError as exc:
        reader.close()
        raise VideoInputError(str(exc)) from None
    if first is None:
        reader.close()
        raise _beyond_end(path, start, skipped)
    return VideoSource(
        path, reader.format, Y4M_CONTAINER, _limited(first, _y4m_rest(reader), frames), reader.close
    )


def _y4m_rest(reader: Y4MReader) -> Iterator[Frame]:
    try:
        while (frame := reader.read_frame()) is not None:
            yield frame
    except Y4MError as exc:
        raise VideoInputError(str(exc)) from None


# --- everything else, through PyAV -------------------------------------------------------


def _open_with_pyav(path: Path, start: int, frames: int | None) -> VideoSource:
    try:
        container = av.open(str(path), mode="r")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise VideoInputError(f"{path}: not a readable video file ({_reason(exc)})") from None
    try:
        if not container.streams.video:
            raise VideoInputError(f"{path}: the file has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        width, height = _frame_size(path, stream)
        fmt = VideoFormat(width, height, _rate(path, stream))
        decoded = _decode(path, container, stream, fmt)
        skipped = sum(1 for _ in itertools.islice(decoded, start))
        first = next(decoded, None)
        if first is None:
            raise _beyond_end(path, start, skipped)
    except BaseException:
        container.close()
        raise
    return VideoSource(
        path, fmt, str(container.format.name), _limited(first, decoded, frames), container.close
    )


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).splitlines()[0] if text else type(exc).__name__


def _frame_size(path: Path, stream: Any) -> tuple[int, int]:
    width, height = int(stream.codec_context.width), int(stream.codec_context.height)
    if width <= 0 or height <= 0:
        raise VideoInputError(f"{path}: the video stream does not declare its frame size")
    return width, height


def _rate(path: Path, stream: Any) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate):
        if rate is not None and rate > 0:
            return Fraction(rate.numerator, rate.denominator)
    raise VideoInputError(
        f"{path}: the video stream has no known frame rate; convert it to Y4M with the rate set, "
        "e.g. ffmpeg -i INPUT -r 30 -pix_fmt yuv420p clip.y4m"
    )


def _decode(path: Path, container: Any, stream: Any, fmt: VideoFormat) -> Iterator[Frame]:
    index = 0
    try:
        for packet in container.demux(stream):
            if packet.is_corrupt:
                # A packet cut short by the end of the file (or damaged): stop rather than
                # measure a clip that silently lost its tail.
                raise VideoInputError(
                    f"{path}: the file is truncated or damaged near frame {index} "
                    f"(incomplete packet at byte offset {packet.pos})"
                )
            for picture in packet.decode():
                yield _to_frame(path, picture, fmt, index)
                index += 1
    except av.error.FFmpegError as exc:
        reason = _reason(exc)
        raise VideoInputError(f"{path}: decoding failed at frame {index} ({reason})") from None


def _plane(plane: Any, width: int, height: int) -> Plane:
    stride = int(plane.line_size)
    rows = np.frombuffer(plane, dtype=np.uint8, count=stride * height).reshape(height, stride)
    return rows[:, :width].copy()


def _to_frame(path: Path, picture: Any, fmt: VideoFormat, index: int) -> Frame:
    if (picture.width, picture.height) != (fmt.width, fmt.height):
        raise VideoInputError(
            f"{path}: frame {index} is {picture.width}x{picture.height} but the stream is "
            f"{fmt.width}x{fmt.height}; codeclab needs one frame size per clip"
        )
    yuv = picture.reformat(format="yuv420p")
    y, u, v = yuv.planes
    return Frame(
        _plane(y, fmt.width, fmt.height),
        _plane(u, fmt.chroma_width, fmt.chroma_height),
        _plane(v, fmt.chroma_width, fmt.chroma_height),
    )
