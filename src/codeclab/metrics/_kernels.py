"""Compiled (numba) kernels for the quality pass: SSIM and exact SSE in one pass per plane.

``jit_kernels()`` imports numba and compiles the kernels on its first call (numba's import
alone takes ~0.4 s, so importing this module costs nothing until a kernel is wanted), then
returns the same ``JitKernels`` every time; it returns ``None`` when numba is not
installed, and callers fall back to the pure-numpy code.  Setting the environment variable
``CODECLAB_NO_NUMBA=1`` makes ``numba_disabled()`` true: the metrics then default to numpy
(an explicit ``backend="numba"`` still gets the kernels).

Compilation is paid once per machine, not per process or per frame: the kernels are built
with ``cache=True`` (numba keeps the machine code in ``__pycache__`` beside this file, or
in ``NUMBA_CACHE_DIR``), for one signature each, so later processes only load them.
``jit_kernels()`` also runs every kernel once on a tiny plane, so compiling or loading
never lands inside the first measured frame.  Both kernels release the GIL (``nogil``):
threads scoring different frames run them in parallel.

The kernels take C-contiguous read-only uint8 planes (``JitKernels`` makes read-only views;
no pixel is copied unless a plane is not contiguous) and follow the definition in
``codeclab.metrics.ssim`` exactly: integer block sums (int32, no sum can reach 2**31 for
8-bit pixels), ``ssim_end1`` with the same integer steps and float32 operations as the C
code, and per-window scores summed in float64 (FFmpeg sums a row of windows in float32 and
the rows in double; both sums differ from the exact one by far less than 1e-6).  The SSE
uses ``sum((a-b)**2) = sum(a*a + b*b) - 2*sum(a*b)`` on the block sums, so it is free, and
is summed in int64; the pixels cropped off by SSIM are added separately.
"""

from __future__ import annotations

import functools
import importlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from codeclab.video.frames import Plane

NO_NUMBA_ENV = "CODECLAB_NO_NUMBA"
SSIM_C1 = 416  # int(0.01**2 * 255**2 * 64 + 0.5), as in ssim_end1
SSIM_C2 = 235963  # int(0.03**2 * 255**2 * 64 * 63 + 0.5)

_i32 = np.int32
_f32 = np.float32


def numba_disabled() -> bool:
    """True when ``CODECLAB_NO_NUMBA`` is set to anything but "" or "0"."""
    return os.environ.get(NO_NUMBA_ENV, "") not in ("", "0")


@dataclass(frozen=True)
class JitKernels:
    """The compiled kernels, wrapped to accept any uint8 planes of matching shapes.

    ``ssim_sse(ref, dist)`` returns the sum of the per-window SSIM scores (divide by the
    window count ``(h//4 - 1) * (w//4 - 1)`` for the plane's SSIM) and the exact SSE of the
    whole plane; it needs planes of at least 8x8 pixels.  ``sse(ref, dist)`` is the exact
    SSE alone.  Shapes and dtypes are the caller's to check.
    """

    _ssim_sse: Callable[[Plane, Plane], tuple[float, int]]
    _sse: Callable[[Plane, Plane], int]

    def ssim_sse(self, ref: Plane, dist: Plane) -> tuple[float, int]:
        window_sum, sse = self._ssim_sse(_frozen(ref), _frozen(dist))
        return float(window_sum), int(sse)

    def sse(self, ref: Plane, dist: Plane) -> int:
        return int(self._sse(_frozen(ref), _frozen(dist)))


def jit_kernels() -> JitKernels | None:
    """The compiled kernels (compiled or loaded from cache, and run once), or None.

    Thread-safe: concurrent first calls wait for one compilation.
    """
    with _LOAD_LOCK:
        return _load()


_LOAD_LOCK = threading.Lock()


@functools.cache
def _load() -> JitKernels | None:
    try:
        # numba ships no type information: reached through importlib, it is typed Any.
        numba = importlib.import_module("numba")
    except ImportError:
        return None
    plane = numba.types.Array(numba.types.uint8, 2, "C", readonly=True)
    options: dict[str, Any] = {"cache": True, "nogil": True, "error_model": "numpy"}
    kernels = JitKernels(
        _ssim_sse=cast(
            Callable[[Plane, Plane], tuple[float, int]],
            numba.njit(numba.types.Tuple((numba.float64, numba.int64))(plane, plane), **options)(
                _ssim_sse
            ),
        ),
        _sse=cast(
            Callable[[Plane, Plane], int],
            numba.njit(numba.int64(plane, plane), **options)(_sse),
        ),
    )
    tiny = np.zeros((8, 8), np.uint8)
    kernels.ssim_sse(tiny, tiny)
    kernels.sse(tiny, tiny)
    return kernels


def _frozen(plane: Plane) -> Plane:
    """A C-contiguous read-only view (the one type the kernels are compiled for)."""
    view = np.ascontiguousarray(plane).view()
    view.flags.writeable = False
    return view


# --- kernel sources: plain Python that numba compiles; never called uncompiled ---------


def _ssim_sse(a: Plane, b: Plane) -> tuple[float, int]:
    """Window-score sum and SSE, one block row (4 pixel rows) at a time.

    Per block row: 4-row column sums of a, b, a*a + b*b and a*b (``col_sums``), then the 4x4
    block sums (``blocks[r % 2]``), then the windows that pair this block row with the
    previous one.  Every loop runs over contiguous arrays without early exits, so LLVM
    vectorises each of them; the int32 casts keep the window arithmetic in 32-bit lanes
    (all values are below 2**31) so the int -> float32 conversions vectorise too.
    """
    height, width = a.shape
    rows, cols = height // 4, width // 4
    crop_w = 4 * cols
    col_sums = np.empty((4, crop_w), np.int32)
    col_a, col_b, col_ss, col_ab = col_sums[0], col_sums[1], col_sums[2], col_sums[3]
    blocks = np.zeros((2, 4, cols), np.int32)
    window_sums = np.zeros(cols - 1, np.float64)
    sse_cols = np.zeros(cols, np.int64)
    for r in range(rows):
        y = 4 * r
        a0, a1, a2, a3 = a[y], a[y + 1], a[y + 2], a[y + 3]
        b0, b1, b2, b3 = b[y], b[y + 1], b[y + 2], b[y + 3]
        for x in range(crop_w):
            p0, p1, p2, p3 = _i32(a0[x]), _i32(a1[x]), _i32(a2[x]), _i32(a3[x])
            q0, q1, q2, q3 = _i32(b0[x]), _i32(b1[x]), _i32(b2[x]), _i32(b3[x])
            col_a[x] = p0 + p1 + p2 + p3
            col_b[x] = q0 + q1 + q2 + q3
            squares_a = p0 * p0 + p1 * p1 + p2 * p2 + p3 * p3
            col_ss[x] = squares_a + q0 * q0 + q1 * q1 + q2 * q2 + q3 * q3
            col_ab[x] = p0 * q0 + p1 * q1 + p2 * q2 + p3 * q3
        cur = blocks[r % 2]
        cur_a, cur_b, cur_ss, cur_ab = cur[0], cur[1], cur[2], cur[3]
        for c in range(cols):
            x = 4 * c
            cur_a[c] = col_a[x] + col_a[x + 1] + col_a[x + 2] + col_a[x + 3]
            cur_b[c] = col_b[x] + col_b[x + 1] + col_b[x + 2] + col_b[x + 3]
            ss = _i32(col_ss[x] + col_ss[x + 1] + col_ss[x + 2] + col_ss[x + 3])
            ab = _i32(col_ab[x] + col_ab[x + 1] + col_ab[x + 2] + col_ab[x + 3])
            cur_ss[c] = ss
            cur_ab[c] = ab
            sse_cols[c] += ss - 2 * ab
        if r == 0:
            continue
        prev = blocks[(r - 1) % 2]
        prev_a, prev_b, prev_ss, prev_ab = prev[0], prev[1], prev[2], prev[3]
        for c in range(cols - 1):
            s1 = _i32(prev_a[c] + prev_a[c + 1] + cur_a[c] + cur_a[c + 1])
            s2 = _i32(prev_b[c] + prev_b[c + 1] + cur_b[c] + cur_b[c + 1])
            ss = _i32(prev_ss[c] + prev_ss[c + 1] + cur_ss[c] + cur_ss[c + 1])
            s12 = _i32(prev_ab[c] + prev_ab[c + 1] + cur_ab[c] + cur_ab[c + 1])
            variance = _i32(ss * 64 - s1 * s1 - s2 * s2)
            covariance = _i32(s12 * 64 - s1 * s2)
            numerator = _f32(_i32(2 * s1 * s2 + SSIM_C1)) * _f32(_i32(2 * covariance + SSIM_C2))
            denominator = _f32(_i32(s1 * s1 + s2 * s2 + SSIM_C1)) * _f32(_i32(variance + SSIM_C2))
            window_sums[c] += numerator / denominator
    window_sum = 0.0
    for c in range(cols - 1):
        window_sum += window_sums[c]
    sse = 0
    for c in range(cols):
        sse += sse_cols[c]
    # The pixels SSIM crops off: the right-hand columns of the block rows, the bottom rows.
    for y in range(4 * rows):
        for x in range(crop_w, width):
            d = _i32(a[y, x]) - _i32(b[y, x])
            sse += int(d * d)
    for y in range(4 * rows, height):
        for x in range(width):
            d = _i32(a[y, x]) - _i32(b[y, x])
            sse += int(d * d)
    return window_sum, sse


def _sse(a: Plane, b: Plane) -> int:
    """Exact SSE of two planes of the same shape (int64 sums)."""
    sse = 0
    for y in range(a.shape[0]):
        ra, rb = a[y], b[y]
        row = 0
        for x in range(a.shape[1]):
            d = _i32(ra[x]) - _i32(rb[x])
            row += int(d * d)
        sse += row
    return sse
