from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from codeclab.codec.bitstream import (
    HEADER_SIZE,
    TRAILER_SIZE,
    BitstreamError,
    StreamHeader,
    decode_stream,
    encode_stream,
)

HEADER = StreamHeader(
    width=176,
    height=144,
    fps_num=30000,
    fps_den=1001,
    frame_count=3,
    codec_sha256=hashlib.sha256(b"codec").digest(),
)
PACKETS = [b"\x00" * 5, b"", b"x" * 300, bytes(range(256)) * 70]


def test_round_trip_keeps_header_and_packets() -> None:
    header, packets = decode_stream(encode_stream(HEADER, PACKETS))
    assert header == HEADER
    assert packets == PACKETS


def test_every_byte_is_accounted_for() -> None:
    data = encode_stream(HEADER, PACKETS)
    # lengths: 5, 0 and 300 need 1, 1 and 2 LEB128 bytes; 17920 needs 3
    framing = 1 + 1 + 2 + 3
    assert len(data) == HEADER_SIZE + TRAILER_SIZE + framing + sum(map(len, PACKETS))


def test_empty_stream_round_trips() -> None:
    header, packets = decode_stream(encode_stream(HEADER, []))
    assert header == HEADER
    assert packets == []


@pytest.mark.parametrize("cut", [0, 3, HEADER_SIZE - 1, HEADER_SIZE + 2, -5, -1])
def test_truncated_stream_is_a_clear_error(cut: int) -> None:
    data = encode_stream(HEADER, PACKETS)
    with pytest.raises(BitstreamError, match=r"clip\.bin: .*(truncated|shorter|CRC|unexpected)"):
        decode_stream(data[:cut], "clip.bin")


def test_wrong_magic_is_named() -> None:
    data = b"RIFF" + encode_stream(HEADER, PACKETS)[4:]
    with pytest.raises(BitstreamError, match="not a codeclab stream"):
        decode_stream(data)


def test_corrupt_payload_fails_the_crc() -> None:
    data = bytearray(encode_stream(HEADER, PACKETS))
    data[HEADER_SIZE + 10] ^= 0xFF
    with pytest.raises(BitstreamError, match="CRC mismatch"):
        decode_stream(bytes(data))


def test_corrupt_header_fails_the_header_crc() -> None:
    data = bytearray(encode_stream(HEADER, PACKETS))
    data[7] ^= 0x01  # width
    with pytest.raises(BitstreamError, match="header CRC"):
        decode_stream(bytes(data))


def test_trailing_garbage_is_rejected() -> None:
    data = encode_stream(HEADER, PACKETS)
    with pytest.raises(BitstreamError):
        decode_stream(data[:-TRAILER_SIZE] + b"junk" + data[-TRAILER_SIZE:])


def test_unknown_version_is_named() -> None:
    data = bytearray(encode_stream(HEADER, PACKETS))
    data[4] = 9
    with pytest.raises(BitstreamError, match="version 9"):
        decode_stream(bytes(data))


def test_header_rejects_impossible_sizes() -> None:
    with pytest.raises(BitstreamError, match="out of range"):
        StreamHeader(0, 10, 25, 1, 1, bytes(32))
    with pytest.raises(BitstreamError, match="frame rate"):
        StreamHeader(10, 10, 0, 1, 1, bytes(32))


def test_module_is_standalone() -> None:
    """The decode package and the sandbox harness embed this file: stdlib only."""
    import ast

    from codeclab.codec import bitstream

    tree = ast.parse(Path(bitstream.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    assert imported <= {"struct", "zlib", "dataclasses", "typing", "collections"}
