"""SSIM exactly as x264 and FFmpeg's ``ssim`` filter compute it, plus the exact SSE for free.

Definition (libavfilter/vf_ssim.c, 8-bit path, which is x264's ``x264_pixel_ssim_wxh``)
-------------------------------------------------------------------------------------
For one plane of ``h x w`` pixels, reference ``a`` and distorted ``b``:

1. Crop to ``4*(h//4) x 4*(w//4)`` (the last ``h % 4`` rows and ``w % 4`` columns are
   ignored) and cut into 4x4 blocks.  For every block take four integer sums::

       s1 = sum(a)   s2 = sum(b)   ss = sum(a*a + b*b)   s12 = sum(a*b)

2. A window is a 2x2 group of neighbouring blocks, i.e. 8x8 pixels; windows overlap with a
   stride of 4 pixels, so there are ``(h//4 - 1) * (w//4 - 1)`` of them.  The window sums
   (still integers, 64 pixels) go through ``ssim_end1``::

       c1    = int(0.01**2 * 255**2 * 64 + 0.5)        =    416
       c2    = int(0.03**2 * 255**2 * 64 * 63 + 0.5)   = 235963
       vars  = 64*ss  - s1*s1 - s2*s2                  (integer)
       covar = 64*s12 - s1*s2                          (integer)
       ssim  = (float(2*s1*s2 + c1) * float(2*covar + c2))
             / (float(s1*s1 + s2*s2 + c1) * float(vars + c2))    (float32 arithmetic)

   The constants and the order of integer and float32 operations are the C code's.

3. The plane's SSIM is the plain mean over all windows.  FFmpeg reports it per plane
   (Y, U, V) and per frame; x264's "SSIM Mean Y" is the same Y value.

A plane needs at least 8x8 pixels (one window); smaller planes raise ``ValueError``
(FFmpeg would divide by zero).

Implementation
--------------
Vectorised numpy with exact integer block sums, run strip by strip (a few dozen block rows
at a time) so that each strip goes from pixels to summed window scores while it is in
cache.  Per pixel the kernel needs ``a``, ``b``, ``d*d`` with ``d = a - b``, and ``a*b``;
both products are below 2**16, so everything runs in ``uint16``: ``d`` wraps modulo 2**16
and so does ``d*d``, which is therefore exact.  Block sums of the products would overflow
16 bits, so they are kept as low-byte and high-byte sums (each <= 16*255 per block, <=
64*255 per window): the high bytes are summed as such, the low-byte sums come out as
(sum of products - 256 * sum of high bytes) modulo 2**16, and the window stage rebuilds
``lo + 256*hi`` in int32.  Rows are summed in groups of four by adding four contiguous
"row phase" arrays; the four 16-bit lanes of each ``uint64`` word are then added by one
multiplication with ``0x0001000100010001`` (the sum lands in the top lane).  The window
formula runs in int32 (exact, all values < 2**31) followed by the same float32 operations
as ``ssim_end1``; the per-window scores are summed in float64.  The block sums of ``d*d``
are the plane's squared error, so PSNR comes with no extra pass (the cropped-off border
is added exactly).  Little-endian byte order is assumed for the lane views (as on x86 and
ARM); the module refuses to import elsewhere.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from codeclab.metrics.psnr import squared_error
from codeclab.video.frames import Plane

if sys.byteorder != "little":  # the uint64 lane views below read the top 16 bits as lane 3
    raise ImportError("codeclab.metrics.ssim needs a little-endian machine")

SSIM_C1 = int(0.01 * 0.01 * 255 * 255 * 64 + 0.5)
SSIM_C2 = int(0.03 * 0.03 * 255 * 255 * 64 * 63 + 0.5)
MIN_PLANE_SIDE = 8

_LANE_SUM = np.uint64(0x0001_0001_0001_0001)
_BYTE_SHIFT = np.uint16(8)
_LANE_SHIFT = np.uint64(48)
# Pixels per strip (at least two block rows are taken): larger strips mean fewer numpy
# calls, smaller ones a working set that stays in cache; 256k measured best at 720p.
STRIP_PIXELS = 256 * 1024
# Quantities in the strip buffer: a, b, lo(d*d), lo(a*b), hi(d*d), hi(a*b).
_A, _B, _DD_LO, _AB_LO, _DD_HI, _AB_HI = range(6)
_QUANTITIES = 6


@dataclass(frozen=True)
class PlaneScore:
    """SSIM of one plane and its exact sum of squared errors over every pixel."""

    ssim: float
    sse: int
    pixels: int

    @property
    def mse(self) -> float:
        return self.sse / self.pixels


def _check_pair(ref: Plane, dist: Plane) -> tuple[int, int]:
    if ref.shape != dist.shape:
        raise ValueError(f"planes differ in shape: reference {ref.shape}, distorted {dist.shape}")
    if ref.ndim != 2:
        raise ValueError(f"a plane must be 2-D, got shape {ref.shape}")
    if ref.dtype != np.uint8 or dist.dtype != np.uint8:
        raise ValueError(f"planes must be uint8, got {ref.dtype} and {dist.dtype}")
    height, width = ref.shape
    return int(height), int(width)


class PlaneKernel:
    """Reusable buffers to score planes of one shape; one instance per thread.

    ``score(ref, dist)`` returns the plane's SSIM (definition above) and exact SSE.  The
    plane is processed in horizontal strips of block rows, each strip carried from pixels
    to summed window scores while its data is still in cache.  Every array is allocated
    here, once: fresh large temporaries would cost page faults on every call.
    """

    def __init__(self, height: int, width: int, *, strip_pixels: int = STRIP_PIXELS) -> None:
        if height < MIN_PLANE_SIDE or width < MIN_PLANE_SIDE:
            raise ValueError(
                f"SSIM needs planes of at least {MIN_PLANE_SIDE}x{MIN_PLANE_SIDE} pixels "
                f"(one 8x8 window), got {width}x{height}"
            )
        self.height = height
        self.width = width
        rows, cols = height // 4, width // 4
        self.block_rows, self.block_cols = rows, cols
        crop_w = 4 * cols
        self._strip_groups = max(2, min(rows, strip_pixels // (4 * crop_w)))
        pixels = self._strip_groups * crop_w  # per row phase and quantity
        blocks = self._strip_groups * cols
        # Byte sums of a block are <= 16*255: uint32 totals of a strip are exact (and faster).
        self._sum_type = np.uint32 if blocks * 16 * 255 < 2**32 else np.uint64
        # x[j, k] holds rows 4i+j of quantity k (phase-major), so the four rows of every
        # block are summed by adding four contiguous arrays.
        self._x = np.empty((4, _QUANTITIES, pixels), np.uint16)
        self._v = np.empty((_QUANTITIES, pixels), np.uint16)
        self._shifted = np.empty((2, pixels), np.uint16)
        self._lanes = np.empty((_QUANTITIES, blocks), np.uint64)
        # Block sums of the strip, preceded by the last block row of the previous strip.
        self._blocks = np.empty((_QUANTITIES, blocks + cols), np.uint16)
        self._pairs = np.empty((_QUANTITIES, blocks), np.uint16)
        self._win = np.empty((_QUANTITIES, blocks), np.uint16)
        self._i32 = np.empty((5, blocks), np.int32)
        self._f32 = np.empty((4, blocks), np.float32)

    def score(self, ref: Plane, dist: Plane) -> PlaneScore:
        height, width = _check_pair(ref, dist)
        if (height, width) != (self.height, self.width):
            raise ValueError(
                f"kernel is for {self.width}x{self.height} planes, got {width}x{height}"
            )
        rows, cols = self.block_rows, self.block_cols
        blocks = self._blocks
        ssim_sum = 0.0
        sse = 0
        carried = 0  # block rows at the start of `blocks` carried over from the last strip
        for group0 in range(0, rows, self._strip_groups):
            groups = min(self._strip_groups, rows - group0)
            self._strip_block_sums(ref, dist, 4 * group0, groups, blocks[:, carried * cols :])
            new = blocks[:, carried * cols : (carried + groups) * cols]
            low, high = new[_DD_LO : _DD_HI + 1 : _DD_HI - _DD_LO].sum(axis=1, dtype=self._sum_type)
            sse += int(low) + 256 * int(high)
            window_rows = carried + groups - 1
            if window_rows > 0:
                ssim_sum += self._window_scores(window_rows)
            last = (carried + groups - 1) * cols
            np.copyto(blocks[:, :cols], blocks[:, last : last + cols])
            carried = 1
        crop_h, crop_w = 4 * rows, 4 * cols
        if crop_h < height:
            sse += squared_error(ref[crop_h:], dist[crop_h:])
        if crop_w < width:
            sse += squared_error(ref[:crop_h, crop_w:], dist[:crop_h, crop_w:])
        ssim = ssim_sum / ((rows - 1) * (cols - 1))
        return PlaneScore(ssim=ssim, sse=sse, pixels=height * width)

    def _strip_block_sums(
        self, ref: Plane, dist: Plane, row0: int, groups: int, out: npt.NDArray[np.uint16]
    ) -> None:
        """Sums of the 4x4 blocks in pixel rows row0 .. row0 + 4*groups into ``out``.

        ``out[k, i*cols + c]`` for quantity k: a, b, then the low and high bytes of d*d
        and of a*b (each byte sum of a block fits 16 bits with room to spare).
        """
        cols = self.block_cols
        crop_w = 4 * cols
        n = groups * crop_w
        x = self._x[:, :, :n]
        for k, plane in ((_A, ref), (_B, dist)):
            strip = plane[row0 : row0 + 4 * groups, :crop_w].reshape(groups, 4, crop_w)
            np.copyto(x[:, k].reshape(4, groups, crop_w), strip.swapaxes(0, 1))
        a, b, dd, ab = x[:, _A], x[:, _B], x[:, _DD_LO], x[:, _AB_LO]
        np.subtract(a, b, out=dd)  # wraps modulo 2**16 ...
        np.multiply(dd, dd, out=dd)  # ... and so does the square, < 2**16 hence exact
        np.multiply(a, b, out=ab)
        np.right_shift(x[:, _DD_LO : _AB_LO + 1], _BYTE_SHIFT, out=x[:, _DD_HI : _AB_HI + 1])
        v = self._v[:, :n]
        np.add(x[0], x[1], out=v)
        np.add(v, x[2], out=v)
        np.add(v, x[3], out=v)
        # v holds 4-row sums of the full products (modulo 2**16) and of their high bytes;
        # the 4-row sum of the low bytes (<= 1020) is their difference, modulo 2**16.
        shifted = self._shifted[:, :n]
        np.left_shift(v[_DD_HI : _AB_HI + 1], _BYTE_SHIFT, out=shifted)
        np.subtract(v[_DD_LO : _AB_LO + 1], shifted, out=v[_DD_LO : _AB_LO + 1])
        lanes = self._lanes[:, : groups * cols]
        np.multiply(v.view(np.uint64), _LANE_SUM, out=lanes)
        np.copyto(out[:, : groups * cols], lanes.view(np.uint16)[:, 3::4])

    def _window_scores(self, window_rows: int) -> float:
        """Sum of ssim_end1 over the 8x8 windows of ``window_rows + 1`` buffered block rows.

        Works on the flattened block rows: the window "after" the last block of a row
        straddles two rows; it is computed (from real pixels, so without any division by
        zero) and left out of the sum.
        """
        cols = self.block_cols
        m = window_rows * cols
        n = m - 1
        blocks = self._blocks
        pairs = self._pairs[:, :m]
        np.add(blocks[:, :m], blocks[:, cols : cols + m], out=pairs)
        win = self._win[:, :n]
        np.add(pairs[:, :-1], pairs[:, 1:], out=win)  # <= 64*255 per quantity: no overflow
        sums = self._i32[:, :n]  # s1, s2, sum(d*d), sum(a*b) of each window, and scratch
        np.copyto(sums[0:2], win[_A : _B + 1])
        np.multiply(win[_DD_HI : _AB_HI + 1], 256, out=sums[2:4], dtype=np.int32)
        np.add(sums[2:4], win[_DD_LO : _AB_LO + 1], out=sums[2:4])
        s1, s2, sum_dd, sum_ab, t = sums
        # In int32, exactly (every value below is < 2**30), with e = s1 - s2:
        #   2*s1*s2 + c1       = mean_num
        #   2*covar + c2       = 128*sum_ab - mean_num + c1 + c2          = cov_num
        #   s1^2 + s2^2 + c1   = e^2 + mean_num                           = mean_den
        #   vars + c2          = 64*sum_dd - e^2 + cov_num                = var_den
        # because ss = sum_dd + 2*sum_ab, vars = 64*ss - s1^2 - s2^2, covar = 64*s12 - s1*s2.
        mean_num, e2, mean_den, var_den, cov_num = t, s1, s2, sum_dd, sum_ab
        np.multiply(s1, s2, out=mean_num)
        np.multiply(mean_num, 2, out=mean_num)
        np.add(mean_num, SSIM_C1, out=mean_num)
        np.subtract(s1, s2, out=e2)
        np.multiply(e2, e2, out=e2)
        np.multiply(sum_ab, 128, out=cov_num)
        np.subtract(cov_num, mean_num, out=cov_num)
        np.add(cov_num, SSIM_C1 + SSIM_C2, out=cov_num)
        np.add(e2, mean_num, out=mean_den)
        np.multiply(sum_dd, 64, out=var_den)
        np.subtract(var_den, e2, out=var_den)
        np.add(var_den, cov_num, out=var_den)
        # The float32 steps of ssim_end1: (float)num1 * (float)num2 / ((float)den1 * ...).
        f32 = self._f32[:, :n]
        np.copyto(f32[0], mean_num, casting="unsafe")
        np.copyto(f32[1], cov_num, casting="unsafe")
        np.copyto(f32[2:4], sums[1:3], casting="unsafe")  # mean_den, var_den
        np.multiply(f32[0], f32[1], out=f32[0])
        np.multiply(f32[2], f32[3], out=f32[2])
        np.divide(f32[0], f32[2], out=f32[0])
        scores = self._f32[0, :m].reshape(window_rows, cols)[:, : cols - 1]
        return float(scores.sum(dtype=np.float64))


def plane_score(ref: Plane, dist: Plane) -> PlaneScore:
    """SSIM and exact SSE of one plane pair (allocates a kernel; reuse PlaneKernel in loops)."""
    height, width = _check_pair(ref, dist)
    return PlaneKernel(height, width).score(ref, dist)


def ssim_plane(ref: Plane, dist: Plane) -> float:
    """SSIM of one uint8 plane pair, as FFmpeg's ``ssim`` filter reports it for that plane."""
    return plane_score(ref, dist).ssim
