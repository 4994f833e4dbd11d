"""intra_dct: a JPEG-like reference codec; every frame is coded on its own.

Each plane is padded (edge replication) to a multiple of 8 and cut into 8x8 blocks. A block is
level-shifted by -128, transformed with the orthonormal 8x8 DCT-II, quantised with the JPEG
Annex K luma/chroma tables scaled by the IJG quality formula, scanned in zig-zag order, and the
DC coefficient is predicted from the previous block. Zeros are run-length coded with an
end-of-block symbol and the frame's whole symbol stream is compressed with zlib (level 9).

Packet: ``struct "<BB"`` (frame tag 0x49 'I', IJG quality 1..100) followed by the zlib stream of
``struct "<I"`` (number of run symbols) + runs (uint8, 64 = end of block) + levels (int8, -128 =
escape) + escapes (int16 little-endian).

The decoder's inverse DCT is exact integer arithmetic (integers carried in float64 well below
2**53), so every machine decodes the same pixels. Standalone: needs only Python and numpy.
"""

import math
import struct
import zlib

import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Planes = tuple[U8, U8, U8]

_TAG_INTRA = 0x49
_EOB = 64
_ESCAPE = -128
_IDCT_BITS = 13  # precision of the integer 1-D DCT basis; the 2-D kernel carries 2x this
_IDCT_SCALE = float(1 << (2 * _IDCT_BITS))

_LUMA_TABLE = (
    (16, 11, 10, 16, 24, 40, 51, 61),
    (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56),
    (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77),
    (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101),
    (72, 92, 95, 98, 112, 100, 103, 99),
)
_CHROMA_TABLE = (
    (17, 18, 24, 47, 99, 99, 99, 99),
    (18, 21, 26, 66, 99, 99, 99, 99),
    (24, 26, 56, 99, 99, 99, 99, 99),
    (47, 66, 99, 99, 99, 99, 99, 99),
    (99, 99, 99, 99, 99, 99, 99, 99),
    (99, 99, 99, 99, 99, 99, 99, 99),
    (99, 99, 99, 99, 99, 99, 99, 99),
    (99, 99, 99, 99, 99, 99, 99, 99),
)


def _zigzag() -> I64:
    """Raster index (row * 8 + col) of each zig-zag scan position."""
    order = sorted(
        ((r, c) for r in range(8) for c in range(8)),
        key=lambda rc: (rc[0] + rc[1], rc[0] if (rc[0] + rc[1]) % 2 else rc[1]),
    )
    return np.array([r * 8 + c for r, c in order], dtype=np.int64)


def _transforms() -> tuple[F64, F64]:
    """(forward, inverse) 64x64 kernels in zig-zag coefficient order.

    ``coefs = blocks @ forward`` (float, encoder only); ``blocks * 2**26 = coefs @ inverse``
    exactly, because the inverse kernel holds integers (products of a rounded 13-bit basis).
    """
    basis = np.array(
        [
            [
                (math.sqrt(0.125) if k == 0 else 0.5) * math.cos((2 * n + 1) * k * math.pi / 16)
                for n in range(8)
            ]
            for k in range(8)
        ]
    )
    zz = _zigzag()
    forward = np.kron(basis, basis).T[:, zz]
    basis_int = np.round(basis * (1 << _IDCT_BITS))
    inverse = np.kron(basis_int, basis_int)[zz, :]
    return np.ascontiguousarray(forward), np.ascontiguousarray(inverse)


_FORWARD, _INVERSE = _transforms()
_ZIGZAG = _zigzag()


def _quant_table(table: tuple[tuple[int, ...], ...], quality: int) -> I64:
    """IJG-scaled quantiser steps (>= 1) in zig-zag order for quality 1..100."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    steps = (np.array(table, dtype=np.int64) * scale + 50) // 100
    return np.maximum(steps, 1).ravel()[_ZIGZAG]


def _int_param(params: dict[str, object], key: str, default: int, low: int, high: int) -> int:
    value = params.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"params[{key!r}] must be a number within {low}..{high}, got {value!r}")
    return round(value)


def _to_blocks(plane: U8, height: int, width: int) -> F64:
    """Edge-pad `plane` to (height, width) and cut it into raster-ordered (n, 64) blocks."""
    padded = np.pad(plane, ((0, height - plane.shape[0]), (0, width - plane.shape[1])), "edge")
    blocks = padded.reshape(height // 8, 8, width // 8, 8).transpose(0, 2, 1, 3)
    return blocks.reshape(-1, 64).astype(np.float64)


def _from_blocks(blocks: F64, height: int, width: int, shape: tuple[int, int]) -> U8:
    """Inverse of `_to_blocks`, cropped to `shape`."""
    plane = blocks.reshape(height // 8, width // 8, 8, 8).transpose(0, 2, 1, 3)
    plane = plane.reshape(height, width)[: shape[0], : shape[1]]
    return np.ascontiguousarray(plane, dtype=np.uint8)


def _idct(levels: I64, steps: I64) -> F64:
    """Dequantise zig-zag `levels` (n, 64), inverse-transform exactly and add 128.

    Every intermediate is an integer below 2**53 held in float64, so the result (integers, not
    yet clipped) is the same on every machine whatever the BLAS does.
    """
    coefs = levels.astype(np.float64)
    coefs *= steps
    np.clip(coefs, -32768, 32767, out=coefs)
    pixels: F64 = coefs @ _INVERSE
    pixels += 128.5 * _IDCT_SCALE
    pixels *= 1 / _IDCT_SCALE
    return np.floor(pixels, out=pixels)


def _symbols(levels: I64) -> bytes:
    """Run-length code zig-zag `levels` (n, 64) block by block into the symbol stream."""
    count = np.count_nonzero(levels, axis=1)
    block, pos = np.nonzero(levels)
    values = levels[block, pos]
    first = np.concatenate(([0], np.cumsum(count)[:-1]))  # index of each block's first nonzero
    previous = np.empty_like(pos)
    previous[1:] = pos[:-1]
    index = np.arange(pos.size)
    previous[index == first[block]] = -1
    runs = np.full(pos.size + count.size, _EOB, dtype=np.uint8)
    runs[block + index] = pos - previous - 1  # block b's symbols start after b EOBs
    small = (values > _ESCAPE) & (values < 128)
    codes = np.where(small, values, _ESCAPE).astype(np.int8)
    escapes = values[~small].astype("<i2")
    return struct.pack("<I", runs.size) + runs.tobytes() + codes.tobytes() + escapes.tobytes()


def _parse_symbols(stream: bytes, at: int, nblocks: int, what: str) -> I64:
    """Inverse of `_symbols` on `stream[at:]`: the (nblocks, 64) zig-zag levels."""
    if len(stream) < at + 4:
        raise ValueError(f"{what}: symbol stream of {len(stream) - at} bytes has no header")
    (nruns,) = struct.unpack_from("<I", stream, at)
    at += 4
    if at + nruns > len(stream) or nruns < nblocks:
        raise ValueError(f"{what}: run stream of {nruns} symbols is truncated")
    runs = np.frombuffer(stream, np.uint8, nruns, at)
    eob = runs == _EOB
    if int(eob.sum()) != nblocks or not eob[-1]:
        raise ValueError(f"{what}: expected {nblocks} end-of-block symbols, got {int(eob.sum())}")
    ncoef = nruns - nblocks
    if at + nruns + ncoef > len(stream):
        raise ValueError(f"{what}: level stream is truncated")
    codes = np.frombuffer(stream, np.int8, ncoef, at + nruns).astype(np.int64)
    escaped = codes == _ESCAPE
    nesc = int(escaped.sum())
    if len(stream) != at + nruns + ncoef + 2 * nesc:
        raise ValueError(f"{what}: symbol stream length {len(stream)} does not match its runs")
    codes[escaped] = np.frombuffer(stream, "<i2", nesc, at + nruns + ncoef)
    steps = np.where(eob, 0, runs.astype(np.int64) + 1)
    total = np.cumsum(steps)
    block = np.cumsum(eob) - eob
    base = np.concatenate(([0], total[eob][:-1]))
    pos = (total - base[block] - 1)[~eob]
    if pos.size and int(pos.max()) > 63:
        raise ValueError(f"{what}: a run goes past coefficient 63")
    levels = np.zeros((nblocks, 64), dtype=np.int64)
    levels[block[~eob], pos] = codes
    return levels


class _Layout:
    """Plane shapes and 8-aligned padded sizes of one frame size."""

    def __init__(self, width: int, height: int) -> None:
        if width <= 0 or height <= 0:
            raise ValueError(f"frame size must be positive, got {width}x{height}")
        cw, ch = (width + 1) // 2, (height + 1) // 2
        self.shapes = ((height, width), (ch, cw), (ch, cw))
        self.padded = tuple((-(-h // 8) * 8, -(-w // 8) * 8) for h, w in self.shapes)
        self.counts = tuple(h * w // 64 for h, w in self.padded)
        self.nblocks = sum(self.counts)

    def steps(self, quality: int) -> I64:
        """Quantiser steps of every block (nblocks, 64): luma table, then chroma table."""
        luma, chroma = _quant_table(_LUMA_TABLE, quality), _quant_table(_CHROMA_TABLE, quality)
        ny = self.counts[0]
        return np.concatenate((np.tile(luma, (ny, 1)), np.tile(chroma, (self.nblocks - ny, 1))))


class Encoder:
    """Codes each 4:2:0 frame as one self-contained packet."""

    def __init__(self, width: int, height: int, fps: float, params: dict[str, object]) -> None:
        self.layout = _Layout(width, height)
        self.quality = max(1, _int_param(params, "quality", 50, 0, 100))
        self.steps = self.layout.steps(self.quality)
        self.frame_index = 0

    def encode(self, y: U8, u: U8, v: U8) -> bytes:
        blocks = []
        for name, plane, shape, (ph, pw) in zip(
            "yuv", (y, u, v), self.layout.shapes, self.layout.padded, strict=True
        ):
            if plane.shape != shape or plane.dtype != np.uint8:
                raise ValueError(
                    f"frame {self.frame_index}: plane {name} must be uint8 {shape}, "
                    f"got {plane.dtype} {plane.shape}"
                )
            blocks.append(_to_blocks(plane, ph, pw))
        coefs = (np.concatenate(blocks) - 128.0) @ _FORWARD
        levels = np.rint(coefs / self.steps).astype(np.int64)
        levels[:, 0] = np.diff(levels[:, 0], prepend=0)
        self.frame_index += 1
        return struct.pack("<BB", _TAG_INTRA, self.quality) + zlib.compress(_symbols(levels), 9)

    def flush(self) -> list[bytes]:
        return []


class Decoder:
    """Decodes intra_dct packets; one frame per packet."""

    def __init__(self, width: int, height: int, fps: float) -> None:
        self.layout = _Layout(width, height)
        self.frame_index = 0

    def decode(self, packet: bytes) -> list[Planes]:
        if not packet:
            return []
        what = f"intra_dct packet {self.frame_index}"
        if len(packet) < 2 or packet[0] != _TAG_INTRA or not 1 <= packet[1] <= 100:
            raise ValueError(f"{what}: bad header {packet[:2].hex()} (want 49 + quality 1..100)")
        layout = self.layout
        try:
            stream = zlib.decompress(packet[2:])
        except zlib.error as exc:
            raise ValueError(f"{what}: corrupt zlib payload ({exc})") from exc
        levels = _parse_symbols(stream, 0, layout.nblocks, what)
        levels[:, 0] = np.cumsum(levels[:, 0])
        pixels = np.clip(_idct(levels, layout.steps(packet[1])), 0, 255)
        planes = []
        start = 0
        for count, (ph, pw), shape in zip(layout.counts, layout.padded, layout.shapes, strict=True):
            planes.append(_from_blocks(pixels[start : start + count], ph, pw, shape))
            start += count
        self.frame_index += 1
        return [(planes[0], planes[1], planes[2])]

    def flush(self) -> list[Planes]:
        return []
