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
Two backends compute the same numbers (``Backend``; ``PlaneKernel(..., backend=...)``):

- ``"numba"`` (the default when numba is installed): one compiled pass per plane pair, in
  ``codeclab.metrics._kernels``; about 4x faster than numpy and releases the GIL.
- ``"numpy"``: the fallback, always available, described below.  Setting the environment
  variable ``CODECLAB_NO_NUMBA=1`` makes it the default even when numba is installed.

Both give the exact same SSE and block sums, and per-window scores from the same float32
operations; only the order in which the float64 sum of the scores is taken differs (a
difference of the order of 1e-15).

The numpy backend is vectorised numpy with exact integer block sums, run strip by strip
(about 50 block rows of 720p at a time), each strip going from pixels to summed window
scores before the next, over preallocated buffers and prebuilt views.  Per pixel the kernel
needs ``a``, ``b``, ``d*d`` with ``d = a - b``, and ``a*b``; both products are below
2**16, so everything runs in ``uint16``: ``d`` wraps modulo 2**16 and so does ``d*d``,
which is therefore exact.  Block sums of the products would overflow 16 bits, so they are
kept as low-byte and high-byte sums (each <= 16*255 per block, <= 64*255 per window): the
high bytes are summed as such, the low-byte sums come out as (sum of products - 256 * sum
of high bytes) modulo 2**16, and the window stage rebuilds ``lo + 256*hi`` in int32.  Rows
are summed in groups of four by adding four contiguous "row phase" arrays; the four 16-bit
lanes of each ``uint64`` word are then added by one multiplication with
``0x0001000100010001`` (the sum lands in the top lane).  The window formula runs in int32
(exact, all values < 2**31) followed by the same float32 operations as ``ssim_end1``; the
per-window scores are summed in float64.  The block sums of ``d*d`` are the plane's squared
error, so PSNR comes with no extra pass (the cropped-off border is added exactly).
Little-endian byte order is assumed for the lane views (as on x86 and ARM); the module
refuses to import elsewhere.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from codeclab.metrics._kernels import JitKernels, jit_kernels, numba_disabled
from codeclab.metrics.psnr import squared_error
from codeclab.video.frames import Plane

if sys.byteorder != "little":  # the uint64 lane views below read the top 16 bits as lane 3
    raise ImportError("codeclab.metrics.ssim needs a little-endian machine")

SSIM_C1 = int(0.01 * 0.01 * 255 * 255 * 64 + 0.5)
SSIM_C2 = int(0.03 * 0.03 * 255 * 255 * 64 * 63 + 0.5)
MIN_PLANE_SIDE = 8

Backend = Literal["numba", "numpy"]
BACKENDS: tuple[Backend, ...] = get_args(Backend)

_LANE_SUM = np.uint64(0x0001_0001_0001_0001)
_BYTE_SHIFT = np.uint16(8)
# Pixels per strip (at least two block rows are taken).  Each strip costs ~35 numpy calls
# of ~1.5 us each whatever its size, which outweighs cache effects: on a 720p luma plane
# 256k-pixel strips took 2.5 ms, 64k 3.0 ms, 20k 4.6 ms (and one whole-plane pass 3.9 ms).
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


def default_backend() -> Backend:
    """``"numba"`` when numba is installed and ``CODECLAB_NO_NUMBA`` is not set, else numpy.

    The first call with numba imports it and compiles (or loads) the kernels.
    """
    if numba_disabled() or jit_kernels() is None:
        return "numpy"
    return "numba"


def resolve_backend(backend: Backend | None) -> Backend:
    """``backend``, or the default for ``None``; raises if numba is asked for but missing."""
    if backend is None:
        return default_backend()
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "numba" and jit_kernels() is None:
        raise ValueError(
            "backend 'numba' needs the numba package (pip install numba); "
            "backend 'numpy' works without it"
        )
    return backend


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
    """Scores planes of one shape with one backend; one instance per thread.

    ``score(ref, dist)`` returns the plane's SSIM (definition above) and exact SSE.
    ``backend`` defaults to ``default_backend()``; ``strip_pixels`` tunes the numpy
    backend only.
    """

    def __init__(
        self,
        height: int,
        width: int,
        *,
        strip_pixels: int = STRIP_PIXELS,
        backend: Backend | None = None,
    ) -> None:
        if height < MIN_PLANE_SIDE or width < MIN_PLANE_SIDE:
            raise ValueError(
                f"SSIM needs planes of at least {MIN_PLANE_SIDE}x{MIN_PLANE_SIDE} pixels "
                f"(one 8x8 window), got {width}x{height}"
            )
        self.height = height
        self.width = width
        self.backend = resolve_backend(backend)
        kernels = jit_kernels() if self.backend == "numba" else None
        self._impl = (
            _JitPlaneKernel(height, width, kernels)
            if kernels is not None
            else _NumpyPlaneKernel(height, width, strip_pixels=strip_pixels)
        )

    def score(self, ref: Plane, dist: Plane) -> PlaneScore:
        height, width = _check_pair(ref, dist)
        if (height, width) != (self.height, self.width):
            raise ValueError(
                f"kernel is for {self.width}x{self.height} planes, got {width}x{height}"
            )
        return self._impl.score(ref, dist)


class _JitPlaneKernel:
    """The numba backend for planes of one (checked) shape."""

    def __init__(self, height: int, width: int, kernels: JitKernels) -> None:
        self._kernels = kernels
        self._windows = (height // 4 - 1) * (width // 4 - 1)
        self._pixels = height * width

    def score(self, ref: Plane, dist: Plane) -> PlaneScore:
        window_sum, sse = self._kernels.ssim_sse(ref, dist)
        return PlaneScore(ssim=window_sum / self._windows, sse=sse, pixels=self._pixels)


class _NumpyPlaneKernel:
    """The numpy backend: reusable buffers to score planes of one (checked) shape.

    The plane is processed in horizontal strips of block rows, each carried from pixels to
    summed window scores before the next starts, so the working set stays a few MB.  All
    arrays, and the views of them each strip works on, are made here once: fresh large
    temporaries cost page faults on every call, and building views costs Python time.
    """

    def __init__(self, height: int, width: int, *, strip_pixels: int) -> None:
        rows, cols = height // 4, width // 4
        self.block_rows, self.block_cols = rows, cols
        crop_w = 4 * cols
        groups = max(2, min(rows, strip_pixels // (4 * crop_w)))  # block rows per strip
        pixels = groups * crop_w  # per row phase and quantity
        blocks = groups * cols
        # Byte sums of a block are <= 16*255: uint32 totals of a strip are exact (and faster).
        sum_type = np.uint32 if blocks * 16 * 255 < 2**32 else np.uint64
        buffers = _Buffers(
            x=np.empty((4, _QUANTITIES, pixels), np.uint16),
            v=np.empty((_QUANTITIES, pixels), np.uint16),
            shifted=np.empty((2, pixels), np.uint16),
            lanes=np.empty((_QUANTITIES, blocks), np.uint64),
            block_sums=np.empty((_QUANTITIES, blocks + cols), np.uint16),
            pairs=np.empty((_QUANTITIES, blocks), np.uint16),
            win=np.empty((_QUANTITIES, blocks), np.uint16),
            ints=np.empty((5, blocks), np.int32),
            floats=np.empty((4, blocks), np.float32),
            ratio=np.empty((2, blocks), np.float32),
        )
        self._plans = [
            _StripPlan.build(
                group0=group0,
                groups=min(groups, rows - group0),
                carried=0 if group0 == 0 else 1,
                cols=cols,
                sum_type=sum_type,
                buffers=buffers,
            )
            for group0 in range(0, rows, groups)
        ]

    def score(self, ref: Plane, dist: Plane) -> PlaneScore:
        height, width = ref.shape
        rows, cols = self.block_rows, self.block_cols
        crop_h, crop_w = 4 * rows, 4 * cols
        # Source rows 4i+j as [j, i, :]: the copy of a strip is one call per plane.
        ref_phases = ref[:crop_h, :crop_w].reshape(rows, 4, crop_w).swapaxes(0, 1)
        dist_phases = dist[:crop_h, :crop_w].reshape(rows, 4, crop_w).swapaxes(0, 1)
        ssim_sum = 0.0
        sse = 0
        for plan in self._plans:
            low, high, window_sum = plan.run(ref_phases, dist_phases)
            sse += low + 256 * high
            ssim_sum += window_sum
        if crop_h < height:
            sse += squared_error(ref[crop_h:], dist[crop_h:])
        if crop_w < width:
            sse += squared_error(ref[:crop_h, crop_w:], dist[:crop_h, crop_w:])
        ssim = ssim_sum / ((rows - 1) * (cols - 1))
        return PlaneScore(ssim=ssim, sse=sse, pixels=height * width)


_Array16 = npt.NDArray[np.uint16]
_TWO_ONE = np.array([[2], [1]], np.int32)


@dataclass(frozen=True)
class _Buffers:
    """A PlaneKernel's arrays, shared by its strips (which run one after another)."""

    x: _Array16  # x[j, k]: rows 4i+j of quantity k ("row phase" j), one strip
    v: _Array16  # 4-row sums of each quantity
    shifted: _Array16
    lanes: npt.NDArray[np.uint64]  # lane-sum products; the top 16 bits are block sums
    block_sums: _Array16  # the strip's block sums after the previous strip's last row
    pairs: _Array16
    win: _Array16
    ints: npt.NDArray[np.int32]
    floats: npt.NDArray[np.float32]
    ratio: npt.NDArray[np.float32]


@dataclass(frozen=True)
class _StripPlan:
    """One strip's work: prebuilt views of the kernel's buffers, then ``run``.

    ``run`` returns the strip's low- and high-byte sums of d*d (its squared error is
    ``low + 256*high``) and the sum of its windows' SSIM.
    """

    rows: slice  # block rows of the strip in the source "phase" views
    x_a: _Array16  # copy targets for a and b, as (4, groups, crop_w)
    x_b: _Array16
    a: _Array16
    b: _Array16
    dd: _Array16
    ab: _Array16
    products: _Array16
    high: _Array16
    x01: _Array16  # phases 0, 1 and 2, 3 of every quantity
    x23: _Array16
    x0: _Array16
    x1: _Array16
    v: _Array16
    v_products: _Array16
    v_high: _Array16
    shifted: _Array16
    v64: npt.NDArray[np.uint64]
    lanes: npt.NDArray[np.uint64]
    lane_tops: _Array16
    new_blocks: _Array16
    sse_rows: _Array16
    sum_type: type[np.unsignedinteger[Any]]
    windows: int  # valid window rows in this strip (0 for a first strip of one block row)
    upper: _Array16  # block rows r and r+1 of every window, flattened
    lower: _Array16
    pairs: _Array16
    pairs_left: _Array16
    pairs_right: _Array16
    win: npt.NDArray[np.uint16]
    ints: npt.NDArray[np.int32]
    floats: npt.NDArray[np.float32]
    ratio: npt.NDArray[np.float32]
    scores: npt.NDArray[np.float32]
    carry_from: _Array16
    carry_to: _Array16

    @classmethod
    def build(
        cls,
        *,
        group0: int,
        groups: int,
        carried: int,
        cols: int,
        sum_type: type[np.unsignedinteger[Any]],
        buffers: _Buffers,
    ) -> _StripPlan:
        crop_w = 4 * cols
        n = groups * crop_w
        x = buffers.x[:, :, :n]
        v = buffers.v[:, :n]
        lanes = buffers.lanes[:, : groups * cols]
        block_sums = buffers.block_sums
        pairs, ratio = buffers.pairs, buffers.ratio
        new_blocks = block_sums[:, carried * cols : (carried + groups) * cols]
        window_rows = carried + groups - 1
        m = max(window_rows, 1) * cols  # flattened pairs; the last window is left out
        last = (carried + groups - 1) * cols
        return cls(
            rows=slice(group0, group0 + groups),
            x_a=x[:, _A].reshape(4, groups, crop_w),
            x_b=x[:, _B].reshape(4, groups, crop_w),
            a=x[:, _A],
            b=x[:, _B],
            dd=x[:, _DD_LO],
            ab=x[:, _AB_LO],
            products=x[:, _DD_LO : _AB_LO + 1],
            high=x[:, _DD_HI : _AB_HI + 1],
            x01=x[0:2],
            x23=x[2:4],
            x0=x[0],
            x1=x[1],
            v=v,
            v_products=v[_DD_LO : _AB_LO + 1],
            v_high=v[_DD_HI : _AB_HI + 1],
            shifted=buffers.shifted[:, :n],
            v64=v.view(np.uint64),
            lanes=lanes,
            lane_tops=lanes.view(np.uint16)[:, 3::4],
            new_blocks=new_blocks,
            sse_rows=new_blocks[_DD_LO : _DD_HI + 1 : _DD_HI - _DD_LO],
            sum_type=sum_type,
            windows=window_rows,
            upper=block_sums[:, :m],
            lower=block_sums[:, cols : cols + m],
            pairs=pairs[:, :m],
            pairs_left=pairs[:, : m - 1],
            pairs_right=pairs[:, 1:m],
            win=buffers.win[:, : m - 1],
            ints=buffers.ints[:, : m - 1],
            floats=buffers.floats[:, : m - 1],
            ratio=ratio[:, : m - 1],
            scores=ratio[0, :m].reshape(max(window_rows, 1), cols)[:, : cols - 1],
            carry_from=block_sums[:, last : last + cols],
            carry_to=block_sums[:, :cols],
        )

    def run(self, ref_phases: Plane, dist_phases: Plane) -> tuple[int, int, float]:
        add, sub, mul = np.add, np.subtract, np.multiply
        # Block sums of the strip.
        np.copyto(self.x_a, ref_phases[:, self.rows])
        np.copyto(self.x_b, dist_phases[:, self.rows])
        sub(self.a, self.b, out=self.dd)  # wraps modulo 2**16 ...
        mul(self.dd, self.dd, out=self.dd)  # ... and so does the square, < 2**16 hence exact
        mul(self.a, self.b, out=self.ab)
        np.right_shift(self.products, _BYTE_SHIFT, out=self.high)
        add(self.x01, self.x23, out=self.x01)
        add(self.x0, self.x1, out=self.v)
        # v holds 4-row sums of the full products (modulo 2**16) and of their high bytes;
        # the 4-row sums of the low bytes (<= 1020) are the difference, modulo 2**16.
        np.left_shift(self.v_high, _BYTE_SHIFT, out=self.shifted)
        sub(self.v_products, self.shifted, out=self.v_products)
        mul(self.v64, _LANE_SUM, out=self.lanes)
        np.copyto(self.new_blocks, self.lane_tops)
        low, high = self.sse_rows.sum(axis=1, dtype=self.sum_type)
        window_sum = self._window_sum() if self.windows else 0.0
        np.copyto(self.carry_to, self.carry_from)
        return int(low), int(high), window_sum

    def _window_sum(self) -> float:
        """Sum of ssim_end1 over the strip's 8x8 windows.

        Works on flattened block rows: the window "after" the last block of a row
        straddles two rows; it is computed (from real pixels, so without any division by
        zero) and left out of the sum.
        """
        add, sub, mul = np.add, np.subtract, np.multiply
        add(self.upper, self.lower, out=self.pairs)
        win = self.win
        add(self.pairs_left, self.pairs_right, out=win)  # <= 64*255: no overflow
        ints = self.ints
        # Exactly, in int32 (every value is < 2**30), with e = s1 - s2 and
        # ss = sum(d*d) + 2*sum(a*b), vars = 64*ss - s1^2 - s2^2, covar = 64*s12 - s1*s2:
        #   mean_num = 2*s1*s2 + c1           cov_num = 128*sum(a*b) - mean_num + c1 + c2
        #   mean_den = e^2 + mean_num         var_den = 64*sum(d*d) - e^2 + cov_num
        mul(win[_A : _B + 1], _TWO_ONE, out=ints[0:2], dtype=np.int32)  # 2*s1, s2
        sub(win[_A], win[_B], out=ints[4], dtype=np.int32)  # e
        mul(ints[4], ints[4], out=ints[4])  # e^2
        mul(win[_DD_HI : _AB_HI + 1], 256, out=ints[2:4], dtype=np.int32)
        add(ints[2:4], win[_DD_LO : _AB_LO + 1], out=ints[2:4])  # sum(d*d), sum(a*b)
        mul(ints[0], ints[1], out=ints[0])
        add(ints[0], SSIM_C1, out=ints[0])  # mean_num
        mul(ints[3], 128, out=ints[1])
        sub(ints[1], ints[0], out=ints[1])
        add(ints[1], SSIM_C1 + SSIM_C2, out=ints[1])  # cov_num
        mul(ints[2], 64, out=ints[3])
        sub(ints[3], ints[4], out=ints[3])
        add(ints[3], ints[1], out=ints[3])  # var_den
        add(ints[4], ints[0], out=ints[2])  # mean_den
        # ssim_end1's float32 steps: four int->float casts, two products, one quotient.
        np.copyto(self.floats, ints[0:4], casting="unsafe")
        mul(self.floats[0::2], self.floats[1::2], out=self.ratio)
        np.divide(self.ratio[0], self.ratio[1], out=self.ratio[0])
        return float(self.scores.sum(dtype=np.float64))


def plane_score(ref: Plane, dist: Plane, *, backend: Backend | None = None) -> PlaneScore:
    """SSIM and exact SSE of one plane pair (allocates a kernel; reuse PlaneKernel in loops)."""
    height, width = _check_pair(ref, dist)
    return PlaneKernel(height, width, backend=backend).score(ref, dist)


def ssim_plane(ref: Plane, dist: Plane, *, backend: Backend | None = None) -> float:
    """SSIM of one uint8 plane pair, as FFmpeg's ``ssim`` filter reports it for that plane."""
    return plane_score(ref, dist, backend=backend).ssim
