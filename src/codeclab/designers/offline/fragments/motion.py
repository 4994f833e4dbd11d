"""Motion search and motion-compensated prediction of generated codecs.

Vectors are (dy, dx) per macroblock (raster order). The searches find integer-pel vectors on
the luma plane; `refine_subpel` refines them to 1/SUBPEL pel. Prediction interpolates
bilinearly in integers (luma in 1/SUBPEL, chroma in 1/(2*SUBPEL) of its own pixels), so the
encoder's prediction is bit-identical to the decoder's.
"""

import itertools

import numpy as np

from codeclab.designers.offline.fragments.config import (
    AMVP,
    MACROBLOCK,
    ME_LAMBDA,
    SEARCH_RANGE,
    SUBPEL,
    ZERO_BIAS,
)
from codeclab.designers.offline.fragments.types import F64, I32, I64, U8

LARGE_DIAMOND = ((-2, 0), (2, 0), (0, -2), (0, 2), (-1, -1), (-1, 1), (1, -1), (1, 1))
NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def extend(plane: U8, margin: int) -> U8:
    """`plane` with `margin` edge-replicated pixels on every side."""
    return np.pad(plane, margin, "edge")


def windows(extended: U8, margin: int, oy: I64, ox: I64, size: int) -> U8:
    """(k, size, size) blocks of an `extend`ed plane whose top-left corners are (oy, ox) in the
    coordinates of the plane before extension (each within `margin` of it)."""
    view = np.lib.stride_tricks.sliding_window_view(extended, (size, size))
    return view[oy + margin, ox + margin]


def interpolate(
    extended: U8, margin: int, oy: I64, ox: I64, vectors: I64, size: int, scale: int
) -> I32:
    """(k, size, size) predictions at block origins (oy, ox) moved by `vectors` in 1/scale pel.

    Bilinear in integers: ((S-fy)(S-fx)a + (S-fy)fx b + fy(S-fx)c + fy fx d + S*S/2) // S*S.
    `margin` must exceed every |vector| / scale by at least 1.
    """
    iy, ix = vectors[:, 0] // scale, vectors[:, 1] // scale
    if scale == 1:
        return windows(extended, margin, oy + iy, ox + ix, size).astype(np.int32)
    fy = (vectors[:, 0] - iy * scale).astype(np.int32)[:, None, None]
    fx = (vectors[:, 1] - ix * scale).astype(np.int32)[:, None, None]
    w = windows(extended, margin, oy + iy, ox + ix, size + 1).astype(np.int32)
    total = (scale - fy) * ((scale - fx) * w[:, :-1, :-1] + fx * w[:, :-1, 1:])
    total += fy * ((scale - fx) * w[:, 1:, :-1] + fx * w[:, 1:, 1:])
    total += scale * scale // 2
    total //= scale * scale
    return total


def mb_blocks(plane: U8, size: int) -> I32:
    """(k, size, size) raster-ordered blocks of a plane whose sides are multiples of size."""
    h, w = plane.shape
    blocks = plane.reshape(h // size, size, w // size, size).transpose(0, 2, 1, 3)
    return blocks.reshape(-1, size, size).astype(np.int32)


def block_sad(blocks: I32, candidates: I32 | U8) -> I64:
    """Sum of absolute differences per block."""
    diff = np.abs(blocks - candidates).reshape(len(blocks), -1)
    sad: I64 = diff.sum(axis=1, dtype=np.int64)
    return sad


HADAMARD_4 = np.array(
    [[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]], dtype=np.int32
)


def block_satd(blocks: I32, candidates: I32 | U8) -> I64:
    """Per block, the sum of the absolute 4x4 Hadamard coefficients of its difference from
    the candidate, halved (x264's SATD: about SAD's scale, but a difference the transform
    codes cheaply, like a flat offset, costs less than one spread over many frequencies)."""
    count, size = blocks.shape[0], blocks.shape[1]
    cells = size // 4
    diff = (blocks - candidates.astype(np.int32)).reshape(count, cells, 4, cells, 4)
    coefficients = HADAMARD_4 @ diff.transpose(0, 1, 3, 2, 4) @ HADAMARD_4
    satd: I64 = np.abs(coefficients).reshape(count, -1).sum(axis=1, dtype=np.int64) >> 1
    return satd


block_cost = block_sad


def grid_origins(plane: U8, size: int) -> tuple[I64, I64]:
    """Top-left corners (oy, ox) of the raster-ordered size x size blocks of `plane`."""
    rows, cols = plane.shape[0] // size, plane.shape[1] // size
    oy = np.repeat(np.arange(rows, dtype=np.int64) * size, cols)
    ox = np.tile(np.arange(cols, dtype=np.int64) * size, rows)
    return oy, ox


def shift_search(cur: I32, ref: U8, reach: int, size: int) -> tuple[I64, I64]:
    """Exhaustive +-reach search of every size x size block, one whole-plane shift at a time;
    ties go to the shortest vector."""
    h, w = cur.shape
    rows, cols = h // size, w // size
    padded = extend(ref, reach).astype(np.int32)
    best = np.full(rows * cols, np.iinfo(np.int64).max)
    vectors = np.zeros((rows * cols, 2), dtype=np.int64)
    offsets = sorted(
        itertools.product(range(-reach, reach + 1), repeat=2),
        key=lambda d: (abs(d[0]) + abs(d[1]), d),
    )
    for dy, dx in offsets:
        shifted = padded[reach + dy : reach + dy + h, reach + dx : reach + dx + w]
        diff = np.abs(cur - shifted).reshape(rows, size, cols, size)
        sad = diff.sum(axis=(1, 3), dtype=np.int64).ravel()
        better = sad < best
        best[better] = sad[better]
        vectors[better] = (dy, dx)
    return vectors, best


def search_full(cur: U8, ref: U8, hint: I64, lam: float) -> tuple[I64, I64]:
    """Exhaustive integer search of +-SEARCH_RANGE per macroblock."""
    return shift_search(cur.astype(np.int32), ref, SEARCH_RANGE, MACROBLOCK)


def refine(cur: U8, ref: U8, centres: I64, size: int, limit: int) -> tuple[I64, I64]:
    """Best of the 3x3 integer vectors around each block's centre (within +-limit), its SAD."""
    blocks = mb_blocks(cur, size)
    oy, ox = grid_origins(cur, size)
    extended = extend(ref, limit)
    best = np.full(len(centres), np.iinfo(np.int64).max)
    vectors = centres.copy()
    for dy, dx in sorted(itertools.product((-1, 0, 1), repeat=2), key=lambda d: d != (0, 0)):
        candidate = np.clip(centres + np.array((dy, dx)), -limit, limit)
        sad = block_sad(
            blocks, windows(extended, limit, oy + candidate[:, 0], ox + candidate[:, 1], size)
        )
        better = sad < best
        best[better] = sad[better]
        vectors[better] = candidate[better]
    return vectors, best


def decimate(plane: U8, factor: int) -> U8:
    """Mean of factor x factor cells (rounded down)."""
    h, w = plane.shape[0] // factor, plane.shape[1] // factor
    sums = plane.reshape(h, factor, w, factor).sum(axis=(1, 3), dtype=np.int64)
    means: U8 = (sums // (factor * factor)).astype(np.uint8)
    return means


def search_coarse_to_fine(cur: U8, ref: U8, hint: I64, lam: float) -> tuple[I64, I64]:
    """Exhaustive search on 4x-decimated planes, then +-1 refinements at 1/2 and full size."""
    quarter = decimate(cur, 4).astype(np.int32)
    coarse, _ = shift_search(quarter, decimate(ref, 4), -(-SEARCH_RANGE // 4), MACROBLOCK // 4)
    half_limit = -(-SEARCH_RANGE // 2)
    half, _ = refine(decimate(cur, 2), decimate(ref, 2), 2 * coarse, MACROBLOCK // 2, half_limit)
    vectors, _ = refine(
        cur, ref, np.clip(2 * half, -SEARCH_RANGE, SEARCH_RANGE), MACROBLOCK, SEARCH_RANGE
    )
    return refine(cur, ref, vectors, MACROBLOCK, SEARCH_RANGE)


def descend(
    blocks: I32,
    extended: U8,
    oy: I64,
    ox: I64,
    centres: I64,
    limit: int,
    predicted: I64,
    lam: float,
) -> tuple[I64, I64]:
    """Large-diamond descent, then descent over the 8 neighbours, from `centres` within
    +-limit, by SAD + lam * bits of the vector's difference from `predicted` (integer pel);
    all blocks at once, each pattern while any block moves. Returns (vectors, their SADs)."""
    size = blocks.shape[1]

    def cost_at(index: I64, vectors: I64) -> tuple[I64, F64]:
        found = windows(extended, limit, oy[index] + vectors[:, 0], ox[index] + vectors[:, 1], size)
        sad = block_sad(blocks[index], found)
        return sad, sad + lam * vector_bits((vectors - predicted[index]) * SUBPEL)

    everyone = np.arange(len(blocks))
    centres = np.clip(centres, -limit, limit)
    best_sad, best = cost_at(everyone, centres)
    for pattern in (LARGE_DIAMOND, NEIGHBOURS):
        active = everyone
        for _ in range(limit):
            moved = np.zeros(len(blocks), dtype=np.bool_)
            origin = centres[active].copy()
            for dy, dx in pattern:
                candidate = np.clip(origin + np.array((dy, dx)), -limit, limit)
                sad, cost = cost_at(active, candidate)
                better = cost < best[active]
                index = active[better]
                best[index], best_sad[index] = cost[better], sad[better]
                centres[index] = candidate[better]
                moved[index] = True
            active = np.flatnonzero(moved)
            if not active.size:
                break
    return centres, best_sad


def best_start(
    blocks: I32,
    extended: U8,
    oy: I64,
    ox: I64,
    starts: list[I64],
    limit: int,
    predicted: I64,
    lam: float,
) -> I64:
    """Per block, the start vector of least SAD + lam * bits (see `descend`) among `starts`
    (the first wins ties)."""
    size = blocks.shape[1]
    centres = np.zeros((len(blocks), 2), dtype=np.int64)
    best = np.full(len(blocks), np.inf)
    for start in starts:
        candidate = np.clip(start, -limit, limit)
        found = windows(extended, limit, oy + candidate[:, 0], ox + candidate[:, 1], size)
        cost = block_sad(blocks, found) + lam * vector_bits((candidate - predicted) * SUBPEL)
        better = cost < best
        best[better], centres[better] = cost[better], candidate[better]
    return centres


def search_diamond(cur: U8, ref: U8, hint: I64, lam: float) -> tuple[I64, I64]:
    """Large-diamond descent from the better of (0, 0) and `hint` (last frame's vector), then
    descent over the 8 neighbours; all macroblocks at once, each pattern while any moves."""
    limit = SEARCH_RANGE
    blocks = mb_blocks(cur, MACROBLOCK)
    oy, ox = grid_origins(cur, MACROBLOCK)
    extended = extend(ref, limit)
    zero = np.zeros((len(blocks), 2), dtype=np.int64)
    centres = best_start(blocks, extended, oy, ox, [zero, hint], limit, zero, 0.0)
    return descend(blocks, extended, oy, ox, centres, limit, zero, 0.0)


def search_hybrid(cur: U8, ref: U8, hint: I64, lam: float) -> tuple[I64, I64]:
    """Predictive search, as x264's: each macroblock starts from the best of (0, 0), `hint`
    (last frame's vector), the coarse-to-fine search's vector and the median of its
    neighbours' coarse vectors, then descends by diamonds, every step judged by SAD + lam *
    bits of the vector's difference from that median (the predictor the decoder will most
    likely use); so vectors follow the motion found by the decimated search or the last frame
    and stay coherent where texture gives SAD no clear minimum."""
    limit = SEARCH_RANGE
    blocks = mb_blocks(cur, MACROBLOCK)
    oy, ox = grid_origins(cur, MACROBLOCK)
    extended = extend(ref, limit)
    coarse, _ = search_coarse_to_fine(cur, ref, hint, lam)
    zero = np.zeros_like(coarse)
    local = best_start(blocks, extended, oy, ox, [zero, hint], limit, zero, 0.0)
    local, _ = descend(blocks, extended, oy, ox, local, limit, zero, 0.0)
    rows, cols = cur.shape[0] // MACROBLOCK, cur.shape[1] // MACROBLOCK
    predicted = median_predictors(local, rows, cols)
    starts = [local, coarse, predicted]
    centres = best_start(blocks, extended, oy, ox, starts, limit, predicted, lam)
    return descend(blocks, extended, oy, ox, centres, limit, predicted, lam)


motion_search = search_coarse_to_fine


def phase_planes(extended: U8, scale: int) -> U8:
    """(scale, scale, h - 1, w - 1) planes: [fy, fx] holds `extended` interpolated at
    (y + fy/scale, x + fx/scale) exactly as `interpolate` computes it, for the whole plane."""
    h, w = extended.shape
    a, b = extended[:-1, :-1].astype(np.int32), extended[:-1, 1:].astype(np.int32)
    c, d = extended[1:, :-1].astype(np.int32), extended[1:, 1:].astype(np.int32)
    planes = np.empty((scale, scale, h - 1, w - 1), dtype=np.uint8)
    for fy in range(scale):
        for fx in range(scale):
            total = (scale - fy) * ((scale - fx) * a + fx * b) + fy * ((scale - fx) * c + fx * d)
            planes[fy, fx] = (total + scale * scale // 2) // (scale * scale)
    return planes


SIXTAP = (1, -5, 20, 20, -5, 1)


def half_grid(extended: U8) -> tuple[I32, I32, I32, I32]:
    """H.264's luma half-pel samples of `extended` (h, w): (G, B, V, J) planes of (h, w) holding
    the pixel, the half-pel sample right of it, below it and diagonally below-right: the 6-tap
    filter (1, -5, 20, 20, -5, 1) / 32, the centre from the unrounded horizontal sums / 1024
    (edge pixels replicated beyond the plane)."""
    h, w = extended.shape
    e = np.pad(extended.astype(np.int32), ((2, 3), (2, 3)), "edge")
    across = np.zeros((h + 5, w), dtype=np.int32)  # rows -2 .. h + 2
    down = np.zeros((h, w), dtype=np.int32)
    centre = np.zeros((h, w), dtype=np.int32)
    for k, tap in enumerate(SIXTAP):
        across += tap * e[:, k : k + w]
        down += tap * e[k : k + h, 2 : 2 + w]
    for k, tap in enumerate(SIXTAP):
        centre += tap * across[k : k + h]
    b = np.clip((across[2 : 2 + h] + 16) >> 5, 0, 255)
    v = np.clip((down + 16) >> 5, 0, 255)
    j = np.clip((centre + 512) >> 10, 0, 255)
    return extended.astype(np.int32), b, v, j


def phase_planes_sixtap(extended: U8, scale: int) -> U8:
    """Like `phase_planes`, with H.264's luma interpolation: 6-tap half-pel samples
    (`half_grid`), quarter-pel samples the rounded-up mean of the two nearest half-grid
    samples (diagonal quarters: of the two half-pel samples on the anti-diagonal)."""
    g, b, v, j = half_grid(extended)
    h, w = extended.shape

    def grid(a: int, c: int) -> I32:
        """Half-grid samples at (2y + a, 2x + c), a and c in 0..2, for y < h - 1, x < w - 1."""
        plane = ((g, b), (v, j))[a % 2][c % 2]
        found: I32 = plane[a // 2 : a // 2 + h - 1, c // 2 : c // 2 + w - 1]
        return found

    planes = np.empty((scale, scale, h - 1, w - 1), dtype=np.uint8)
    for fy in range(scale):
        for fx in range(scale):
            qy, qx = fy * (4 // scale), fx * (4 // scale)  # quarter-pel phase
            if qy % 2 == 0 and qx % 2 == 0:
                planes[fy, fx] = grid(qy // 2, qx // 2)
            elif qx % 2 == 0:
                planes[fy, fx] = (grid(qy // 2, qx // 2) + grid(qy // 2 + 1, qx // 2) + 1) >> 1
            elif qy % 2 == 0:
                planes[fy, fx] = (grid(qy // 2, qx // 2) + grid(qy // 2, qx // 2 + 1) + 1) >> 1
            else:
                first = grid(qy // 2, qx // 2 + 1)
                planes[fy, fx] = (first + grid(qy // 2 + 1, qx // 2) + 1) >> 1
    return planes


luma_phases = phase_planes


def phase_windows(
    planes: U8, margin: int, oy: I64, ox: I64, vectors: I64, size: int, scale: int
) -> U8:
    """What `interpolate` returns, gathered from `phase_planes` (no arithmetic per block)."""
    iy, ix = vectors[:, 0] // scale, vectors[:, 1] // scale
    fy, fx = vectors[:, 0] - iy * scale, vectors[:, 1] - ix * scale
    steps = np.arange(size, dtype=np.int64)
    rows = (oy + iy + margin)[:, None, None] + steps[None, :, None]
    cols = (ox + ix + margin)[:, None, None] + steps[None, None, :]
    found: U8 = planes[fy[:, None, None], fx[:, None, None], rows, cols]
    return found


def refine_subpel(
    blocks: I32, extended: U8, margin: int, vectors: I64, oy: I64, ox: I64
) -> tuple[I64, I64]:
    """Integer `vectors` scaled to 1/SUBPEL pel, refined by +-1/2 then +-1/4 pel steps, and
    their `block_cost` (SAD or SATD)."""
    limit = SEARCH_RANGE * SUBPEL
    size = blocks.shape[1]
    planes = luma_phases(extended, SUBPEL)
    centres = vectors * SUBPEL
    best = block_cost(blocks, phase_windows(planes, margin, oy, ox, centres, size, SUBPEL))
    step = SUBPEL // 2
    while step >= 1:
        origin = centres.copy()
        for dy, dx in NEIGHBOURS:
            candidate = np.clip(origin + np.array((dy * step, dx * step)), -limit, limit)
            found = phase_windows(planes, margin, oy, ox, candidate, size, SUBPEL)
            cost = block_cost(blocks, found)
            better = cost < best
            best[better], centres[better] = cost[better], candidate[better]
        step //= 2
    return centres, best


def median_predictors(vectors: I64, mby: int, mbx: int) -> I64:
    """Per macroblock (raster), the median of the left, top and top-right (top-left at the right
    edge) vectors, the left one on the first row; missing neighbours count as (0, 0)."""
    grid = vectors.reshape(mby, mbx, 2)
    left = np.zeros_like(grid)
    left[:, 1:] = grid[:, :-1]
    top = np.zeros_like(grid)
    top[1:] = grid[:-1]
    diag = np.zeros_like(grid)
    diag[1:, :-1] = grid[:-1, 1:]
    if mbx > 1:
        diag[1:, -1] = grid[:-1, -2]
    stacked = np.stack((left, top, diag))
    median = stacked.sum(axis=0) - stacked.max(axis=0) - stacked.min(axis=0)
    median[0] = left[0]
    found: I64 = median.reshape(-1, 2)
    return found


def median_vector(vectors: list[list[int]], mb: int, mbx: int) -> list[int]:
    """`median_predictors` of one macroblock from the vectors (lists) of those before it."""
    r, c = divmod(mb, mbx)
    left = vectors[mb - 1] if c > 0 else [0, 0]
    if r == 0:
        return list(left)
    top = vectors[mb - mbx]
    diag = vectors[mb - mbx + 1] if c + 1 < mbx else ([0, 0] if c == 0 else vectors[mb - mbx - 1])
    return [sorted((left[k], top[k], diag[k]))[1] for k in range(2)]


def skip_vector(vectors: list[list[int]], mb: int, mbx: int) -> list[int]:
    """H.264's P_Skip vector of one macroblock: (0, 0) on the top row or left column or when
    the left or top neighbour does not move, else `median_vector`."""
    r, c = divmod(mb, mbx)
    if r == 0 or c == 0 or not any(vectors[mb - 1]) or not any(vectors[mb - mbx]):
        return [0, 0]
    return median_vector(vectors, mb, mbx)


def skip_zero(vectors: I64, mby: int, mbx: int) -> I64:
    """The vectors skipped macroblocks take: (0, 0)."""
    return np.zeros_like(vectors)


def skip_median(vectors: I64, mby: int, mbx: int) -> I64:
    """The vectors skipped macroblocks take (`skip_vector`, as H.264's P_Skip), for every
    macroblock of a field at once."""
    found = median_predictors(vectors, mby, mbx).reshape(mby, mbx, 2)
    grid = vectors.reshape(mby, mbx, 2)
    still = np.ones((mby, mbx), dtype=np.bool_)
    still[1:, 1:] = ~grid[1:, :-1].any(axis=2) | ~grid[:-1, 1:].any(axis=2)
    found[still] = 0
    skips: I64 = found.reshape(-1, 2)
    return skips


skip_vectors = skip_zero


def vector_bits(differences: I64) -> F64:
    """Rough bits of coding vector differences (Exp-Golomb-like per component)."""
    bits: F64 = (1 + 2 * np.log2(1 + np.abs(differences))).sum(axis=1)
    return bits


def regularise(
    blocks: I32,
    refs: list[U8],
    vectors: I64,
    ref_index: I64,
    sad: I64,
    lam: float,
    temporal: I64,
) -> tuple[I64, I64]:
    """Motion vectors re-chosen by `block_cost` (`sad`: that of `vectors`, SAD or SATD) +
    lam * bits of their difference from the median of
    their neighbours (the predictor the entropy coder uses): each macroblock tries its own
    vector, the predictor, (0, 0) and its left and top neighbours' vectors; twice, the second
    time against the predictors of the first pass's choices. With AMVP the previous anchor's
    vector of the macroblock (`temporal`) is a candidate too, and the bits are those of the
    cheaper of the two predictors."""
    h, w = refs[0].shape
    mby, mbx = h // MACROBLOCK, w // MACROBLOCK
    oy, ox = grid_origins(refs[0], MACROBLOCK)
    limit = SEARCH_RANGE * SUBPEL
    margin = SEARCH_RANGE + 2
    planes = [luma_phases(extend(ref, margin), SUBPEL) for ref in refs]
    vectors, sad = vectors.copy(), sad.copy()

    def sad_of(candidate: I64) -> I64:
        found = np.zeros(len(blocks), dtype=np.int64)
        for index, ref_planes in enumerate(planes):
            chosen = np.flatnonzero(ref_index == index)
            if chosen.size:
                window = phase_windows(
                    ref_planes,
                    margin,
                    oy[chosen],
                    ox[chosen],
                    candidate[chosen],
                    MACROBLOCK,
                    SUBPEL,
                )
                found[chosen] = block_cost(blocks[chosen], window)
        return found

    def bits(candidate: I64, predicted: I64) -> F64:
        found = vector_bits(candidate - predicted)
        if AMVP:
            found = np.minimum(found, vector_bits(candidate - temporal) + 1)
        return found

    for _ in range(2):
        predicted = median_predictors(vectors, mby, mbx)
        cost = sad + lam * bits(vectors, predicted)
        grid = vectors.reshape(mby, mbx, 2)
        left = np.zeros_like(grid)
        left[:, 1:] = grid[:, :-1]
        top = np.zeros_like(grid)
        top[1:] = grid[:-1]
        options = [predicted, np.zeros_like(vectors), left.reshape(-1, 2), top.reshape(-1, 2)]
        if AMVP:
            options.append(temporal)
        for option in options:
            candidate = np.clip(option, -limit, limit)
            found = sad_of(candidate)
            total = found + lam * bits(candidate, predicted)
            better = total < cost
            cost[better], sad[better], vectors[better] = (
                total[better],
                found[better],
                candidate[better],
            )
    return vectors, sad


def estimate(cur: U8, refs: list[U8], hint: I64, step: int, temporal: I64) -> tuple[I64, I64, I64]:
    """(vectors in 1/SUBPEL pel, reference index, integer vectors for the next hint) per
    macroblock of luma `cur` against luma `refs` (most recent first); with ME_LAMBDA, the
    vectors are `regularise`d at lambda ME_LAMBDA * `step` (the quantiser step).

    With two references, each macroblock keeps the reference whose vector costs least with
    lambda * its bits charged: the bits of its difference from the median of the most
    recent reference's vectors, plus the reference index (a vector into the older frame is
    about twice as long, so its raw cost alone favours it too often).

    A vector whose cost (SAD, or SATD with sub-pel motion: `block_cost`) is not ZERO_BIAS
    (per 256 pixels) better than (0, 0) on the most recent reference becomes (0, 0) there:
    the encoder's bias towards skipped macroblocks.
    """
    blocks = mb_blocks(cur, MACROBLOCK)
    oy, ox = grid_origins(cur, MACROBLOCK)
    best_vectors = np.zeros((len(blocks), 2), dtype=np.int64)
    best_ref = np.zeros(len(blocks), dtype=np.int64)
    best_sad = np.full(len(blocks), np.iinfo(np.int64).max)
    integer = np.zeros((len(blocks), 2), dtype=np.int64)
    predicted = np.zeros((len(blocks), 2), dtype=np.int64)
    for index, ref in enumerate(refs):
        found, sad = motion_search(cur, ref, hint * (index + 1), ME_LAMBDA * step)
        if index == 0:
            integer = found.copy()
        vectors = found
        if SUBPEL > 1:
            margin = SEARCH_RANGE + 2
            vectors, sad = refine_subpel(blocks, extend(ref, margin), margin, found, oy, ox)
        if len(refs) > 1:
            if index == 0:
                predicted = median_predictors(
                    vectors, cur.shape[0] // MACROBLOCK, cur.shape[1] // MACROBLOCK
                )
            bits = vector_bits(vectors - predicted) + index  # the vector and the reference index
            sad = sad + (ME_LAMBDA * step * bits).astype(np.int64)
        better = sad < best_sad
        best_sad[better], best_vectors[better], best_ref[better] = (
            sad[better],
            vectors[better],
            index,
        )
    if ME_LAMBDA:
        best_vectors, best_sad = regularise(
            blocks, refs, best_vectors, best_ref, best_sad, ME_LAMBDA * step, temporal
        )
    zero_sad = block_cost(blocks, windows(refs[0], 0, oy, ox, MACROBLOCK))
    bias = ZERO_BIAS * MACROBLOCK * MACROBLOCK // 256
    stay = zero_sad <= best_sad + bias
    best_vectors[stay], best_ref[stay], integer[stay] = 0, 0, 0
    return best_vectors, best_ref, integer


SPLIT_BITS = 4
"""Bits a split macroblock is reckoned to cost beyond its partitions' vector differences."""


def split_none(cur: U8, refs: list[U8], vectors: I64, ref_index: I64, step: int) -> I64:
    """Macroblocks move as a whole: every 8x8 partition's vector difference is zero."""
    return np.zeros((len(vectors), 4, 2), dtype=np.int64)


def split_8x8(cur: U8, refs: list[U8], vectors: I64, ref_index: I64, step: int) -> I64:
    """Per macroblock, the differences (4, 2) of its four 8x8 partitions' vectors (raster order
    within it) from its own `vectors`, all zero unless splitting pays. Each partition descends
    by diamonds from the macroblock's vector and is refined to sub-pel; a partition keeps its
    vector when its cost (`block_cost` after sub-pel refinement) + lambda * bits of the
    difference beats the macroblock's vector there, and the macroblock splits when its
    partitions' costs (plus SPLIT_BITS) sum below the cost of the whole (lambda: ME_LAMBDA, at
    least 0.2, times the quantiser `step`)."""
    size = MACROBLOCK // 2
    lam = max(ME_LAMBDA, 0.2) * step
    mbx = cur.shape[1] // MACROBLOCK
    blocks = mb_blocks(cur, size)
    oy, ox = grid_origins(cur, size)
    owner = (oy // MACROBLOCK) * mbx + ox // MACROBLOCK
    part = (oy % MACROBLOCK) // size * 2 + (ox % MACROBLOCK) // size
    parent = vectors[owner]
    found = parent.copy()
    sad = np.zeros(len(blocks), dtype=np.int64)
    whole = np.zeros(len(blocks), dtype=np.int64)
    margin = SEARCH_RANGE + 2
    for index, ref in enumerate(refs):
        chosen = np.flatnonzero(ref_index[owner] == index)
        if not chosen.size:
            continue
        extended = extend(ref, margin)
        planes = luma_phases(extended, SUBPEL)
        at = (oy[chosen], ox[chosen])
        window = phase_windows(planes, margin, at[0], at[1], parent[chosen], size, SUBPEL)
        whole[chosen] = block_cost(blocks[chosen], window)
        start = np.floor_divide(parent[chosen], SUBPEL)
        limited = extend(ref, SEARCH_RANGE)
        integer, integer_sad = descend(
            blocks[chosen], limited, at[0], at[1], start, SEARCH_RANGE, start, lam
        )
        if SUBPEL > 1:
            refined = refine_subpel(blocks[chosen], extended, margin, integer, at[0], at[1])
            found[chosen], sad[chosen] = refined
        else:
            found[chosen], sad[chosen] = integer, integer_sad
    delta = found - parent
    cost = sad + lam * vector_bits(delta)
    stay = cost >= whole
    delta[stay] = 0
    cost[stay] = whole[stay] + lam * 2
    split_cost = np.bincount(owner, weights=cost, minlength=len(vectors)) + lam * SPLIT_BITS
    whole_cost = np.bincount(owner, weights=whole, minlength=len(vectors))
    deltas = np.zeros((len(vectors), 4, 2), dtype=np.int64)
    deltas[owner, part] = delta
    deltas[split_cost >= whole_cost] = 0
    return deltas


partition_search = split_none


def predict_plane(refs: list[U8], vectors: I64, ref_index: I64, size: int, scale: int) -> I32:
    """Motion-compensated plane of size x size blocks (one per macroblock, raster order)."""
    h, w = refs[0].shape
    rows, cols = h // size, w // size
    out = np.empty((rows * cols, size, size), dtype=np.int32)
    oy, ox = grid_origins(refs[0], size)
    for index, ref in enumerate(refs):
        chosen = np.flatnonzero(ref_index == index)
        if not chosen.size:
            continue
        margin = int(np.abs(vectors[chosen]).max(initial=0)) // scale + 2
        found = interpolate(
            extend(ref, margin), margin, oy[chosen], ox[chosen], vectors[chosen], size, scale
        )
        out[chosen] = found
    plane: I32 = out.reshape(rows, cols, size, size).transpose(0, 2, 1, 3).reshape(h, w)
    return plane


def predict_plane_phases(
    refs: list[U8], vectors: I64, ref_index: I64, size: int, scale: int
) -> I32:
    """`predict_plane` gathering from `luma_phases` (the 6-tap luma interpolation)."""
    h, w = refs[0].shape
    rows, cols = h // size, w // size
    out = np.empty((rows * cols, size, size), dtype=np.int32)
    oy, ox = grid_origins(refs[0], size)
    for index, ref in enumerate(refs):
        chosen = np.flatnonzero(ref_index == index)
        if not chosen.size:
            continue
        margin = int(np.abs(vectors[chosen]).max(initial=0)) // scale + 2
        planes = luma_phases(extend(ref, margin), scale)
        found = phase_windows(planes, margin, oy[chosen], ox[chosen], vectors[chosen], size, scale)
        out[chosen] = found
    plane: I32 = out.reshape(rows, cols, size, size).transpose(0, 2, 1, 3).reshape(h, w)
    return plane


predict_luma = predict_plane
