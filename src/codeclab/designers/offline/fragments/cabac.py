"""Context-adaptive binary arithmetic coding of a frame's symbols, as H.264's CABAC does it.

The packet's payload is one range-coded stream of binary decisions ("bins"), each coded with
an adaptive probability chosen by its context, or at probability 1/2 ("bypass"):

* modes: a skip flag per macroblock, its context the number of coded neighbours (left, top);
  with two references, which one;
* motion: each vector minus the median of its neighbours' (left, top, top-right or top-left),
  per component: a zero flag (context from the neighbours' difference sizes), a unary prefix
  of the size with adaptive contexts, an Exp-Golomb suffix and the sign in bypass;
* coefficients, per plane: a coded-block flag per transform block (context: coded neighbours),
  then per coded block the significance map in zig-zag order (significant? last? contexts by
  position), then the levels in reverse order (greater than one? contexts counting the levels
  already coded, as CABAC; unary remainder, Exp-Golomb escape, bypass sign);
* with MBTREE, the QP offset of each macroblock with levels, as a difference from the last
  such macroblock's (H.264's mb_qp_delta): a zero flag, a bypass sign, a unary size.

Intra and inter blocks, luma and chroma have their own contexts. The encoder builds every bin
and its context with numpy, then runs the arithmetic coder over them; the decoder derives the
same contexts one bin at a time. Probabilities adapt across the P-frames of a group and start
again at every I-frame.
"""

import numpy as np

from codeclab.designers.offline.fragments.config import (
    ADAPTIVE_TRANSFORM,
    AMVP,
    CHROMA_T,
    INTRA_4X4,
    INTRA_PRED,
    LUMA_T,
    MBTREE,
    P_INTRA,
    PARTITIONS,
    SKIP_MEDIAN,
    SUBPEL,
)
from codeclab.designers.offline.fragments.entropy import (
    PROB_BITS,
    TOP,
    entropy_decode,
    entropy_encode,
    entropy_models,
)
from codeclab.designers.offline.fragments.frame import (
    INTRA_MB,
    MAX_VECTOR,
    MODE_DC,
    SUBDIVIDED,
    Layout,
    most_probable_mode,
    pack_sections,
    parse_sections,
)
from codeclab.designers.offline.fragments.lookahead import TREE_DROP
from codeclab.designers.offline.fragments.motion import (
    median_predictors,
    median_vector,
    skip_vector,
    vector_bits,
)
from codeclab.designers.offline.fragments.transform import SMALL_T, Prices
from codeclab.designers.offline.fragments.types import I64, Bools

CABAC_SHIFT = 5
HALF = 1 << (PROB_BITS - 1)
CTX_SKIP = 0  # 3: coded neighbours
CTX_REF = 3
CTX_INTRA = 4  # 3: the two bins of an intra mode
CTX_MVD = 8  # per component 16: zero flag (3), prefix (5)
CTX_AMVP = 40  # 3: which predictor (median or temporal), context: the left and top choices
MVD_PREFIX = 8
CTX_COEF = 64  # per category (intra luma, intra chroma, inter luma, inter chroma) 80:
CAT_STRIDE = 80
CTX_CBF = 0  # 3
CTX_SIG = 3  # 32 position classes
CTX_LAST = 35  # 32
CTX_GT1 = 67  # 5
CTX_REM = 72  # 5
LEVEL_PREFIX = 13
CTX_B = CTX_COEF + 4 * CAT_STRIDE  # B-frames: skip (3), direction (2), MVDs of 2 lists (64)
CTX_SPLIT = CTX_B + 72  # split flag (3), per component of partition differences 5
CTX_LUMA_MODE = CTX_SPLIT + 13  # 2: most probable 8x8 luma mode?, the other modes' bits
CTX_P_INTRA = CTX_LUMA_MODE + 2  # 3: is a coded P macroblock intra? (intra neighbours)
CTX_TX4 = CTX_P_INTRA + 3  # 3: is a coded luma block four 4x4 transforms? (such neighbours)
CTX_COEF4 = CTX_TX4 + 3  # per category (intra, inter) of 4x4-transformed luma blocks 80
CTX_I4 = CTX_COEF4 + 2 * CAT_STRIDE  # 3: is a quadrant four 4x4 blocks?, then 4x4 mode bins
CTX_QP = CTX_I4 + 3  # 4: QP offset difference zero (2: was the last nonzero?), its size (2)
CONTEXTS = CTX_QP + 4
SPLIT = (LUMA_T // SMALL_T) ** 2
"""4x4 transforms per luma block where blocks may be split (`kernels_split`)."""


def position_classes(ncoef: int) -> I64:
    """Context class (0..31) of each zig-zag position: one per position below 16, then one
    per 8 positions, then all positions beyond 136 together."""
    pos = np.arange(ncoef, dtype=np.int64)
    classes: I64 = np.where(pos < 16, pos, 16 + np.minimum(15, (pos - 16) // 8))
    return classes


def split_classes(ncoef: int) -> I64:
    """Context class of each position of a block coded as 4x4 transforms (`kernels_split`):
    its position in its own 4x4 zig-zag scan."""
    classes: I64 = np.arange(ncoef, dtype=np.int64) // SPLIT
    return classes


def models_cabac(count: int) -> list[list[int]]:
    """Fresh context probabilities (of a 0 bin, PROB_BITS bits), one flat list."""
    return [[HALF] * CONTEXTS]


# --- the binary range coder ------------------------------------------------------------------


def rc_encode(contexts: list[int], bins: list[int], probs: list[int]) -> bytes:
    """Range-code `bins` (0/1), each with adaptive probability `probs[context]`, or at 1/2 when
    its context is -1; LZMA's coder (32-bit range, carry kept in `cache`). Trailing zero bytes
    are dropped: the decoder reads zeros past the end."""
    out = bytearray()
    low, span, cache, pending = 0, 0xFFFFFFFF, 0, 1
    one = 1 << PROB_BITS
    for context, bit in zip(contexts, bins, strict=True):
        if context < 0:
            span >>= 1
            if bit:
                low += span
        else:
            p = probs[context]
            bound = (span >> PROB_BITS) * p
            if bit:
                low += bound
                span -= bound
                probs[context] = p - (p >> CABAC_SHIFT)
            else:
                span = bound
                probs[context] = p + ((one - p) >> CABAC_SHIFT)
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
    return bytes(out[1:]).rstrip(b"\x00")  # the first byte is always 0


class BinDecoder:
    """Inverse of `rc_encode`, one bin at a time."""

    def __init__(self, data: bytes, probs: list[int], what: str) -> None:
        self.data = data
        self.pos = 4
        self.code = int.from_bytes((data[:4] + bytes(4))[:4], "big")
        self.span = 0xFFFFFFFF
        self.probs = probs
        self.what = what
        self.limit = 8 * len(data) + 64

    def normalise(self) -> None:
        while self.span < TOP:
            self.span <<= 8
            byte = self.data[self.pos] if self.pos < len(self.data) else 0
            self.code = ((self.code << 8) | byte) & 0xFFFFFFFF
            self.pos += 1
        if self.pos > self.limit:
            raise ValueError(f"{self.what}: the coded stream ends too early")

    def bit(self, context: int) -> int:
        p = self.probs[context]
        bound = (self.span >> PROB_BITS) * p
        if self.code < bound:
            self.span = bound
            self.probs[context] = p + (((1 << PROB_BITS) - p) >> CABAC_SHIFT)
            bit = 0
        else:
            self.code -= bound
            self.span -= bound
            self.probs[context] = p - (p >> CABAC_SHIFT)
            bit = 1
        if self.span < TOP:
            self.normalise()
        return bit

    def bypass(self) -> int:
        self.span >>= 1
        bit = 0
        if self.code >= self.span:
            self.code -= self.span
            bit = 1
        if self.span < TOP:
            self.normalise()
        return bit

    def exp_golomb(self) -> int:
        """An order-0 Exp-Golomb value in bypass bins (as H.264's UEG suffix)."""
        value, k = 0, 0
        while self.bypass():
            value += 1 << k
            k += 1
            if k > 24:
                raise ValueError(f"{self.what}: an Exp-Golomb code runs past 24 bits")
        for shift in range(k - 1, -1, -1):
            value += self.bypass() << shift
        return value


# --- binarisation, vectorised ----------------------------------------------------------------


def exp_golomb_bins(value: int) -> list[int]:
    """Bins of an order-0 Exp-Golomb `value` (see `BinDecoder.exp_golomb`)."""
    bins, k = [], 0
    while value >= (1 << k):
        bins.append(1)
        value -= 1 << k
        k += 1
    bins.append(0)
    bins += [(value >> shift) & 1 for shift in range(k - 1, -1, -1)]
    return bins


def unary_bins(
    values: I64, first_ctx: I64, rest_ctx: I64, cap: int, grow: int
) -> tuple[list[I64], list[I64], list[I64]]:
    """Per value (>= 0), in order: a flag (value > 0) in `first_ctx`; when set, a unary prefix
    of min(value - 1, cap) ones (then a 0 when below cap), bin i in context `rest_ctx` +
    min(i, grow); then an Exp-Golomb escape of value - 1 - cap in bypass. Returns (owner,
    context, bin) arrays: `owner` is the index of the value each bin belongs to, for
    interleaving with other bins by a stable sort."""
    count = values.size
    t = np.maximum(values - 1, 0)
    prefix = np.where(values > 0, np.minimum(t, cap) + (t < cap), 0)
    index = np.arange(count, dtype=np.int64)
    start = np.cumsum(prefix) - prefix
    within = np.arange(int(prefix.sum()), dtype=np.int64) - np.repeat(start, prefix)
    owners = [index, np.repeat(index, prefix)]
    contexts = [first_ctx, np.repeat(rest_ctx, prefix) + np.minimum(within, grow)]
    bins = [(values > 0).astype(np.int64), (within < np.repeat(t, prefix)).astype(np.int64)]
    for i in np.flatnonzero((values > 0) & (t >= cap)):
        escape = np.array(exp_golomb_bins(int(t[i]) - cap), dtype=np.int64)
        owners.append(np.full(escape.size, i, dtype=np.int64))
        contexts.append(np.full(escape.size, -1, dtype=np.int64))
        bins.append(escape)
    return owners, contexts, bins


def interleave(owners: list[I64], contexts: list[I64], bins: list[I64]) -> tuple[I64, I64]:
    """(contexts, bins) ordered by owner, keeping the order of the parts within one owner."""
    owner = np.concatenate(owners)
    order = np.argsort(owner, kind="stable")
    return np.concatenate(contexts)[order], np.concatenate(bins)[order]


def neighbour_sum(grid: I64) -> I64:
    """Per cell of a 2-D grid, the value of its left plus its top neighbour (0 outside)."""
    total = np.zeros_like(grid)
    total[:, 1:] += grid[:, :-1]
    total[1:, :] += grid[:-1, :]
    return total


def predictor_choice(vectors: I64, median: I64, temporal: I64) -> I64:
    """Per macroblock, 1 when the temporal predictor (the previous anchor's vector of the same
    macroblock) gives a cheaper difference than the median, else 0 (AMVP)."""
    cheaper: I64 = (vector_bits(vectors - temporal) < vector_bits(vectors - median)).astype(
        np.int64
    )
    return cheaper


def intra_mode_bins(
    layout: Layout, coded: I64, intra: I64, modes: I64
) -> tuple[list[I64], list[I64]]:
    """Contexts and bins, in three parts, of a P-frame's intra macroblocks: per coded
    macroblock an intra flag (context: intra left and top neighbours), per intra macroblock
    the two bins of its mode (as I-frames code them)."""
    near = neighbour_sum(intra.reshape(layout.mby, layout.mbx)).ravel()
    flagged = np.flatnonzero(coded)
    mode = modes[intra == 1] - INTRA_MB
    high = mode >> 1
    contexts = [CTX_P_INTRA + near[flagged], np.full(mode.size, CTX_INTRA), CTX_INTRA + 1 + high]
    return contexts, [intra[flagged], high, mode & 1]


def motion_bins(
    layout: Layout, modes: I64, vectors: I64, nrefs: int, temporal: I64
) -> tuple[I64, I64]:
    """(contexts, bins) of the modes and motion vector differences of a P-frame; with AMVP,
    each coded macroblock first says which predictor its difference is against."""
    mby, mbx = layout.mby, layout.mbx
    coded = (modes != 0).astype(np.int64)
    intra = (modes >= INTRA_MB).astype(np.int64)
    skip_ctx = CTX_SKIP + neighbour_sum(coded.reshape(mby, mbx)).ravel()
    owners, contexts, bins = [np.arange(layout.nmb)], [skip_ctx], [coded]
    if P_INTRA:
        ctx, mode_bins = intra_mode_bins(layout, coded, intra, modes)
        owners += [np.flatnonzero(coded), np.flatnonzero(intra), np.flatnonzero(intra)]
        contexts += ctx
        bins += mode_bins
    inter = coded * (1 - intra)
    moving = np.flatnonzero(inter)
    if nrefs > 1:
        owners.append(moving)
        contexts.append(np.full(moving.size, CTX_REF, dtype=np.int64))
        bins.append(modes[moving] - 1)
    modes_ctx, modes_bins = interleave(owners, contexts, bins)
    median = median_predictors(vectors, mby, mbx)
    owners, contexts, bins = [], [], []
    if AMVP:
        choice = predictor_choice(vectors, median, temporal) * inter
        median = np.where(choice[:, None] == 1, temporal, median)
        near = neighbour_sum(choice.reshape(mby, mbx)).ravel()
        owners.append(2 * np.arange(moving.size, dtype=np.int64))  # before the y component
        contexts.append(CTX_AMVP + near[moving])
        bins.append(choice[moving])
    differences = vectors - median
    differences[inter == 0] = 0
    mvd_component_bins(layout, differences, moving, CTX_MVD, owners, contexts, bins)
    mv_ctx, mv_bins = interleave(owners, contexts, bins)
    return np.concatenate((modes_ctx, mv_ctx)), np.concatenate((modes_bins, mv_bins))


def coefficient_bins(
    levels: I64,
    present: Bools,
    grid: tuple[int, int],
    base: int,
    tx4: Bools | None = None,
    base4: int = 0,
) -> tuple[I64, I64]:
    """(contexts, bins) of one plane's zig-zag `levels` (every block of the plane, raster order)
    for the blocks where `present` is set: coded-block flags; given `tx4` (luma of adaptive
    transform sizes), per coded block whether it is four 4x4 transforms (context: such left
    and top neighbours); then significance maps and levels, in the contexts from `base4` and
    by `split_classes` for blocks so split."""
    ncoef = levels.shape[1]
    nonzero = levels != 0
    coded = nonzero.any(axis=1) & present
    near = neighbour_sum(coded.reshape(grid).astype(np.int64)).ravel()
    parts_ctx = [base + CTX_CBF + near[present]]
    parts_bins = [coded[present].astype(np.int64)]
    small = np.zeros(int(coded.sum()), dtype=np.bool_)
    if tx4 is not None:
        flags = tx4 & coded
        near_small = neighbour_sum(flags.reshape(grid).astype(np.int64)).ravel()
        parts_ctx.append(CTX_TX4 + near_small[coded])
        parts_bins.append(flags[coded].astype(np.int64))
        small = flags[coded]
    blocks = levels[coded]
    if blocks.size:
        mask = nonzero[coded]
        count = blocks.shape[0]
        block_base = np.where(small, base4, base)
        last = ncoef - 1 - np.argmax(mask[:, ::-1], axis=1)
        span = last + 1
        owner = np.repeat(np.arange(count, dtype=np.int64), span)
        pos = np.arange(int(span.sum()), dtype=np.int64) - np.repeat(np.cumsum(span) - span, span)
        classes = np.where(small[owner], split_classes(ncoef)[pos], position_classes(ncoef)[pos])
        at = block_base[owner] + classes
        sig = mask[owner, pos]
        inner = pos < ncoef - 1
        ctx = np.stack((at + CTX_SIG, at + CTX_LAST), axis=1).ravel()
        bits = np.stack((sig, pos == last[owner]), axis=1).ravel().astype(np.int64)
        keep = np.stack((inner, inner & sig), axis=1).ravel()
        parts_ctx.append(ctx[keep])
        parts_bins.append(bits[keep])
        reverse = blocks[:, ::-1]
        block, column = np.nonzero(reverse)
        values = reverse[block, column]
        extra = np.abs(values) - 1
        greater = (extra > 0).astype(np.int64)
        equal = 1 - greater
        first = np.searchsorted(block, block)  # index of the block's first level
        gt1 = np.cumsum(greater) - greater
        eq1 = np.cumsum(equal) - equal
        gt1 -= gt1[first]
        eq1 -= eq1[first]
        level_base = block_base[block]
        first_ctx = level_base + CTX_GT1 + np.where(gt1 > 0, 0, np.minimum(4, 1 + eq1))
        rest_ctx = level_base + CTX_REM + np.minimum(4, gt1)
        o, x, b = unary_bins(extra, first_ctx, rest_ctx, LEVEL_PREFIX, 0)
        o.append(np.arange(values.size, dtype=np.int64))
        x.append(np.full(values.size, -1, dtype=np.int64))
        b.append((values < 0).astype(np.int64))
        level_ctx, level_bins = interleave(o, x, b)
        parts_ctx.append(level_ctx)
        parts_bins.append(level_bins)
    return np.concatenate(parts_ctx), np.concatenate(parts_bins)


def prices_cabac(models: list[list[int]], intra: bool, lam: float) -> list[Prices | None]:
    """Per plane, then for luma blocks coded as 4x4 transforms, `lam` times the bits each
    coefficient symbol would cost with the context probabilities `models` hold now (the first
    level of a block's contexts for magnitudes)."""
    probs = np.clip(np.array(models[0], dtype=np.float64) / (1 << PROB_BITS), 1e-3, 1 - 1e-3)
    zero_bits, one_bits = -lam * np.log2(probs), -lam * np.log2(1 - probs)
    found: list[Prices | None] = []
    luma, chroma = LUMA_T * LUMA_T, CHROMA_T * CHROMA_T
    for p, ncoef in enumerate((luma, chroma, chroma, luma)):
        if p == 3:
            base = CTX_COEF4 + CAT_STRIDE * (0 if intra else 1)
            classes = split_classes(ncoef)
        else:
            base = CTX_COEF + CAT_STRIDE * ((0 if p == 0 else 1) + (0 if intra else 2))
            classes = position_classes(ncoef)
        sig, last = base + CTX_SIG + classes, base + CTX_LAST + classes
        significant = one_bits[sig] + zero_bits[last] + lam
        ends = one_bits[last] - zero_bits[last]
        significant[-1], ends[-1] = lam, 0.0  # the final position codes neither flag
        gt1, rem = base + CTX_GT1 + 1, base + CTX_REM
        magnitude = np.array([zero_bits[gt1], one_bits[gt1], one_bits[rem], zero_bits[rem], lam])
        found.append(Prices(zero_bits[sig], significant, ends, magnitude, lam))
    return found


def prices_none(models: list[list[int]], intra: bool, lam: float) -> list[Prices | None]:
    """No rate-distortion optimised quantisation: no prices."""
    return [None, None, None, None]


level_prices = prices_none


def luma_modes_none(layout: Layout, vectors: I64) -> tuple[I64, I64]:
    """Macroblock-wide intra modes: no 8x8 luma modes to code."""
    empty = np.zeros(0, dtype=np.int64)
    return empty, empty


def luma_modes_8x8(layout: Layout, vectors: I64) -> tuple[I64, I64]:
    """(contexts, bins) of the four 8x8 luma modes of each macroblock (column 1 of `vectors`,
    quadrant k in bits 4k..4k+3), macroblocks in raster order, quadrants in raster order
    within: a flag (is it the `most_probable_mode`?) then, when not, the 3 bits of its rank
    among the other eight modes."""
    mby, mbx = layout.mby, layout.mbx
    quadrants = (vectors[:, 1:2] >> (4 * np.arange(4))) & 15
    grid = quadrants.reshape(mby, mbx, 2, 2).transpose(0, 2, 1, 3).reshape(2 * mby, 2 * mbx)
    likely = np.full_like(grid, MODE_DC)
    likely[1:, 1:] = np.minimum(grid[1:, :-1], grid[:-1, 1:])
    likely = likely.reshape(mby, 2, mbx, 2).transpose(0, 2, 1, 3).ravel()
    modes = quadrants.ravel()
    hit = (modes == likely).astype(np.int64)
    rank = modes - (modes > likely)
    index = np.arange(modes.size, dtype=np.int64)
    missed = index[hit == 0]
    owners, contexts, bins = [index], [np.full(modes.size, CTX_LUMA_MODE)], [hit]
    for shift in (2, 1, 0):
        owners.append(missed)
        contexts.append(np.full(missed.size, CTX_LUMA_MODE + 1))
        bins.append((rank[missed] >> shift) & 1)
    return interleave(owners, contexts, bins)


def mode_bins(mode: int, likely: int, ctx: int, contexts: list[int], bins: list[int]) -> None:
    """Append the bins of an intra direction `mode` against the most probable one `likely`:
    a flag (context `ctx`: is it `likely`?) and, when not, the 3 bits of its rank among the
    other eight (context `ctx` + 1)."""
    contexts.append(ctx)
    bins.append(int(mode == likely))
    if mode != likely:
        rank = mode - (mode > likely)
        contexts += [ctx + 1] * 3
        bins += [(rank >> shift) & 1 for shift in (2, 1, 0)]


def read_mode(decoder: BinDecoder, likely: int, ctx: int) -> int:
    """Inverse of `mode_bins`."""
    if decoder.bit(ctx):
        return likely
    rank = 0
    for _ in range(3):
        rank = 2 * rank + decoder.bit(ctx + 1)
    return rank + (rank >= likely)


def luma_modes_nested(layout: Layout, vectors: I64) -> tuple[I64, I64]:
    """(contexts, bins) of the luma modes of `intra_levels_blocks` with INTRA_4X4: per
    quadrant (macroblocks in raster order, quadrants in raster order within) a flag (is it
    four 4x4 blocks?), then its 8x8 mode or its four 4x4 modes (`mode_bins`, each against its
    `most_probable_mode` among the modes per 4x4 cell decoded so far)."""
    grid = np.zeros((4 * layout.mby, 4 * layout.mbx), dtype=np.int64)
    contexts: list[int] = []
    bins: list[int] = []
    for mb, row in enumerate(vectors.tolist()):
        r, c = divmod(mb, layout.mbx)
        for k in range(4):
            by, bx = 4 * r + 2 * (k // 2), 4 * c + 2 * (k % 2)
            mode = (row[1] >> (4 * k)) & 15
            contexts.append(CTX_I4)
            bins.append(int(mode == SUBDIVIDED))
            if mode != SUBDIVIDED:
                mode_bins(mode, most_probable_mode(grid, by, bx), CTX_LUMA_MODE, contexts, bins)
                grid[by : by + 2, bx : bx + 2] = mode
                continue
            for s in range(4):
                sub = (row[2 + k] >> (4 * s)) & 15
                cell = (by + s // 2, bx + s % 2)
                mode_bins(sub, most_probable_mode(grid, *cell), CTX_I4 + 1, contexts, bins)
                grid[cell] = sub
    return np.array(contexts, dtype=np.int64), np.array(bins, dtype=np.int64)


luma_mode_bins = luma_modes_none


def coded_macroblocks(layout: Layout, levels: list[I64]) -> Bools:
    """Which macroblocks have a nonzero level in any plane."""
    coded = np.zeros(layout.nmb, dtype=np.bool_)
    for plane_levels, mb in zip(levels, layout.mb_of, strict=True):
        coded[mb[np.count_nonzero(plane_levels, axis=1) > 0]] = True
    return coded


def settled_offsets(layout: Layout, levels: list[I64], offsets: I64) -> I64:
    """The QP offsets the decoder derives: a macroblock without levels takes the offset of
    the last one with levels before it (raster order; 0 before the first), as H.264's QP
    prediction does (the loop filter reads every macroblock's)."""
    coded = coded_macroblocks(layout, levels)
    index = np.where(coded, np.arange(layout.nmb), -1)
    last = np.maximum.accumulate(index)
    found: I64 = np.where(last >= 0, offsets[np.maximum(last, 0)], 0)
    return found


def offset_bins(layout: Layout, levels: list[I64], offsets: I64 | None) -> tuple[I64, I64]:
    """(contexts, bins) of the QP offsets of the macroblocks with levels (the others' are
    never used), each as its difference from the last such macroblock's (raster order, 0
    before the first): a zero flag (context: was the last difference nonzero?), then a
    bypass sign and the size - 1 in unary (at most 2 * TREE_DROP, no stop bin there)."""
    contexts: list[int] = []
    bins: list[int] = []
    last, moved = 0, 0
    values = np.zeros(layout.nmb, np.int64) if offsets is None else offsets
    for mb in np.flatnonzero(coded_macroblocks(layout, levels)).tolist():
        difference = int(values[mb]) - last
        contexts.append(CTX_QP + moved)
        bins.append(int(difference != 0))
        if difference:
            size = abs(difference)
            contexts += [-1] + [CTX_QP + 2 + min(i, 1) for i in range(min(size, 2 * TREE_DROP - 1))]
            bins += [int(difference < 0)] + [1] * (size - 1) + [0] * (size < 2 * TREE_DROP)
        last, moved = int(values[mb]), int(difference != 0)
    return np.array(contexts, dtype=np.int64), np.array(bins, dtype=np.int64)


def parse_offsets(decoder: BinDecoder, layout: Layout, levels: list[I64]) -> I64:
    """Inverse of `offset_bins`: per macroblock its QP offset (`settled_offsets`)."""
    offsets = np.zeros(layout.nmb, dtype=np.int64)
    last, moved = 0, 0
    coded = coded_macroblocks(layout, levels).tolist()
    for mb in range(layout.nmb):
        if not coded[mb]:
            offsets[mb] = last
            continue
        difference = 0
        if decoder.bit(CTX_QP + moved):
            negative = decoder.bypass()
            size = 1
            while size < 2 * TREE_DROP and decoder.bit(CTX_QP + 2 + min(size - 1, 1)):
                size += 1
            difference = -size if negative else size
        last += difference
        if abs(last) > TREE_DROP:
            raise ValueError(f"{decoder.what}: QP offset {last} beyond +-{TREE_DROP}")
        offsets[mb], moved = last, int(difference != 0)
    return offsets


def payload_cabac(
    layout: Layout,
    modes: I64 | None,
    vectors: I64,
    levels: list[I64],
    tx4: Bools,
    models: list[list[int]],
    nrefs: int,
    temporal: I64,
    deltas: I64 | None,
    offsets: I64 | None,
) -> bytes:
    """The frame's symbols as one CABAC stream (see the module docstring). I-frames code each
    plane's DC levels as differences along its raster order; with PARTITIONS, a P-frame's
    motion is followed by its macroblocks' 8x8 partitions (`split_bins`); with
    ADAPTIVE_TRANSFORM, each coded luma block says whether it is four 4x4 transforms (`tx4`);
    with MBTREE, the levels are followed by the macroblocks' QP `offsets` (`offset_bins`)."""
    parts_ctx, parts_bins = [], []
    if modes is None:
        cats = (0, 1, 1)
        present = [np.ones(n, dtype=np.bool_) for n in layout.nblocks]
        coded_levels = []
        for plane_levels in levels:
            differences = plane_levels.copy()
            if not INTRA_PRED:
                differences[:, 0] = np.diff(plane_levels[:, 0], prepend=0)
            coded_levels.append(differences)
        if INTRA_PRED:
            high = vectors[:, 0] >> 1
            ctx = np.stack((np.full(layout.nmb, CTX_INTRA), CTX_INTRA + 1 + high), axis=1)
            parts_ctx.append(ctx.ravel())
            parts_bins.append(np.stack((high, vectors[:, 0] & 1), axis=1).ravel())
            ctx, bins = luma_mode_bins(layout, vectors)
            parts_ctx.append(ctx)
            parts_bins.append(bins)
    else:
        cats = (2, 3, 3)
        present = [modes[mb] != 0 for mb in layout.mb_of]
        coded_levels = levels
        ctx, bins = motion_bins(layout, modes, vectors, nrefs, temporal)
        parts_ctx.append(ctx)
        parts_bins.append(bins)
        if PARTITIONS:
            if deltas is None:
                deltas = np.zeros((layout.nmb, 4, 2), dtype=np.int64)
            ctx, bins = split_bins(layout, modes, deltas)
            parts_ctx.append(ctx)
            parts_bins.append(bins)
    base4 = CTX_COEF4 + CAT_STRIDE * (0 if modes is None else 1)
    for p in range(3):
        base = CTX_COEF + CAT_STRIDE * cats[p]
        small = tx4 if p == 0 and ADAPTIVE_TRANSFORM else None
        ctx, bins = coefficient_bins(
            coded_levels[p], present[p], layout.grids[p], base, small, base4
        )
        parts_ctx.append(ctx)
        parts_bins.append(bins)
    if MBTREE:
        ctx, bins = offset_bins(layout, levels, offsets)
        parts_ctx.append(ctx)
        parts_bins.append(bins)
    contexts = np.concatenate(parts_ctx).tolist()
    return rc_encode(contexts, np.concatenate(parts_bins).tolist(), models[0])


def split_bins(layout: Layout, modes: I64, deltas: I64) -> tuple[I64, I64]:
    """(contexts, bins) of a P-frame's partitions: per coded macroblock a split flag (context:
    split left and top neighbours), then per split macroblock the vector differences of its
    four 8x8 partitions from its vector, each component a zero flag, a unary size (adaptive
    contexts per component) and a bypass sign."""
    split: I64 = np.count_nonzero(deltas.reshape(layout.nmb, 8), axis=1).clip(0, 1)
    coded = np.flatnonzero((modes != 0) & (modes < INTRA_MB))
    near = neighbour_sum(split.reshape(layout.mby, layout.mbx)).ravel()
    values = deltas[split == 1].reshape(-1)  # macroblock, partition, component
    first = CTX_SPLIT + 3 + 5 * np.tile(np.array([0, 1], dtype=np.int64), values.size // 2)
    o, x, b = unary_bins(np.abs(values), first, first + 1, MVD_PREFIX, 3)
    signed = np.flatnonzero(values)
    o.append(signed)
    x.append(np.full(signed.size, -1, dtype=np.int64))
    b.append((values[signed] < 0).astype(np.int64))
    ctx, bins = interleave(o, x, b)
    return np.concatenate((CTX_SPLIT + near[coded], ctx)), np.concatenate((split[coded], bins))


def parse_splits(decoder: BinDecoder, layout: Layout, modes: I64, vectors: I64) -> I64:
    """Inverse of `split_bins`: the partitions' differences (nmb, 4, 2)."""
    mbx = layout.mbx
    split = [0] * layout.nmb
    for mb in np.flatnonzero((modes != 0) & (modes < INTRA_MB)).tolist():
        r, c = divmod(mb, mbx)
        near = (c > 0 and split[mb - 1]) + (r > 0 and split[mb - mbx])
        split[mb] = decoder.bit(CTX_SPLIT + near)
    deltas = np.zeros((layout.nmb, 4, 2), dtype=np.int64)
    for mb in range(layout.nmb):
        if not split[mb]:
            continue
        for part in range(4):
            for k in range(2):
                first = CTX_SPLIT + 3 + 5 * k
                size = read_unary(decoder, first, first + 1, MVD_PREFIX, 3)
                deltas[mb, part, k] = -size if size and decoder.bypass() else size
    if int(np.abs(vectors[:, None, :] + deltas).max(initial=0)) > MAX_VECTOR:
        raise ValueError(f"{decoder.what}: a partition's motion vector exceeds +-{MAX_VECTOR}")
    return deltas


def read_unary(decoder: BinDecoder, first: int, rest: int, cap: int, grow: int) -> int:
    """Inverse of `unary_bins` for one value."""
    if not decoder.bit(first):
        return 0
    ones = 0
    while ones < cap and decoder.bit(rest + min(ones, grow)):
        ones += 1
    if ones == cap:
        return cap + 1 + decoder.exp_golomb()
    return ones + 1


def parse_motion(
    decoder: BinDecoder, layout: Layout, nrefs: int, temporal: I64, what: str
) -> tuple[I64, I64]:
    """Inverse of `motion_bins`: (modes, vectors)."""
    mbx = layout.mbx
    modes = [0] * layout.nmb
    for mb in range(layout.nmb):
        r, c = divmod(mb, mbx)
        near = (c > 0 and modes[mb - 1] != 0) + (r > 0 and modes[mb - mbx] != 0)
        if not decoder.bit(CTX_SKIP + near):
            continue
        intra = (c > 0 and modes[mb - 1] >= INTRA_MB) + (r > 0 and modes[mb - mbx] >= INTRA_MB)
        if P_INTRA and decoder.bit(CTX_P_INTRA + intra):
            high = decoder.bit(CTX_INTRA)
            modes[mb] = INTRA_MB + 2 * high + decoder.bit(CTX_INTRA + 1 + high)
        else:
            modes[mb] = 1 + (decoder.bit(CTX_REF) if nrefs > 1 else 0)
    vectors = [[0, 0] for _ in range(layout.nmb)]
    sizes = [[0, 0] for _ in range(layout.nmb)]
    choices = [0] * layout.nmb
    previous = temporal.tolist()
    for mb in range(layout.nmb):
        if not modes[mb]:
            if SKIP_MEDIAN:
                vectors[mb] = skip_vector(vectors, mb, mbx)
            continue
        if modes[mb] >= INTRA_MB:
            continue
        r, c = divmod(mb, mbx)
        predicted = median_vector(vectors, mb, mbx)
        if AMVP:
            near = (c > 0 and choices[mb - 1]) + (r > 0 and choices[mb - mbx])
            choices[mb] = decoder.bit(CTX_AMVP + near)
            if choices[mb]:
                predicted = previous[mb]
        for k in range(2):
            near = (sizes[mb - 1][k] if c > 0 else 0) + (sizes[mb - mbx][k] if r > 0 else 0)
            first = CTX_MVD + 16 * k + (near >= 3 * SUBPEL) + (near > 32 * SUBPEL)
            size = read_unary(decoder, first, CTX_MVD + 16 * k + 3, MVD_PREFIX, 4)
            if size and decoder.bypass():
                size = -size
            sizes[mb][k] = abs(size)
            vectors[mb][k] = predicted[k] + size
            if abs(vectors[mb][k]) > MAX_VECTOR:
                raise ValueError(f"{what}: a motion vector exceeds +-{MAX_VECTOR}")
    return np.array(modes, dtype=np.int64), np.array(vectors, dtype=np.int64).reshape(-1, 2)


def parse_coefficients(
    decoder: BinDecoder,
    present: Bools,
    grid: tuple[int, int],
    ncoef: int,
    base: int,
    base4: int | None = None,
) -> tuple[I64, Bools]:
    """Inverse of `coefficient_bins` (given `base4`, with 4x4 transform flags): the plane's
    (blocks, ncoef) zig-zag levels and which blocks are four 4x4 transforms."""
    rows, cols = grid
    coded = [False] * (rows * cols)
    for b in np.flatnonzero(present).tolist():
        r, c = divmod(b, cols)
        near = (c > 0 and coded[b - 1]) + (r > 0 and coded[b - cols])
        coded[b] = bool(decoder.bit(base + CTX_CBF + near))
    chosen = [b for b in range(rows * cols) if coded[b]]
    small = [False] * (rows * cols)
    if base4 is not None:
        for b in chosen:
            r, c = divmod(b, cols)
            near = (c > 0 and small[b - 1]) + (r > 0 and small[b - cols])
            small[b] = bool(decoder.bit(CTX_TX4 + near))
    tables = (position_classes(ncoef).tolist(), split_classes(ncoef).tolist())
    bases = {b: base4 if small[b] and base4 is not None else base for b in chosen}
    positions = []
    for b in chosen:
        at = bases[b]
        classes = tables[small[b]]
        found = []
        for pos in range(ncoef - 1):
            if decoder.bit(at + CTX_SIG + classes[pos]):
                found.append(pos)
                if decoder.bit(at + CTX_LAST + classes[pos]):
                    break
        else:
            found.append(ncoef - 1)
        positions.append(found)
    levels = np.zeros((rows * cols, ncoef), dtype=np.int64)
    for b, found in zip(chosen, positions, strict=True):
        at = bases[b]
        gt1 = eq1 = 0
        row = levels[b]
        for pos in reversed(found):
            first = at + CTX_GT1 + (0 if gt1 else min(4, 1 + eq1))
            extra = read_unary(decoder, first, at + CTX_REM + min(4, gt1), LEVEL_PREFIX, 0)
            if extra:
                gt1 += 1
            else:
                eq1 += 1
            value = extra + 1
            row[pos] = -value if decoder.bypass() else value
    return levels, np.array(small, dtype=np.bool_)


def parse_cabac(
    layout: Layout,
    data: bytes,
    intra: bool,
    nrefs: int,
    models: list[list[int]],
    temporal: I64,
    what: str,
) -> tuple[I64 | None, I64, list[I64], Bools, I64 | None, I64 | None]:
    """Inverse of `payload_cabac`: (modes, vectors, levels per plane, luma blocks coded as 4x4
    transforms, partition differences, QP offsets)."""
    decoder = BinDecoder(data, models[0], what)
    deltas = None
    if intra:
        modes = None
        vectors = np.zeros((layout.nmb, 2 + 4 * INTRA_4X4), dtype=np.int64)
        cats = (0, 1, 1)
        present = [np.ones(n, dtype=np.bool_) for n in layout.nblocks]
        if INTRA_PRED:
            for mb in range(layout.nmb):
                high = decoder.bit(CTX_INTRA)
                vectors[mb, 0] = 2 * high + decoder.bit(CTX_INTRA + 1 + high)
            parse_luma_modes(decoder, layout, vectors)
    else:
        modes, vectors = parse_motion(decoder, layout, nrefs, temporal, what)
        if PARTITIONS:
            deltas = parse_splits(decoder, layout, modes, vectors)
        cats = (2, 3, 3)
        present = [modes[mb] != 0 for mb in layout.mb_of]
    levels = []
    tx4 = np.zeros(layout.nblocks[0], dtype=np.bool_)
    for p, ncoef in enumerate((LUMA_T * LUMA_T, CHROMA_T * CHROMA_T, CHROMA_T * CHROMA_T)):
        base = CTX_COEF + CAT_STRIDE * cats[p]
        base4 = CTX_COEF4 + CAT_STRIDE * (0 if intra else 1)
        plane_levels, small = parse_coefficients(
            decoder,
            present[p],
            layout.grids[p],
            ncoef,
            base,
            base4 if p == 0 and ADAPTIVE_TRANSFORM else None,
        )
        if p == 0:
            tx4 = small
        if intra and not INTRA_PRED:
            plane_levels[:, 0] = np.cumsum(plane_levels[:, 0])
        levels.append(plane_levels)
    offsets = parse_offsets(decoder, layout, levels) if MBTREE else None
    return modes, vectors, levels, tx4, deltas, offsets


def parse_luma_modes_none(decoder: BinDecoder, layout: Layout, vectors: I64) -> None:
    """Macroblock-wide intra modes: no 8x8 luma modes to read."""


def parse_luma_modes_8x8(decoder: BinDecoder, layout: Layout, vectors: I64) -> None:
    """Inverse of `luma_modes_8x8`: the 8x8 luma modes into column 1 of `vectors`."""
    grid = np.zeros((2 * layout.mby, 2 * layout.mbx), dtype=np.int64)
    for mb in range(layout.nmb):
        r, c = divmod(mb, layout.mbx)
        packed = 0
        for k in range(4):
            by, bx = 2 * r + k // 2, 2 * c + k % 2
            mode = read_mode(decoder, most_probable_mode(grid, by, bx), CTX_LUMA_MODE)
            grid[by, bx] = mode
            packed |= mode << (4 * k)
        vectors[mb, 1] = packed


def parse_luma_modes_nested(decoder: BinDecoder, layout: Layout, vectors: I64) -> None:
    """Inverse of `luma_modes_nested`: the luma modes into columns 1.. of `vectors`."""
    grid = np.zeros((4 * layout.mby, 4 * layout.mbx), dtype=np.int64)
    for mb in range(layout.nmb):
        r, c = divmod(mb, layout.mbx)
        packed = 0
        for k in range(4):
            by, bx = 4 * r + 2 * (k // 2), 4 * c + 2 * (k % 2)
            if not decoder.bit(CTX_I4):
                mode = read_mode(decoder, most_probable_mode(grid, by, bx), CTX_LUMA_MODE)
                grid[by : by + 2, bx : bx + 2] = mode
                packed |= mode << (4 * k)
                continue
            packed |= SUBDIVIDED << (4 * k)
            subs = 0
            for s in range(4):
                cell = (by + s // 2, bx + s % 2)
                sub = read_mode(decoder, most_probable_mode(grid, *cell), CTX_I4 + 1)
                grid[cell] = sub
                subs |= sub << (4 * s)
            vectors[mb, 2 + k] = subs
        vectors[mb, 1] = packed


parse_luma_modes = parse_luma_modes_none


def mvd_list_bins(layout: Layout, uses: Bools, vectors: I64, base: int) -> tuple[I64, I64]:
    """(contexts, bins) of the vectors of the macroblocks where `uses` (zero elsewhere), each
    against the median of its neighbours', as `motion_bins` codes them (contexts from `base`,
    16 per component)."""
    mby, mbx = layout.mby, layout.mbx
    differences = vectors - median_predictors(vectors, mby, mbx)
    differences[~uses] = 0
    moving = np.flatnonzero(uses)
    owners: list[I64] = []
    contexts: list[I64] = []
    bins: list[I64] = []
    mvd_component_bins(layout, differences, moving, base, owners, contexts, bins)
    return interleave(owners, contexts, bins)


def mvd_component_bins(
    layout: Layout,
    differences: I64,
    moving: I64,
    base: int,
    owners: list[I64],
    contexts: list[I64],
    bins: list[I64],
) -> None:
    """Append the bins of the vector differences of the `moving` macroblocks (contexts from
    `base`, 16 per component): per vector, component y then x; within one, the unary bins
    of its size (context from the neighbours' sizes) then its sign."""
    mby, mbx = layout.mby, layout.mbx
    for c in range(2):
        size = np.abs(differences[:, c])
        near = neighbour_sum(size.reshape(mby, mbx)).ravel()[moving]
        zero_ctx = base + 16 * c + (near >= 3 * SUBPEL) + (near > 32 * SUBPEL)
        values = size[moving]
        rest_ctx = np.full(moving.size, base + 16 * c + 3, dtype=np.int64)
        o, x, b = unary_bins(values, zero_ctx, rest_ctx, MVD_PREFIX, 4)
        signed = np.flatnonzero(values)
        o.append(signed)
        x.append(np.full(signed.size, -1, dtype=np.int64))
        b.append((differences[moving[signed], c] < 0).astype(np.int64))
        owners += [2 * own + c for own in o]
        contexts += x
        bins += b


def parse_mvd_list(decoder: BinDecoder, layout: Layout, uses: list[bool], base: int) -> I64:
    """Inverse of `mvd_list_bins`: the vectors (zero where not used)."""
    mbx = layout.mbx
    vectors = [[0, 0] for _ in range(layout.nmb)]
    sizes = [[0, 0] for _ in range(layout.nmb)]
    for mb in range(layout.nmb):
        if not uses[mb]:
            continue
        predicted = median_vector(vectors, mb, mbx)
        r, c = divmod(mb, mbx)
        for k in range(2):
            near = (sizes[mb - 1][k] if c > 0 else 0) + (sizes[mb - mbx][k] if r > 0 else 0)
            first = base + 16 * k + (near >= 3 * SUBPEL) + (near > 32 * SUBPEL)
            size = read_unary(decoder, first, base + 16 * k + 3, MVD_PREFIX, 4)
            if size and decoder.bypass():
                size = -size
            sizes[mb][k] = abs(size)
            vectors[mb][k] = predicted[k] + size
            if abs(vectors[mb][k]) > MAX_VECTOR:
                raise ValueError(f"{decoder.what}: a motion vector exceeds +-{MAX_VECTOR}")
    return np.array(vectors, dtype=np.int64).reshape(-1, 2)


def payload_b(
    layout: Layout,
    modes: I64,
    forward: I64,
    backward: I64,
    levels: list[I64],
    tx4: Bools,
    models: list[list[int]],
) -> bytes:
    """A B-frame's symbols as one CABAC stream: per macroblock a skip flag (context: coded
    neighbours) and for a coded one its direction (forward / backward / both), then the
    forward vectors, the backward vectors, and the coefficients of the coded macroblocks."""
    coded = (modes != 0).astype(np.int64)
    index = np.arange(layout.nmb, dtype=np.int64)
    moving = np.flatnonzero(coded)
    not_forward = (modes[moving] != 1).astype(np.int64)
    both = np.flatnonzero(modes == 3)
    mode_ctx, mode_bins = interleave(
        [index, moving, np.flatnonzero((modes != 0) & (modes != 1))],
        [
            CTX_B + neighbour_sum(coded.reshape(layout.mby, layout.mbx)).ravel(),
            np.full(moving.size, CTX_B + 3, dtype=np.int64),
            np.full(int(not_forward.sum()), CTX_B + 4, dtype=np.int64),
        ],
        [
            coded,
            not_forward,
            np.isin(np.flatnonzero((modes != 0) & (modes != 1)), both).astype(np.int64),
        ],
    )
    parts_ctx, parts_bins = [mode_ctx], [mode_bins.astype(np.int64)]
    for vectors, uses, base in (
        (forward, (modes == 1) | (modes == 3), CTX_B + 8),
        (backward, modes >= 2, CTX_B + 40),
    ):
        ctx, bins = mvd_list_bins(layout, uses, vectors, base)
        parts_ctx.append(ctx)
        parts_bins.append(bins)
    for p in range(3):
        base = CTX_COEF + CAT_STRIDE * (2 if p == 0 else 3)
        present = modes[layout.mb_of[p]] != 0
        small = tx4 if p == 0 and ADAPTIVE_TRANSFORM else None
        ctx, bins = coefficient_bins(
            levels[p], present, layout.grids[p], base, small, CTX_COEF4 + CAT_STRIDE
        )
        parts_ctx.append(ctx)
        parts_bins.append(bins)
    contexts = np.concatenate(parts_ctx).tolist()
    return rc_encode(contexts, np.concatenate(parts_bins).tolist(), models[0])


def parse_b(
    layout: Layout, data: bytes, models: list[list[int]], what: str
) -> tuple[I64, I64, I64, list[I64], Bools]:
    """Inverse of `payload_b`: (modes, forward vectors, backward vectors, levels per plane,
    luma blocks coded as 4x4 transforms)."""
    decoder = BinDecoder(data, models[0], what)
    mbx = layout.mbx
    modes = [0] * layout.nmb
    for mb in range(layout.nmb):
        r, c = divmod(mb, mbx)
        near = (c > 0 and modes[mb - 1] != 0) + (r > 0 and modes[mb - mbx] != 0)
        if decoder.bit(CTX_B + near):
            modes[mb] = 1 + (decoder.bit(CTX_B + 4) + 1 if decoder.bit(CTX_B + 3) else 0)
    forward = parse_mvd_list(decoder, layout, [m in (1, 3) for m in modes], CTX_B + 8)
    backward = parse_mvd_list(decoder, layout, [m >= 2 for m in modes], CTX_B + 40)
    found = np.array(modes, dtype=np.int64)
    levels = []
    tx4 = np.zeros(layout.nblocks[0], dtype=np.bool_)
    for p, ncoef in enumerate((LUMA_T * LUMA_T, CHROMA_T * CHROMA_T, CHROMA_T * CHROMA_T)):
        base = CTX_COEF + CAT_STRIDE * (2 if p == 0 else 3)
        present = found[layout.mb_of[p]] != 0
        base4 = CTX_COEF4 + CAT_STRIDE if p == 0 and ADAPTIVE_TRANSFORM else None
        plane_levels, small = parse_coefficients(
            decoder, present, layout.grids[p], ncoef, base, base4
        )
        if p == 0:
            tx4 = small
        levels.append(plane_levels)
    return found, forward, backward, levels, tx4


def payload_sections(
    layout: Layout,
    modes: I64 | None,
    vectors: I64,
    levels: list[I64],
    tx4: Bools,
    models: list[list[int]],
    nrefs: int,
    temporal: I64,
    deltas: I64 | None,
    offsets: I64 | None,
) -> bytes:
    """The frame's symbols as byte sections through the byte-oriented back end (which codes
    no partitions, no 4x4 transforms and no QP offsets: `deltas` and `offsets` must be None or
    zero, `tx4` all unset)."""
    if offsets is not None and offsets.any():
        raise ValueError("the byte-oriented back ends code no QP offsets")
    if deltas is not None and deltas.any():
        raise ValueError("the byte-oriented back ends code no 8x8 partitions")
    if tx4.any():
        raise ValueError("the byte-oriented back ends code no 4x4 luma transforms")
    return entropy_encode(pack_sections(layout, modes, vectors, levels), models)


def parse_payload_sections(
    layout: Layout,
    data: bytes,
    intra: bool,
    nrefs: int,
    models: list[list[int]],
    temporal: I64,
    what: str,
) -> tuple[I64 | None, I64, list[I64], Bools, I64 | None, I64 | None]:
    """Inverse of `payload_sections` (no partitions, no 4x4 transforms, no QP offsets)."""
    sections = entropy_decode(data, models, what)
    modes, vectors, levels = parse_sections(layout, sections, intra, nrefs, what)
    return modes, vectors, levels, np.zeros(layout.nblocks[0], dtype=np.bool_), None, None


payload_models = entropy_models
write_payload = payload_sections
read_payload = parse_payload_sections
