"""PSNR: exact squared error, infinity for lossless, the 6:1:1 YUV form, poolings, JSON."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from codeclab.metrics.psnr import (
    SseKernel,
    global_psnr,
    json_number,
    mean_psnr,
    mse_to_psnr,
    parse_json_number,
    plane_psnr,
    psnr_yuv,
    squared_error,
)


def _reference_sse(ref: np.ndarray, dist: np.ndarray) -> int:
    diff = ref.astype(np.int64) - dist.astype(np.int64)
    return int((diff * diff).sum())


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(2024)


def test_lossless_plane_has_infinite_psnr_without_any_warning() -> None:
    plane = np.full((16, 16), 77, np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert plane_psnr(plane, plane.copy()) == math.inf
        assert mse_to_psnr(0.0) == math.inf


def test_psnr_of_known_mse_values() -> None:
    assert mse_to_psnr(255.0**2) == pytest.approx(0.0)
    assert mse_to_psnr(1.0) == pytest.approx(48.130803608679105)
    assert mse_to_psnr(2.0) == pytest.approx(48.130803608679105 - 10 * math.log10(2))


def test_negative_or_nan_mse_is_rejected() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        mse_to_psnr(-1.0)
    with pytest.raises(ValueError, match="non-negative"):
        mse_to_psnr(math.nan)


def test_squared_error_is_exact_at_the_extremes() -> None:
    black = np.zeros((1080, 1920), np.uint8)
    white = np.full((1080, 1920), 255, np.uint8)
    assert squared_error(black, white) == 1080 * 1920 * 255 * 255
    assert squared_error(white, black) == 1080 * 1920 * 255 * 255


@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (144, 176), (361, 641)])
def test_sse_kernel_matches_int64_reference(
    shape: tuple[int, int], rng: np.random.Generator
) -> None:
    kernel = SseKernel(*shape)
    for _ in range(2):  # the buffer is reused: no state may leak between calls
        ref = rng.integers(0, 256, shape, dtype=np.uint8)
        dist = rng.integers(0, 256, shape, dtype=np.uint8)
        assert kernel.sse(ref, dist) == _reference_sse(ref, dist)


def test_sse_kernel_is_exact_for_the_largest_error() -> None:
    kernel = SseKernel(360, 640)
    ref = np.zeros((360, 640), np.uint8)
    dist = np.full((360, 640), 255, np.uint8)
    assert kernel.sse(ref, dist) == 360 * 640 * 255 * 255


def test_sse_kernel_rejects_another_shape_naming_both() -> None:
    kernel = SseKernel(8, 8)
    with pytest.raises(ValueError, match=r"8x8 planes.*\(4, 8\)"):
        kernel.sse(np.zeros((4, 8), np.uint8), np.zeros((4, 8), np.uint8))


def test_psnr_yuv_uses_six_one_one_weighted_mse() -> None:
    expected = 10 * math.log10(255**2 / ((6 * 1.0 + 4.0 + 16.0) / 8))
    assert psnr_yuv(1.0, 4.0, 16.0) == pytest.approx(expected)
    # ... which is below the weighted mean of the plane PSNRs (JVET-style tabulation).
    weighted_psnr = (6 * mse_to_psnr(1.0) + mse_to_psnr(4.0) + mse_to_psnr(16.0)) / 8
    assert psnr_yuv(1.0, 4.0, 16.0) < weighted_psnr


def test_psnr_yuv_is_finite_unless_all_planes_are_lossless() -> None:
    assert math.isfinite(psnr_yuv(0.0, 0.0, 1.0))
    assert psnr_yuv(0.0, 0.0, 0.0) == math.inf


def test_mean_and_global_pooling_differ_as_documented() -> None:
    mses = [1.0, 100.0]
    per_frame = [mse_to_psnr(m) for m in mses]
    assert mean_psnr(per_frame) == pytest.approx(sum(per_frame) / 2)
    assert global_psnr(mses) == pytest.approx(mse_to_psnr(50.5))
    assert global_psnr(mses) < mean_psnr(per_frame)


def test_one_lossless_frame_makes_the_mean_infinite_but_not_the_global() -> None:
    mses = [0.0, 4.0]
    assert mean_psnr(mse_to_psnr(m) for m in mses) == math.inf
    assert global_psnr(mses) == pytest.approx(mse_to_psnr(2.0))


def test_pooling_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no PSNR values"):
        mean_psnr([])
    with pytest.raises(ValueError, match="no MSE values"):
        global_psnr([])


def test_json_number_renders_infinity_as_string_and_reads_it_back() -> None:
    encoded = json.dumps([json_number(math.inf), json_number(12.5), json_number(math.nan)])
    assert encoded == '["inf", 12.5, null]'
    decoded = [parse_json_number(v) for v in json.loads(encoded)]
    assert decoded[0] == math.inf
    assert decoded[1] == 12.5
    assert math.isnan(decoded[2])
    assert parse_json_number("-inf") == -math.inf


def test_parse_json_number_rejects_other_strings() -> None:
    with pytest.raises(ValueError, match="'infinity'"):
        parse_json_number("infinity")
