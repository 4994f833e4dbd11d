"""PSNR of 8-bit planes: exact squared error, per-plane and 6:1:1 YUV PSNR, clip poolings.

Definitions (peak 255, 8-bit):

- ``MSE = SSE / (width * height)`` of one plane, with the SSE summed exactly in integers.
- ``PSNR = 10 * log10(255**2 / MSE)``; an MSE of 0 (lossless) gives ``math.inf``.
- ``PSNR-YUV = 10 * log10(255**2 / ((6*MSE_Y + MSE_U + MSE_V) / 8))``: the *weighted-MSE*
  form (weights 6:1:1 on the planes' MSEs, then one PSNR).  This is not the same number as
  ``(6*PSNR_Y + PSNR_U + PSNR_V) / 8``, the weighted mean of PSNR values that JVET's common
  test conditions tabulate; the weighted-MSE form is never larger and stays finite unless
  all three planes are lossless.  Nor is it FFmpeg's ``psnr`` "average", which weights by
  plane area (4:1:1 for 4:2:0).

Pooling over a clip, both reported under their own names:

- ``mean_psnr``: the mean of per-frame PSNR values.  A single lossless frame makes it
  ``inf`` (the mean of anything with an infinity is infinite).
- ``global_psnr``: the PSNR of the mean MSE over frames.  This is what FFmpeg's ``psnr``
  filter prints in its summary line (``PSNR y:... u:... v:...``).

JSON has no infinity: ``json_number`` renders ``inf`` as the string ``"inf"`` (the same
token FFmpeg prints), and ``parse_json_number`` reads it back.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from codeclab.video.frames import Plane

PEAK = 255
YUV_WEIGHTS = (6, 1, 1)


def squared_error(ref: Plane, dist: Plane) -> int:
    """Exact sum of squared differences of two uint8 arrays of the same shape."""
    if ref.shape != dist.shape:
        raise ValueError(f"arrays differ in shape: reference {ref.shape}, distorted {dist.shape}")
    if ref.size == 0:
        return 0
    diff = np.subtract(ref, dist, dtype=np.int32)
    np.multiply(diff, diff, out=diff)
    return int(diff.sum(dtype=np.int64))


class SseKernel:
    """Exact SSE of uint8 planes of one shape, with a reusable buffer (one per thread).

    The difference is taken modulo 2**16 and squared modulo 2**16; since the true square is
    at most 255**2 < 2**16, the result is exact, at 2 bytes per pixel.
    """

    def __init__(self, height: int, width: int) -> None:
        self.height = height
        self.width = width
        self._diff = np.empty((height, width), np.uint16)
        self._row_sums_fit = width * 255 * 255 < 2**32

    def sse(self, ref: Plane, dist: Plane) -> int:
        if ref.shape != (self.height, self.width) or dist.shape != ref.shape:
            raise ValueError(
                f"kernel is for {self.width}x{self.height} planes, got reference "
                f"{ref.shape} and distorted {dist.shape} (rows, columns)"
            )
        diff = self._diff
        np.subtract(ref, dist, out=diff, dtype=np.uint16)
        np.multiply(diff, diff, out=diff)
        if self._row_sums_fit:  # uint32 row sums, then a uint64 total: faster, still exact
            return int(diff.sum(axis=1, dtype=np.uint32).sum(dtype=np.uint64))
        return int(diff.sum(dtype=np.uint64))


def mse_to_psnr(mse: float, peak: int = PEAK) -> float:
    """``10*log10(peak**2 / mse)``; ``inf`` when ``mse`` is 0."""
    if mse < 0 or math.isnan(mse):
        raise ValueError(f"MSE must be a non-negative number, got {mse}")
    if mse == 0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse)


def yuv_mse(mse_y: float, mse_u: float, mse_v: float) -> float:
    """The 6:1:1 weighted MSE: ``(6*mse_y + mse_u + mse_v) / 8``."""
    wy, wu, wv = YUV_WEIGHTS
    return (wy * mse_y + wu * mse_u + wv * mse_v) / (wy + wu + wv)


def psnr_yuv(mse_y: float, mse_u: float, mse_v: float) -> float:
    """PSNR-YUV in the weighted-MSE form (see the module docstring)."""
    return mse_to_psnr(yuv_mse(mse_y, mse_u, mse_v))


def plane_psnr(ref: Plane, dist: Plane) -> float:
    """PSNR of one plane pair."""
    if ref.size == 0:
        raise ValueError("cannot compute the PSNR of an empty plane")
    return mse_to_psnr(squared_error(ref, dist) / ref.size)


def mean_psnr(values: Iterable[float]) -> float:
    """Mean of per-frame PSNR values; ``inf`` if any frame is lossless."""
    items = list(values)
    if not items:
        raise ValueError("no PSNR values to pool")
    if any(math.isinf(v) for v in items):
        return math.inf
    return math.fsum(items) / len(items)


def global_psnr(mses: Sequence[float]) -> float:
    """PSNR of the mean MSE over frames (FFmpeg's psnr summary); ``inf`` if all are 0."""
    if not mses:
        raise ValueError("no MSE values to pool")
    return mse_to_psnr(math.fsum(mses) / len(mses))


def json_number(value: float) -> float | str | None:
    """A JSON-safe number: ``inf`` -> ``"inf"``, ``-inf`` -> ``"-inf"``, NaN -> ``None``."""
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return float(value)


def parse_json_number(value: float | int | str | None) -> float:
    """Inverse of ``json_number``: ``"inf"`` -> ``math.inf``, ``None`` -> NaN."""
    if value is None:
        return math.nan
    if isinstance(value, str):
        if value not in ("inf", "-inf"):
            raise ValueError(f"expected a number, 'inf' or '-inf', got {value!r}")
        return math.inf if value == "inf" else -math.inf
    return float(value)
