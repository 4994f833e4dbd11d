"""Mode decisions and the Encoder/Decoder classes of generated codecs."""

import struct

import numpy as np

from codeclab.designers.offline.fragments.cabac import (
    level_prices,
    parse_b,
    payload_b,
    payload_models,
    read_payload,
    settled_offsets,
    write_payload,
)
from codeclab.designers.offline.fragments.config import (
    B_QP_OFFSET,
    BFRAMES,
    DOWNSCALE_BELOW,
    INTER_ROUNDING,
    INTRA_PERIOD,
    MACROBLOCK,
    MBTREE,
    ME_LAMBDA,
    NUM_REFS,
    P_QP_OFFSET,
    RD_LAMBDA,
    RDOQ_LAMBDA,
    SKIP_MEDIAN,
    SUBPEL,
)
from codeclab.designers.offline.fragments.entropy import read_lengths, write_lengths
from codeclab.designers.offline.fragments.frame import (
    INTRA_MB,
    SECTIONS,
    TAG_INTRA,
    TAG_PREDICTED,
    Layout,
    frame_quantiser,
    inter_planes,
    intra_coding,
    intra_predict,
    is_intra,
    mb_block_order,
    motion_keys,
    predict_frame,
    push_reference,
    reconstruct,
)
from codeclab.designers.offline.fragments.lookahead import LOOKAHEAD, Lookahead
from codeclab.designers.offline.fragments.motion import (
    SPLIT_BITS,
    estimate,
    median_predictors,
    partition_search,
    skip_vector,
    skip_vectors,
    vector_bits,
)
from codeclab.designers.offline.fragments.transform import (
    FORWARD_C,
    INVERSE_C,
    Quantiser,
    decision_lambda,
    dequantise,
    from_blocks,
    level_bits,
    luma_bits,
    luma_levels,
    luma_residual,
    quantise_levels,
    residual_planes,
    to_blocks,
)
from codeclab.designers.offline.fragments.types import F64, I64, U8, Bools, Planes


def macroblock_sums(values: F64, mb_of: I64, count: int) -> F64:
    """Per-macroblock sums of per-block `values`."""
    sums: F64 = np.bincount(mb_of, weights=values, minlength=count).astype(np.float64)
    return sums


def decide_threshold(
    layout: Layout,
    cur: Planes,
    prediction: list[I64],
    skipped: list[I64],
    vectors: I64,
    skips: I64,
    ref_index: I64,
    levels: list[I64],
    tx4: Bools,
    quant: Quantiser,
) -> tuple[I64, list[I64]]:
    """Modes without RD: a macroblock is skipped when its vector is the skip vector on the
    most recent reference and its residual quantises to nothing."""
    coded = (vectors != skips).any(axis=1) | (ref_index != 0)
    for plane_levels, mb in zip(levels, layout.mb_of, strict=True):
        nonzero = (np.count_nonzero(plane_levels, axis=1) > 0).astype(np.float64)
        coded |= macroblock_sums(nonzero, mb, layout.nmb) > 0
    modes: I64 = np.where(coded, ref_index + 1, 0)
    return modes, levels


def residual_costs(
    layout: Layout,
    cur: Planes,
    prediction: list[I64],
    levels: list[I64],
    tx4: Bools,
    quant: Quantiser,
    lam: float,
) -> tuple[list[I64], F64]:
    """(levels with the blocks that do not pay for themselves zeroed, per macroblock the
    Lagrangian cost SSD + lam * bits of its residual so coded); bits estimated from the
    levels, lambda scaled to each macroblock's quantiser."""
    residuals = residual_planes(levels, quant, tx4)
    total = np.zeros(layout.nmb, dtype=np.float64)
    kept = []
    for p in range(3):
        n = layout.sizes[p]
        source = to_blocks(cur[p].astype(np.int64), n)
        predicted = to_blocks(prediction[p], n)
        decoded = np.clip(predicted + residuals[p], 0, 255)
        ssd_coded = ((source - decoded) ** 2).sum(axis=1)
        ssd_zero = ((source - predicted) ** 2).sum(axis=1)
        magnitude = np.abs(levels[p])
        bits = ((magnitude > 0) * (2 + 2 * np.log2(1 + magnitude))).sum(axis=1)
        bits *= quant.lambda_scale(layout.mb_of[p])
        drop = ssd_zero <= ssd_coded + lam * bits
        plane_levels = levels[p].copy()
        plane_levels[drop] = 0
        kept.append(plane_levels)
        cost = np.where(drop, ssd_zero, ssd_coded + lam * bits)
        total += macroblock_sums(cost, layout.mb_of[p], layout.nmb)
    return kept, total


def decide_rd(
    layout: Layout,
    cur: Planes,
    prediction: list[I64],
    skipped: list[I64],
    vectors: I64,
    skips: I64,
    ref_index: I64,
    levels: list[I64],
    tx4: Bools,
    quant: Quantiser,
) -> tuple[I64, list[I64]]:
    """Modes and block zeroing by Lagrangian cost SSD + lambda * bits (lambda = RD_LAMBDA *
    step^2; bits estimated from the levels and vectors): a block keeps its levels only when
    they pay for themselves, a macroblock is skipped when its skip prediction (`skipped`: the
    most recent reference moved by the skip vectors `skips`) costs less than coding it."""
    lam = RD_LAMBDA * quant.flat_y * quant.flat_y
    kept, coded_cost = residual_costs(layout, cur, prediction, levels, tx4, quant, lam)
    skip_cost = np.zeros(layout.nmb, dtype=np.float64)
    for p in range(3):
        size = MACROBLOCK if p == 0 else MACROBLOCK // 2
        still = (cur[p].astype(np.int64) - skipped[p]) ** 2
        rows, cols = still.shape[0] // size, still.shape[1] // size
        skip_cost += still.reshape(rows, size, cols, size).sum(axis=(1, 3)).ravel()
    median = median_predictors(vectors, layout.mby, layout.mbx)
    lams = lam * quant.lambda_scale(np.arange(layout.nmb))
    coded_cost += lams * (1 + vector_bits(vectors - median))
    skip = skip_cost + lams <= coded_cost
    modes: I64 = np.where(skip, 0, ref_index + 1)
    for plane_levels, mb in zip(kept, layout.mb_of, strict=True):
        plane_levels[skip[mb]] = 0
    return modes, kept


decide_modes = decide_threshold


def code_inter(
    layout: Layout, refs: list[Planes], cur: Planes, hint: I64, quant: Quantiser, temporal: I64
) -> tuple[I64, I64, list[I64], Bools, I64, I64]:
    """A P-frame's decisions: (modes, vectors, levels per plane, luma blocks coded as 4x4
    transforms, next search hint, partition differences); `temporal`: the previous anchor's
    vectors (the AMVP candidate)."""
    luma_refs = [ref[0] for ref in refs]
    vectors, ref_index, hint = estimate(cur[0], luma_refs, hint, quant.flat_y, temporal)
    prediction = predict_frame(layout, refs, ref_index + 1, vectors)
    levels, tx4 = residual_levels(layout, cur, prediction, quant)
    deltas = partition_search(cur[0], luma_refs, vectors, ref_index, quant.flat_y)
    if deltas.any():
        prediction, levels, tx4, deltas = choose_partitions(
            layout, refs, cur, quant, ref_index, vectors, deltas, prediction, levels, tx4
        )
    skips = skip_vectors(vectors, layout.mby, layout.mbx)
    for _ in range(3):
        if skips.any():
            skipped = predict_frame(layout, refs, np.ones(layout.nmb, dtype=np.int64), skips)
        else:
            skipped = [plane.astype(np.int64) for plane in refs[0]]
        modes, kept = decide_modes(
            layout, cur, prediction, skipped, vectors, skips, ref_index, levels, tx4, quant
        )
        if not SKIP_MEDIAN:
            break
        field = vectors.copy()
        field[modes == 0] = skips[modes == 0]
        settled = skip_vectors(field, layout.mby, layout.mbx)
        if np.array_equal(settled, skips):
            break
        skips = settled
    modes, vectors, kept, tx4, deltas = intra_macroblocks(
        layout, cur, quant, modes, vectors, kept, tx4, prediction, deltas
    )
    decided = modes
    modes, vectors = settle_skips(layout, modes, vectors, ref_index, skips)
    revived = (decided == 0) & (modes != 0)
    if revived.any():
        for plane_kept, plane_levels, mb in zip(kept, levels, layout.mb_of, strict=True):
            plane_kept[revived[mb]] = plane_levels[revived[mb]]
    deltas[modes == 0] = 0
    return modes, vectors, kept, tx4, hint, deltas


def intra_none(
    layout: Layout,
    cur: Planes,
    quant: Quantiser,
    modes: I64,
    vectors: I64,
    levels: list[I64],
    tx4: Bools,
    prediction: list[I64],
    deltas: I64,
) -> tuple[I64, I64, list[I64], Bools, I64]:
    """P-frames have no intra macroblocks: the decisions as they are."""
    return modes, vectors, levels, tx4, deltas


def intra_mbs(
    layout: Layout,
    cur: Planes,
    quant: Quantiser,
    modes: I64,
    vectors: I64,
    levels: list[I64],
    tx4: Bools,
    prediction: list[I64],
    deltas: I64,
) -> tuple[I64, I64, list[I64], Bools, I64]:
    """Macroblocks of a P-frame turned intra where that costs less: in raster order, each
    macroblock whose best `intra_predict` mode (from the pixels reconstructed so far: the
    inter decisions' prediction plus residual, and the intra macroblocks before it) has less
    luma SAD than its motion-compensated prediction is coded both ways, and kept intra when
    its SSD + lambda * bits is lower (`decision_lambda`)."""
    order = mb_block_order(layout)
    source = [plane.astype(np.int64) for plane in cur]
    recon = []
    residuals = residual_planes(levels, quant, tx4)
    for p in range(3):
        (h, w), n = layout.padded[p], layout.sizes[p]
        blocks = to_blocks(prediction[p], n) + residuals[p]
        recon.append(np.clip(from_blocks(blocks, n, h, w), 0, 255))
    modes, vectors, deltas, tx4 = modes.copy(), vectors.copy(), deltas.copy(), tx4.copy()
    levels = [plane_levels.copy() for plane_levels in levels]
    median = median_predictors(vectors, layout.mby, layout.mbx)
    motion_bits = np.where(modes != 0, 1 + vector_bits(vectors - median), 1.0)
    for mb in range(layout.nmb):
        r, c = divmod(mb, layout.mbx)
        y0, x0 = r * MACROBLOCK, c * MACROBLOCK
        target = source[0][y0 : y0 + MACROBLOCK, x0 : x0 + MACROBLOCK]
        inter_sad = int(
            np.abs(target - prediction[0][y0 : y0 + MACROBLOCK, x0 : x0 + MACROBLOCK]).sum()
        )
        options = [0] + ([1] if r else []) + ([2] if c else []) + ([3] if r and c else [])
        sads = [
            int(np.abs(target - intra_predict(recon[0], y0, x0, MACROBLOCK, mode)).sum())
            for mode in options
        ]
        if min(sads) >= inter_sad:
            continue
        mode = options[int(np.argmin(sads))]
        mb_quant = quant.at(mb)
        lam = decision_lambda(mb_quant)
        inter_cost, intra_cost = lam * motion_bits[mb], lam * 4.0
        coded, decoded = [], []
        small = tx4[order[0][mb]]
        for p in range(3):
            size, n = (MACROBLOCK if p == 0 else MACROBLOCK // 2), layout.sizes[p]
            ys, xs = (r * size, c * size)
            area = (slice(ys, ys + size), slice(xs, xs + size))
            blocks = order[p][mb]
            inter_cost += float(((source[p][area] - recon[p][area]) ** 2).sum())
            if p == 0:
                inter_cost += lam * float(luma_bits(levels[0][blocks], mb_quant, tx4[blocks]).sum())
            else:
                inter_cost += lam * float(level_bits(levels[p][blocks], mb_quant.prices[p]).sum())
            predicted = intra_predict(recon[p], ys, xs, size, mode)
            residual = to_blocks(source[p][area] - predicted, n)
            if p == 0:
                found, small = luma_levels(residual, mb_quant, INTER_ROUNDING, lam)
                dequantised = luma_residual(found, mb_quant, small)
                rate = luma_bits(found, mb_quant, small)
            else:
                found = quantise_levels(
                    residual, FORWARD_C, mb_quant.steps_c, INTER_ROUNDING, mb_quant.prices[p]
                )
                dequantised = dequantise(found, mb_quant.steps_c, INVERSE_C)
                rate = level_bits(found, mb_quant.prices[p])
            pixels = to_blocks(predicted, n) + dequantised
            pixels = np.clip(from_blocks(pixels, n, size, size), 0, 255)
            intra_cost += float(((source[p][area] - pixels) ** 2).sum())
            intra_cost += lam * float(rate.sum())
            coded.append(found)
            decoded.append(pixels)
        if intra_cost >= inter_cost:
            continue
        modes[mb], vectors[mb], deltas[mb] = INTRA_MB + mode, 0, 0
        tx4[order[0][mb]] = small
        for p in range(3):
            size = MACROBLOCK if p == 0 else MACROBLOCK // 2
            levels[p][order[p][mb]] = coded[p]
            recon[p][r * size : r * size + size, c * size : c * size + size] = decoded[p]
    return modes, vectors, levels, tx4, deltas


intra_macroblocks = intra_none


def residual_levels(
    layout: Layout, cur: Planes, prediction: list[I64], quant: Quantiser
) -> tuple[list[I64], Bools]:
    """The quantised levels of the residual of each plane against `prediction`, each
    macroblock's by its own quantiser (`Quantiser.groups`), and the luma blocks coded as 4x4
    transforms (`luma_levels`)."""
    levels = []
    tx4 = np.zeros(layout.nblocks[0], dtype=np.bool_)
    for p in range(3):
        blocks = to_blocks(cur[p] - prediction[p], layout.sizes[p])
        plane_levels = np.empty(blocks.shape, dtype=np.int64)
        for found, rows in quant.groups(p):
            chosen = slice(None) if rows is None else rows
            if p == 0:
                lam = decision_lambda(found)
                plane_levels[chosen], tx4[chosen] = luma_levels(
                    blocks[chosen], found, INTER_ROUNDING, lam
                )
            else:
                plane_levels[chosen] = quantise_levels(
                    blocks[chosen], FORWARD_C, found.steps_c, INTER_ROUNDING, found.prices[p]
                )
        levels.append(plane_levels)
    return levels, tx4


def choose_partitions(
    layout: Layout,
    refs: list[Planes],
    cur: Planes,
    quant: Quantiser,
    ref_index: I64,
    vectors: I64,
    deltas: I64,
    prediction: list[I64],
    levels: list[I64],
    tx4: Bools,
) -> tuple[list[I64], list[I64], Bools, I64]:
    """Keep the 8x8 partitions (`deltas`) of the macroblocks where they lower the Lagrangian
    cost of the coded residual plus SPLIT_BITS and the bits of the differences
    (`decision_lambda`); returns (prediction, levels, tx4, deltas)."""
    lam = decision_lambda(quant)
    split = predict_frame(layout, refs, ref_index + 1, vectors, deltas)
    split_levels, split_tx4 = residual_levels(layout, cur, split, quant)
    _, whole_cost = residual_costs(layout, cur, prediction, levels, tx4, quant, lam)
    _, split_cost = residual_costs(layout, cur, split, split_levels, split_tx4, quant, lam)
    split_bits = SPLIT_BITS + vector_bits(deltas.reshape(-1, 2)).reshape(-1, 4).sum(1)
    split_cost += lam * quant.lambda_scale(np.arange(layout.nmb)) * split_bits
    chosen = split_cost < whole_cost
    deltas = np.where(chosen[:, None, None], deltas, 0)
    grid = chosen.reshape(layout.mby, layout.mbx)
    mixed = []
    for p in range(3):
        size = MACROBLOCK if p == 0 else MACROBLOCK // 2
        full = np.repeat(np.repeat(grid, size, axis=0), size, axis=1)
        mixed.append(np.where(full, split[p], prediction[p]))
    mixed_levels = [
        np.where(chosen[mb][:, None], ours, theirs)
        for ours, theirs, mb in zip(split_levels, levels, layout.mb_of, strict=True)
    ]
    mixed_tx4 = np.where(chosen[layout.mb_of[0]], split_tx4, tx4)
    return mixed, mixed_levels, mixed_tx4, deltas


def settle_skips(
    layout: Layout, modes: I64, vectors: I64, ref_index: I64, skips: I64
) -> tuple[I64, I64]:
    """Final modes and vectors: skipped macroblocks take the skip vector the decoder derives
    (the median of their final neighbours, in raster order); one whose estimated skip vector
    `skips` turns out different is coded with its own vector and residual instead."""
    if not SKIP_MEDIAN:
        final = vectors.copy()
        final[modes == 0] = 0
        return modes, final
    modes = modes.copy()
    field = vectors.tolist()
    estimated = skips.tolist()
    for mb in range(layout.nmb):
        if modes[mb]:
            continue
        predicted = skip_vector(field, mb, layout.mbx)
        if predicted == estimated[mb]:
            field[mb] = predicted
        else:
            modes[mb] = ref_index[mb] + 1
    return modes, np.array(field, dtype=np.int64).reshape(-1, 2)


def no_inter(
    layout: Layout, refs: list[Planes], cur: Planes, hint: I64, quant: Quantiser, temporal: I64
) -> tuple[I64, I64, list[I64], Bools, I64, I64]:
    """An all-intra codec codes no P-frame."""
    raise ValueError("an all-intra codec codes no P-frame")


inter_coding = code_inter


TAG_B = 0x42


def select_planes(layout: Layout, choice: I64, options: list[list[I64]]) -> list[I64]:
    """Per plane, each macroblock's pixels from option `choice - 1` (choice per macroblock)."""
    grid = choice.reshape(layout.mby, layout.mbx) - 1
    planes = []
    for p in range(3):
        size = MACROBLOCK if p == 0 else MACROBLOCK // 2
        full = np.repeat(np.repeat(grid, size, axis=0), size, axis=1)
        planes.append(np.choose(full, [option[p] for option in options]))
    return planes


def b_options(layout: Layout, refs: list[Planes], forward: I64, backward: I64) -> list[list[I64]]:
    """A B-frame's three predictions: from the older reference (refs[1]) moved by `forward`,
    from the newer (refs[0]) moved by `backward`, and their rounded mean."""
    ones = np.ones(layout.nmb, dtype=np.int64)
    past = predict_frame(layout, [refs[1]], ones, forward)
    future = predict_frame(layout, [refs[0]], ones, backward)
    both = [(a + b + 1) >> 1 for a, b in zip(past, future, strict=True)]
    return [past, future, both]


def anchor_references(layout: Layout, modes: I64 | None) -> I64:
    """Each macroblock's reference index in an anchor frame (0 throughout an I-frame)."""
    if modes is None:
        return np.zeros(layout.nmb, dtype=np.int64)
    found: I64 = np.where(modes >= INTRA_MB, 0, np.maximum(modes - 1, 0))
    return found


def direct_zero(
    layout: Layout, anchor_vectors: I64, anchor_refs: I64, position: int, span: int
) -> tuple[I64, I64]:
    """Skipped B-frame macroblocks predict from the co-located pixels of both references."""
    zeros = np.zeros((layout.nmb, 2), dtype=np.int64)
    return zeros, zeros


def direct_temporal(
    layout: Layout, anchor_vectors: I64, anchor_refs: I64, position: int, span: int
) -> tuple[I64, I64]:
    """H.264's temporal direct vectors of the B-frame `position` frames after the older anchor
    (`span`: frames between the anchors): the newer anchor's vector of the same macroblock,
    which spans `span * (1 + reference)` frames, split by linear motion into a forward part
    (towards the older anchor) and a backward part (towards the newer)."""
    distance = (span * (anchor_refs + 1))[:, None]
    forward = np.floor_divide(2 * anchor_vectors * position + distance, 2 * distance)
    backward = -np.floor_divide(2 * anchor_vectors * (span - position) + distance, 2 * distance)
    return forward.astype(np.int64), backward.astype(np.int64)


direct_vectors = direct_zero


def b_direction_sad(
    layout: Layout, cur: Planes, options: list[list[I64]], bits: list[F64], quant: Quantiser
) -> tuple[I64, list[I64], list[I64], Bools]:
    """Each macroblock's direction (1-based index into `options`, each with its vector `bits`)
    by least luma SAD + lambda * bits, the prediction so chosen, and the levels and 4x4 flags
    of its residual."""
    lam = ME_LAMBDA * quant.flat_y
    source = cur[0].astype(np.int64)
    costs = []
    for option, option_bits in zip(options, bits, strict=True):
        diff = np.abs(source - option[0]).reshape(layout.mby, MACROBLOCK, layout.mbx, MACROBLOCK)
        costs.append(diff.sum(axis=(1, 3)).ravel() + lam * option_bits)
    choice = np.argmin(np.stack(costs), axis=0).astype(np.int64) + 1
    prediction = select_planes(layout, choice, options)
    levels, tx4 = residual_levels(layout, cur, prediction, quant)
    return choice, prediction, levels, tx4


def b_direction_rd(
    layout: Layout, cur: Planes, options: list[list[I64]], bits: list[F64], quant: Quantiser
) -> tuple[I64, list[I64], list[I64], Bools]:
    """As `b_direction_sad`, by least Lagrangian cost: the residual against each option is
    quantised, and each macroblock takes the option of least SSD + lambda * bits of its coded
    residual (`residual_costs`) and vectors, lambda as `decide_rd`'s."""
    lam = RD_LAMBDA * quant.flat_y * quant.flat_y
    lams = lam * quant.lambda_scale(np.arange(layout.nmb))
    costs = []
    coded = []
    for option, option_bits in zip(options, bits, strict=True):
        levels, tx4 = residual_levels(layout, cur, option, quant)
        _, cost = residual_costs(layout, cur, option, levels, tx4, quant, lam)
        costs.append(cost + lams * option_bits)
        coded.append((levels, tx4))
    choice = np.argmin(np.stack(costs), axis=0).astype(np.int64) + 1
    chosen = [choice[mb] - 1 for mb in layout.mb_of]
    levels = [np.choose(chosen[p][:, None], [found[0][p] for found in coded]) for p in range(3)]
    tx4 = np.choose(chosen[0], [found[1] for found in coded]).astype(np.bool_)
    return choice, select_planes(layout, choice, options), levels, tx4


b_direction = b_direction_sad


def code_b(
    layout: Layout, refs: list[Planes], cur: Planes, quant: Quantiser, direct: tuple[I64, I64]
) -> tuple[I64, I64, I64, list[I64], Bools]:
    """A B-frame's decisions: (modes: 0 skip (the mean of both references moved by the
    `direct` vectors, no residual), 1 forward, 2 backward, 3 both; forward vectors; backward
    vectors; levels; luma blocks coded as 4x4 transforms). Each macroblock takes the direction
    `b_direction` chooses; skips as `decide_modes` says."""
    zero = np.zeros((layout.nmb, 2), dtype=np.int64)
    hints = [np.floor_divide(vectors, SUBPEL) for vectors in direct]
    forward, _, _ = estimate(cur[0], [refs[1][0]], hints[0], quant.flat_y, zero)
    backward, _, _ = estimate(cur[0], [refs[0][0]], hints[1], quant.flat_y, zero)
    options = b_options(layout, refs, forward, backward)
    bits_f = vector_bits(forward - median_predictors(forward, layout.mby, layout.mbx))
    bits_b = vector_bits(backward - median_predictors(backward, layout.mby, layout.mbx))
    choice, prediction, levels, tx4 = b_direction(
        layout, cur, options, [bits_f, bits_b, bits_f + bits_b], quant
    )
    skipped = b_options(layout, refs, direct[0], direct[1])[2]
    chosen = np.where((choice == 2)[:, None], backward, forward)
    zeros = np.zeros_like(chosen)
    modes, kept = decide_modes(
        layout, cur, prediction, skipped, chosen, zeros, zeros[:, 0], levels, tx4, quant
    )
    modes = np.where(modes != 0, choice, 0)
    forward = np.where(((modes == 1) | (modes == 3))[:, None], forward, 0)
    backward = np.where((modes >= 2)[:, None], backward, 0)
    return modes, forward, backward, kept, tx4


def reconstruct_b(
    layout: Layout,
    refs: list[Planes],
    quant: Quantiser,
    modes: I64,
    forward: I64,
    backward: I64,
    levels: list[I64],
    tx4: Bools,
    direct: tuple[I64, I64],
) -> Planes:
    """Decode a B-frame from its decisions (see `code_b`); skipped macroblocks take the mean
    of the two references moved by the `direct` vectors."""
    skip = (modes == 0)[:, None]
    forward = np.where(skip, direct[0], forward)
    backward = np.where(skip, direct[1], backward)
    options = b_options(layout, refs, forward, backward)
    prediction = select_planes(layout, np.where(modes == 0, 3, modes), options)
    keys = motion_keys(layout, modes, forward) * (1 << 26) + motion_keys(
        layout, np.zeros_like(modes), backward
    )
    return inter_planes(layout, quant, prediction, keys, levels, tx4)


def encode_b_frame(
    layout: Layout,
    refs: list[Planes],
    cur: Planes,
    quant: Quantiser,
    models: list[list[int]],
    direct: tuple[I64, I64],
) -> tuple[bytes, Planes]:
    """A B-frame's payload and the frame the decoder will output."""
    modes, forward, backward, levels, tx4 = code_b(layout, refs, cur, quant, direct)
    payload = payload_b(layout, modes, forward, backward, levels, tx4, models)
    frame = reconstruct_b(layout, refs, quant, modes, forward, backward, levels, tx4, direct)
    return payload, layout.output(frame)


def decode_b_frame(
    layout: Layout,
    refs: list[Planes],
    data: bytes,
    quant: Quantiser,
    models: list[list[int]],
    direct: tuple[I64, I64],
    what: str,
) -> Planes:
    """Inverse of `encode_b_frame`."""
    modes, forward, backward, levels, tx4 = parse_b(layout, data, models, what)
    frame = reconstruct_b(layout, refs, quant, modes, forward, backward, levels, tx4, direct)
    return layout.output(frame)


def no_b_frame_encode(
    layout: Layout,
    refs: list[Planes],
    cur: Planes,
    quant: Quantiser,
    models: list[list[int]],
    direct: tuple[I64, I64],
) -> tuple[bytes, Planes]:
    """This codec has no B-frames."""
    raise ValueError("this codec codes no B-frame")


def no_b_frame_decode(
    layout: Layout,
    refs: list[Planes],
    data: bytes,
    quant: Quantiser,
    models: list[list[int]],
    direct: tuple[I64, I64],
    what: str,
) -> Planes:
    """This codec has no B-frames."""
    raise ValueError(f"{what}: a B-frame in the stream of a codec without B-frames")


encode_b = no_b_frame_encode
decode_b = no_b_frame_decode


def join_packets(parts: list[bytes]) -> bytes:
    """Frames coded together (an anchor, then the B-frames displayed before it): their count,
    their lengths, then their bytes."""
    return bytes([len(parts)]) + write_lengths(parts) + b"".join(parts)


def split_packets(packet: bytes, what: str) -> list[bytes]:
    """Inverse of `join_packets`."""
    lengths, at = read_lengths(packet[1:], packet[0], what)
    at += 1
    if packet[0] < 1 or at + sum(lengths) != len(packet):
        raise ValueError(f"{what}: {packet[0]} frames of {sum(lengths)} bytes in {len(packet)}")
    parts = []
    for size in lengths:
        parts.append(packet[at : at + size])
        at += size
    return parts


def b_quantiser(cache: dict[int, Quantiser], quality: int) -> Quantiser:
    found = cache.get(quality)
    if found is None:
        found = Quantiser(quality, P_QP_OFFSET + B_QP_OFFSET)
        cache[quality] = found
    return found


def int_param(params: dict[str, object], key: str, default: int, low: int, high: int) -> int:
    value = params.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"params[{key!r}] must be a number within {low}..{high}, got {value!r}")
    return round(value)


def recode_intra(
    layout: Layout, cur: Planes, quant: Quantiser, vectors: I64, levels: list[I64], tx4: Bools
) -> tuple[list[I64], I64, Bools]:
    """An I-frame coded again, RDOQ pricing its levels by the contexts that coding its first
    pass (`vectors`, `levels`, `tx4`) trained: fresh contexts price every bin at one bit."""
    trained = payload_models(SECTIONS)
    zero = np.zeros((layout.nmb, 2), dtype=np.int64)
    write_payload(layout, None, vectors, levels, tx4, trained, 0, zero, None, quant.offsets)
    quant.prices = level_prices(trained, True, RDOQ_LAMBDA * quant.flat_y**2)
    found: tuple[list[I64], I64, Bools] = intra_coding(layout, cur, quant)
    return found


HARD_MOTION = 0.0125
"""Share of a P-frame's macroblocks coded intra, per frame since the previous anchor, above
which motion is too hard for long B-frame groups (`b_frames_adaptive`)."""


def b_frames_fixed(modes: I64, span: int) -> int:
    """BFRAMES B-frames between every two anchors."""
    return BFRAMES


def b_frames_adaptive(modes: I64, span: int) -> int:
    """The B-frames before the next anchor, from the P-frame just coded `span` frames after
    its reference: BFRAMES, or one where more than HARD_MOTION of its macroblocks per frame
    of distance had to be intra (content the references do not hold: B-frames far from their
    anchors would pay for it twice). Before the first P-frame (`span` 0): one."""
    if not span:
        return min(BFRAMES, 1)
    share = float(np.mean(modes >= INTRA_MB)) / span
    return BFRAMES if share <= HARD_MOTION else min(BFRAMES, 1)


group_b_frames = b_frames_fixed


class Encoder:
    """I/P-frame encoder; keeps the decoder's exact reconstruction as its references."""

    def __init__(self, width: int, height: int, fps: float, params: dict[str, object]) -> None:
        self.quality = max(1, int_param(params, "quality", 50, 0, 100))
        self.layout = Layout(width, height, 2 if self.quality < DOWNSCALE_BELOW else 1)
        self.refs: list[Planes] = []
        self.models = payload_models(SECTIONS)
        self.quantisers: dict[tuple[int, bool], Quantiser] = {}
        self.hint = np.zeros((self.layout.nmb, 2), dtype=np.int64)
        self.temporal = np.zeros((self.layout.nmb, 2), dtype=np.int64)  # last anchor's vectors
        self.anchor_refs = np.zeros(self.layout.nmb, dtype=np.int64)  # ... and references
        self.frame_index = 0
        self.reconstruction: Planes | None = None  # the last frame as the decoder outputs it
        self.outputs: list[Planes] = []  # what the decoder outputs for the last packet
        self.pending: list[tuple[int, Planes]] = []  # B-frames waiting for their next anchor
        self.b_quantisers: dict[int, Quantiser] = {}
        self.b_frames = group_b_frames(np.zeros(0, dtype=np.int64), 0)  # before next anchor
        self.anchor_index = 0  # frame index of the last anchor
        self.held: list[tuple[int, Planes]] = []  # frames the lookahead holds back
        self.lookahead = Lookahead(self.layout.mby, self.layout.mbx)

    def encode(self, y: U8, u: U8, v: U8) -> bytes:
        cur = self.layout.prepare((y, u, v), self.frame_index)
        index = self.frame_index
        self.frame_index += 1
        if not MBTREE:
            return self.code_frame(index, cur)
        self.lookahead.push(index, cur[0])
        self.held.append((index, cur))
        if len(self.held) <= LOOKAHEAD:
            self.outputs = []
            return b""
        index, cur = self.held.pop(0)
        return self.code_frame(index, cur)

    def code_frame(self, index: int, cur: Planes) -> bytes:
        """Frame `index`: held as a B-frame (b""), or coded as an anchor, the B-frames before
        it following in the same packet."""
        if BFRAMES and index % INTRA_PERIOD and len(self.pending) < self.b_frames:
            self.pending.append((index, cur))
            self.outputs = []
            return b""
        packet = self.code_anchor(cur, index)
        if not BFRAMES:
            return packet
        anchor, parts, outputs = self.outputs, [packet], []
        quant = b_quantiser(self.b_quantisers, self.quality)
        span = len(self.pending) + 1
        for position, (_, frame) in enumerate(self.pending, start=1):
            direct = direct_vectors(self.layout, self.temporal, self.anchor_refs, position, span)
            quant.prices = level_prices(self.models, False, RDOQ_LAMBDA * quant.flat_y**2)
            payload, output = encode_b(self.layout, self.refs, frame, quant, self.models, direct)
            parts.append(struct.pack("<BB", TAG_B, self.quality) + payload)
            outputs.append(output)
        self.outputs = outputs + anchor
        self.pending = []
        return join_packets(parts)

    def code_anchor(self, cur: Planes, index: int) -> bytes:
        """An I- or P-frame: its packet; it becomes the newest reference."""
        layout = self.layout
        intra = is_intra(index, self.refs)
        quant = frame_quantiser(self.quantisers, self.quality, intra)
        vectors = np.zeros((layout.nmb, 2), dtype=np.int64)
        modes: I64 | None = None
        deltas: I64 | None = None
        refs = self.refs[:NUM_REFS]
        if intra:
            self.models = payload_models(SECTIONS)
        quant.prices = level_prices(self.models, intra, RDOQ_LAMBDA * quant.flat_y**2)
        quant.set_offsets(layout.mb_of, self.lookahead.offsets(index) if MBTREE else None)
        if intra:
            levels, vectors, tx4 = intra_coding(layout, cur, quant)
            if RDOQ_LAMBDA:
                levels, vectors, tx4 = recode_intra(layout, cur, quant, vectors, levels, tx4)
        else:
            modes, vectors, levels, tx4, self.hint, deltas = inter_coding(
                layout, refs, cur, self.hint, quant, self.temporal
            )
        if quant.offsets is not None:
            quant.set_offsets(layout.mb_of, settled_offsets(layout, levels, quant.offsets))
        payload = write_payload(
            layout,
            modes,
            vectors,
            levels,
            tx4,
            self.models,
            len(refs),
            self.temporal,
            deltas,
            quant.offsets,
        )
        self.temporal = vectors if modes is not None else np.zeros((layout.nmb, 2), np.int64)
        self.anchor_refs = anchor_references(layout, modes)
        if modes is not None:
            self.b_frames = group_b_frames(modes, index - self.anchor_index)
        self.anchor_index = index
        frame = reconstruct(layout, refs, quant, modes, vectors, levels, tx4, deltas)
        self.refs = push_reference(self.refs, frame)
        self.reconstruction = layout.output(frame)
        self.outputs = [self.reconstruction]
        return struct.pack("<BB", TAG_INTRA if intra else TAG_PREDICTED, self.quality) + payload

    def flush(self) -> list[bytes]:
        """The frames the lookahead holds are coded; frames still waiting for an anchor then
        are coded as anchors, one packet each."""
        packets, outputs = [], []
        while self.held:
            packet = self.code_frame(*self.held.pop(0))
            if packet:
                packets.append(packet)
                outputs += self.outputs
        for index, cur in self.pending:
            packets.append(join_packets([self.code_anchor(cur, index)]))
            outputs += self.outputs
        self.outputs = outputs
        self.pending = []
        return packets


class Decoder:
    """Decodes the packets of its Encoder; one frame per packet."""

    def __init__(self, width: int, height: int, fps: float) -> None:
        self.layouts = {scale: Layout(width, height, scale) for scale in (1, 2)}
        self.temporal = np.zeros((0, 2), dtype=np.int64)  # the last anchor's vectors
        self.anchor_refs = np.zeros(0, dtype=np.int64)  # ... and references
        self.refs: list[Planes] = []
        self.models = payload_models(SECTIONS)
        self.quantisers: dict[tuple[int, bool], Quantiser] = {}
        self.b_quantisers: dict[int, Quantiser] = {}
        self.frame_index = 0

    def decode(self, packet: bytes) -> list[Planes]:
        if not packet:
            return []
        if not BFRAMES:
            return [self.decode_anchor(packet)]
        what = f"packet {self.frame_index}"
        parts = split_packets(packet, what)
        anchor = self.decode_anchor(parts[0])
        frames = []
        span = len(parts)
        for position, part in enumerate(parts[1:], start=1):
            if len(part) < 2 or part[0] != TAG_B or not 1 <= part[1] <= 100:
                raise ValueError(f"{what}: bad B-frame header {part[:2].hex()}")
            if len(self.refs) < 2:
                raise ValueError(f"{what}: a B-frame needs two decoded references")
            layout = self.layouts[2 if part[1] < DOWNSCALE_BELOW else 1]
            quant = b_quantiser(self.b_quantisers, part[1])
            if layout.nmb != self.temporal.shape[0]:
                raise ValueError(f"{what}: a B-frame coded at another size than its anchor")
            direct = direct_vectors(layout, self.temporal, self.anchor_refs, position, span)
            data = part[2:]
            frames.append(decode_b(layout, self.refs, data, quant, self.models, direct, what))
        return [*frames, anchor]

    def decode_anchor(self, packet: bytes) -> Planes:
        what = f"packet {self.frame_index}"
        if len(packet) < 2 or packet[0] not in (TAG_INTRA, TAG_PREDICTED):
            raise ValueError(f"{what}: bad header {packet[:2].hex()} (want tag 49 or 50)")
        quality = packet[1]
        if not 1 <= quality <= 100:
            raise ValueError(f"{what}: quality {quality} is outside 1..100")
        intra = packet[0] == TAG_INTRA
        if not intra and not self.refs:
            raise ValueError(f"{what}: P-frame before any I-frame")
        layout = self.layouts[2 if quality < DOWNSCALE_BELOW else 1]
        if intra:
            self.models = payload_models(SECTIONS)
        refs = self.refs[:NUM_REFS]
        if self.temporal.shape[0] != layout.nmb:
            self.temporal = np.zeros((layout.nmb, 2), dtype=np.int64)
        modes, vectors, levels, tx4, deltas, offsets = read_payload(
            layout, packet[2:], intra, len(refs), self.models, self.temporal, what
        )
        self.temporal = vectors if modes is not None else np.zeros((layout.nmb, 2), np.int64)
        self.anchor_refs = anchor_references(layout, modes)
        quant = frame_quantiser(self.quantisers, quality, intra)
        quant.set_offsets(layout.mb_of, offsets)
        frame = reconstruct(layout, refs, quant, modes, vectors, levels, tx4, deltas)
        self.refs = push_reference(self.refs, frame)
        self.frame_index += 1
        return layout.output(frame)

    def flush(self) -> list[Planes]:
        return []
