"""Frame geometry, reconstruction and packet sections of generated codecs.

`reconstruct` is the decoder: the encoder calls it on its own decisions, so its reference
frames are the decoder's output by construction.
"""

import numpy as np

from codeclab.designers.offline.fragments.config import (
    BFRAMES,
    CHROMA_T,
    INTRA_4X4,
    INTRA_PERIOD,
    INTRA_PRED,
    INTRA_ROUNDING,
    LUMA_T,
    MACROBLOCK,
    NUM_REFS,
    P_QP_OFFSET,
    SEARCH_RANGE,
    SKIP_MEDIAN,
    SUBPEL,
)
from codeclab.designers.offline.fragments.loopfilter import deblock, downscale2, upscale2
from codeclab.designers.offline.fragments.motion import predict_luma, predict_plane, skip_vector
from codeclab.designers.offline.fragments.transform import (
    FORWARD_C,
    FORWARD_Y,
    FORWARD_Y4,
    INVERSE_C,
    INVERSE_Y,
    SMALL_T,
    Quantiser,
    decision_lambda,
    dequantise,
    from_blocks,
    luma_bits,
    luma_levels,
    luma_residual,
    parse_run_length,
    parse_small_ints,
    quantise_levels,
    residual_planes,
    run_length,
    small_ints,
    to_blocks,
)
from codeclab.designers.offline.fragments.types import F64, I64, Bools, Planes

TAG_INTRA = 0x49
TAG_PREDICTED = 0x50
SECTIONS = 9  # modes, vector codes, vector escapes, then runs/codes/escapes of luma and chroma
MAX_VECTOR = (SEARCH_RANGE + 1) * SUBPEL
INTRA_MB = 8
"""P-frame mode of an intra macroblock: INTRA_MB + its `intra_predict` mode (above any
1 + reference index)."""
SPLIT_HASH = np.array([1, 7, 61, 509, 4093, 32749, 262139, 2097143], dtype=np.int64)
"""Weights telling apart the partition vectors of split macroblocks in deblocking keys."""


class Layout:
    """Plane shapes (output and coded), macroblock grid and transform-block grids.

    `scale` 2 codes every plane at half size (rounded up); the decoder upsamples its output.
    """

    def __init__(self, width: int, height: int, scale: int) -> None:
        if width <= 0 or height <= 0:
            raise ValueError(f"frame size must be positive, got {width}x{height}")
        cw, ch = (width + 1) // 2, (height + 1) // 2
        self.scale = scale
        self.out_shapes = ((height, width), (ch, cw), (ch, cw))
        self.shapes = tuple((-(-h // scale), -(-w // scale)) for h, w in self.out_shapes)
        self.mby = -(-self.shapes[0][0] // MACROBLOCK)
        self.mbx = -(-self.shapes[0][1] // MACROBLOCK)
        self.nmb = self.mby * self.mbx
        half = MACROBLOCK // 2
        luma = (MACROBLOCK * self.mby, MACROBLOCK * self.mbx)
        self.padded = (luma, (half * self.mby, half * self.mbx), (half * self.mby, half * self.mbx))
        self.sizes = (LUMA_T, CHROMA_T, CHROMA_T)
        self.grids = tuple(
            (h // n, w // n) for (h, w), n in zip(self.padded, self.sizes, strict=True)
        )
        self.mb_of = tuple(
            self.block_macroblocks(grid, n, size)
            for grid, n, size in zip(self.grids, self.sizes, (MACROBLOCK, half, half), strict=True)
        )
        self.nblocks = tuple(rows * cols for rows, cols in self.grids)

    def block_macroblocks(self, grid: tuple[int, int], n: int, size: int) -> I64:
        """Macroblock index of every n x n transform block (raster order) of a plane."""
        rows = np.arange(grid[0], dtype=np.int64) * n // size
        cols = np.arange(grid[1], dtype=np.int64) * n // size
        index: I64 = (rows[:, None] * self.mbx + cols[None, :]).ravel()
        return index

    def prepare(self, planes: Planes, frame: int) -> Planes:
        """Check the source planes, resample them if coding at half size, pad to the grid."""
        out = []
        for name, plane, shape, coded, (ph, pw) in zip(
            "yuv", planes, self.out_shapes, self.shapes, self.padded, strict=True
        ):
            if plane.shape != shape or plane.dtype != np.uint8:
                raise ValueError(
                    f"frame {frame}: plane {name} must be uint8 {shape}, "
                    f"got {plane.dtype} {plane.shape}"
                )
            small = downscale2(plane) if self.scale == 2 else plane
            out.append(np.pad(small, ((0, ph - coded[0]), (0, pw - coded[1])), "edge"))
        return out[0], out[1], out[2]

    def output(self, planes: Planes) -> Planes:
        """The frame the decoder returns: cropped, upsampled back when coded at half size."""
        out = []
        for plane, coded, shape in zip(planes, self.shapes, self.out_shapes, strict=True):
            cropped = plane[: coded[0], : coded[1]]
            if self.scale == 2:
                cropped = upscale2(cropped, shape[0], shape[1])
            out.append(np.ascontiguousarray(cropped))
        return out[0], out[1], out[2]


def frame_quantiser(
    cache: dict[tuple[int, bool], Quantiser], quality: int, intra: bool
) -> Quantiser:
    """The (cached) quantiser of a quality and frame type."""
    found = cache.get((quality, intra))
    if found is None:
        found = Quantiser(quality, 0 if intra else P_QP_OFFSET)
        cache[(quality, intra)] = found
    return found


def is_intra(frame_index: int, refs: list[Planes]) -> bool:
    return not refs or frame_index % INTRA_PERIOD == 0


def motion_keys(layout: Layout, modes: I64, vectors: I64) -> I64:
    """One integer per macroblock telling apart different motion (reference and vector)."""
    keys: I64 = (modes * 4096 + vectors[:, 0] + 2048) * 4096 + vectors[:, 1] + 2048
    return keys


def partition_field(layout: Layout, per_partition: I64) -> I64:
    """(4 * nmb, k) rows of the 8x8 partitions in raster order of the partition grid, from
    (nmb, 4, k) rows per macroblock (its partitions in raster order within it)."""
    k = per_partition.shape[2]
    grid = per_partition.reshape(layout.mby, layout.mbx, 2, 2, k).transpose(0, 2, 1, 3, 4)
    field: I64 = grid.reshape(-1, k)
    return field


def motion_prediction(
    layout: Layout, refs: list[Planes], modes: I64, vectors: I64, deltas: I64 | None = None
) -> list[I64]:
    """The three motion-compensated planes of a P-frame (`modes`: 0 skip, 1 + reference);
    `deltas` (nmb, 4, 2): each 8x8 partition's vector minus its macroblock's, or None."""
    ref_index = np.where(modes >= INTRA_MB, 0, np.maximum(modes - 1, 0))
    size = MACROBLOCK
    if deltas is not None and deltas.any():
        vectors = partition_field(layout, vectors[:, None, :] + deltas)
        ref_index = partition_field(layout, np.repeat(ref_index[:, None, None], 4, axis=1))[:, 0]
        size = MACROBLOCK // 2
    planes = []
    for p in range(3):
        block, scale = (size, SUBPEL) if p == 0 else (size // 2, 2 * SUBPEL)
        own = [ref[p] for ref in refs]
        predict = predict_luma if p == 0 else predict_plane
        planes.append(predict(own, vectors, ref_index, block, scale).astype(np.int64))
    return planes


def no_prediction(
    layout: Layout, refs: list[Planes], modes: I64, vectors: I64, deltas: I64 | None = None
) -> list[I64]:
    """An all-intra codec has no P-frames."""
    raise ValueError("P-frame in the stream of an all-intra codec")


predict_frame = motion_prediction


PLANE_SCALE = {16: 5, 8: 34, 4: 205}  # H.264's plane-mode slope scales (x/64), 4x4 extended


def intra_predict(plane: I64, y0: int, x0: int, size: int, mode: int) -> I64:
    """Prediction of the size x size block at (y0, x0) from the reconstructed pixels above and
    left of it in `plane`: mode 0 DC (128 without neighbours), 1 vertical, 2 horizontal, 3 plane
    (H.264's Intra_16x16 plane fit); a mode missing its neighbours predicts DC."""
    has_top, has_left = y0 > 0, x0 > 0
    top = plane[y0 - 1, x0 : x0 + size]
    left = plane[y0 : y0 + size, x0 - 1]
    if mode == 1 and has_top:
        vertical: I64 = np.repeat(top[None, :], size, axis=0)
        return vertical
    if mode == 2 and has_left:
        horizontal: I64 = np.repeat(left[:, None], size, axis=1)
        return horizontal
    if mode == 3 and has_top and has_left:
        half = size // 2
        corner = plane[y0 - 1, x0 - 1 : x0]
        above = np.concatenate((corner, top))
        beside = np.concatenate((corner, left))
        i = np.arange(1, half + 1)
        slope_x = int((i * (above[half + i] - above[half - i])).sum())
        slope_y = int((i * (beside[half + i] - beside[half - i])).sum())
        b = (PLANE_SCALE[size] * slope_x + 32) >> 6
        c = (PLANE_SCALE[size] * slope_y + 32) >> 6
        a = 16 * (int(top[-1]) + int(left[-1]))
        ramp = np.arange(size, dtype=np.int64) - (half - 1)
        fitted: I64 = np.clip((a + b * ramp[None, :] + c * ramp[:, None] + 16) >> 5, 0, 255)
        return fitted
    if has_top and has_left:
        dc = (int(top.sum()) + int(left.sum()) + size) // (2 * size)
    elif has_top or has_left:
        dc = (int((top if has_top else left).sum()) + size // 2) // size
    else:
        dc = 128
    return np.full((size, size), dc, dtype=np.int64)


LUMA_MODES = 9
"""Directional modes of a 4x4 or 8x8 luma block (H.264's Intra_4x4 / Intra_8x8 numbering,
without Intra_8x8's reference filter): 0 vertical, 1 horizontal, 2 DC, 3 diagonal down-left,
4 diagonal down-right, 5 vertical-right, 6 horizontal-down, 7 vertical-left, 8 horizontal-up."""
MODE_DC = 2
INTRA_RD_MODES = 5
"""Intra directions (those of least SATD + lambda * mode bits) each block is coded with to
pick the one of least SSD + lambda * bits."""
NEEDS_TOP = (1, 0, 0, 1, 1, 1, 1, 1, 0)
NEEDS_LEFT = (0, 1, 0, 0, 1, 1, 1, 0, 1)
GRIDS = {n: np.mgrid[0:n, 0:n] for n in (4, 8)}
"""(row, column) index grids of a 4x4 and an 8x8 block."""


def predict_directional(
    plane: I64, y0: int, x0: int, mode: int, top_right: bool, n: int = 8
) -> I64:
    """Prediction of the n x n (4 or 8) luma block at (y0, x0) from the reconstructed pixels
    of `plane` above (n, and n more above-right where `top_right`, else the last one repeated),
    left of and above-left of it, by `mode` (see LUMA_MODES); a mode missing its neighbours
    predicts DC."""
    has_top, has_left = y0 > 0, x0 > 0
    if (NEEDS_TOP[mode] and not has_top) or (NEEDS_LEFT[mode] and not has_left):
        mode = MODE_DC
    row, col = GRIDS[n]
    top = plane[y0 - 1, x0 : x0 + 2 * n] if has_top else np.zeros(2 * n, dtype=np.int64)
    if not top_right:
        top = np.concatenate((top[:n], np.repeat(top[n - 1 : n], n)))
    left = plane[y0 : y0 + n, x0 - 1] if has_left else np.zeros(n, dtype=np.int64)
    if mode == 0:
        vertical: I64 = np.repeat(top[None, :n], n, axis=0)
        return vertical
    if mode == 1:
        horizontal: I64 = np.repeat(left[:, None], n, axis=1)
        return horizontal
    if mode == MODE_DC:
        shift = n.bit_length() - 1
        if has_top and has_left:
            dc = (int(top[:n].sum()) + int(left.sum()) + n) >> (shift + 1)
        elif has_top or has_left:
            dc = (int((top[:n] if has_top else left).sum()) + n // 2) >> shift
        else:
            dc = 128
        return np.full((n, n), dc, dtype=np.int64)
    if mode in (3, 7):
        t = np.concatenate((top, top[2 * n - 1 :]))
        average = (t[:-1] + t[1:] + 1) >> 1
        smooth = (t[:-2] + 2 * t[1:-1] + t[2:] + 2) >> 2
        if mode == 3:
            down_left: I64 = smooth[row + col]
            return down_left
        k = col + (row >> 1)
        vertical_left: I64 = np.where(row % 2 == 0, average[k], smooth[k])
        return vertical_left
    if mode == 8:
        side = np.concatenate((left, np.repeat(left[n - 1 :], 5)))  # beyond: the last
        j = row + (col >> 1)
        even = (side[j] + side[j + 1] + 1) >> 1
        odd = (side[j] + 2 * side[j + 1] + side[j + 2] + 2) >> 2
        horizontal_up: I64 = np.where((col + 2 * row) % 2 == 0, even, odd)
        return horizontal_up
    corner = plane[y0 - 1, x0 - 1 : x0]
    edge = np.concatenate((left[::-1], corner, top))  # left bottom-up, corner, top
    average = (edge[:-1] + edge[1:] + 1) >> 1
    smooth = edge.copy()
    smooth[1:-1] = (edge[:-2] + 2 * edge[1:-1] + edge[2:] + 2) >> 2
    if mode == 4:
        down_right: I64 = smooth[n + col - row]
        return down_right
    if mode == 5:
        z, k = 2 * col - row, n + col - (row >> 1)
        steep = smooth[np.clip(n + 1 - row + 2 * col, 0, 3 * n)]
        inner = np.where(z % 2 == 0, average[k], smooth[k])
        vertical_right: I64 = np.where(z >= 0, inner, np.where(z == -1, smooth[n], steep))
        return vertical_right
    z, k = 2 * row - col, n - row + (col >> 1)
    flat = smooth[np.clip(n - 1 + col - 2 * row, 0, 3 * n)]
    inner = np.where(z % 2 == 0, average[k - 1], smooth[k])
    horizontal_down: I64 = np.where(z >= 0, inner, np.where(z == -1, smooth[n], flat))
    return horizontal_down


def directional_weights(n: int) -> I64:
    """(LUMA_MODES, n*n, 3n+1) integer weights W with which every mode but DC of
    `predict_directional` is (W[mode] @ edge + 2) >> 2, `edge` being the n pixels left of the
    block bottom-up, the one above-left, then the 2n above (copies are 4 * a pixel, means
    2 * a + 2 * b, smoothing a + 2 * b + c: each pixel of each mode is one of these). Found by
    predicting from edges that are 1024 at one place and 0 elsewhere."""
    weights = np.zeros((LUMA_MODES, n * n, 3 * n + 1), dtype=np.int64)
    for j in range(3 * n + 1):
        plane = np.zeros((n + 1, 2 * n + 1), dtype=np.int64)
        if j < n:
            plane[n - j, 0] = 1024  # left, bottom-up
        elif j == n:
            plane[0, 0] = 1024
        else:
            plane[0, j - n] = 1024
        for mode in range(LUMA_MODES):
            if mode != MODE_DC:
                weights[mode, :, j] = predict_directional(plane, 1, 1, mode, True, n).ravel() // 256
    return weights


DIRECTIONAL_WEIGHTS = {n: directional_weights(n) for n in (4, 8)}


def predict_candidates(
    plane: I64, y0: int, x0: int, modes: list[int], top_right: bool, n: int
) -> I64:
    """(len(modes), n, n) `predict_directional` predictions of the block at (y0, x0) by each
    of `modes` (each with the neighbours it needs), in one product with
    `directional_weights`."""
    has_top, has_left = y0 > 0, x0 > 0
    top = plane[y0 - 1, x0 : x0 + 2 * n] if has_top else np.zeros(2 * n, dtype=np.int64)
    if not top_right:
        top = np.concatenate((top[:n], np.repeat(top[n - 1 : n], n)))
    left = plane[y0 : y0 + n, x0 - 1] if has_left else np.zeros(n, dtype=np.int64)
    corner = plane[y0 - 1, x0 - 1 : x0] if has_top and has_left else np.zeros(1, np.int64)
    edge = np.concatenate((left[::-1], corner, top))
    found: I64 = (DIRECTIONAL_WEIGHTS[n][modes] @ edge + 2) >> 2
    found = found.reshape(len(modes), n, n)
    if MODE_DC in modes:
        found[modes.index(MODE_DC)] = predict_directional(plane, y0, x0, MODE_DC, top_right, n)
    return found


def hadamard(n: int) -> I64:
    """The n x n Hadamard matrix (n a power of two), entries +-1."""
    h = np.array([[1]], dtype=np.int64)
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h


HADAMARD = {n: hadamard(n) for n in (4, 8)}


def hadamard_cost(residuals: I64) -> I64:
    """Sum of absolute Hadamard transform coefficients (SATD) of (count, n, n) residuals,
    n 4 or 8."""
    h = HADAMARD[residuals.shape[-1]]
    cost: I64 = np.abs(h @ residuals @ h).sum(axis=(1, 2))
    return cost


def most_probable_mode(grid: I64, by: int, bx: int) -> int:
    """H.264's predicted intra mode of the luma block whose top-left cell of `grid` (modes per
    block of the grid's size) is (by, bx): the lesser of the modes left of and above that
    cell, DC where either is outside the frame."""
    if by == 0 or bx == 0:
        return MODE_DC
    return int(min(grid[by, bx - 1], grid[by - 1, bx]))


def quadrant_blocks(k: int) -> list[int]:
    """Indices, within its macroblock's luma transform blocks (raster), of the blocks of the
    8x8 quadrant `k` (raster: 0 top-left .. 3 bottom-right)."""
    per, per_row = 8 // LUMA_T, MACROBLOCK // LUMA_T
    first_row, first_col = per * (k // 2), per * (k % 2)
    return [(first_row + i) * per_row + first_col + j for i in range(per) for j in range(per)]


def has_top_right(k: int, r: int, c: int, mbx: int) -> bool:
    """Whether the 8 pixels above-right of quadrant `k` of macroblock (r, c) are decoded
    before it: above the macroblock (k 0; k 1 unless in the last column), or quadrant 1 (k 2)."""
    return (k == 0 and r > 0) or (k == 1 and r > 0 and c < mbx - 1) or k == 2


def intra_block(
    recon: I64, y0: int, x0: int, size: int, prediction: I64, residual: F64, n: int
) -> None:
    """Write prediction + residual blocks (raster within the macroblock) into `recon`."""
    blocks = to_blocks(prediction, n) + residual
    recon[y0 : y0 + size, x0 : x0 + size] = np.clip(from_blocks(blocks, n, size, size), 0, 255)


def mb_block_order(layout: Layout) -> list[I64]:
    """Per plane, (macroblocks, blocks per macroblock) transform-block indices."""
    return [np.argsort(mb, kind="stable").reshape(layout.nmb, -1) for mb in layout.mb_of]


def intra_levels_flat(
    layout: Layout, cur: Planes, quant: Quantiser
) -> tuple[list[I64], I64, Bools]:
    """An I-frame's levels against a flat 128 (no modes: the vectors stay zero; every luma
    block one transform)."""
    forwards = (FORWARD_Y, FORWARD_C, FORWARD_C)
    steps = (quant.steps_y, quant.steps_c, quant.steps_c)
    levels = [
        quantise_levels(
            to_blocks(cur[p] - np.int64(128), n),
            forwards[p],
            steps[p],
            INTRA_ROUNDING,
            quant.prices[p],
        )
        for p, n in enumerate(layout.sizes)
    ]
    tx4 = np.zeros(layout.nblocks[0], dtype=np.bool_)
    return levels, np.zeros((layout.nmb, 2), dtype=np.int64), tx4


def intra_buffers(layout: Layout) -> tuple[list[I64], list[I64], list[I64]]:
    """What an I-frame's coder fills macroblock by macroblock: the reconstructed planes and
    the levels of each plane (all zero), and `mb_block_order`."""
    recon = [np.zeros(shape, dtype=np.int64) for shape in layout.padded]
    levels = [
        np.zeros((total, n * n), dtype=np.int64)
        for total, n in zip(layout.nblocks, layout.sizes, strict=True)
    ]
    return recon, levels, mb_block_order(layout)


def intra_levels_modes(
    layout: Layout, cur: Planes, quant: Quantiser
) -> tuple[list[I64], I64, Bools]:
    """An I-frame coded macroblock by macroblock in raster order, each predicted from its
    reconstructed neighbours with the `intra_predict` mode of least SAD (luma and chroma);
    returns the levels, the modes (in column 0 of the vectors) and no 4x4 luma transforms."""
    forwards = (FORWARD_Y, FORWARD_C, FORWARD_C)
    inverses = (INVERSE_Y, INVERSE_C, INVERSE_C)
    steps = (quant.steps_y, quant.steps_c, quant.steps_c)
    recon, levels, order = intra_buffers(layout)
    source = [plane.astype(np.int64) for plane in cur]
    vectors = np.zeros((layout.nmb, 2), dtype=np.int64)
    for mb in range(layout.nmb):
        r, c = divmod(mb, layout.mbx)
        modes = [0] + ([1] if r else []) + ([2] if c else []) + ([3] if r and c else [])
        best, best_cost, best_predictions = 0, -1, []
        for mode in modes:
            cost, predictions = 0, []
            for p in range(3):
                size = MACROBLOCK if p == 0 else MACROBLOCK // 2
                y0, x0 = r * size, c * size
                prediction = intra_predict(recon[p], y0, x0, size, mode)
                cost += int(np.abs(source[p][y0 : y0 + size, x0 : x0 + size] - prediction).sum())
                predictions.append(prediction)
            if best_cost < 0 or cost < best_cost:
                best, best_cost, best_predictions = mode, cost, predictions
        vectors[mb, 0] = best
        for p in range(3):
            size, n = (MACROBLOCK if p == 0 else MACROBLOCK // 2), layout.sizes[p]
            y0, x0 = r * size, c * size
            residual = source[p][y0 : y0 + size, x0 : x0 + size] - best_predictions[p]
            found = quantise_levels(
                to_blocks(residual, n), forwards[p], steps[p], INTRA_ROUNDING, quant.prices[p]
            )
            levels[p][order[p][mb]] = found
            decoded = dequantise(found, steps[p], inverses[p])
            intra_block(recon[p], y0, x0, size, best_predictions[p], decoded, n)
    return levels, vectors, np.zeros(layout.nblocks[0], dtype=np.bool_)


intra_coding = intra_levels_flat


def intra_planes_flat(
    layout: Layout, quant: Quantiser, vectors: I64, levels: list[I64], tx4: Bools
) -> list[I64]:
    """An I-frame's planes before the loop filter: 128 plus the residual."""
    residuals = residual_planes(levels, quant, tx4)
    planes = []
    for p in range(3):
        (h, w), n = layout.padded[p], layout.sizes[p]
        blocks = residuals[p] + 128
        planes.append(np.clip(from_blocks(blocks, n, h, w), 0, 255))
    return planes


def intra_residuals(
    layout: Layout, quant: Quantiser, levels: list[I64], tx4: Bools
) -> tuple[list[I64], list[I64], list[F64]]:
    """What an I-frame's decoder fills macroblock by macroblock: the planes (all zero),
    `mb_block_order`, and each plane's dequantised residual blocks."""
    recon = [np.zeros(shape, dtype=np.int64) for shape in layout.padded]
    return recon, mb_block_order(layout), residual_planes(levels, quant, tx4)


def intra_planes_modes(
    layout: Layout, quant: Quantiser, vectors: I64, levels: list[I64], tx4: Bools
) -> list[I64]:
    """Inverse of `intra_levels_modes`: planes before the loop filter, macroblock by macroblock."""
    recon, order, residuals = intra_residuals(layout, quant, levels, tx4)
    for mb in range(layout.nmb):
        r, c = divmod(mb, layout.mbx)
        mode = int(vectors[mb, 0])
        for p in range(3):
            size, n = (MACROBLOCK if p == 0 else MACROBLOCK // 2), layout.sizes[p]
            y0, x0 = r * size, c * size
            prediction = intra_predict(recon[p], y0, x0, size, mode)
            intra_block(recon[p], y0, x0, size, prediction, residuals[p][order[p][mb]], n)
    return recon


def directional_block(
    recon: I64,
    target: I64,
    y0: int,
    x0: int,
    top_right: bool,
    likely: int,
    quant: Quantiser,
    sub: int = -1,
) -> tuple[float, int, I64, Bools, I64]:
    """The best `predict_directional` mode of one luma block at (y0, x0): an 8x8 quadrant
    (`sub` -1; its residual coded by `luma_levels`) or 4x4 sub-block `sub` of one (coded by
    its own 4x4 transform, as the levels of the quadrant's split block). Of the
    INTRA_RD_MODES modes of least SATD + 0.4 * step * mode bits (1 for `likely`, the most
    probable mode, else 4), the one whose coded block costs least SSD + lambda * bits
    (`decision_lambda`). Returns (that cost, the mode, the quadrant's levels row, its tx4
    flag, the decoded pixels)."""
    n = 8 if sub < 0 else SMALL_T
    candidates = [
        mode
        for mode in range(LUMA_MODES)
        if (y0 > 0 or not NEEDS_TOP[mode]) and (x0 > 0 or not NEEDS_LEFT[mode])
    ]
    predictions = predict_candidates(recon, y0, x0, candidates, top_right, n)
    bits = np.array([1 if mode == likely else 4 for mode in candidates])
    costs = hadamard_cost(target[None] - predictions) + 0.4 * quant.flat_y * bits
    rd_lam = decision_lambda(quant)
    options = np.argsort(costs, kind="stable")[:INTRA_RD_MODES]
    chosen = predictions[options]
    count = len(options)
    if sub < 0:
        differences = (target[None] - chosen).reshape(count, 8, 8)
        blocks = np.concatenate([to_blocks(d, LUMA_T) for d in differences])
        coded, coded_tx4 = luma_levels(blocks, quant, INTRA_ROUNDING, rd_lam)
        dequantised = luma_residual(coded, quant, coded_tx4)
        per = blocks.shape[0] // count  # transform blocks per option
        pixels = np.stack(
            [
                from_blocks(
                    to_blocks(chosen[i], LUMA_T) + dequantised[i * per : (i + 1) * per],
                    LUMA_T,
                    n,
                    n,
                )
                for i in range(count)
            ]
        )
    else:
        rows, cols = 4 * (sub // 2), 4 * (sub % 2)
        embedded = np.zeros((count, 8, 8), dtype=np.float64)
        embedded[:, rows : rows + 4, cols : cols + 4] = target[None] - chosen
        coded = quantise_levels(
            embedded.reshape(count, 64), FORWARD_Y4, quant.steps_y4, INTRA_ROUNDING, quant.prices[3]
        )
        coded_tx4 = np.ones(count, dtype=np.bool_)
        dequantised = luma_residual(coded, quant, coded_tx4).reshape(count, 8, 8)
        pixels = (chosen + dequantised[:, rows : rows + 4, cols : cols + 4]).astype(np.int64)
        per = 1
    pixels = np.clip(pixels, 0, 255)
    errors = ((target[None] - pixels) ** 2).sum(axis=(1, 2))
    rates = luma_bits(coded, quant, coded_tx4).reshape(count, per).sum(axis=1) + bits[options]
    best = int(np.argmin(errors + rd_lam * rates))
    span = slice(best * per, (best + 1) * per)
    return (
        float(errors[best] + rd_lam * rates[best]),
        candidates[int(options[best])],
        coded[span],
        coded_tx4[span],
        pixels[best],
    )


SUBDIVIDED = 15
"""Quadrant mode (column 1 of an I-frame's vectors) of a quadrant predicted as four 4x4
blocks, whose modes are in column 2 + quadrant (sub-block s in bits 4s..4s+3)."""


def sub_top_right(s: int, k: int, r: int, c: int, mbx: int, y0: int) -> bool:
    """Whether the 4 pixels above-right of 4x4 sub-block `s` of quadrant `k` of macroblock
    (r, c) are decoded before it (`y0`: the quadrant's top row)."""
    if s == 0:
        return y0 > 0
    if s == 1:
        return has_top_right(k, r, c, mbx)
    return s == 2


def intra_levels_blocks(
    layout: Layout, cur: Planes, quant: Quantiser
) -> tuple[list[I64], I64, Bools]:
    """An I-frame coded macroblock by macroblock in raster order: each 8x8 luma quadrant
    predicted from its reconstructed neighbours by its best `directional_block` mode, or with
    INTRA_4X4, where that costs less, as four 4x4 blocks each by its own (H.264's
    Intra_NxN); chroma by the `intra_predict` mode of least SAD. Returns the levels; in the
    vectors the chroma mode (column 0), the four quadrant modes (column 1, quadrant k in bits
    4k..4k+3; SUBDIVIDED: 4x4 blocks) and with INTRA_4X4 each quadrant's 4x4 modes; and
    which luma blocks are coded as 4x4 transforms. Each macroblock is quantised by its own
    quantiser (`Quantiser.at`)."""
    forwards = (FORWARD_Y, FORWARD_C, FORWARD_C)
    inverses = (INVERSE_Y, INVERSE_C, INVERSE_C)
    recon, levels, order = intra_buffers(layout)
    source = [plane.astype(np.int64) for plane in cur]
    vectors = np.zeros((layout.nmb, 2 + 4 * INTRA_4X4), dtype=np.int64)
    grid = np.zeros((4 * layout.mby, 4 * layout.mbx), dtype=np.int64)  # modes per 4x4
    tx4 = np.zeros(layout.nblocks[0], dtype=np.bool_)
    for mb in range(layout.nmb):
        r, c = divmod(mb, layout.mbx)
        mb_quant = quant.at(mb)
        steps = (mb_quant.steps_y, mb_quant.steps_c, mb_quant.steps_c)
        flag = decision_lambda(mb_quant) * INTRA_4X4  # the price of a quadrant's 4x4 flag
        packed = 0
        for k in range(4):
            y0, x0 = 8 * (2 * r + k // 2), 8 * (2 * c + k % 2)
            by, bx = y0 // 4, x0 // 4
            target = source[0][y0 : y0 + 8, x0 : x0 + 8]
            cost, mode, found, small, pixels = directional_block(
                recon[0],
                target,
                y0,
                x0,
                has_top_right(k, r, c, layout.mbx),
                most_probable_mode(grid, by, bx),
                mb_quant,
            )
            grid[by : by + 2, bx : bx + 2] = mode
            blocks = order[0][mb][quadrant_blocks(k)]
            if INTRA_4X4:
                split_cost, row, modes4 = flag, np.zeros_like(found), 0
                for s in range(4):
                    ys, xs = y0 + 4 * (s // 2), x0 + 4 * (s % 2)
                    part = directional_block(
                        recon[0],
                        source[0][ys : ys + 4, xs : xs + 4],
                        ys,
                        xs,
                        sub_top_right(s, k, r, c, layout.mbx, y0),
                        most_probable_mode(grid, ys // 4, xs // 4),
                        mb_quant,
                        s,
                    )
                    split_cost += part[0]
                    row += part[2]
                    modes4 |= part[1] << (4 * s)
                    grid[ys // 4, xs // 4] = part[1]
                    recon[0][ys : ys + 4, xs : xs + 4] = part[4]
                if split_cost < cost + flag:
                    packed |= SUBDIVIDED << (4 * k)
                    vectors[mb, 2 + k] = modes4
                    levels[0][blocks] = row
                    tx4[blocks] = True
                    continue
                grid[by : by + 2, bx : bx + 2] = mode
            packed |= mode << (4 * k)
            levels[0][blocks] = found
            tx4[blocks] = small
            recon[0][y0 : y0 + 8, x0 : x0 + 8] = pixels
        vectors[mb, 1] = packed
        size = MACROBLOCK // 2
        y0, x0 = r * size, c * size
        chroma_modes = [0] + ([1] if r else []) + ([2] if c else []) + ([3] if r and c else [])
        best, best_cost, best_predictions = 0, -1, []
        for mode in chroma_modes:
            predictions_c = [intra_predict(recon[p], y0, x0, size, mode) for p in (1, 2)]
            cost_c = sum(
                int(np.abs(source[p][y0 : y0 + size, x0 : x0 + size] - prediction).sum())
                for p, prediction in zip((1, 2), predictions_c, strict=True)
            )
            if best_cost < 0 or cost_c < best_cost:
                best, best_cost, best_predictions = mode, cost_c, predictions_c
        vectors[mb, 0] = best
        for p, prediction in zip((1, 2), best_predictions, strict=True):
            n = layout.sizes[p]
            residual = source[p][y0 : y0 + size, x0 : x0 + size] - prediction
            found_c = quantise_levels(
                to_blocks(residual, n), forwards[p], steps[p], INTRA_ROUNDING, mb_quant.prices[p]
            )
            levels[p][order[p][mb]] = found_c
            decoded = dequantise(found_c, steps[p], inverses[p])
            intra_block(recon[p], y0, x0, size, prediction, decoded, n)
    return levels, vectors, tx4


def intra_planes_blocks(
    layout: Layout, quant: Quantiser, vectors: I64, levels: list[I64], tx4: Bools
) -> list[I64]:
    """Inverse of `intra_levels_blocks`: planes before the loop filter, macroblock by
    macroblock, quadrant by quadrant (sub-block by sub-block where SUBDIVIDED)."""
    recon, order, residuals = intra_residuals(layout, quant, levels, tx4)
    for mb in range(layout.nmb):
        r, c = divmod(mb, layout.mbx)
        packed = int(vectors[mb, 1])
        for k in range(4):
            y0, x0 = 8 * (2 * r + k // 2), 8 * (2 * c + k % 2)
            mode = (packed >> (4 * k)) & 15
            residual = residuals[0][order[0][mb][quadrant_blocks(k)]]
            if mode != SUBDIVIDED:
                prediction = predict_directional(
                    recon[0], y0, x0, mode, has_top_right(k, r, c, layout.mbx)
                )
                intra_block(recon[0], y0, x0, 8, prediction, residual, LUMA_T)
                continue
            pixels = residual.reshape(8, 8)
            for s in range(4):
                ys, xs = y0 + 4 * (s // 2), x0 + 4 * (s % 2)
                sub_mode = (int(vectors[mb, 2 + k]) >> (4 * s)) & 15
                top_right = sub_top_right(s, k, r, c, layout.mbx, y0)
                prediction = predict_directional(recon[0], ys, xs, sub_mode, top_right, SMALL_T)
                part = pixels[ys - y0 : ys - y0 + 4, xs - x0 : xs - x0 + 4]
                recon[0][ys : ys + 4, xs : xs + 4] = np.clip(prediction + part, 0, 255)
        size = MACROBLOCK // 2
        for p in (1, 2):
            prediction = intra_predict(recon[p], r * size, c * size, size, int(vectors[mb, 0]))
            intra_block(
                recon[p],
                r * size,
                c * size,
                size,
                prediction,
                residuals[p][order[p][mb]],
                layout.sizes[p],
            )
    return recon


intra_planes = intra_planes_flat


def reconstruct(
    layout: Layout,
    refs: list[Planes],
    quant: Quantiser,
    modes: I64 | None,
    vectors: I64,
    levels: list[I64],
    tx4: Bools,
    deltas: I64 | None = None,
) -> Planes:
    """Decode one frame from its decisions: prediction (intra for I-frames; the macroblocks'
    references moved by their vectors, and their partitions' `deltas`, otherwise), plus
    dequantised residual (luma blocks set in `tx4` by four 4x4 transforms), then the loop
    filter. `modes` is None for an I-frame, else per macroblock 0 (skip), 1 + reference, or
    INTRA_MB + intra mode (predicted, after the other macroblocks, from its reconstructed
    neighbours in raster order)."""
    if modes is not None:
        predictions = predict_frame(layout, refs, modes, vectors, deltas)
        keys = motion_keys(layout, modes, vectors)
        luma_keys = None
        if deltas is not None and deltas.any():
            keys = keys * 65521 + (deltas.reshape(layout.nmb, 8) * SPLIT_HASH).sum(axis=1)
            if LUMA_T < MACROBLOCK:
                luma_keys = partition_keys(layout, modes, vectors, deltas)
        intra = np.where(modes >= INTRA_MB, modes - INTRA_MB, -1)
        keys = np.where(intra >= 0, -1 - np.arange(layout.nmb), keys)  # edges always filtered
        return inter_planes(layout, quant, predictions, keys, levels, tx4, luma_keys, intra)
    flats = [quant.flat_steps(p, layout.grids[p]) for p in range(3)]
    decoded = intra_planes(layout, quant, vectors, levels, tx4)
    planes = []
    for p in range(3):
        motion = np.zeros(layout.grids[p], dtype=np.int64)
        if p == 0:
            plane = deblock_luma(layout, decoded[0], levels[0], tx4, motion, flats[0], True)
        else:
            coded: Bools = np.ones(layout.grids[p], dtype=np.bool_)
            plane = deblock(decoded[p], layout.sizes[p], coded, motion, flats[p])
        planes.append(plane.astype(np.uint8))
    return planes[0], planes[1], planes[2]


def deblock_luma(
    layout: Layout,
    plane: I64,
    levels: I64,
    tx4: Bools,
    motion: I64,
    step: int | I64,
    intra: bool = False,
) -> I64:
    """`deblock` of the luma plane, whose coded blocks set in `tx4` are four 4x4 transforms:
    their inner edges are deblocked too, each 4x4 transform counting as coded when its own
    levels are not all zero, or always in an `intra` frame (`motion`: per luma transform
    block, a key of its motion). A block without levels is one transform, whatever `tx4`
    says: the decoder reads no flag for it."""
    has_levels = np.count_nonzero(levels, axis=1) > 0
    tx4 = tx4 & has_levels
    coded: Bools = (has_levels | intra).reshape(layout.grids[0])
    if not tx4.any():
        return deblock(plane, LUMA_T, coded, motion, step)
    per = LUMA_T // SMALL_T
    split = per * per
    rows, cols = layout.grids[0]
    own = np.stack(
        [np.count_nonzero(levels[:, k::split], axis=1) > 0 for k in range(split)], axis=1
    )
    own |= intra
    sub_coded = np.where(tx4[:, None], own, coded.reshape(-1, 1))
    blocks = np.arange(levels.shape[0], dtype=np.int64)[:, None] * split
    sub_owner = blocks + np.where(tx4[:, None], np.arange(split, dtype=np.int64), 0)

    def fine(values: I64) -> I64:
        grid: I64 = values.reshape(rows, cols, per, per).transpose(0, 2, 1, 3)
        return grid.reshape(rows * per, cols * per)

    fine_motion = np.repeat(np.repeat(motion, per, axis=0), per, axis=1)
    fine_coded: Bools = fine(sub_coded.astype(np.int64)) > 0
    if not isinstance(step, int):
        step = np.repeat(np.repeat(step, per, axis=0), per, axis=1)
    return deblock(plane, SMALL_T, fine_coded, fine_motion, step, fine(sub_owner))


def partition_keys(layout: Layout, modes: I64, vectors: I64, deltas: I64) -> I64:
    """`motion_keys` of the 8x8 partitions, per luma transform block (raster order)."""
    field = partition_field(layout, vectors[:, None, :] + deltas)
    owners = partition_field(layout, np.repeat(modes[:, None, None], 4, axis=1))[:, 0]
    grid = motion_keys(layout, owners, field).reshape(2 * layout.mby, 2 * layout.mbx)
    rows, cols = layout.grids[0]
    half = MACROBLOCK // 2
    found: I64 = grid[
        (np.arange(rows) * LUMA_T // half)[:, None], (np.arange(cols) * LUMA_T // half)[None, :]
    ].ravel()
    return found


def inter_planes(
    layout: Layout,
    quant: Quantiser,
    predictions: list[I64],
    keys: I64,
    levels: list[I64],
    tx4: Bools,
    luma_keys: I64 | None = None,
    intra: I64 | None = None,
) -> Planes:
    """Predictions plus dequantised residual (luma blocks set in `tx4` by 4x4 transforms),
    then the loop filter (`keys`: per macroblock, an integer telling apart different motion;
    `luma_keys`: the same per luma transform block, where partitions move differently within a
    macroblock). Where `intra` (per macroblock, -1 or an `intra_predict` mode) has a mode, the
    macroblock is predicted by it, in raster order, from the pixels decoded so far."""
    flats = [quant.flat_steps(p, layout.grids[p]) for p in range(3)]
    residuals = residual_planes(levels, quant, tx4)
    intra_mbs = (
        [] if intra is None else [(int(mb), int(intra[mb])) for mb in np.flatnonzero(intra >= 0)]
    )
    order = mb_block_order(layout) if intra_mbs else []
    planes = []
    for p in range(3):
        (h, w), n = layout.padded[p], layout.sizes[p]
        block_keys = luma_keys if p == 0 and luma_keys is not None else keys[layout.mb_of[p]]
        motion = block_keys.reshape(layout.grids[p])
        residual = residuals[p]
        blocks = to_blocks(predictions[p], n) + residual
        plane = np.clip(from_blocks(blocks, n, h, w), 0, 255)
        size = MACROBLOCK if p == 0 else MACROBLOCK // 2
        for mb, mode in intra_mbs:
            y0, x0 = (mb // layout.mbx) * size, (mb % layout.mbx) * size
            prediction = intra_predict(plane, y0, x0, size, mode)
            intra_block(plane, y0, x0, size, prediction, residual[order[p][mb]], n)
        if p == 0:
            plane = deblock_luma(layout, plane, levels[0], tx4, motion, flats[0])
        else:
            coded: Bools = (np.count_nonzero(levels[p], axis=1) > 0).reshape(layout.grids[p])
            plane = deblock(plane, n, coded, motion, flats[p])
        planes.append(plane.astype(np.uint8))
    return planes[0], planes[1], planes[2]


def pack_sections(
    layout: Layout, modes: I64 | None, vectors: I64, levels: list[I64]
) -> list[bytes]:
    """The packet's sections. I-frames: DC levels as differences along each plane's raster
    order. P-frames: a mode byte per macroblock, vector differences of the non-skipped
    macroblocks (raster order), and only their blocks' levels."""
    parts: list[bytes] = []
    if modes is None:
        intra_modes = vectors[:, 0].astype(np.uint8).tobytes() if INTRA_PRED else b""
        parts += [intra_modes, b"", b""]
        coded_levels = []
        for plane_levels in levels:
            differences = plane_levels.copy()
            if not INTRA_PRED:
                differences[:, 0] = np.diff(plane_levels[:, 0], prepend=0)
            coded_levels.append(differences)
    else:
        moving = modes != 0
        deltas = np.diff(vectors[moving], axis=0, prepend=np.zeros((1, 2), np.int64))
        parts.append(modes.astype(np.uint8).tobytes())
        parts += list(small_ints(deltas.ravel()))
        coded_levels = [lv[moving[mb]] for lv, mb in zip(levels, layout.mb_of, strict=True)]
    luma = run_length(coded_levels[0])
    chroma = run_length(np.concatenate((coded_levels[1], coded_levels[2])))
    return parts + list(luma) + list(chroma)


def parse_sections(
    layout: Layout, sections: list[bytes], intra: bool, nrefs: int, what: str
) -> tuple[I64 | None, I64, list[I64]]:
    """Inverse of `pack_sections`: (modes, vectors, levels per plane)."""
    n = layout.nmb
    vectors = np.zeros((n, 2), dtype=np.int64)
    if intra:
        modes = None
        counts = layout.nblocks
        if INTRA_PRED:
            intra_modes = np.frombuffer(sections[0], np.uint8).astype(np.int64)
            if intra_modes.size != n or int(intra_modes.max(initial=0)) > 3:
                raise ValueError(f"{what}: {intra_modes.size} intra modes for {n} macroblocks")
            vectors[:, 0] = intra_modes
    else:
        modes = np.frombuffer(sections[0], np.uint8).astype(np.int64)
        if modes.size != n or int(modes.max(initial=0)) > nrefs:
            raise ValueError(
                f"{what}: {modes.size} modes for {n} macroblocks, or a mode "
                f"naming a reference beyond the {nrefs} decoded"
            )
        moving = modes != 0
        deltas = parse_small_ints(sections[1], sections[2], what)
        if deltas.size != 2 * int(moving.sum()):
            raise ValueError(
                f"{what}: {deltas.size // 2} vectors for {int(moving.sum())} macroblocks"
            )
        vectors[moving] = np.cumsum(deltas.reshape(-1, 2), axis=0)
        if SKIP_MEDIAN:
            field = vectors.tolist()
            for index in np.flatnonzero(~moving).tolist():
                field[index] = skip_vector(field, index, layout.mbx)
            vectors = np.array(field, dtype=np.int64).reshape(-1, 2)
        if int(np.abs(vectors).max(initial=0)) > MAX_VECTOR:
            raise ValueError(f"{what}: a motion vector exceeds +-{MAX_VECTOR}")
        counts = tuple(int(moving[mb].sum()) for mb in layout.mb_of)
    runs, codes, escapes = sections[3:6]
    luma = parse_run_length(runs, codes, escapes, counts[0], LUMA_T * LUMA_T, what)
    runs, codes, escapes = sections[6:9]
    chroma_count = counts[1] + counts[2]
    chroma = parse_run_length(runs, codes, escapes, chroma_count, CHROMA_T * CHROMA_T, what)
    parsed = [luma, chroma[: counts[1]], chroma[counts[1] :]]
    if modes is None:
        if not INTRA_PRED:
            for plane_levels in parsed:
                plane_levels[:, 0] = np.cumsum(plane_levels[:, 0])
        return None, vectors, parsed
    levels = []
    for plane_levels, mb, total in zip(parsed, layout.mb_of, layout.nblocks, strict=True):
        full = np.zeros((total, plane_levels.shape[1]), dtype=np.int64)
        full[modes[mb] != 0] = plane_levels
        levels.append(full)
    return modes, vectors, levels


def push_reference(refs: list[Planes], frame: Planes) -> list[Planes]:
    """The references after decoding `frame`: most recent first, at most NUM_REFS (at least
    two with B-frames, which predict from the two latest)."""
    return [frame, *refs][: max(NUM_REFS, 2 if BFRAMES else 1)]
