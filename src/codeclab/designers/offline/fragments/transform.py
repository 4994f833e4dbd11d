"""Transform, quantiser and coefficient symbols of generated codecs.

Blocks are (n, t*t) float64 rows in raster order of their plane; coefficients are kept in
zig-zag order. The inverse transform is exact integer arithmetic (integers carried in float64
far below 2**53: 256 products of a 15-bit coefficient and two 13-bit basis values), so every
machine reconstructs the same pixels whatever its BLAS does.
"""

import math

import numpy as np

from codeclab.designers.offline.fragments.config import (
    CHROMA_QP_OFFSET,
    CHROMA_T,
    LUMA_T,
    RD_LAMBDA,
)
from codeclab.designers.offline.fragments.types import F64, I64, Bools

IDCT_BITS = 13
IDCT_SCALE = float(1 << (2 * IDCT_BITS))
EOB = 255
UNARY_CAP = 13
"""Unary bins of a level's remainder before its Exp-Golomb escape (CABAC's LEVEL_PREFIX)."""
STEP_MULT = (16, 18, 20, 23, 25, 29)
LOG_BASE = (10, 11, 13, 14, 16, 18)
JPEG_LUMA = (
    (16, 11, 10, 16, 24, 40, 51, 61),
    (12, 12, 14, 19, 26, 58, 60, 55),
    (14, 13, 16, 24, 40, 57, 69, 56),
    (14, 17, 22, 29, 51, 87, 80, 62),
    (18, 22, 37, 56, 68, 109, 103, 77),
    (24, 35, 55, 64, 81, 104, 113, 92),
    (49, 64, 78, 87, 103, 121, 120, 101),
    (72, 92, 95, 98, 112, 100, 103, 99),
)
JPEG_CHROMA = (
    (17, 18, 24, 47, 99, 99, 99, 99),
    (18, 21, 26, 66, 99, 99, 99, 99),
    (24, 26, 56, 99, 99, 99, 99, 99),
    (47, 66, 99, 99, 99, 99, 99, 99),
    (99, 99, 99, 99, 99, 99, 99, 99),
    (99, 99, 99, 99, 99, 99, 99, 99),
    (99, 99, 99, 99, 99, 99, 99, 99),
    (99, 99, 99, 99, 99, 99, 99, 99),
)


# --- bases and kernels -------------------------------------------------------------------


def basis_dct(n: int) -> F64:
    """Orthonormal n-point DCT-II basis, one frequency per row."""
    rows = [
        [
            math.sqrt((1 if k == 0 else 2) / n) * math.cos((2 * x + 1) * k * math.pi / (2 * n))
            for x in range(n)
        ]
        for k in range(n)
    ]
    return np.array(rows, dtype=np.float64)


def basis_wht(n: int) -> F64:
    """Orthonormal n-point Walsh-Hadamard basis in sequency order (fewest sign changes first)."""
    h = np.ones((1, 1), dtype=np.float64)
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    changes = np.count_nonzero(np.diff(h, axis=1), axis=1)
    ordered: F64 = h[np.argsort(changes, kind="stable")] / math.sqrt(n)
    return ordered


basis_1d = basis_dct


def zigzag(n: int) -> I64:
    """Raster index (row * n + col) of each zig-zag scan position of an n x n block."""
    order = sorted(
        ((r, c) for r in range(n) for c in range(n)),
        key=lambda rc: (rc[0] + rc[1], rc[0] if (rc[0] + rc[1]) % 2 else rc[1]),
    )
    return np.array([r * n + c for r, c in order], dtype=np.int64)


def kernels(n: int) -> tuple[F64, F64]:
    """(forward float, exact-integer inverse) (n*n, n*n) kernels in zig-zag order.

    ``coefs = blocks @ forward``; ``blocks * IDCT_SCALE ~= coefs @ inverse`` exactly in
    integers, as the inverse holds products of a basis rounded to IDCT_BITS bits.
    """
    basis = basis_1d(n)
    zz = zigzag(n)
    forward = np.ascontiguousarray(np.kron(basis, basis).T[:, zz])
    rounded = np.round(basis * (1 << IDCT_BITS))
    inverse = np.ascontiguousarray(np.kron(rounded, rounded)[zz, :])
    return forward, inverse


FORWARD_Y, INVERSE_Y = kernels(LUMA_T)
FORWARD_C, INVERSE_C = kernels(CHROMA_T)
SMALL_T = 4
"""Side of the smaller luma transform of adaptive transform sizes (`kernels_split`)."""


def kernels_split(n: int, m: int) -> tuple[F64, F64]:
    """(forward, exact-integer inverse) (n*n, n*n) kernels, as `kernels`, of an n x n block
    coded as (n/m)^2 m x m transforms: coefficient j*q + k is zig-zag position j of sub-block
    k (raster within the block), q = (n/m)^2, so frequencies rise along the row as in a zig-zag
    scan (H.264 interleaves the 4x4 scans of an 8x8 block the same way for CAVLC)."""
    forward_m, inverse_m = kernels(m)
    per = n // m
    q = per * per
    forward = np.zeros((n * n, n * n), dtype=np.float64)
    inverse = np.zeros((n * n, n * n), dtype=np.float64)
    for k in range(q):
        sy, sx = divmod(k, per)
        pixels = [(sy * m + r) * n + sx * m + c for r in range(m) for c in range(m)]
        coefs = [j * q + k for j in range(m * m)]
        forward[np.ix_(pixels, coefs)] = forward_m
        inverse[np.ix_(coefs, pixels)] = inverse_m
    return forward, inverse


FORWARD_Y4, INVERSE_Y4 = kernels_split(LUMA_T, SMALL_T)


# --- quantiser ---------------------------------------------------------------------------


def base_ijg(quality: int) -> int:
    """Step scale (256 = JPEG table as is) of IJG quality scaling."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return (scale * 256 + 50) // 100


def base_log(quality: int) -> int:
    """Step scale (256 = weight as is): a QP of 0..51 from quality, 6 QPs per octave."""
    qp = ((100 - quality) * 51 + 50) // 100
    return LOG_BASE[qp % 6] << (qp // 6)


quality_base = base_log


def offset_base(base: int, offset: int) -> int:
    """`base` scaled by 2**(offset/6) in integers (offset in QP units, may be negative)."""
    scaled = base * STEP_MULT[offset % 6]
    shift = offset // 6
    scaled = scaled << shift if shift >= 0 else scaled >> -shift
    return max(1, (scaled + 8) // 16)


def weights_flat(n: int, chroma: bool) -> I64:
    """Step weights (16 = one step) of a flat matrix."""
    return np.full((n, n), 16, dtype=np.int64)


def weights_slope(n: int, chroma: bool) -> I64:
    """Weights rising mildly with frequency: 16 at DC to about 45 at the highest."""
    r = np.arange(n, dtype=np.int64)
    return 16 + (2 * (r[:, None] + r[None, :]) * 8) // n


def weights_jpeg(n: int, chroma: bool) -> I64:
    """The JPEG Annex K tables, sampled at the same frequencies for 4x4 and 16x16 blocks."""
    table = np.array(JPEG_CHROMA if chroma else JPEG_LUMA, dtype=np.int64)
    index = (np.arange(n) * 8) // n
    return table[index[:, None], index[None, :]]


quant_weights = weights_flat


def quant_steps(n: int, chroma: bool, base: int) -> I64:
    """Integer steps (>= 1) of an n x n block in zig-zag order at step scale `base`."""
    steps = (quant_weights(n, chroma) * base + 128) // 256
    flat: I64 = np.maximum(steps, 1).ravel()[zigzag(n)]
    return flat


class Prices:
    """Lagrangian prices (lambda * estimated bits) of the symbols of a level at each zig-zag
    position of a coded block, for rate-distortion optimised quantisation (`levels_rdoq`)."""

    def __init__(self, zero: F64, significant: F64, last: F64, magnitude: F64, lam: float) -> None:
        self.lam = lam  # the lambda the prices are in units of (> 0)
        self.zero = zero  # (ncoef,) a zero level before the block's last level
        self.significant = significant  # (ncoef,) a nonzero level there: its flags and sign
        self.last = last  # (ncoef,) added where the level is the block's last
        self.magnitude = magnitude  # (5,) one, more, each unary bin, unary stop, bypass bit
        self.table = price_magnitudes(np.arange(PRICE_TABLE, dtype=np.float64), magnitude)


class Quantiser:
    """Steps of one quality and frame type; `flat_y`/`flat_c` are the steps of weight 16;
    `steps_y4` those of luma blocks coded as 4x4 transforms (`kernels_split`). `prices`: per
    plane, then for luma 4x4 transforms, the level prices RDOQ uses for the frame being coded
    (None: none). `offsets`: per macroblock of the frame being coded, its QP offset against
    this quantiser (None: none; `set_offsets`), served by `variant` quantisers."""

    def __init__(self, quality: int, offset: int) -> None:
        self.quality, self.offset = quality, offset
        base = offset_base(quality_base(quality), offset)
        chroma = offset_base(quality_base(quality), offset + CHROMA_QP_OFFSET)
        self.steps_y = quant_steps(LUMA_T, False, base)
        split = (LUMA_T // SMALL_T) ** 2
        self.steps_y4 = np.repeat(quant_steps(SMALL_T, False, base), split)  # kernels_split
        self.steps_c = quant_steps(CHROMA_T, True, chroma)
        self.flat_y = max(1, (16 * base + 128) // 256)
        self.flat_c = max(1, (16 * chroma + 128) // 256)
        self.prices: list[Prices | None] = [None, None, None, None]
        self.offsets: I64 | None = None
        self.block_offsets: list[I64] = []  # `offsets` per transform block of each plane
        self.variants: dict[int, Quantiser] = {}
        self.priced_from: list[Prices | None] = []  # the prices a variant's were scaled from

    def set_offsets(self, mb_of: tuple[I64, ...], offsets: I64 | None) -> None:
        """Per-macroblock QP offsets of the frame being coded (`mb_of`: each plane's blocks'
        macroblocks); None or all zero: none."""
        if offsets is None or not offsets.any():
            self.offsets, self.block_offsets = None, []
            return
        self.offsets = offsets
        self.block_offsets = [offsets[mb] for mb in mb_of]

    def variant(self, delta: int) -> "Quantiser":
        """This quantiser `delta` QP finer or coarser (6 = twice the step), its prices those
        of this one scaled to its lambda (lambda grows as step^2)."""
        if delta == 0:
            return self
        found = self.variants.get(delta)
        if found is None:
            found = Quantiser(self.quality, self.offset + delta)
            self.variants[delta] = found
        if found.priced_from is not self.prices:
            ratio = (found.flat_y / self.flat_y) ** 2
            found.prices = [scaled_prices(prices, ratio) for prices in self.prices]
            found.priced_from = self.prices
        return found

    def at(self, mb: int) -> "Quantiser":
        """The quantiser of macroblock `mb` of the frame being coded."""
        return self if self.offsets is None else self.variant(int(self.offsets[mb]))

    def variant_flats(self, deltas: I64) -> tuple[I64, I64]:
        """(`flat_y`, `flat_c`) of each entry's variant quantiser (`deltas`: QP offsets)."""
        flat_y = np.empty(len(deltas), dtype=np.int64)
        flat_c = np.empty(len(deltas), dtype=np.int64)
        for delta in np.unique(deltas).tolist():
            variant = self.variant(delta)
            flat_y[deltas == delta] = variant.flat_y
            flat_c[deltas == delta] = variant.flat_c
        return flat_y, flat_c

    def lambda_scale(self, mb_of: I64) -> F64:
        """Per block (`mb_of`: its macroblock), its lambda over this quantiser's."""
        if self.offsets is None:
            return np.ones(len(mb_of), dtype=np.float64)
        flat_y, _ = self.variant_flats(self.offsets[mb_of])
        scale: F64 = (flat_y / self.flat_y) ** 2
        return scale

    def flat_steps(self, plane: int, grid: tuple[int, int]) -> int | I64:
        """The weight-16 step of a plane (0 luma, 1-2 chroma) of the frame being coded: one
        step without offsets, else a grid of each transform block's."""
        if self.offsets is None:
            return self.flat_y if plane == 0 else self.flat_c
        flats = self.variant_flats(self.block_offsets[plane])
        return flats[min(plane, 1)].reshape(grid)

    def groups(self, plane: int) -> list[tuple["Quantiser", Bools | None]]:
        """(quantiser, its blocks) of all the blocks of a plane (0 luma, 1-2 chroma) of the
        frame being coded: one group of all (None) without offsets, else one per QP offset."""
        if self.offsets is None:
            return [(self, None)]
        deltas = self.block_offsets[plane]
        return [(self.variant(d), deltas == d) for d in np.unique(deltas).tolist()]


def scaled_prices(prices: Prices | None, ratio: float) -> Prices | None:
    """`prices` for a lambda `ratio` times theirs (the bits they stand for unchanged)."""
    if prices is None:
        return None
    return Prices(
        prices.zero * ratio,
        prices.significant * ratio,
        prices.last * ratio,
        prices.magnitude * ratio,
        prices.lam * ratio,
    )


def quantise(blocks: F64, forward: F64, steps: I64, rounding: float) -> I64:
    """Zig-zag levels of raster (n, t*t) blocks: sign * floor(|coef| / step + rounding)."""
    scaled: F64 = blocks @ forward
    scaled /= steps
    scaled += np.copysign(rounding, scaled)
    levels = np.clip(np.trunc(scaled), -32767, 32767).astype(np.int64)
    levels[:, EOB:] = 0  # EOB is the largest run symbol: a 16x16 block codes 255 coefficients
    return levels


def levels_deadzone(
    blocks: F64, forward: F64, steps: I64, rounding: float, prices: Prices | None
) -> I64:
    """Levels by dead-zone rounding (`quantise`); no prices needed."""
    return quantise(blocks, forward, steps, rounding)


PRICE_TABLE = 64
"""Magnitudes below this are priced from a table each `Prices` holds."""


def magnitude_prices(magnitudes: F64, prices: Prices) -> F64:
    """Prices of whole level magnitudes (>= 1) beyond their significance: a greater-than-one
    flag, a unary remainder of up to LEVEL_PREFIX bins, an Exp-Golomb escape in bypass
    (`price_magnitudes`; from `prices.table` where all are small)."""
    index = magnitudes.astype(np.int64)
    if int(index.max(initial=0)) < PRICE_TABLE:
        found: F64 = prices.table[index]
        return found
    return price_magnitudes(magnitudes, prices.magnitude)


def price_magnitudes(magnitudes: F64, symbols: F64) -> F64:
    """`magnitude_prices` by the formula, from the prices of the five `Prices.magnitude`
    symbols."""
    one, more, unary, stop, bypass = symbols
    extra = np.maximum(magnitudes - 2, 0)
    escape = np.maximum(extra - UNARY_CAP, 0)
    golomb = 2 * np.floor(np.log2(escape + 1)) + 1
    priced: F64 = np.where(
        magnitudes <= 1,
        one,
        more
        + unary * np.minimum(extra, UNARY_CAP)
        + np.where(extra < UNARY_CAP, stop, 0.0)
        + np.where(extra >= UNARY_CAP, bypass * golomb, 0.0),
    )
    return priced


def level_bits(levels: I64, prices: Prices | None) -> F64:
    """Estimated bits of each block's zig-zag `levels`: by `prices` where there are some, else
    2 + 2 * log2(1 + |level|) per nonzero level."""
    magnitude = np.abs(levels)
    if prices is None:
        rough: F64 = ((magnitude > 0) * (2 + 2 * np.log2(1 + magnitude))).sum(axis=1)
        return rough
    nonzero = magnitude > 0
    ncoef = levels.shape[1]
    last = ncoef - 1 - np.argmax(nonzero[:, ::-1], axis=1)
    within = np.arange(ncoef)[None, :] <= last[:, None]
    priced = np.where(
        nonzero,
        prices.significant + magnitude_prices(magnitude.astype(np.float64), prices),
        prices.zero,
    )
    total = (priced * within).sum(axis=1) + prices.last[last]
    bits: F64 = np.where(nonzero.any(axis=1), total, 0.0) / prices.lam
    return bits


def levels_rdoq(
    blocks: F64, forward: F64, steps: I64, rounding: float, prices: Prices | None
) -> I64:
    """Rate-distortion optimised levels (as HM's RDOQ): each coefficient takes the magnitude
    nearest its value or one less, whichever costs less in squared error (the transform is
    orthonormal: coefficient error = pixel error) plus `prices`; then each block ends at the
    last level where the total cost is least, or codes nothing. Without prices, `quantise`."""
    if prices is None:
        return quantise(blocks, forward, steps, rounding)
    coefs: F64 = blocks @ forward
    magnitude = np.abs(coefs) / steps
    weight = steps.astype(np.float64) ** 2
    upper = np.floor(magnitude + 0.5)
    lower = np.maximum(upper - 1, 0)
    costs = []
    for candidate in (upper, lower):
        rate = np.where(
            candidate > 0,
            prices.significant + magnitude_prices(candidate, prices),
            prices.zero,
        )
        costs.append((magnitude - candidate) ** 2 * weight + rate)
    take_lower = costs[1] < costs[0]
    chosen = np.where(take_lower, lower, upper)
    kept = np.where(take_lower, costs[1], costs[0])
    dropped = magnitude**2 * weight  # a coefficient after the last level: no bits at all
    tail = dropped.sum(axis=1, keepdims=True) - np.cumsum(dropped, axis=1)
    ends = np.cumsum(kept, axis=1) + tail + prices.last
    ends[chosen == 0] = np.inf
    last = np.argmin(ends, axis=1)
    best = ends[np.arange(len(ends)), last]
    chosen[np.arange(chosen.shape[1])[None, :] > last[:, None]] = 0
    chosen[dropped.sum(axis=1) <= best] = 0
    levels = np.clip(np.copysign(chosen, coefs), -32767, 32767).astype(np.int64)
    levels[:, EOB:] = 0
    return levels


quantise_levels = levels_deadzone


def dequantise(levels: I64, steps: I64, inverse: F64) -> F64:
    """Exact integer residual (n, t*t) of zig-zag `levels`; blocks with no level are zero."""
    residual = np.zeros(levels.shape, dtype=np.float64)
    rows = np.flatnonzero(np.count_nonzero(levels, axis=1))
    if rows.size:
        coefs = levels[rows].astype(np.float64)
        coefs *= steps
        np.clip(coefs, -32768, 32767, out=coefs)
        pixels: F64 = coefs @ inverse
        pixels += 0.5 * IDCT_SCALE
        pixels *= 1 / IDCT_SCALE
        residual[rows] = np.floor(pixels)
    return residual


def decision_lambda(quant: Quantiser) -> float:
    """Lambda of coding choices weighed by SSD + lambda * bits: RD_LAMBDA * step^2, at least
    0.12 * step^2 (where RD decisions are off)."""
    return max(RD_LAMBDA, 0.12) * quant.flat_y * quant.flat_y


def luma_residual(levels: I64, quant: Quantiser, tx4: Bools | None) -> F64:
    """Exact integer luma residual of zig-zag `levels`; the blocks set in `tx4` (None: none)
    were coded as four 4x4 transforms (`kernels_split`)."""
    if tx4 is None or not tx4.any():
        return dequantise(levels, quant.steps_y, INVERSE_Y)
    residual = np.empty(levels.shape, dtype=np.float64)
    residual[~tx4] = dequantise(levels[~tx4], quant.steps_y, INVERSE_Y)
    residual[tx4] = dequantise(levels[tx4], quant.steps_y4, INVERSE_Y4)
    return residual


def residual_planes(levels: list[I64], quant: Quantiser, tx4: Bools | None) -> list[F64]:
    """The dequantised residual blocks of a frame's three planes (luma as `luma_residual`),
    each macroblock's by its own quantiser (`Quantiser.groups`)."""
    residuals = []
    for p, plane_levels in enumerate(levels):
        residual = np.empty(plane_levels.shape, dtype=np.float64)
        for found, rows in quant.groups(p):
            chosen = slice(None) if rows is None else rows
            if p == 0:
                small = None if tx4 is None else tx4[chosen]
                residual[chosen] = luma_residual(plane_levels[chosen], found, small)
            else:
                residual[chosen] = dequantise(plane_levels[chosen], found.steps_c, INVERSE_C)
        residuals.append(residual)
    return residuals


def luma_fixed(blocks: F64, quant: Quantiser, rounding: float, lam: float) -> tuple[I64, Bools]:
    """Luma levels of raster (n, 64) residual blocks by the 8x8 transform (no block is 4x4)."""
    levels = quantise_levels(blocks, FORWARD_Y, quant.steps_y, rounding, quant.prices[0])
    return levels, np.zeros(len(blocks), dtype=np.bool_)


def luma_adaptive(blocks: F64, quant: Quantiser, rounding: float, lam: float) -> tuple[I64, Bools]:
    """(levels, tx4) of raster (n, 64) luma residual blocks: each block coded by one 8x8
    transform or by four 4x4 ones, whichever costs less squared error + `lam` * estimated
    bits (H.264 High's adaptive transform size, chosen per 8x8 block)."""
    large = quantise_levels(blocks, FORWARD_Y, quant.steps_y, rounding, quant.prices[0])
    small = quantise_levels(blocks, FORWARD_Y4, quant.steps_y4, rounding, quant.prices[3])
    error_large = ((blocks - dequantise(large, quant.steps_y, INVERSE_Y)) ** 2).sum(axis=1)
    error_small = ((blocks - dequantise(small, quant.steps_y4, INVERSE_Y4)) ** 2).sum(axis=1)
    cost_large = error_large + lam * level_bits(large, quant.prices[0])
    cost_small = error_small + lam * level_bits(small, quant.prices[3])
    tx4: Bools = (cost_small < cost_large) & (np.count_nonzero(small, axis=1) > 0)
    levels: I64 = np.where(tx4[:, None], small, large)
    return levels, tx4


luma_levels = luma_fixed


def luma_bits(levels: I64, quant: Quantiser, tx4: Bools) -> F64:
    """`level_bits` of luma blocks, each priced as its transform size codes it."""
    bits = level_bits(levels, quant.prices[0])
    if tx4.any():
        bits[tx4] = level_bits(levels[tx4], quant.prices[3])
    return bits


# --- blocks ------------------------------------------------------------------------------


def to_blocks(plane: I64, n: int) -> F64:
    """Raster-ordered (count, n*n) blocks of a plane whose sides are multiples of n."""
    h, w = plane.shape
    blocks = plane.reshape(h // n, n, w // n, n).transpose(0, 2, 1, 3)
    return blocks.reshape(-1, n * n).astype(np.float64)


def from_blocks(blocks: F64, n: int, h: int, w: int) -> I64:
    """Inverse of `to_blocks`: an (h, w) int64 plane."""
    plane = blocks.reshape(h // n, w // n, n, n).transpose(0, 2, 1, 3).reshape(h, w)
    return plane.astype(np.int64)


# --- symbols -----------------------------------------------------------------------------


def small_ints(values: I64) -> tuple[bytes, bytes]:
    """(int8 codes, -128 = escape; int16 little-endian escapes) of `values`."""
    small = (values > -128) & (values < 128)
    codes = np.where(small, values, -128).astype(np.int8).tobytes()
    return codes, values[~small].astype("<i2").tobytes()


def parse_small_ints(codes: bytes, escapes: bytes, what: str) -> I64:
    """Inverse of `small_ints`."""
    values = np.frombuffer(codes, np.int8).astype(np.int64)
    escaped = values == -128
    if 2 * int(escaped.sum()) != len(escapes):
        raise ValueError(f"{what}: {int(escaped.sum())} escapes but {len(escapes)} escape bytes")
    values[escaped] = np.frombuffer(escapes, "<i2")
    return values


def run_length(levels: I64) -> tuple[bytes, bytes, bytes]:
    """(runs, codes, escapes) of zig-zag `levels` (n, t*t): per block, the zero run before each
    nonzero level then EOB (uint8), and the levels as `small_ints`."""
    count = np.count_nonzero(levels, axis=1)
    block, pos = np.nonzero(levels)
    values = levels[block, pos]
    first = np.concatenate(([0], np.cumsum(count)[:-1])).astype(np.int64)
    previous = np.empty_like(pos)
    previous[1:] = pos[:-1]
    index = np.arange(pos.size)
    previous[index == first[block]] = -1
    runs = np.full(pos.size + count.size, EOB, dtype=np.uint8)
    runs[block + index] = pos - previous - 1  # block b's symbols start after b EOBs
    codes, escapes = small_ints(values)
    return runs.tobytes(), codes, escapes


def parse_run_length(
    runs: bytes, codes: bytes, escapes: bytes, nblocks: int, ncoef: int, what: str
) -> I64:
    """Inverse of `run_length`: the (nblocks, ncoef) zig-zag levels."""
    symbols = np.frombuffer(runs, np.uint8)
    eob = symbols == EOB
    if int(eob.sum()) != nblocks or (nblocks and not eob[-1]):
        raise ValueError(f"{what}: expected {nblocks} end-of-block symbols, got {int(eob.sum())}")
    values = parse_small_ints(codes, escapes, what)
    if values.size != symbols.size - nblocks:
        raise ValueError(f"{what}: {values.size} levels for {symbols.size - nblocks} runs")
    steps = np.where(eob, 0, symbols.astype(np.int64) + 1)
    total = np.cumsum(steps)
    block = np.cumsum(eob) - eob
    base = np.concatenate(([0], total[eob][:-1]))
    pos = (total - base[block] - 1)[~eob]
    if pos.size and int(pos.max()) >= min(ncoef, EOB):
        raise ValueError(f"{what}: a run goes past the last coefficient")
    levels = np.zeros((nblocks, ncoef), dtype=np.int64)
    levels[block[~eob], pos] = values
    return levels
