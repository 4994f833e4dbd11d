"""inter_dct: a reference codec with motion-compensated prediction (I and P frames).

Frames are padded (edge replication) to a multiple of 16. The first frame and every
``params["intra_period"]``-th frame (default 30) are I-frames, coded like intra_dct: 8x8 DCT,
JPEG Annex K tables scaled by the IJG quality formula, zig-zag scan, DC prediction, run-length
coding of zeros with an end of block, zlib level 9. The other frames are P-frames: each 16x16
macroblock gets an integer-pel motion vector (coarse-to-fine search of +-``search_range``,
default 16, against the previous reconstructed frame, edges extended), chroma uses the halved
vector rounded away from zero, and the residual is coded by the same DCT/quantiser/RLE chain
(four 8x8 luma blocks and one block per chroma plane). A macroblock whose vector is (0, 0) and
whose residual quantises to zero is SKIP: it costs one mode byte and copies the reference.

Packet: ``struct "<BB"`` (tag 0x49 'I' or 0x50 'P', IJG quality 1..100) + zlib of the frame's
symbols. P side info comes first: one mode byte per macroblock (0 skip, 1 coded), then int8
(dy, dx) vector differences of the coded macroblocks in raster order. Then ``struct "<I"``
(number of run symbols), runs (uint8, 64 = end of block), levels (int8, -128 = escape),
escapes (int16 little-endian), for the blocks in order: all luma, then U, then V.

The inverse DCT is exact integer arithmetic (integers carried in float64 far below 2**53), so the
encoder's reference is bit-identical to what any decoder reconstructs. Standalone: Python + numpy.
"""

import itertools
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
_TAG_PREDICTED = 0x50
_EOB = 64
_ESCAPE = -128
_IDCT_BITS = 13  # precision of the integer 1-D DCT basis; the 2-D kernel carries 2x this
_IDCT_SCALE = float(1 << (2 * _IDCT_BITS))
_MAX_RANGE = 63  # keeps every vector difference within int8
_ZERO_BIAS = 100  # SAD advantage (16x16 luma) a vector needs over (0, 0)
_INTER_ROUNDING = 1 / 6  # dead-zone rounding offset of residual quantisation (intra: 1/2)

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


# --- transform, quantiser and symbol coding (same scheme as intra_dct) -----------------------


def _zigzag() -> I64:
    """Raster index (row * 8 + col) of each zig-zag scan position."""
    order = sorted(
        ((r, c) for r in range(8) for c in range(8)),
        key=lambda rc: (rc[0] + rc[1], rc[0] if (rc[0] + rc[1]) % 2 else rc[1]),
    )
    return np.array([r * 8 + c for r, c in order], dtype=np.int64)


def _transforms() -> tuple[F64, F64]:
    """(forward float, exact-integer inverse) 64x64 DCT kernels in zig-zag order."""
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
    basis_int = np.round(basis * (1 << _IDCT_BITS))
    forward = np.ascontiguousarray(np.kron(basis, basis).T[:, zz])
    return forward, np.ascontiguousarray(np.kron(basis_int, basis_int)[zz, :])


_FORWARD, _INVERSE = _transforms()
_ZIGZAG = _zigzag()


def _quant_table(table: tuple[tuple[int, ...], ...], quality: int) -> I64:
    """IJG-scaled quantiser steps (>= 1) in zig-zag order for quality 1..100."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    steps = (np.array(table, dtype=np.int64) * scale + 50) // 100
    return np.maximum(steps, 1).ravel()[_ZIGZAG]


def _quantise(blocks: F64, steps: I64, rounding: float) -> I64:
    """Forward DCT of raster (n, 64) blocks and quantisation to zig-zag levels."""
    scaled: F64 = blocks @ _FORWARD
    scaled /= steps
    scaled += np.copysign(rounding, scaled)  # then truncate: sign * floor(|x| + rounding)
    return np.trunc(scaled).astype(np.int64)


def _idct(levels: I64, steps: I64, prediction: F64) -> F64:
    """`prediction` + exact inverse DCT of the dequantised zig-zag `levels` (n, 64).

    Every intermediate is an integer below 2**53 held in float64, so the result (integers, not
    yet clipped) is the same on every machine whatever the BLAS does. Zero blocks are skipped.
    """
    pixels = prediction.copy()
    rows = np.flatnonzero(np.count_nonzero(levels, axis=1))
    coefs = levels[rows].astype(np.float64)
    coefs *= steps[rows]
    np.clip(coefs, -32768, 32767, out=coefs)
    residual: F64 = coefs @ _INVERSE
    residual += 0.5 * _IDCT_SCALE
    residual *= 1 / _IDCT_SCALE
    pixels[rows] += np.floor(residual, out=residual)
    return pixels


def _symbols(levels: I64) -> bytes:
    """Run-length code zig-zag `levels` (n, 64) block by block into the symbol stream."""
    count = np.count_nonzero(levels, axis=1)
    block, pos = np.nonzero(levels)
    values = levels[block, pos]
    first = np.concatenate(([0], np.cumsum(count)[:-1])).astype(np.int64)
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
    if int(eob.sum()) != nblocks or (nblocks and not eob[-1]):
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


# --- macroblock geometry and motion ----------------------------------------------------------


class _Layout:
    """Plane shapes, 16-aligned padded sizes and macroblock grid of one frame size."""

    def __init__(self, width: int, height: int) -> None:
        if width <= 0 or height <= 0:
            raise ValueError(f"frame size must be positive, got {width}x{height}")
        cw, ch = (width + 1) // 2, (height + 1) // 2
        self.shapes = ((height, width), (ch, cw), (ch, cw))
        self.mby, self.mbx = -(-height // 16), -(-width // 16)
        self.nmb = self.mby * self.mbx
        self.padded = ((16 * self.mby, 16 * self.mbx),) + ((8 * self.mby, 8 * self.mbx),) * 2

    def pad(self, planes: tuple[U8, U8, U8], frame: int) -> tuple[U8, U8, U8]:
        out = []
        for name, plane, shape, (ph, pw) in zip(
            "yuv", planes, self.shapes, self.padded, strict=True
        ):
            if plane.shape != shape or plane.dtype != np.uint8:
                raise ValueError(
                    f"frame {frame}: plane {name} must be uint8 {shape}, "
                    f"got {plane.dtype} {plane.shape}"
                )
            out.append(np.pad(plane, ((0, ph - shape[0]), (0, pw - shape[1])), "edge"))
        return out[0], out[1], out[2]

    def crop(self, planes: tuple[U8, U8, U8]) -> Planes:
        y, u, v = (
            np.ascontiguousarray(p[: s[0], : s[1]])
            for p, s in zip(planes, self.shapes, strict=True)
        )
        return y, u, v

    def to_blocks(self, planes: tuple[U8, U8, U8]) -> F64:
        """All 8x8 blocks, macroblock order: 4 luma per MB (2x2), then U, then V: (6*nmb, 64)."""
        my, mx = self.mby, self.mbx
        luma = planes[0].reshape(my, 2, 8, mx, 2, 8).transpose(0, 3, 1, 4, 2, 5)
        chroma = [p.reshape(my, 8, mx, 8).transpose(0, 2, 1, 3) for p in planes[1:]]
        parts = [luma.reshape(-1, 64)] + [c.reshape(-1, 64) for c in chroma]
        return np.concatenate(parts).astype(np.float64)

    def from_blocks(self, blocks: F64) -> tuple[U8, U8, U8]:
        """Inverse of `to_blocks` (padded planes)."""
        my, mx, n = self.mby, self.mbx, self.nmb
        pixels = np.clip(blocks, 0, 255).astype(np.uint8)
        y = pixels[: 4 * n].reshape(my, mx, 2, 2, 8, 8).transpose(0, 2, 4, 1, 3, 5)
        u, v = (
            pixels[k * n : (k + 1) * n].reshape(my, mx, 8, 8).transpose(0, 2, 1, 3) for k in (4, 5)
        )
        return (y.reshape(16 * my, 16 * mx), u.reshape(8 * my, 8 * mx), v.reshape(8 * my, 8 * mx))

    def steps(self, quality: int) -> I64:
        """Per-block quantiser steps (6*nmb, 64)."""
        luma, chroma = _quant_table(_LUMA_TABLE, quality), _quant_table(_CHROMA_TABLE, quality)
        return np.concatenate(
            (np.tile(luma, (4 * self.nmb, 1)), np.tile(chroma, (2 * self.nmb, 1)))
        )


def _extend(plane: U8, margin: int) -> U8:
    """`plane` with `margin` edge-replicated pixels on every side."""
    return np.pad(plane, margin, "edge")


def _windows(extended: U8, margin: int, vectors: I64, size: int) -> U8:
    """(n, size, size) blocks at each block's origin + (dy, dx) of an `_extend`ed plane.

    Each |dy|, |dx| must be <= margin; the grid of n blocks covers the plane before extension.
    """
    mby, mbx = (extended.shape[0] - 2 * margin) // size, (extended.shape[1] - 2 * margin) // size
    view = np.lib.stride_tricks.sliding_window_view(extended, (size, size))
    oy = np.repeat(np.arange(mby) * size, mbx) + vectors[:, 0] + margin
    ox = np.tile(np.arange(mbx) * size, mby) + vectors[:, 1] + margin
    return view[oy, ox]


def _sad(blocks: npt.NDArray[np.int16], candidates: U8) -> I64:
    diff = np.abs(blocks - candidates).reshape(len(blocks), -1)
    sad: I64 = diff.sum(axis=1, dtype=np.int64)
    return sad


def _coarse_search(cur: I64, ref: I64, reach: int, mby: int, mbx: int) -> I64:
    """Full search of +-reach on 4x-decimated planes; vectors in decimated units."""
    height, width = cur.shape
    padded = np.pad(ref, reach, "edge")
    best = np.full(mby * mbx, np.iinfo(np.int64).max)
    vectors = np.zeros((mby * mbx, 2), dtype=np.int64)
    offsets = sorted(
        itertools.product(range(-reach, reach + 1), repeat=2),
        key=lambda d: (abs(d[0]) + abs(d[1]), d),
    )
    for dy, dx in offsets:
        shifted = padded[reach + dy : reach + dy + height, reach + dx : reach + dx + width]
        sad = np.abs(cur - shifted).reshape(mby, 4, mbx, 4).sum(axis=(1, 3)).ravel()
        better = sad < best
        best[better] = sad[better]
        vectors[better] = (dy, dx)
    return vectors


def _refine(cur: U8, ref: U8, centres: I64, size: int, limit: int) -> tuple[I64, I64]:
    """Best of the 3x3 vectors around each block's centre (clamped to +-limit), and its SAD."""
    mby, mbx = cur.shape[0] // size, cur.shape[1] // size
    blocks = cur.reshape(mby, size, mbx, size).transpose(0, 2, 1, 3).reshape(-1, size, size)
    blocks16 = blocks.astype(np.int16)
    best = np.full(len(centres), np.iinfo(np.int64).max)
    vectors = centres.copy()
    extended = _extend(ref, limit)
    for dy, dx in sorted(itertools.product((-1, 0, 1), repeat=2), key=lambda d: d != (0, 0)):
        candidate = np.clip(centres + np.array((dy, dx)), -limit, limit)
        sad = _sad(blocks16, _windows(extended, limit, candidate, size))
        better = sad < best
        best[better] = sad[better]
        vectors[better] = candidate[better]
    return vectors, best


def _decimate(plane: U8, factor: int) -> I64:
    h, w = plane.shape[0] // factor, plane.shape[1] // factor
    sums: I64 = plane.reshape(h, factor, w, factor).sum(axis=(1, 3), dtype=np.int64)
    return sums


def _motion_search(cur: U8, ref: U8, search_range: int) -> I64:
    """Integer-pel vector (dy, dx) per 16x16 macroblock, coarse to fine, biased to (0, 0)."""
    mby, mbx = cur.shape[0] // 16, cur.shape[1] // 16
    if search_range == 0:
        return np.zeros((mby * mbx, 2), dtype=np.int64)
    coarse = _coarse_search(_decimate(cur, 4), _decimate(ref, 4), -(-search_range // 4), mby, mbx)
    half_cur = (_decimate(cur, 2) // 4).astype(np.uint8)
    half_ref = (_decimate(ref, 2) // 4).astype(np.uint8)
    half, _ = _refine(half_cur, half_ref, 2 * coarse, 8, -(-search_range // 2))
    vectors, sad = _refine(cur, ref, 2 * half, 16, search_range)
    vectors, sad = _refine(cur, ref, vectors, 16, search_range)
    blocks = cur.reshape(mby, 16, mbx, 16).transpose(0, 2, 1, 3).reshape(-1, 16, 16)
    zero_sad = _sad(blocks.astype(np.int16), _windows(ref, 0, np.zeros_like(vectors), 16))
    vectors[zero_sad <= sad + _ZERO_BIAS] = 0
    return vectors


def _predict(layout: _Layout, ref: tuple[U8, U8, U8], vectors: I64) -> F64:
    """Motion-compensated prediction as (6*nmb, 64) blocks in `to_blocks` order."""
    n, margin = layout.nmb, int(np.abs(vectors).max(initial=0))
    luma = _windows(_extend(ref[0], margin), margin, vectors, 16)
    luma = luma.reshape(n, 2, 8, 2, 8).transpose(0, 1, 3, 2, 4)
    halved = np.sign(vectors) * ((np.abs(vectors) + 1) // 2)
    margin = (margin + 1) // 2
    parts = [luma.reshape(-1, 64)]
    parts += [_windows(_extend(p, margin), margin, halved, 8).reshape(n, 64) for p in ref[1:]]
    return np.concatenate(parts).astype(np.float64)


def _int_param(params: dict[str, object], key: str, default: int, low: int, high: int) -> int:
    value = params.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"params[{key!r}] must be a number within {low}..{high}, got {value!r}")
    return round(value)


# --- the codec ----------------------------------------------------------------------------


class Encoder:
    """I/P-frame encoder; keeps the decoder's exact reconstruction as its reference."""

    def __init__(self, width: int, height: int, fps: float, params: dict[str, object]) -> None:
        self.layout = _Layout(width, height)
        self.quality = max(1, _int_param(params, "quality", 50, 0, 100))
        self.intra_period = _int_param(params, "intra_period", 30, 1, 1 << 30)
        self.search_range = _int_param(params, "search_range", 16, 0, _MAX_RANGE)
        self.steps = self.layout.steps(self.quality)
        self.reference: tuple[U8, U8, U8] | None = None
        self.reconstruction: Planes | None = None  # last frame as the decoder will output it
        self.frame_index = 0

    def encode(self, y: U8, u: U8, v: U8) -> bytes:
        layout = self.layout
        cur = layout.pad((y, u, v), self.frame_index)
        blocks = layout.to_blocks(cur)
        n = layout.nmb
        if self.reference is None or self.frame_index % self.intra_period == 0:
            levels = _quantise(blocks - 128.0, self.steps, 0.5)
            pixels = _idct(levels, self.steps, np.full(blocks.shape, 128.0))
            coded = levels.copy()
            coded[:, 0] = np.diff(levels[:, 0], prepend=0)
            tag, side = _TAG_INTRA, b""
        else:
            vectors = _motion_search(cur[0], self.reference[0], self.search_range)
            prediction = _predict(layout, self.reference, vectors)
            levels = _quantise(blocks - prediction, self.steps, _INTER_ROUNDING)
            nonzero = np.count_nonzero(levels, axis=1) > 0
            luma_residual = nonzero[: 4 * n].reshape(n, 4).any(axis=1)
            chroma_residual = nonzero[4 * n :].reshape(2, n).any(axis=0)
            mb_coded = luma_residual | chroma_residual | vectors.any(axis=1)
            pixels = _idct(levels, self.steps, prediction)
            block_coded = np.concatenate((np.repeat(mb_coded, 4), mb_coded, mb_coded))
            coded = levels[block_coded]
            deltas = np.diff(vectors[mb_coded], axis=0, prepend=np.zeros((1, 2), np.int64))
            tag = _TAG_PREDICTED
            side = mb_coded.astype(np.uint8).tobytes() + deltas.astype(np.int8).tobytes()
        self.reference = layout.from_blocks(pixels)
        self.reconstruction = layout.crop(self.reference)
        self.frame_index += 1
        payload = zlib.compress(side + _symbols(coded), 9)
        return struct.pack("<BB", tag, self.quality) + payload

    def flush(self) -> list[bytes]:
        return []


class Decoder:
    """Decodes inter_dct packets; one frame per packet."""

    def __init__(self, width: int, height: int, fps: float) -> None:
        self.layout = _Layout(width, height)
        self.reference: tuple[U8, U8, U8] | None = None
        self.frame_index = 0

    def decode(self, packet: bytes) -> list[Planes]:
        if not packet:
            return []
        layout, n = self.layout, self.layout.nmb
        what = f"inter_dct packet {self.frame_index}"
        if len(packet) < 2 or packet[0] not in (_TAG_INTRA, _TAG_PREDICTED):
            raise ValueError(f"{what}: bad header {packet[:2].hex()} (want tag 49 or 50)")
        if not 1 <= packet[1] <= 100:
            raise ValueError(f"{what}: quality {packet[1]} is outside 1..100")
        try:
            stream = zlib.decompress(packet[2:])
        except zlib.error as exc:
            raise ValueError(f"{what}: corrupt zlib payload ({exc})") from exc
        steps = layout.steps(packet[1])
        if packet[0] == _TAG_INTRA:
            levels = _parse_symbols(stream, 0, 6 * n, what)
            levels[:, 0] = np.cumsum(levels[:, 0])
            pixels = _idct(levels, steps, np.full(levels.shape, 128.0))
        else:
            if self.reference is None:
                raise ValueError(f"{what}: P-frame before any I-frame")
            if len(stream) < n:
                raise ValueError(f"{what}: {len(stream)} bytes cannot hold {n} macroblock modes")
            mb_coded = np.frombuffer(stream, np.uint8, n) != 0
            ncoded = int(mb_coded.sum())
            if len(stream) < n + 2 * ncoded:
                raise ValueError(f"{what}: motion vectors of {ncoded} macroblocks are truncated")
            deltas = np.frombuffer(stream, np.int8, 2 * ncoded, n).astype(np.int64)
            vectors = np.zeros((n, 2), dtype=np.int64)
            vectors[mb_coded] = np.cumsum(deltas.reshape(-1, 2), axis=0)
            if int(np.abs(vectors).max(initial=0)) > _MAX_RANGE:
                raise ValueError(f"{what}: a motion vector exceeds +-{_MAX_RANGE}")
            block_coded = np.concatenate((np.repeat(mb_coded, 4), mb_coded, mb_coded))
            levels = np.zeros((6 * n, 64), dtype=np.int64)
            levels[block_coded] = _parse_symbols(stream, n + 2 * ncoded, 6 * ncoded, what)
            prediction = _predict(layout, self.reference, vectors)
            pixels = _idct(levels, steps, prediction)
        self.reference = layout.from_blocks(pixels)
        self.frame_index += 1
        return [layout.crop(self.reference)]

    def flush(self) -> list[Planes]:
        return []
