"""In-loop deblocking and 2x resampling of generated codecs (integer arithmetic only)."""

import numpy as np

from codeclab.designers.offline.fragments.config import DEBLOCK
from codeclab.designers.offline.fragments.types import I64, U8, Bools


def filter_edges(plane: I64, cols: I64, mask: Bools, alpha: I64, beta: I64, tc: I64) -> None:
    """Smooth the vertical block edges left of columns `cols` where `mask` (rows x edges) is
    set and the edge looks like a blocking step, not an image edge, by the thresholds of each
    edge (rows x edges; in place)."""
    p1, p0 = plane[:, cols - 2], plane[:, cols - 1]
    q0, q1 = plane[:, cols], plane[:, cols + 1]
    on = mask & (np.abs(p0 - q0) < alpha) & (np.abs(p1 - p0) < beta) & (np.abs(q1 - q0) < beta)
    delta = np.clip(((q0 - p0) * 4 + (p1 - q1) + 4) >> 3, -tc, tc)
    delta[~on] = 0
    plane[:, cols - 1] = np.clip(p0 + delta, 0, 255)
    plane[:, cols] = np.clip(q0 - delta, 0, 255)


def deblock_on(
    plane: I64, n: int, coded: Bools, motion: I64, step: int | I64, owners: I64 | None = None
) -> I64:
    """Deblock the n x n block edges of `plane` (a grid of coded flags and motion keys per
    block): an edge is filtered when a block beside it has coefficients or the two move
    differently, and (given `owners`, a grid of transform-block ids) when it lies between two
    transform blocks. Thresholds grow with DEBLOCK (1..3) and the quantiser step: `step`, or
    per block a grid of steps, an edge taking the rounded mean of its two blocks'."""
    steps = np.broadcast_to(np.asarray(step, dtype=np.int64), coded.shape)
    out = plane.copy()
    ids = np.zeros_like(motion) if owners is None else owners
    for grid_coded, grid_motion, grid_ids, grid_steps, target in (
        (coded, motion, ids, steps, out),
        (coded.T, motion.T, ids.T, steps.T, out.T),
    ):
        if grid_coded.shape[1] < 2:
            continue
        cols = np.arange(1, grid_coded.shape[1], dtype=np.int64) * n
        mask = grid_coded[:, 1:] | grid_coded[:, :-1] | (grid_motion[:, 1:] != grid_motion[:, :-1])
        if owners is not None:
            mask &= grid_ids[:, 1:] != grid_ids[:, :-1]
        edge = np.repeat((grid_steps[:, 1:] + grid_steps[:, :-1] + 1) >> 1, n, axis=0)
        alpha = edge * DEBLOCK * 5 // 8 + 1
        beta = edge * DEBLOCK // 5 + 1
        tc = edge * DEBLOCK // 16 + 1
        filter_edges(target, cols, np.repeat(mask, n, axis=0), alpha, beta, tc)
    return out


def deblock_off(
    plane: I64, n: int, coded: Bools, motion: I64, step: int | I64, owners: I64 | None = None
) -> I64:
    """No loop filter."""
    return plane


deblock = deblock_off


def downscale2(plane: U8) -> U8:
    """Half-size plane: rounded mean of 2x2 cells (odd sides edge-replicated first)."""
    h, w = plane.shape
    even = np.pad(plane, ((0, h % 2), (0, w % 2)), "edge").astype(np.int64)
    sums = even[0::2, 0::2] + even[0::2, 1::2] + even[1::2, 0::2] + even[1::2, 1::2]
    return ((sums + 2) >> 2).astype(np.uint8)


def upsample_rows(plane: I64) -> I64:
    """Twice the rows, bilinear at quarter phases, scaled by 4 (no rounding yet)."""
    padded = np.pad(plane, ((1, 1), (0, 0)), "edge")
    up = np.empty((2 * plane.shape[0], plane.shape[1]), dtype=np.int64)
    up[0::2] = 3 * plane + padded[:-2]
    up[1::2] = 3 * plane + padded[2:]
    return up


def upscale2(plane: U8, h: int, w: int) -> U8:
    """Inverse of `downscale2`: a bilinear (h, w) plane from a half-size one."""
    rows = upsample_rows(plane.astype(np.int64))
    both = upsample_rows(rows.T).T
    return ((both[:h, :w] + 8) >> 4).astype(np.uint8)
