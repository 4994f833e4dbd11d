"""The lab's quality report: per-frame and pooled PSNR/SSIM, checked against ffmpeg."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from codeclab.metrics._kernels import jit_kernels
from codeclab.metrics.ffmpeg_reference import run_psnr_ssim, x264_round_trip
from codeclab.metrics.psnr import mse_to_psnr, psnr_yuv
from codeclab.metrics.quality import (
    FrameQuality,
    FrameScorer,
    QualityReport,
    compare_frames,
    measure,
    summarize,
)
from codeclab.metrics.ssim import BACKENDS, Backend
from codeclab.video.clips import prepare_clip
from codeclab.video.frames import Frame, Plane, VideoFormat
from codeclab.video.rawfile import RawVideo, write_raw


def noisy_copy(video: RawVideo, path: Path, amplitude: int, seed: int) -> RawVideo:
    rng = np.random.default_rng(seed)

    def noisy(plane: Plane) -> Plane:
        noise = rng.integers(-amplitude, amplitude + 1, plane.shape)
        out: Plane = np.clip(plane.astype(np.int16) + noise, 0, 255).astype(np.uint8)
        return out

    frames = (Frame(noisy(f.y), noisy(f.u), noisy(f.v)) for f in video)
    return write_raw(path, video.format, frames)


def exact_mse(ref: np.ndarray, dist: np.ndarray) -> float:
    diff = ref.astype(np.int64) - dist.astype(np.int64)
    return float((diff * diff).sum()) / ref.size


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    chosen: Backend = request.param
    if chosen == "numba" and jit_kernels() is None:
        pytest.skip("numba is not installed: only the numpy backend can run")
    return chosen


@pytest.fixture
def clip(tmp_path: Path) -> RawVideo:
    """Five 48x40 frames of seeded noise."""
    fmt = VideoFormat(48, 40, Fraction(25))
    rng = np.random.default_rng(1)
    frames = [
        Frame(
            rng.integers(0, 256, (40, 48), dtype=np.uint8),
            rng.integers(0, 256, (20, 24), dtype=np.uint8),
            rng.integers(0, 256, (20, 24), dtype=np.uint8),
        )
        for _ in range(5)
    ]
    return write_raw(tmp_path / "clip.yuv", fmt, frames)


def test_each_frame_reports_exact_mse_and_its_psnr(
    clip: RawVideo, backend: Backend, tmp_path: Path
) -> None:
    distorted = noisy_copy(clip, tmp_path / "noisy.yuv", amplitude=9, seed=2)
    report = measure(clip, distorted, threads=1, backend=backend)
    assert [f.index for f in report.frames] == list(range(clip.frame_count))
    for quality, ref, dist in zip(report.frames, clip, distorted, strict=True):
        assert quality.mse_y == exact_mse(ref.y, dist.y)
        assert quality.mse_u == exact_mse(ref.u, dist.u)
        assert quality.mse_v == exact_mse(ref.v, dist.v)
        assert quality.psnr_y == mse_to_psnr(quality.mse_y)
        assert quality.psnr_yuv == psnr_yuv(quality.mse_y, quality.mse_u, quality.mse_v)
        assert 0.0 < quality.ssim_y < 1.0


def test_odd_frame_sizes_keep_every_pixel_in_the_mse(backend: Backend, tmp_path: Path) -> None:
    fmt = VideoFormat(37, 29, Fraction(30))  # chroma 19x15; SSIM crops to 36x28
    rng = np.random.default_rng(6)
    frames = [
        Frame(
            rng.integers(0, 256, (29, 37), dtype=np.uint8),
            rng.integers(0, 256, (15, 19), dtype=np.uint8),
            rng.integers(0, 256, (15, 19), dtype=np.uint8),
        )
        for _ in range(2)
    ]
    clip = write_raw(tmp_path / "odd.yuv", fmt, frames)
    distorted = noisy_copy(clip, tmp_path / "odd-noisy.yuv", amplitude=30, seed=8)
    report = measure(clip, distorted, backend=backend)
    for quality, ref, dist in zip(report.frames, clip, distorted, strict=True):
        assert quality.mse_y == exact_mse(ref.y, dist.y)
        assert quality.mse_u == exact_mse(ref.u, dist.u)
        assert quality.mse_v == exact_mse(ref.v, dist.v)


def test_thread_count_does_not_change_the_report(
    clip: RawVideo, backend: Backend, tmp_path: Path
) -> None:
    distorted = noisy_copy(clip, tmp_path / "noisy.yuv", amplitude=20, seed=3)
    one = measure(clip, distorted, threads=1, backend=backend)
    assert one == measure(clip, distorted, threads=3, backend=backend)


def test_compare_frames_agrees_with_measure(
    clip: RawVideo, backend: Backend, tmp_path: Path
) -> None:
    distorted = noisy_copy(clip, tmp_path / "noisy.yuv", amplitude=5, seed=4)
    report = measure(clip, distorted, backend=backend)
    quality = compare_frames(clip.frame(3), distorted.frame(3), index=3, backend=backend)
    assert quality == report.frames[3]


def test_backends_give_the_same_report_up_to_float_rounding(clip: RawVideo, tmp_path: Path) -> None:
    if jit_kernels() is None:
        pytest.skip("numba is not installed: nothing to compare the numpy backend with")
    distorted = noisy_copy(clip, tmp_path / "noisy.yuv", amplitude=7, seed=10)
    fast = measure(clip, distorted, backend="numba")
    fallback = measure(clip, distorted, backend="numpy")
    for ours, theirs in zip(fast.frames, fallback.frames, strict=True):
        assert (ours.mse_y, ours.mse_u, ours.mse_v) == (theirs.mse_y, theirs.mse_u, theirs.mse_v)
        assert ours.ssim_y == pytest.approx(theirs.ssim_y, abs=1e-12)


def test_scorer_reports_the_backend_it_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    fmt = VideoFormat(16, 16, Fraction(25))
    assert FrameScorer(fmt, backend="numpy").backend == "numpy"
    monkeypatch.setenv("CODECLAB_NO_NUMBA", "1")
    assert FrameScorer(fmt).backend == "numpy"


# Run in a fresh interpreter where importing numba fails, as on a machine without it.
WITHOUT_NUMBA = textwrap.dedent(
    """
    import sys
    sys.modules["numba"] = None  # makes "import numba" raise ImportError
    from fractions import Fraction
    import numpy as np
    from codeclab.metrics.quality import FrameScorer
    from codeclab.metrics.ssim import default_backend, resolve_backend
    from codeclab.video.frames import Frame, VideoFormat

    assert default_backend() == "numpy"
    fmt = VideoFormat(16, 16, Fraction(25))
    frame = Frame.blank(fmt)
    quality = FrameScorer(fmt).score(frame, frame)
    assert quality.ssim_y == 1.0 and quality.mse_y == 0.0
    try:
        resolve_backend("numba")
    except ValueError as error:
        print(error)
    """
)


def test_metrics_fall_back_to_numpy_without_numba() -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_NUMBA], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "backend 'numba' needs the numba package (pip install numba)" in result.stdout


def test_identical_clips_are_infinitely_good_and_serialise_as_strict_json(
    clip: RawVideo,
) -> None:
    report = measure(clip, clip)
    summary = report.summary
    assert summary.psnr_y_mean == math.inf
    assert summary.psnr_y_global == math.inf
    assert summary.psnr_yuv_global == math.inf
    assert summary.ssim_y_mean == 1.0
    text = json.dumps(report.to_dict(), allow_nan=False)
    data = json.loads(text)
    assert data["summary"]["psnr_y_mean"] == "inf"
    assert data["summary"]["frame_count"] == clip.frame_count
    assert data["frames"][0]["psnr_u"] == "inf"
    assert data["frames"][0]["mse_u"] == 0.0


def frame_quality(index: int, mse_y: float) -> FrameQuality:
    return FrameQuality(
        index=index,
        mse_y=mse_y,
        mse_u=1.0,
        mse_v=1.0,
        psnr_y=mse_to_psnr(mse_y),
        psnr_u=mse_to_psnr(1.0),
        psnr_v=mse_to_psnr(1.0),
        psnr_yuv=psnr_yuv(mse_y, 1.0, 1.0),
        ssim_y=0.9 if mse_y else 1.0,
    )


def test_summary_names_mean_and_global_poolings() -> None:
    summary = summarize([frame_quality(0, 1.0), frame_quality(1, 100.0)])
    assert summary.psnr_y_mean == pytest.approx((mse_to_psnr(1.0) + mse_to_psnr(100.0)) / 2)
    assert summary.psnr_y_global == pytest.approx(mse_to_psnr(50.5))
    assert summary.psnr_yuv_global == pytest.approx(psnr_yuv(50.5, 1.0, 1.0))
    assert summary.psnr_y_min == pytest.approx(mse_to_psnr(100.0))
    assert summary.mse_y_mean == pytest.approx(50.5)


def test_one_lossless_frame_makes_mean_psnr_infinite_but_not_global() -> None:
    summary = summarize([frame_quality(0, 0.0), frame_quality(1, 4.0)])
    assert summary.psnr_y_mean == math.inf
    assert summary.psnr_y_global == pytest.approx(mse_to_psnr(2.0))
    assert summary.ssim_y_mean == pytest.approx(0.95)
    assert summary.ssim_y_min == pytest.approx(0.9)
    assert summary.to_dict()["psnr_y_mean"] == "inf"


def test_summarizing_no_frame_is_an_error() -> None:
    with pytest.raises(ValueError, match="no frames"):
        summarize([])


def test_frame_count_mismatch_names_both_files_and_counts(clip: RawVideo, tmp_path: Path) -> None:
    shorter = write_raw(tmp_path / "short.yuv", clip.format, list(clip)[:3])
    with pytest.raises(ValueError, match=r"short\.yuv \(3 frames\).*clip\.yuv \(5 frames\)"):
        measure(clip, shorter)


def test_format_mismatch_names_both_files(clip: RawVideo, tmp_path: Path) -> None:
    other = VideoFormat(40, 48, clip.format.fps)  # same frame size in bytes, other shape
    path = tmp_path / "transposed.yuv"
    path.write_bytes(clip.path.read_bytes())
    with pytest.raises(ValueError, match=r"transposed\.yuv \(40x48.*clip\.yuv \(48x40"):
        measure(clip, RawVideo.open(path, other))


def test_thread_count_below_one_is_rejected(clip: RawVideo) -> None:
    with pytest.raises(ValueError, match="threads must be at least 1"):
        measure(clip, clip, threads=0)


# --- against the real ffmpeg binary, on real video ------------------------------------


@pytest.fixture(scope="module")
def carphone(clips_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> RawVideo:
    work = tmp_path_factory.mktemp("carphone")
    return prepare_clip(str(clips_dir / "carphone_qcif.y4m"), work).raw


@pytest.mark.slow
def test_report_matches_ffmpeg_psnr_and_ssim_filters(
    carphone: RawVideo, backend: Backend, tmp_path: Path
) -> None:
    distorted = x264_round_trip(carphone, tmp_path, crf=35)
    ffmpeg = run_psnr_ssim(carphone, distorted, tmp_path / "ffmpeg")
    report = measure(carphone, distorted, backend=backend)
    assert len(report.frames) == len(ffmpeg.frames) == carphone.frame_count
    for ours, theirs in zip(report.frames, ffmpeg.frames, strict=True):
        assert ours.psnr_y == pytest.approx(theirs.psnr_y, abs=1e-2)
        assert ours.psnr_u == pytest.approx(theirs.psnr_u, abs=1e-2)
        assert ours.psnr_v == pytest.approx(theirs.psnr_v, abs=1e-2)
        assert ours.ssim_y == pytest.approx(theirs.ssim_y, abs=1e-3)
    summary = report.summary
    # ffmpeg's psnr summary line is the PSNR of the mean MSE; its ssim line the mean.
    assert summary.psnr_y_global == pytest.approx(ffmpeg.psnr_y_summary, abs=1e-2)
    assert summary.psnr_u_global == pytest.approx(ffmpeg.psnr_u_summary, abs=1e-2)
    assert summary.psnr_v_global == pytest.approx(ffmpeg.psnr_v_summary, abs=1e-2)
    assert summary.ssim_y_mean == pytest.approx(ffmpeg.ssim_y_summary, abs=1e-3)
    # The two poolings are different numbers on real video.
    assert summary.psnr_y_mean != pytest.approx(summary.psnr_y_global, abs=1e-3)


def test_report_type_round_trips_through_json(clip: RawVideo, tmp_path: Path) -> None:
    distorted = noisy_copy(clip, tmp_path / "noisy.yuv", amplitude=3, seed=9)
    report: QualityReport = measure(clip, distorted)
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["summary"]["psnr_y_global"] == pytest.approx(report.summary.psnr_y_global)
    assert data["frames"][4]["ssim_y"] == pytest.approx(report.frames[4].ssim_y)
    assert set(data["frames"][0]) == {
        "index", "mse_y", "mse_u", "mse_v", "psnr_y", "psnr_u", "psnr_v", "psnr_yuv", "ssim_y",
    }  # fmt: skip
