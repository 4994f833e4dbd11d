"""Entropy back ends of generated codecs: zlib, lzma, or an adaptive binary range coder.

A packet's payload is a fixed number of byte sections (side information, runs, levels,
escapes). zlib and lzma compress the sections together behind LEB128 lengths (raw streams: no
container header or checksum per packet). The range coder codes each section with its own
adaptive order-0 model (a binary tree of 255 probabilities per byte, as LZMA codes literals);
the models live as long as the encoder and decoder and restart at every I-frame.
"""

import lzma
import zlib

from codeclab.designers.offline.fragments.config import ZLIB_LEVEL

LZMA_FILTERS = [
    {"id": lzma.FILTER_LZMA2, "preset": 9, "dict_size": 1 << 22, "lc": 0, "lp": 0, "pb": 0}
]  # no literal context: 5-8 % smaller than the defaults on symbol streams
PROB_BITS = 11
PROB_SHIFT = 5
TOP = 1 << 24


def write_lengths(sections: list[bytes]) -> bytes:
    """LEB128 length of every section."""
    out = bytearray()
    for section in sections:
        size = len(section)
        while size >= 0x80:
            out.append(0x80 | (size & 0x7F))
            size >>= 7
        out.append(size)
    return bytes(out)


def read_lengths(data: bytes, count: int, what: str) -> tuple[list[int], int]:
    """Inverse of `write_lengths` on the start of `data`: the lengths and where they end."""
    lengths, at = [], 0
    for _ in range(count):
        size, shift = 0, 0
        while True:
            if at >= len(data) or shift > 28:
                raise ValueError(f"{what}: section lengths are truncated or corrupt")
            byte = data[at]
            at += 1
            size |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        lengths.append(size)
    return lengths, at


def split_sections(data: bytes, count: int, what: str) -> list[bytes]:
    """The `count` sections of `write_lengths(sections) + b"".join(sections)`."""
    lengths, at = read_lengths(data, count, what)
    if at + sum(lengths) != len(data):
        raise ValueError(f"{what}: sections of {sum(lengths)} bytes in a {len(data) - at} payload")
    sections = []
    for size in lengths:
        sections.append(data[at : at + size])
        at += size
    return sections


def entropy_models(count: int) -> list[list[int]]:
    """Fresh adaptive models of the range coder, one per section (unused by zlib and lzma)."""
    return [[1 << (PROB_BITS - 1)] * 256 for _ in range(count)]


def encode_zlib(sections: list[bytes], models: list[list[int]]) -> bytes:
    packer = zlib.compressobj(ZLIB_LEVEL, zlib.DEFLATED, -15)
    data = write_lengths(sections) + b"".join(sections)
    return packer.compress(data) + packer.flush()


def decode_zlib(data: bytes, models: list[list[int]], what: str) -> list[bytes]:
    try:
        raw = zlib.decompress(data, -15)
    except zlib.error as exc:
        raise ValueError(f"{what}: corrupt deflate payload ({exc})") from exc
    return split_sections(raw, len(models), what)


def encode_lzma(sections: list[bytes], models: list[list[int]]) -> bytes:
    data = write_lengths(sections) + b"".join(sections)
    return lzma.compress(data, format=lzma.FORMAT_RAW, filters=LZMA_FILTERS)


def decode_lzma(data: bytes, models: list[list[int]], what: str) -> list[bytes]:
    try:
        raw = lzma.decompress(data, format=lzma.FORMAT_RAW, filters=LZMA_FILTERS)
    except lzma.LZMAError as exc:
        raise ValueError(f"{what}: corrupt lzma payload ({exc})") from exc
    return split_sections(raw, len(models), what)


def encode_range(sections: list[bytes], models: list[list[int]]) -> bytes:
    """Section lengths, then every byte of every section through the adaptive binary range
    coder (LZMA's: 32-bit range, 11-bit probabilities, carry kept in `cache`)."""
    out = bytearray()
    low, span, cache, pending = 0, 0xFFFFFFFF, 0, 1
    for section, probs in zip(sections, models, strict=True):
        for byte in section:
            node = 1
            for shift in (7, 6, 5, 4, 3, 2, 1, 0):
                bit = (byte >> shift) & 1
                p = probs[node]
                bound = (span >> PROB_BITS) * p
                if bit:
                    low += bound
                    span -= bound
                    probs[node] = p - (p >> PROB_SHIFT)
                else:
                    span = bound
                    probs[node] = p + (((1 << PROB_BITS) - p) >> PROB_SHIFT)
                node = 2 * node + bit
                while span < TOP:
                    span <<= 8
                    if low < 0xFF000000 or low > 0xFFFFFFFF:
                        carry = low >> 32
                        out.append((cache + carry) & 0xFF)
                        out.extend([(0xFF + carry) & 0xFF] * (pending - 1))
                        pending = 0
                        cache = (low >> 24) & 0xFF
                    pending += 1
                    low = (low & 0x00FFFFFF) << 8
    for _ in range(5):
        if low < 0xFF000000 or low > 0xFFFFFFFF:
            carry = low >> 32
            out.append((cache + carry) & 0xFF)
            out.extend([(0xFF + carry) & 0xFF] * (pending - 1))
            pending = 0
            cache = (low >> 24) & 0xFF
        pending += 1
        low = (low & 0x00FFFFFF) << 8
    return write_lengths(sections) + bytes(out[1:])  # the first byte is always 0


def decode_range(data: bytes, models: list[list[int]], what: str) -> list[bytes]:
    """Inverse of `encode_range`; reads past the end as zeros, like the encoder's flush."""
    lengths, at = read_lengths(data, len(models), what)
    stream = data[at:] + bytes(4)
    code = int.from_bytes(stream[:4], "big")
    pos, span = 4, 0xFFFFFFFF
    sections = []
    for size, probs in zip(lengths, models, strict=True):
        if size > 64 * len(stream) + 64:
            raise ValueError(f"{what}: a section of {size} bytes cannot fit {len(stream)} bytes")
        out = bytearray(size)
        for index in range(size):
            node = 1
            while node < 256:
                p = probs[node]
                bound = (span >> PROB_BITS) * p
                if code < bound:
                    span = bound
                    probs[node] = p + (((1 << PROB_BITS) - p) >> PROB_SHIFT)
                    node = 2 * node
                else:
                    code -= bound
                    span -= bound
                    probs[node] = p - (p >> PROB_SHIFT)
                    node = 2 * node + 1
                if span < TOP:
                    span <<= 8
                    code = ((code << 8) | (stream[pos] if pos < len(stream) else 0)) & 0xFFFFFFFF
                    pos += 1
            out[index] = node - 256
        sections.append(bytes(out))
    return sections


entropy_encode = encode_zlib
entropy_decode = decode_zlib
