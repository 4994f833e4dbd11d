"""Macroblock-tree lookahead of generated codecs (x264's `mbtree`).

Before an I- or P-frame is coded, the encoder looks at up to LOOKAHEAD source frames after it
(on half-size luma, 8x8 blocks per macroblock). Per frame and macroblock it estimates an
intra cost (SATD against the best of DC / vertical / horizontal prediction from the source
neighbours) and an inter cost (SATD of the best integer vector into the frame before). The
share 1 - inter / intra of a macroblock's information comes from its reference; walking back
from the last frame, each macroblock hands that share of its own cost plus what it inherits
to the reference macroblocks its vector overlaps. A macroblock of the frame being coded that
later frames inherit much from (static background) gets a finer QP, one they inherit nothing
from (what moves away or is covered) keeps the frame's: offset = -TREE_STRENGTH * log2(1 +
inherited / intra), at most TREE_DROP.

The chain is the display order (each frame predicted from the one before), cut at the next
I-frame; B-frames are not references, so they get no offsets.
"""

import numpy as np

from codeclab.designers.offline.fragments.config import INTRA_PERIOD, MACROBLOCK
from codeclab.designers.offline.fragments.frame import hadamard_cost
from codeclab.designers.offline.fragments.motion import (
    decimate,
    extend,
    grid_origins,
    mb_blocks,
    shift_search,
    windows,
)
from codeclab.designers.offline.fragments.types import F64, I64, U8

LOOKAHEAD = 20
"""Source frames after an anchor the encoder holds back to estimate its tree."""
TREE_REACH = 8
"""Motion search range of the lookahead, in half-size pixels."""
TREE_STRENGTH = 2.0
"""QP offset per doubling of a macroblock's cost by what later frames inherit (x264: 5 * (1 -
qcompress), qcompress 0.6)."""
TREE_DROP = 12
"""The largest QP offset, in either direction."""


def edge_predictions(small: I64, size: int) -> I64:
    """(3, count, size, size) DC / vertical / horizontal predictions of the raster-ordered size
    x size blocks of a plane from their source neighbours (128 outside the plane)."""
    h, w = small.shape
    rows, cols = h // size, w // size
    padded = np.pad(small, ((1, 0), (1, 0)), constant_values=128)
    top = padded[np.arange(rows) * size][:, 1:].reshape(rows, 1, cols, size)
    top = np.broadcast_to(top.transpose(0, 2, 1, 3), (rows, cols, size, size))
    left = padded[1:, np.arange(cols) * size].reshape(rows, size, cols, 1)
    left = np.broadcast_to(left.transpose(0, 2, 1, 3), (rows, cols, size, size))
    dc = (top[:, :, :1, :].sum(axis=3) + left[:, :, :, :1].sum(axis=2) + size) // (2 * size)
    flat = np.broadcast_to(dc[:, :, :, None], (rows, cols, size, size))
    found: I64 = np.stack([flat, top, left]).reshape(3, rows * cols, size, size)
    return found


def frame_costs(luma: U8, previous: U8 | None) -> tuple[F64, F64, I64]:
    """(intra cost, inter cost, vectors in half-size pixels) per macroblock of a frame's
    padded luma against the frame before (`previous`; None: inter costs are intra's)."""
    size = MACROBLOCK // 2
    small = decimate(luma, 2)
    blocks = mb_blocks(small, size).astype(np.int64)
    predictions = edge_predictions(small.astype(np.int64), size)
    intra = np.min([hadamard_cost(blocks - p) for p in predictions], axis=0).astype(np.float64)
    intra = np.maximum(intra, 1.0)
    if previous is None:
        return intra, intra.copy(), np.zeros((len(blocks), 2), dtype=np.int64)
    reference = decimate(previous, 2)
    vectors, _ = shift_search(small.astype(np.int32), reference, TREE_REACH, size)
    oy, ox = grid_origins(small, size)
    moved = windows(
        extend(reference, TREE_REACH), TREE_REACH, oy + vectors[:, 0], ox + vectors[:, 1], size
    )
    inter = hadamard_cost(blocks - moved.astype(np.int64)).astype(np.float64)
    return intra, np.minimum(inter, intra), vectors


def distribute(amounts: F64, vectors: I64, mby: int, mbx: int) -> F64:
    """Per macroblock of the reference, the `amounts` of the macroblocks whose 8x8 half-size
    blocks moved by `vectors` overlap it, shared by the overlapping area."""
    size = MACROBLOCK // 2
    mb = np.arange(mby * mbx)
    y = (mb // mbx) * size + vectors[:, 0]
    x = (mb % mbx) * size + vectors[:, 1]
    by, fy = np.divmod(y, size)
    bx, fx = np.divmod(x, size)
    found = np.zeros(mby * mbx, dtype=np.float64)
    for dy, wy in ((0, size - fy), (1, fy)):
        for dx, wx in ((0, size - fx), (1, fx)):
            ty, tx = by + dy, bx + dx
            inside = (ty >= 0) & (ty < mby) & (tx >= 0) & (tx < mbx) & (wy * wx > 0)
            share = amounts * wy * wx / (size * size)
            np.add.at(found, (ty * mbx + tx)[inside], share[inside])
    return found


def tree_offsets(costs: list[tuple[F64, F64, I64]], mby: int, mbx: int) -> I64:
    """QP offsets per macroblock of the first of `costs`' frames (`frame_costs` of it and the
    frames after it, each against the one before)."""
    inherited = np.zeros(mby * mbx, dtype=np.float64)
    for intra, inter, vectors in reversed(costs[1:]):
        amounts = (intra + inherited) * (1.0 - inter / intra)
        inherited = distribute(amounts, vectors, mby, mbx)
    intra = costs[0][0]
    offsets = np.rint(-TREE_STRENGTH * np.log2(1.0 + inherited / intra))
    found: I64 = np.clip(offsets, -TREE_DROP, TREE_DROP).astype(np.int64)
    return found


class Lookahead:
    """The `frame_costs` of the source frames an encoder holds back, by frame index."""

    def __init__(self, mby: int, mbx: int) -> None:
        self.mby, self.mbx = mby, mbx
        self.costs: dict[int, tuple[F64, F64, I64]] = {}
        self.last: U8 | None = None

    def push(self, index: int, luma: U8) -> None:
        """Add the next source frame (padded luma); a new I-frame starts a new chain."""
        previous = None if index % INTRA_PERIOD == 0 else self.last
        self.costs[index] = frame_costs(luma, previous)
        self.last = luma

    def offsets(self, index: int) -> I64:
        """The QP offsets of anchor `index` from the frames held after it (up to the next
        I-frame); forgets the frames before it."""
        for old in [i for i in self.costs if i < index]:
            del self.costs[old]
        chain = [self.costs[index]]
        following = index + 1
        while following in self.costs and following % INTRA_PERIOD:
            chain.append(self.costs[following])
            following += 1
        return tree_offsets(chain, self.mby, self.mbx)
