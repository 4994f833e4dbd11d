"""Per-block errors and the heatmap picture, on frames with known errors."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from codeclab.video.frames import Frame, VideoFormat
from codeclab.web.heatmap import BEST_DB, BLOCK, WORST_DB, block_errors, heatmap_image
from codeclab.web.images import colour_map


def frame(y: np.ndarray) -> Frame:
    fmt = VideoFormat(y.shape[1], y.shape[0], Fraction(25))
    blank = Frame.blank(fmt)
    return Frame(y.astype(np.uint8), blank.u, blank.v)


def test_each_block_gets_the_mse_of_its_own_pixels() -> None:
    original = np.full((16, 24), 100, np.uint8)
    changed = original.copy()
    changed[0:8, 8:16] += 10  # block (0, 1): MSE 100
    changed[8, 16] += 16  # one pixel of block (1, 2): MSE 256 / 64 = 4
    errors = block_errors(frame(original), frame(changed))
    assert (errors.rows, errors.cols) == (2, 3)
    expected = np.zeros((2, 3))
    expected[0, 1] = 100.0
    expected[1, 2] = 4.0
    np.testing.assert_allclose(errors.mse, expected)
    assert errors.frame_mse == pytest.approx((64 * 100 + 256) / (16 * 24))
    assert errors.worst_block()[:2] == (8, 0)
    assert errors.worst_block()[2] == pytest.approx(10 * np.log10(255**2 / 100))


def test_partial_edge_blocks_average_over_the_pixels_they_have() -> None:
    original = np.zeros((10, 10), np.uint8)
    changed = original.copy()
    changed[8:10, 8:10] = 20  # the 2x2 corner block: MSE 400
    errors = block_errors(frame(original), frame(changed))
    assert (errors.rows, errors.cols) == (2, 2)
    assert errors.mse[1, 1] == pytest.approx(400.0)
    assert errors.mse[0, 0] == 0.0


def test_identical_frames_have_no_psnr_and_a_dark_heatmap() -> None:
    y = np.random.default_rng(1).integers(0, 256, (16, 16), dtype=np.uint8)
    errors = block_errors(frame(y), frame(y))
    assert errors.frame_psnr is None
    assert np.all(errors.block_psnr() == BEST_DB)
    picture = heatmap_image(errors, 16, 16)
    assert np.all(picture == colour_map(np.zeros(1))[0])


def test_the_heatmap_is_aligned_with_the_frame_and_brightest_where_worst() -> None:
    original = np.full((20, 28), 128, np.uint8)
    changed = original.copy()
    changed[8:16, 16:24] = 0  # one block far beyond the worst end of the scale
    errors = block_errors(frame(original), frame(changed))
    picture = heatmap_image(errors, 28, 20)
    assert picture.shape == (20, 28, 3)
    worst = colour_map(np.ones(1))[0]
    best = colour_map(np.zeros(1))[0]
    assert np.all(picture[8:16, 16:24] == worst)
    assert np.all(picture[0:BLOCK, 0:BLOCK] == best)
    assert WORST_DB < BEST_DB


def test_frames_of_different_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="differ in size"):
        block_errors(frame(np.zeros((8, 8))), frame(np.zeros((8, 16))))
