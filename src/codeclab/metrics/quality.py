"""The lab's quality measurement: decoder output against the source, frame by frame.

Per frame: exact MSE of Y, U and V; PSNR of each plane and the 6:1:1 PSNR-YUV (weighted-MSE
form, see ``codeclab.metrics.psnr``); SSIM of the luma plane as FFmpeg's ``ssim`` filter
and x264 compute it (see ``codeclab.metrics.ssim``).  Chroma SSIM is not part of the
report (``ssim.ssim_plane`` computes it for any plane).

Over the clip, ``QualitySummary`` names each pooling: ``*_mean`` is the mean of per-frame
values and ``*_global`` the PSNR of the mean MSE (FFmpeg's psnr summary).  The mean of
per-frame PSNR with one lossless (infinite) frame is infinite; ``to_dict`` renders that
as ``"inf"``.

``measure`` memory-maps both raw files and scores frames on a thread pool, each thread with
its own kernels.  With numba installed (see ``codeclab.metrics.ssim`` for the backends and
``CODECLAB_NO_NUMBA``) each plane pair takes one compiled pass that releases the GIL; the
numpy fallback releases it inside its loops.  The first ``measure`` of a process with numba
imports it and loads the compiled kernels (~1 s; several seconds the very first time on a
machine, when they are compiled and cached), before any frame is scored.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from fractions import Fraction

import numpy as np

from codeclab.metrics._kernels import jit_kernels
from codeclab.metrics.psnr import (
    SseKernel,
    global_psnr,
    json_number,
    mean_psnr,
    mse_to_psnr,
    psnr_yuv,
    yuv_mse,
)
from codeclab.metrics.ssim import Backend, PlaneKernel, resolve_backend
from codeclab.video.frames import Frame, Plane, VideoFormat
from codeclab.video.rawfile import RawVideo

# Frames per task handed to a worker thread: enough to amortise scheduling, small enough
# to balance two or more threads on short clips.
_FRAMES_PER_TASK = 4


@dataclass(frozen=True)
class FrameQuality:
    """Quality of one decoded frame against its source frame."""

    index: int
    mse_y: float
    mse_u: float
    mse_v: float
    psnr_y: float
    psnr_u: float
    psnr_v: float
    psnr_yuv: float
    ssim_y: float

    def to_dict(self) -> dict[str, float | int | str | None]:
        out: dict[str, float | int | str | None] = {"index": self.index}
        for f in fields(self):
            if f.name != "index":
                out[f.name] = json_number(getattr(self, f.name))
        return out


@dataclass(frozen=True)
class QualitySummary:
    """Clip-level quality; every field says how it pools the frames."""

    frame_count: int
    mse_y_mean: float
    mse_u_mean: float
    mse_v_mean: float
    psnr_y_mean: float  # mean of per-frame PSNR-Y
    psnr_u_mean: float
    psnr_v_mean: float
    psnr_yuv_mean: float  # mean of per-frame PSNR-YUV
    psnr_y_global: float  # PSNR of the mean MSE-Y (FFmpeg's psnr summary "y:")
    psnr_u_global: float
    psnr_v_global: float
    psnr_yuv_global: float  # PSNR of the 6:1:1 weighted mean MSEs
    psnr_y_min: float  # worst frame
    ssim_y_mean: float  # mean of per-frame SSIM-Y (FFmpeg's ssim summary "Y:")
    ssim_y_min: float  # worst frame

    def to_dict(self) -> dict[str, float | int | str | None]:
        out: dict[str, float | int | str | None] = {"frame_count": self.frame_count}
        for f in fields(self):
            if f.name != "frame_count":
                out[f.name] = json_number(getattr(self, f.name))
        return out


@dataclass(frozen=True)
class QualityReport:
    frames: list[FrameQuality]
    summary: QualitySummary

    def to_dict(self) -> dict[str, object]:
        return {
            "summary": self.summary.to_dict(),
            "frames": [frame.to_dict() for frame in self.frames],
        }


def summarize(frames: Sequence[FrameQuality]) -> QualitySummary:
    """Pool per-frame qualities into a clip summary (at least one frame)."""
    if not frames:
        raise ValueError("no frames to summarize")

    def mean(values: Sequence[float]) -> float:
        return math.fsum(values) / len(values)

    mse_y = [f.mse_y for f in frames]
    mse_u = [f.mse_u for f in frames]
    mse_v = [f.mse_v for f in frames]
    return QualitySummary(
        frame_count=len(frames),
        mse_y_mean=mean(mse_y),
        mse_u_mean=mean(mse_u),
        mse_v_mean=mean(mse_v),
        psnr_y_mean=mean_psnr(f.psnr_y for f in frames),
        psnr_u_mean=mean_psnr(f.psnr_u for f in frames),
        psnr_v_mean=mean_psnr(f.psnr_v for f in frames),
        psnr_yuv_mean=mean_psnr(f.psnr_yuv for f in frames),
        psnr_y_global=global_psnr(mse_y),
        psnr_u_global=global_psnr(mse_u),
        psnr_v_global=global_psnr(mse_v),
        psnr_yuv_global=mse_to_psnr(yuv_mse(mean(mse_y), mean(mse_u), mean(mse_v))),
        psnr_y_min=min(f.psnr_y for f in frames),
        ssim_y_mean=mean([f.ssim_y for f in frames]),
        ssim_y_min=min(f.ssim_y for f in frames),
    )


class FrameScorer:
    """Scores frames of one format; holds preallocated kernels, so one per thread.

    ``backend`` defaults to ``codeclab.metrics.ssim.default_backend()``.
    """

    def __init__(self, fmt: VideoFormat, *, backend: Backend | None = None) -> None:
        self.format = fmt
        self._luma = PlaneKernel(fmt.height, fmt.width, backend=backend)
        self.backend = self._luma.backend
        kernels = jit_kernels() if self.backend == "numba" else None
        self._chroma_sse: Callable[[Plane, Plane], int] = (
            kernels.sse
            if kernels is not None
            else SseKernel(fmt.chroma_height, fmt.chroma_width).sse
        )

    def score(self, ref: Frame, dist: Frame, index: int = 0) -> FrameQuality:
        fmt = self.format
        ref.check(fmt, f"reference frame {index}")
        dist.check(fmt, f"distorted frame {index}")
        luma = self._luma.score(ref.y, dist.y)
        mse_y = luma.mse
        mse_u = self._chroma_sse(ref.u, dist.u) / fmt.chroma_size
        mse_v = self._chroma_sse(ref.v, dist.v) / fmt.chroma_size
        return FrameQuality(
            index=index,
            mse_y=mse_y,
            mse_u=mse_u,
            mse_v=mse_v,
            psnr_y=mse_to_psnr(mse_y),
            psnr_u=mse_to_psnr(mse_u),
            psnr_v=mse_to_psnr(mse_v),
            psnr_yuv=psnr_yuv(mse_y, mse_u, mse_v),
            ssim_y=luma.ssim,
        )


def compare_frames(
    ref: Frame, dist: Frame, index: int = 0, *, backend: Backend | None = None
) -> FrameQuality:
    """Quality of one frame pair; both frames must have the same 4:2:0 plane shapes."""
    height, width = ref.y.shape
    # The frame rate plays no part in a frame's quality.
    fmt = VideoFormat(int(width), int(height), Fraction(1))
    return FrameScorer(fmt, backend=backend).score(ref, dist, index)


def measure(
    reference: RawVideo,
    distorted: RawVideo,
    *,
    threads: int | None = None,
    backend: Backend | None = None,
) -> QualityReport:
    """Score every frame of ``distorted`` against ``reference`` (same format and length).

    ``threads`` defaults to ``os.cpu_count()``; ``backend`` (``"numba"`` or ``"numpy"``,
    the same numbers either way) to ``codeclab.metrics.ssim.default_backend()``.  Raises
    ``ValueError`` naming both files when their formats or frame counts differ, or when
    they hold no frame.  A lossless frame has infinite PSNR, so the summary's mean of
    per-frame PSNR is then ``inf`` too (the global PSNR, of the mean MSE, stays finite
    unless every frame is lossless).
    """
    if reference.format != distorted.format:
        raise ValueError(
            f"cannot compare {distorted.path} ({distorted.format.describe()}) with "
            f"{reference.path} ({reference.format.describe()}): formats differ"
        )
    if reference.frame_count != distorted.frame_count:
        raise ValueError(
            f"cannot compare {distorted.path} ({distorted.frame_count} frames) with "
            f"{reference.path} ({reference.frame_count} frames): frame counts differ"
        )
    if reference.frame_count == 0:
        raise ValueError(f"{reference.path} and {distorted.path} hold no frame to measure")
    workers = (os.cpu_count() or 1) if threads is None else threads
    if workers < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")

    fmt = reference.format
    chosen = resolve_backend(backend)  # imports and loads the kernels once, up front
    ref_frames = _FrameMap(reference)
    dist_frames = _FrameMap(distorted)
    local = threading.local()

    def score_range(indices: range) -> list[FrameQuality]:
        scorer: FrameScorer | None = getattr(local, "scorer", None)
        if scorer is None:
            scorer = local.scorer = FrameScorer(fmt, backend=chosen)
        return [scorer.score(ref_frames[i], dist_frames[i], i) for i in indices]

    tasks = list(_chunks(reference.frame_count, _FRAMES_PER_TASK))
    if workers == 1 or len(tasks) == 1:
        results = [score_range(task) for task in tasks]
    else:
        with ThreadPoolExecutor(max_workers=min(workers, len(tasks))) as pool:
            results = list(pool.map(score_range, tasks))
    frames = [quality for chunk in results for quality in chunk]
    return QualityReport(frames=frames, summary=summarize(frames))


class _FrameMap:
    """Frames of a raw file through one memory map of the whole file."""

    def __init__(self, video: RawVideo) -> None:
        self._format = video.format
        self._frame_bytes = video.format.frame_bytes
        self._data = np.memmap(
            video.path,
            dtype=np.uint8,
            mode="r",
            shape=(video.frame_count * self._frame_bytes,),
        )

    def __getitem__(self, index: int) -> Frame:
        start = index * self._frame_bytes
        return Frame.from_buffer(self._format, self._data[start : start + self._frame_bytes])


def _chunks(count: int, size: int) -> Iterator[range]:
    for start in range(0, count, size):
        yield range(start, min(start + size, count))
