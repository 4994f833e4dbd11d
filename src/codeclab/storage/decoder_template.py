"""The runtime of a published ``decoder.py``: decode a codeclab stream with an embedded codec.

This module is the template `codeclab.storage.package.render_decoder` turns into a standalone
``decoder.py``: it keeps this module's code unchanged, puts the experiment's header in place of
this docstring, and fills the block between the ``<codeclab:embedded>`` marker lines with the
codec's source and the container parser's source (``codeclab/codec/bitstream.py``), both as
string literals. So it must stay standalone: Python 3.9+, standard library and numpy only, and
no syntax newer than 3.9 (no ``match``, no ``zip(strict=...)``, no ``X | Y`` outside
annotations).

Each embedded source is executed in a fresh module of its own (`load_source_module`), as the
lab's sandbox runs a codec: the codec's top-level names (``Decoder``, helpers, ``np``) cannot
collide with this runtime's, it sees ``__name__`` other than ``"__main__"``, and the text that
runs is exactly the text whose sha256 is checked against ``CODEC_SHA256`` and against the
stream's header before anything is decoded.

Decoding follows the lab's decoder sandbox (``codeclab/sandbox/harness.py``): the container is
parsed, ``Decoder(width, height, fps)`` is fed every packet in order and then ``flush()``; every
frame must be three uint8 planes of the stream's 4:2:0 shapes, and the codec must produce exactly
the frame count the stream declares.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import linecache
import os
import sys
import types
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

Plane = npt.NDArray[np.uint8]
Frame = tuple[Plane, Plane, Plane]

RUNTIME_VERSION = 1
"""Version of this runtime; recorded in the package manifest."""

_ERROR_EXIT = 1


class DecodeError(Exception):
    """The stream cannot be decoded; the message names the file, packet or frame."""


class StreamInfo(NamedTuple):
    """What a stream's container header declares.

    A NamedTuple, not a dataclass: a dataclass with postponed annotations needs its module in
    ``sys.modules``, which a decoder.py loaded with ``exec`` or ``spec_from_file_location``
    alone is not.
    """

    width: int
    height: int
    fps_num: int
    fps_den: int
    frame_count: int
    codec_sha256: str  # hex

    @property
    def fps(self) -> float:
        return self.fps_num / self.fps_den

    @property
    def chroma_shape(self) -> tuple[int, int]:
        return (self.height + 1) // 2, (self.width + 1) // 2

    def describe(self) -> str:
        rate = str(self.fps_num) if self.fps_den == 1 else f"{self.fps_num}/{self.fps_den}"
        return f"{self.width}x{self.height} @ {rate} fps"


def source_sha256(source: str) -> str:
    """sha256 (hex) of a source text's UTF-8 bytes, as the lab hashes codec sources."""
    return hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()


def load_source_module(name: str, source: str, filename: str) -> types.ModuleType:
    """Execute `source` as a fresh module called `name`.

    The module is registered in ``sys.modules`` (dataclasses and pickling look classes up
    there) and its lines in ``linecache``, so tracebacks through it show the codec's code.
    """
    module = types.ModuleType(name)
    module.__file__ = filename
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    sys.modules[name] = module
    try:
        code = compile(source, filename, "exec")
        exec(code, module.__dict__)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _check_frame(frame: object, index: int, info: StreamInfo) -> Frame:
    """The frame as three contiguous uint8 planes, or DecodeError saying what is wrong."""
    if not isinstance(frame, (tuple, list)) or len(frame) != 3:
        raise DecodeError(f"decoded frame {index} is not a (y, u, v) triple")
    shapes = ((info.height, info.width), info.chroma_shape, info.chroma_shape)
    planes = []
    for name, plane, shape in zip("yuv", frame, shapes):  # noqa: B905 (3.9: no strict=)
        if not isinstance(plane, np.ndarray):
            raise DecodeError(
                f"decoded frame {index}: plane {name} is {type(plane).__name__}, not an array"
            )
        if plane.dtype != np.uint8:
            raise DecodeError(
                f"decoded frame {index}: plane {name} has dtype {plane.dtype}, expected uint8"
            )
        if plane.shape != shape:
            raise DecodeError(
                f"decoded frame {index}: plane {name} has shape {plane.shape}, expected {shape}"
            )
        planes.append(np.ascontiguousarray(plane))
    return planes[0], planes[1], planes[2]


class EmbeddedDecoder:
    """A codec and the container parser, each loaded from its source into its own module."""

    def __init__(
        self,
        codec_source: str,
        codec_sha256: str,
        container_source: str,
        container_sha256: str,
        codec_name: str = "codec",
    ) -> None:
        actual = source_sha256(codec_source)
        if actual != codec_sha256:
            raise DecodeError(
                f"the embedded codec source has sha256 {actual}, but this decoder was published "
                f"for codec sha256 {codec_sha256}: the codec source was edited"
            )
        actual = source_sha256(container_source)
        if actual != container_sha256:
            raise DecodeError(
                f"the embedded container parser has sha256 {actual}, expected "
                f"{container_sha256}: it was edited"
            )
        self.codec_name = codec_name
        self.codec_sha256 = codec_sha256
        tag = codec_sha256[:16]
        try:
            self.container = load_source_module(
                f"codeclab_container_{container_sha256[:16]}",
                container_source,
                "<embedded codeclab container: bitstream.py>",
            )
        except Exception as exc:
            raise DecodeError(f"the embedded container parser failed to load: {exc!r}") from exc
        try:
            self.codec = load_source_module(
                f"codeclab_codec_{tag}", codec_source, f"<embedded codec {codec_name} {tag}>"
            )
        except Exception as exc:
            raise DecodeError(
                f"the embedded codec {codec_name} failed to load: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(getattr(self.codec, "Decoder", None), type):
            raise DecodeError(f"the embedded codec {codec_name} defines no class Decoder")

    def read(self, data: bytes, source: str = "stream") -> tuple[StreamInfo, list[bytes]]:
        """Parse the container: what it declares, and its packets."""
        try:
            header, packets = self.container.decode_stream(bytes(data), source)
        except ValueError as exc:  # BitstreamError; its message names `source`
            raise DecodeError(str(exc)) from None
        info = StreamInfo(
            width=header.width,
            height=header.height,
            fps_num=header.fps_num,
            fps_den=header.fps_den,
            frame_count=header.frame_count,
            codec_sha256=bytes(header.codec_sha256).hex(),
        )
        if info.codec_sha256 != self.codec_sha256:
            raise DecodeError(
                f"{source} was written by the codec with sha256 {info.codec_sha256}, but this "
                f"decoder carries {self.codec_name} with sha256 {self.codec_sha256}"
            )
        return info, packets

    def iter_frames(self, data: bytes, source: str = "stream") -> Iterator[Frame]:
        """Decode packets in order and yield each frame, checked against the stream's format.

        When the iteration runs to its end it also checks that the codec produced exactly the
        frame count the stream declares.
        """
        info, packets = self.read(data, source)
        produced = 0
        decoder = self._call(
            self.codec.Decoder,
            (info.width, info.height, info.fps),
            f"Decoder({info.width}, {info.height}, {info.fps!r})",
            source,
        )

        def take(frames: object, where: str) -> Iterator[Frame]:
            nonlocal produced
            if not isinstance(frames, (list, tuple)):
                raise DecodeError(
                    f"{source}: {where} returned {type(frames).__name__}, expected a list"
                )
            for frame in frames:
                if produced >= info.frame_count:
                    raise DecodeError(
                        f"{source}: {where} returned frame {produced + 1}, but the stream "
                        f"declares {info.frame_count} frames"
                    )
                checked = _check_frame(frame, produced, info)
                produced += 1
                yield checked

        for index, packet in enumerate(packets):
            where = f"Decoder.decode (packet {index} of {len(packets)})"
            yield from take(self._call(decoder.decode, (packet,), where, source), where)
        flush = getattr(decoder, "flush", None)
        if flush is not None:
            yield from take(self._call(flush, (), "Decoder.flush", source), "Decoder.flush")
        if produced != info.frame_count:
            raise DecodeError(
                f"{source}: the codec produced {produced} frames, but the stream declares "
                f"{info.frame_count}"
            )

    def _call(self, function: Any, args: tuple[Any, ...], where: str, source: str) -> Any:
        try:
            return function(*args)
        except DecodeError:
            raise
        except Exception as exc:
            raise DecodeError(
                f"{source}: the codec failed in {where}: {type(exc).__name__}: {exc}"
                f"{_python_hint()}"
            ) from exc


def _python_hint() -> str:
    """Why a codec may fail here and not in the lab: an older Python than the lab's."""
    try:
        lab = tuple(int(part) for part in LAB_PYTHON.split(".")[:2])
    except ValueError:
        return ""
    if sys.version_info[:2] >= lab:
        return ""
    here = ".".join(map(str, sys.version_info[:3]))
    return f" (the lab ran this codec on Python {LAB_PYTHON}; this is Python {here})"


# --- the public API of decoder.py ------------------------------------------------------------


@functools.cache
def embedded_decoder() -> EmbeddedDecoder:
    """The decoder built from this file's embedded sources (loaded once)."""
    if not CODEC_SOURCE:
        raise DecodeError(
            "this is codeclab's decoder template, not a published decoder.py: it holds no codec"
        )
    return EmbeddedDecoder(
        CODEC_SOURCE, CODEC_SHA256, CONTAINER_SOURCE, CONTAINER_SHA256, CODEC_NAME
    )


def _check_config(config: dict[str, Any] | None) -> None:
    if config:
        keys = ", ".join(sorted(map(str, config)))
        raise ValueError(f"this decoder takes no options; config keys not understood: {keys}")


def stream_info(data: bytes, source: str = "stream") -> StreamInfo:
    """What the container `data` declares (size, rate, frame count, codec sha256)."""
    return embedded_decoder().read(data, source)[0]


def iter_frames(data: bytes, source: str = "stream") -> Iterator[Frame]:
    """Every frame of the container `data`, decoded in order, as (y, u, v) uint8 planes."""
    return embedded_decoder().iter_frames(data, source)


def decompress_video_frame(
    data: bytes, frame_index: int, config: dict[str, Any] | None = None
) -> Frame:
    """Frame `frame_index` of the container `data` as (y, u, v) uint8 planes.

    Frames depend on earlier frames, so this decodes from the start up to the frame asked for;
    to get many frames, use `decode_all` or `iter_frames`. `config` exists for the lab's
    published usage example (``config={}``); this decoder takes no options.
    """
    _check_config(config)
    runtime = embedded_decoder()
    info = runtime.read(data)[0]
    if not 0 <= frame_index < info.frame_count:
        raise IndexError(
            f"frame {frame_index} is out of range: the stream holds {info.frame_count} frames "
            f"(0..{info.frame_count - 1})"
        )
    for index, frame in enumerate(runtime.iter_frames(data)):
        if index == frame_index:
            return frame
    raise AssertionError("unreachable: iter_frames checks the frame count")


def decode_all(data: bytes, source: str = "stream") -> list[Frame]:
    """All frames of the container `data`; DecodeError if the codec breaks the contract."""
    return list(iter_frames(data, source))


def _y4m_header(info: StreamInfo) -> bytes:
    fields = f"YUV4MPEG2 W{info.width} H{info.height} F{info.fps_num}:{info.fps_den} Ip A0:0"
    return (fields + " C420jpeg\n").encode("ascii")


def _write_frames(
    frames: Iterable[Frame], info: StreamInfo, path: Path, y4m: bool
) -> tuple[int, int]:
    """Write frames atomically (to a temporary name, renamed at the end): (frames, bytes)."""
    partial = path.with_name(path.name + ".partial")
    count = 0
    try:
        with open(partial, "wb") as out:
            if y4m:
                out.write(_y4m_header(info))
            for frame in frames:
                planes = _check_frame(frame, count, info)
                if y4m:
                    out.write(b"FRAME\n")
                for plane in planes:
                    out.write(plane.tobytes())
                count += 1
            size = out.tell()
        os.replace(partial, path)
    except BaseException:
        if partial.exists():
            partial.unlink()
        raise
    return count, size


def write_y4m(frames: Iterable[Frame], header: StreamInfo, path: str | Path) -> int:
    """Write frames to a Y4M file (4:2:0, the stream's size and rate); returns the frame count."""
    return _write_frames(frames, header, Path(path), True)[0]


# --- command line ------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=(
            "Decode a codeclab stream (stream.bin) with the codec embedded in this file. "
            "The output is Y4M if its name ends in .y4m, raw planar yuv420p otherwise."
        )
    )
    parser.add_argument("stream", type=Path, help="the codeclab container, e.g. stream.bin")
    parser.add_argument("-o", "--output", type=Path, required=True, help="out.y4m or out.yuv")
    parser.add_argument(
        "--frame", type=int, metavar="N", help="write only frame N (0-based; decodes 0..N)"
    )
    return parser


def _run(args: argparse.Namespace) -> str:
    stream_path: Path = args.stream
    output: Path = args.output
    try:
        data = stream_path.read_bytes()
    except OSError as exc:
        raise DecodeError(f"cannot read {stream_path}: {exc.strerror or exc}") from None
    runtime = embedded_decoder()
    source = str(stream_path)
    info = runtime.read(data, source)[0]
    y4m = output.suffix.lower() == ".y4m"
    seconds = info.frame_count * info.fps_den / info.fps_num
    rate = f"{8 * len(data) / seconds / 1000:.1f} kbit/s" if seconds else "no frames"
    what = f"{source} ({len(data)} bytes, {rate}, {info.describe()})"
    if args.frame is None:
        count, size = _write_frames(runtime.iter_frames(data, source), info, output, y4m)
        return f"decoded {count} frames from {what} -> {output} ({size} bytes)"
    frame_index: int = args.frame
    if not 0 <= frame_index < info.frame_count:
        raise DecodeError(
            f"--frame {frame_index} is out of range: {source} holds {info.frame_count} frames "
            f"(0..{info.frame_count - 1})"
        )
    frames = runtime.iter_frames(data, source)
    for _ in range(frame_index):
        next(frames)
    count, size = _write_frames([next(frames)], info, output, y4m)
    return (
        f"decoded frame {frame_index} of {info.frame_count} from {what} -> {output} ({size} bytes)"
    )


def main(argv: list[str] | None = None) -> int:
    """``python decoder.py stream.bin -o out.y4m``: prints one summary line, 0 on success."""
    parser = _parser()
    args = parser.parse_args(argv)
    prog = parser.prog
    try:
        print(_run(args))
    except DecodeError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return _ERROR_EXIT
    except OSError as exc:
        print(f"{prog}: error: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return _ERROR_EXIT
    return 0


# <codeclab:embedded> render_decoder replaces this block with the codec and the container sources
CODEC_NAME = ""
LAB_PYTHON = ""
CODEC_SHA256 = ""
CODEC_SOURCE = ""
CONTAINER_SHA256 = ""
CONTAINER_SOURCE = ""
# </codeclab:embedded>

if __name__ == "__main__":
    sys.exit(main())
