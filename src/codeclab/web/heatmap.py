"""The quality heatmap: where in a frame the codec lost the most, block by block.

The luma error of each ``BLOCK`` x ``BLOCK`` block (partial blocks at the right and bottom
edges count over the pixels they have) is turned into a block PSNR,
``10 log10(255^2 / MSE)``, and drawn on a fixed scale so heatmaps of different frames and
experiments compare: ``WORST_DB`` and below is brightest, ``BEST_DB`` and above (identical
blocks included) is darkest.  Each block is drawn as ``BLOCK`` x ``BLOCK`` pixels, so the
picture lines up with the frame.

The inputs are the exact frames: the source frame from the clip and the decoder's output
from the stored bitstream, never the preview videos (which are re-encoded, so lossy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from codeclab.video.frames import Frame
from codeclab.web.images import RGB, colour_map

BLOCK = 8
WORST_DB = 20.0
BEST_DB = 50.0
_PEAK = 255.0**2


@dataclass(frozen=True)
class BlockErrors:
    """Per-block luma MSE of one frame, and what a reader wants to know about it."""

    mse: npt.NDArray[np.float64]  # (rows, cols) of blocks
    frame_mse: float

    @property
    def rows(self) -> int:
        return int(self.mse.shape[0])

    @property
    def cols(self) -> int:
        return int(self.mse.shape[1])

    @property
    def frame_psnr(self) -> float | None:
        """PSNR-Y of the whole frame; None when the frame is identical (infinite PSNR)."""
        return psnr(self.frame_mse)

    def block_psnr(self) -> npt.NDArray[np.float64]:
        """Per-block PSNR in dB, capped at BEST_DB for (nearly) identical blocks."""
        with np.errstate(divide="ignore"):
            values = 10.0 * np.log10(_PEAK / self.mse)
        return np.minimum(values, BEST_DB)

    def worst_block(self) -> tuple[int, int, float]:
        """(x, y) pixel position of the worst block's top-left corner, and its PSNR."""
        row, col = np.unravel_index(int(np.argmax(self.mse)), self.mse.shape)
        return int(col) * BLOCK, int(row) * BLOCK, float(self.block_psnr()[row, col])


def psnr(mse: float) -> float | None:
    return None if mse <= 0 else 10.0 * math.log10(_PEAK / mse)


def block_errors(original: Frame, reconstructed: Frame) -> BlockErrors:
    """Luma MSE per block of `reconstructed` against `original` (same size)."""
    if original.y.shape != reconstructed.y.shape:
        raise ValueError(
            f"frames differ in size: original {original.y.shape[::-1]}, "
            f"reconstructed {reconstructed.y.shape[::-1]}"
        )
    height, width = original.y.shape
    rows, cols = -(-height // BLOCK), -(-width // BLOCK)
    diff = original.y.astype(np.float64) - reconstructed.y.astype(np.float64)
    squared = np.zeros((rows * BLOCK, cols * BLOCK), dtype=np.float64)
    squared[:height, :width] = diff * diff
    counts = np.zeros_like(squared)
    counts[:height, :width] = 1.0
    sums = squared.reshape(rows, BLOCK, cols, BLOCK).sum(axis=(1, 3))
    pixels = counts.reshape(rows, BLOCK, cols, BLOCK).sum(axis=(1, 3))
    return BlockErrors(mse=sums / pixels, frame_mse=float(np.mean(diff * diff)))


def heatmap_image(errors: BlockErrors, width: int, height: int) -> RGB:
    """The heatmap as a `width` x `height` RGB picture aligned with the frame."""
    level = (BEST_DB - errors.block_psnr()) / (BEST_DB - WORST_DB)
    blocks = colour_map(level)
    pixels = np.repeat(np.repeat(blocks, BLOCK, axis=0), BLOCK, axis=1)
    return np.ascontiguousarray(pixels[:height, :width])
