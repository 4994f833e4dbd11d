"""The lab's bitstream container: a small header, then length-prefixed packets.

This module is deliberately standalone (standard library only): the sandbox harness
and the downloadable decode package embed its source unchanged.

Layout (all integers big-endian; every byte counts toward the bitrate)::

    offset size  field
    0      4     magic b"CCLB"
    4      1     version (1)
    5      1     flags (0; reserved)
    6      2     width  (u16)
    8      2     height (u16)
    10     4     fps numerator   (u32)
    14     4     fps denominator (u32)
    18     4     frame count (u32): frames the decoder must produce
    22     32    sha256 of the codec source that wrote the stream
    54     4     packet count (u32)
    58     4     CRC-32 of bytes 0..57
    62     ...   packets: each an unsigned LEB128 length, then that many bytes
    end-4  4     CRC-32 of everything before it

A stream that is truncated, has trailing bytes, a wrong magic, an unknown version or a
CRC mismatch raises BitstreamError with what is wrong and where.
"""

import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

MAGIC = b"CCLB"
VERSION = 1
_HEADER = struct.Struct(">4sBBHHIII32sI")
HEADER_SIZE = _HEADER.size + 4  # fixed header plus its CRC-32
TRAILER_SIZE = 4
MAX_PACKET_BYTES = 1 << 31


class BitstreamError(ValueError):
    """The bytes are not a valid codeclab stream; the message says why and where."""


@dataclass(frozen=True)
class StreamHeader:
    width: int
    height: int
    fps_num: int
    fps_den: int
    frame_count: int
    codec_sha256: bytes

    def __post_init__(self) -> None:
        if not (0 < self.width < 1 << 16 and 0 < self.height < 1 << 16):
            raise BitstreamError(f"frame size {self.width}x{self.height} out of range 1..65535")
        if self.fps_num <= 0 or self.fps_den <= 0:
            raise BitstreamError(f"frame rate {self.fps_num}/{self.fps_den} must be positive")
        if not 0 <= self.frame_count < 1 << 32:
            raise BitstreamError(f"frame count {self.frame_count} out of range")
        if len(self.codec_sha256) != 32:
            raise BitstreamError("codec sha256 must be 32 raw bytes")


def _leb128(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_stream(header: StreamHeader, packets: Iterable[bytes]) -> bytes:
    """Serialise a header and its packets into one container."""
    packet_list = [bytes(p) for p in packets]
    head = _HEADER.pack(
        MAGIC,
        VERSION,
        0,
        header.width,
        header.height,
        header.fps_num,
        header.fps_den,
        header.frame_count,
        header.codec_sha256,
        len(packet_list),
    )
    parts = [head, struct.pack(">I", zlib.crc32(head))]
    for index, packet in enumerate(packet_list):
        if len(packet) >= MAX_PACKET_BYTES:
            raise BitstreamError(f"packet {index} is {len(packet)} bytes, the limit is 2 GiB")
        parts.append(_leb128(len(packet)))
        parts.append(packet)
    body = b"".join(parts)
    return body + struct.pack(">I", zlib.crc32(body))


def decode_stream(data: bytes, source: str = "stream") -> tuple[StreamHeader, list[bytes]]:
    """Parse a container; `source` names it in error messages."""
    view = memoryview(data)
    if len(view) < HEADER_SIZE + TRAILER_SIZE:
        raise BitstreamError(
            f"{source}: {len(view)} bytes is shorter than the smallest stream "
            f"({HEADER_SIZE + TRAILER_SIZE} bytes); truncated?"
        )
    if bytes(view[:4]) != MAGIC:
        raise BitstreamError(f"{source}: not a codeclab stream (magic {bytes(view[:4])!r})")
    fields = _HEADER.unpack_from(view, 0)
    _, version, _flags, width, height, fps_num, fps_den, frames, sha, count = fields
    if version != VERSION:
        raise BitstreamError(f"{source}: stream version {version}, this reader knows {VERSION}")
    (head_crc,) = struct.unpack_from(">I", view, _HEADER.size)
    if zlib.crc32(view[: _HEADER.size]) != head_crc:
        raise BitstreamError(f"{source}: header CRC mismatch; the header is corrupt")
    (crc,) = struct.unpack_from(">I", view, len(view) - TRAILER_SIZE)
    body = view[: len(view) - TRAILER_SIZE]
    try:
        header = StreamHeader(width, height, fps_num, fps_den, frames, sha)
    except BitstreamError as exc:
        raise BitstreamError(f"{source}: {exc}") from None
    packets: list[bytes] = []
    pos = HEADER_SIZE
    end = len(body)
    for index in range(count):
        length = 0
        shift = 0
        while True:
            if pos >= end:
                raise BitstreamError(
                    f"{source}: truncated in the length of packet {index} of {count}"
                )
            byte = body[pos]
            pos += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
            if shift > 35:
                raise BitstreamError(f"{source}: packet {index} length field is malformed")
        if pos + length > end:
            raise BitstreamError(
                f"{source}: truncated in packet {index} of {count} "
                f"(needs {length} bytes, {end - pos} left)"
            )
        packets.append(bytes(body[pos : pos + length]))
        pos += length
    if pos != end:
        raise BitstreamError(
            f"{source}: {end - pos} unexpected bytes after packet {count - 1}; corrupt or truncated"
        )
    if zlib.crc32(body) != crc:
        raise BitstreamError(f"{source}: stream CRC mismatch; the data is corrupt")
    return header, packets


def read_stream(fileobj: BinaryIO, source: str = "stream") -> tuple[StreamHeader, list[bytes]]:
    return decode_stream(fileobj.read(), source)
