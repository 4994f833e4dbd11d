"""YUV4MPEG2 (.y4m) files, read and written one frame at a time.

A Y4M file is one text header line, then for every frame a ``FRAME`` line (which
may carry its own tags) followed by the raw planar frame. codeclab works in 8-bit
4:2:0 only: the reader accepts the 4:2:0 8-bit colourspaces (``C420``,
``C420jpeg``, ``C420mpeg2``, ``C420paldv``; no ``C`` tag means ``C420jpeg``) and
rejects every other colourspace (4:2:2, 4:4:4, mono, 10/12/16-bit) with an error
that names the file and the tag and says how to convert. It never converts
silently, so the frames the lab measures are exactly the frames in the file.
The chroma siting that distinguishes the 4:2:0 variants is kept in the header
but does not change the samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from io import BufferedReader, BufferedWriter
from pathlib import Path
from types import TracebackType

import numpy as np

from codeclab.video.frames import Frame, VideoFormat

MAGIC = b"YUV4MPEG2"
FRAME_MARKER = b"FRAME"
SUPPORTED_COLOURSPACES = ("420", "420jpeg", "420mpeg2", "420paldv")
DEFAULT_COLOURSPACE = "420jpeg"
INTERLACE_MODES = ("p", "t", "b", "m", "?")
_MAX_HEADER_BYTES = 4096
_MAX_FRAME_LINE_BYTES = 4096
_CONVERT_HINT = "convert with ffmpeg -pix_fmt yuv420p"


class Y4MError(ValueError):
    """A Y4M file that codeclab cannot read; the message names the file and the problem."""


@dataclass(frozen=True)
class Y4MHeader:
    """The stream header of a Y4M file.

    `colourspace` is the ``C`` tag without its ``C`` (``None`` when the tag is absent,
    which the format defines as 4:2:0 jpeg siting). `extensions` keeps each ``X`` tag
    as written (``"XYSCSS=420MPEG2"``); `unknown_tags` keeps any other tag as written.
    """

    width: int
    height: int
    fps: Fraction
    interlace: str | None = None
    pixel_aspect: Fraction | None = None
    colourspace: str | None = None
    extensions: tuple[str, ...] = ()
    unknown_tags: tuple[str, ...] = ()

    @property
    def format(self) -> VideoFormat:
        return VideoFormat(self.width, self.height, self.fps)

    def to_line(self) -> bytes:
        """The header as written to a file, newline included."""
        parts = [
            MAGIC.decode(),
            f"W{self.width}",
            f"H{self.height}",
            f"F{self.fps.numerator}:{self.fps.denominator}",
        ]
        if self.interlace is not None:
            parts.append(f"I{self.interlace}")
        if self.pixel_aspect is None:
            parts.append("A0:0")
        else:
            parts.append(f"A{self.pixel_aspect.numerator}:{self.pixel_aspect.denominator}")
        if self.colourspace is not None:
            parts.append(f"C{self.colourspace}")
        parts.extend(self.unknown_tags)
        parts.extend(self.extensions)
        return (" ".join(parts) + "\n").encode("ascii")


def _parse_ratio(path: Path, tag: str, value: str) -> tuple[int, int]:
    num, sep, den = value.partition(":")
    if not sep or not num.isdigit() or not den.isdigit():
        raise Y4MError(f"{path}: header tag {tag}{value} is not a ratio like {tag}30000:1001")
    return int(num), int(den)


def _parse_size(path: Path, tag: str, value: str) -> int:
    if not value.isdigit() or int(value) <= 0:
        raise Y4MError(f"{path}: header tag {tag}{value} is not a positive frame size")
    return int(value)


def _check_colourspace(path: Path, colourspace: str) -> None:
    if colourspace in SUPPORTED_COLOURSPACES:
        return
    supported = ", ".join(f"C{c}" for c in SUPPORTED_COLOURSPACES)
    raise Y4MError(
        f"{path}: colourspace C{colourspace} is not supported; codeclab needs 4:2:0 8-bit "
        f"({supported}); {_CONVERT_HINT}"
    )


def parse_header(path: Path, line: bytes) -> Y4MHeader:
    """Parse a header line (without its newline). Tags may come in any order."""
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        raise Y4MError(f"{path}: header is not ASCII text") from None
    fields = text.split(" ")
    if fields[0] != MAGIC.decode():
        raise Y4MError(f"{path}: not a Y4M file (it does not start with {MAGIC.decode()})")
    width = height = None
    fps: Fraction | None = None
    interlace = colourspace = None
    aspect: Fraction | None = None
    extensions: list[str] = []
    unknown: list[str] = []
    for field in fields[1:]:
        if not field:
            continue  # tolerate doubled spaces
        tag, value = field[0], field[1:]
        if tag == "W":
            width = _parse_size(path, tag, value)
        elif tag == "H":
            height = _parse_size(path, tag, value)
        elif tag == "F":
            num, den = _parse_ratio(path, tag, value)
            if num == 0 or den == 0:
                raise Y4MError(
                    f"{path}: frame rate F{value} is unknown or invalid; codeclab needs the rate"
                    " (rewrite the header with e.g. F30000:1001)"
                )
            fps = Fraction(num, den)
        elif tag == "I":
            interlace = value
        elif tag == "A":
            num, den = _parse_ratio(path, tag, value)
            aspect = None if num == 0 or den == 0 else Fraction(num, den)
        elif tag == "C":
            colourspace = value
        elif tag == "X":
            extensions.append(field)
        else:
            unknown.append(field)
    if width is None or height is None:
        raise Y4MError(f"{path}: header has no frame size (W and H tags): {text!r}")
    if fps is None:
        raise Y4MError(f"{path}: header has no frame rate (F tag): {text!r}")
    _check_colourspace(path, DEFAULT_COLOURSPACE if colourspace is None else colourspace)
    return Y4MHeader(
        width=width,
        height=height,
        fps=fps,
        interlace=interlace,
        pixel_aspect=aspect,
        colourspace=colourspace,
        extensions=tuple(extensions),
        unknown_tags=tuple(unknown),
    )


class Y4MReader:
    """Stream the frames of a Y4M file: a context manager and an iterator of `Frame`.

    The header is parsed on construction, so `header` and `format` are available at
    once; frames are read one at a time as the reader is iterated. Each yielded frame
    owns its memory.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self._file: BufferedReader = self.path.open("rb")
        except OSError as exc:
            raise Y4MError(f"{self.path}: cannot open: {exc.strerror or exc}") from None
        try:
            line = self._file.readline(_MAX_HEADER_BYTES)
            if not line.startswith(MAGIC):
                raise Y4MError(
                    f"{self.path}: not a Y4M file (it does not start with {MAGIC.decode()})"
                )
            if not line.endswith(b"\n"):
                raise Y4MError(
                    f"{self.path}: header line is not terminated within {_MAX_HEADER_BYTES} bytes"
                )
            self.header = parse_header(self.path, line[:-1])
        except BaseException:
            self._file.close()
            raise
        self.format = self.header.format
        self._index = 0

    @property
    def frames_read(self) -> int:
        """Frames read or skipped so far: the index of the next frame."""
        return self._index

    def _frame_line(self) -> bool:
        """Consume one FRAME line; False at a clean end of file."""
        line = self._file.readline(_MAX_FRAME_LINE_BYTES)
        if not line:
            return False
        if not line.endswith(b"\n"):
            if FRAME_MARKER.startswith(line) or line.startswith(FRAME_MARKER):
                raise Y4MError(f"{self.path}: frame {self._index} is truncated (in its FRAME line)")
            raise Y4MError(
                f"{self.path}: frame {self._index}: expected a FRAME line, found {line[:16]!r}"
            )
        marker = line[:-1].split(b" ", 1)[0]
        if marker != FRAME_MARKER:
            raise Y4MError(
                f"{self.path}: frame {self._index}: expected a FRAME line, found {line[:16]!r}"
            )
        return True  # frame tags (Ixx, X...) are allowed and ignored

    def _truncated(self, got: int) -> Y4MError:
        return Y4MError(
            f"{self.path}: frame {self._index} is truncated: {got} of "
            f"{self.format.frame_bytes} bytes"
        )

    def read_frame(self) -> Frame | None:
        """The next frame, or None at the end of the file."""
        if not self._frame_line():
            return None
        size = self.format.frame_bytes
        buf = bytearray(size)
        view = memoryview(buf)
        got = 0
        while got < size:
            n = self._file.readinto(view[got:])
            if not n:
                raise self._truncated(got)
            got += n
        frame = Frame.from_buffer(self.format, np.frombuffer(buf, dtype=np.uint8))
        self._index += 1
        return frame

    def skip(self, count: int) -> int:
        """Skip up to `count` frames without decoding them; returns how many were skipped."""
        size = self.format.frame_bytes
        skipped = 0
        while skipped < count:
            if not self._frame_line():
                break
            before = self._file.tell()
            end = self._file.seek(0, 2)
            if end - before < size:
                raise self._truncated(end - before)
            self._file.seek(before + size)
            self._index += 1
            skipped += 1
        return skipped

    def __iter__(self) -> Y4MReader:
        return self

    def __next__(self) -> Frame:
        frame = self.read_frame()
        if frame is None:
            raise StopIteration
        return frame

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Y4MReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Y4MWriter:
    """Write frames to a Y4M file: a context manager with `write(frame)`.

    The header (``YUV4MPEG2 W.. H.. F..:.. Ip A.. C420jpeg``) is written on
    construction. `pixel_aspect` None is written as ``A0:0`` (unknown), which the
    reader returns as None. `colourspace` must be one of the 4:2:0 8-bit names;
    `extensions` are ``X`` tags written as given (``"XYSCSS=420JPEG"``).
    """

    def __init__(
        self,
        path: Path | str,
        fmt: VideoFormat,
        *,
        pixel_aspect: Fraction | None = None,
        colourspace: str = DEFAULT_COLOURSPACE,
        interlace: str = "p",
        extensions: tuple[str, ...] = (),
    ) -> None:
        self.path = Path(path)
        self.format = fmt
        _check_colourspace(self.path, colourspace)
        if interlace not in INTERLACE_MODES:
            raise ValueError(
                f"{self.path}: interlace mode {interlace!r} is not one of {INTERLACE_MODES}"
            )
        for ext in extensions:
            if not ext.startswith("X") or " " in ext or "\n" in ext:
                raise ValueError(
                    f"{self.path}: extension {ext!r} must start with X and have no spaces"
                )
        self.header = Y4MHeader(
            width=fmt.width,
            height=fmt.height,
            fps=fmt.fps,
            interlace=interlace,
            pixel_aspect=pixel_aspect,
            colourspace=colourspace,
            extensions=tuple(extensions),
        )
        self._file: BufferedWriter = self.path.open("wb")
        self._file.write(self.header.to_line())
        self.frames_written = 0

    def write(self, frame: Frame) -> None:
        frame.check(self.format, f"{self.path}: frame {self.frames_written}")
        self._file.write(FRAME_MARKER + b"\n")
        for plane in (frame.y, frame.u, frame.v):
            self._file.write(np.ascontiguousarray(plane).data)
        self.frames_written += 1

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Y4MWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
