"""Frame geometry, reconstruction and packet sections of generated codecs.

`reconstruct` is the decoder: the encoder calls it on its own decisions, so its reference
frames are the decoder's output by construction.
"""

import numpy as np

from codeclab.designers.offline.fragments.config import (
    BFRAMES,
    CHROMA_T,
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
    INVERSE_C,
    INVERSE_Y,
    Quantiser,
    dequantise,
    from_blocks,
    parse_run_length,
    parse_small_ints,
    quantise,
    run_length,
    small_ints,
    to_blocks,
)
from codeclab.designers.offline.fragments.types import F64, I64, Bools, Planes

TAG_INTRA = 0x49
TAG_PREDICTED = 0x50
SECTIONS = 9  # modes, vector codes, vector escapes, then runs/codes/escapes of luma and chroma
MAX_VECTOR = (SEARCH_RANGE + 1) * SUBPEL
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
    ref_index = np.maximum(modes - 1, 0)
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


def intra_block(
    recon: I64, y0: int, x0: int, size: int, prediction: I64, residual: F64, n: int
) -> None:
    """Write prediction + residual blocks (raster within the macroblock) into `recon`."""
    blocks = to_blocks(prediction, n) + residual
    recon[y0 : y0 + size, x0 : x0 + size] = np.clip(from_blocks(blocks, n, size, size), 0, 255)


def mb_block_order(layout: Layout) -> list[I64]:
    """Per plane, (macroblocks, blocks per macroblock) transform-block indices."""
    return [np.argsort(mb, kind="stable").reshape(layout.nmb, -1) for mb in layout.mb_of]


def intra_levels_flat(layout: Layout, cur: Planes, quant: Quantiser) -> tuple[list[I64], I64]:
    """An I-frame's levels against a flat 128 (no modes: the vectors stay zero)."""
    forwards = (FORWARD_Y, FORWARD_C, FORWARD_C)
    steps = (quant.steps_y, quant.steps_c, quant.steps_c)
    levels = [
        quantise(to_blocks(cur[p] - np.int64(128), n), forwards[p], steps[p], INTRA_ROUNDING)
        for p, n in enumerate(layout.sizes)
    ]
    return levels, np.zeros((layout.nmb, 2), dtype=np.int64)


def intra_levels_modes(layout: Layout, cur: Planes, quant: Quantiser) -> tuple[list[I64], I64]:
    """An I-frame coded macroblock by macroblock in raster order, each predicted from its
    reconstructed neighbours with the `intra_predict` mode of least SAD (luma and chroma);
    returns the levels and the modes (in column 0 of the vectors)."""
    forwards = (FORWARD_Y, FORWARD_C, FORWARD_C)
    inverses = (INVERSE_Y, INVERSE_C, INVERSE_C)
    steps = (quant.steps_y, quant.steps_c, quant.steps_c)
    recon = [np.zeros(shape, dtype=np.int64) for shape in layout.padded]
    levels = [
        np.zeros((total, n * n), dtype=np.int64)
        for total, n in zip(layout.nblocks, layout.sizes, strict=True)
    ]
    order = mb_block_order(layout)
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
            found = quantise(to_blocks(residual, n), forwards[p], steps[p], INTRA_ROUNDING)
            levels[p][order[p][mb]] = found
            decoded = dequantise(found, steps[p], inverses[p])
            intra_block(recon[p], y0, x0, size, best_predictions[p], decoded, n)
    return levels, vectors


intra_coding = intra_levels_flat


def intra_planes_flat(
    layout: Layout, quant: Quantiser, vectors: I64, levels: list[I64]
) -> list[I64]:
    """An I-frame's planes before the loop filter: 128 plus the residual."""
    steps = (quant.steps_y, quant.steps_c, quant.steps_c)
    inverses = (INVERSE_Y, INVERSE_C, INVERSE_C)
    planes = []
    for p in range(3):
        (h, w), n = layout.padded[p], layout.sizes[p]
        blocks = dequantise(levels[p], steps[p], inverses[p]) + 128
        planes.append(np.clip(from_blocks(blocks, n, h, w), 0, 255))
    return planes


def intra_planes_modes(
    layout: Layout, quant: Quantiser, vectors: I64, levels: list[I64]
) -> list[I64]:
    """Inverse of `intra_levels_modes`: planes before the loop filter, macroblock by macroblock."""
    steps = (quant.steps_y, quant.steps_c, quant.steps_c)
    inverses = (INVERSE_Y, INVERSE_C, INVERSE_C)
    recon = [np.zeros(shape, dtype=np.int64) for shape in layout.padded]
    order = mb_block_order(layout)
    residuals = [dequantise(levels[p], steps[p], inverses[p]) for p in range(3)]
    for mb in range(layout.nmb):
        r, c = divmod(mb, layout.mbx)
        mode = int(vectors[mb, 0])
        for p in range(3):
            size, n = (MACROBLOCK if p == 0 else MACROBLOCK // 2), layout.sizes[p]
            y0, x0 = r * size, c * size
            prediction = intra_predict(recon[p], y0, x0, size, mode)
            intra_block(recon[p], y0, x0, size, prediction, residuals[p][order[p][mb]], n)
    return recon


intra_planes = intra_planes_flat


def reconstruct(
    layout: Layout,
    refs: list[Planes],
    quant: Quantiser,
    modes: I64 | None,
    vectors: I64,
    levels: list[I64],
    deltas: I64 | None = None,
) -> Planes:
    """Decode one frame from its decisions: prediction (intra for I-frames; the macroblocks'
    references moved by their vectors, and their partitions' `deltas`, otherwise), plus
    dequantised residual, then the loop filter. `modes` is None for an I-frame, else per
    macroblock 0 (skip) or 1 + reference."""
    if modes is not None:
        predictions = predict_frame(layout, refs, modes, vectors, deltas)
        keys = motion_keys(layout, modes, vectors)
        luma_keys = None
        if deltas is not None and deltas.any():
            keys = keys * 65521 + (deltas.reshape(layout.nmb, 8) * SPLIT_HASH).sum(axis=1)
            if LUMA_T < MACROBLOCK:
                luma_keys = partition_keys(layout, modes, vectors, deltas)
        return inter_planes(layout, quant, predictions, keys, levels, luma_keys)
    flats = (quant.flat_y, quant.flat_c, quant.flat_c)
    decoded = intra_planes(layout, quant, vectors, levels)
    planes = []
    for p in range(3):
        coded: Bools = np.ones(layout.grids[p], dtype=np.bool_)
        motion = np.zeros(layout.grids[p], dtype=np.int64)
        plane = deblock(decoded[p], layout.sizes[p], coded, motion, flats[p])
        planes.append(plane.astype(np.uint8))
    return planes[0], planes[1], planes[2]


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
    luma_keys: I64 | None = None,
) -> Planes:
    """Predictions plus dequantised residual, then the loop filter (`keys`: per macroblock, an
    integer telling apart different motion; `luma_keys`: the same per luma transform block,
    where partitions move differently within a macroblock)."""
    steps = (quant.steps_y, quant.steps_c, quant.steps_c)
    inverses = (INVERSE_Y, INVERSE_C, INVERSE_C)
    flats = (quant.flat_y, quant.flat_c, quant.flat_c)
    planes = []
    for p in range(3):
        (h, w), n = layout.padded[p], layout.sizes[p]
        coded: Bools = (np.count_nonzero(levels[p], axis=1) > 0).reshape(layout.grids[p])
        block_keys = luma_keys if p == 0 and luma_keys is not None else keys[layout.mb_of[p]]
        motion = block_keys.reshape(layout.grids[p])
        blocks = to_blocks(predictions[p], n) + dequantise(levels[p], steps[p], inverses[p])
        plane = np.clip(from_blocks(blocks, n, h, w), 0, 255)
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
