"""SSIM: both backends (numba, numpy) against a plain transcription of FFmpeg's C code,
against each other, and against the real ffmpeg ``ssim`` filter on real video."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from codeclab.metrics import _kernels
from codeclab.metrics._kernels import jit_kernels
from codeclab.metrics.ffmpeg_reference import FfmpegScores, run_psnr_ssim, x264_round_trip
from codeclab.metrics.ssim import (
    BACKENDS,
    SSIM_C1,
    SSIM_C2,
    Backend,
    PlaneKernel,
    default_backend,
    plane_score,
    resolve_backend,
    ssim_plane,
)
from codeclab.video.clips import prepare_clip
from codeclab.video.frames import Frame
from codeclab.video.rawfile import RawVideo, write_raw

U8 = npt.NDArray[np.uint8]


def ffmpeg_c_ssim(ref: U8, dist: U8) -> float:
    """libavfilter/vf_ssim.c for 8-bit planes, transcribed without any cleverness."""
    rows, cols = ref.shape[0] // 4, ref.shape[1] // 4
    a = ref[: 4 * rows, : 4 * cols].astype(np.int64).reshape(rows, 4, cols, 4)
    b = dist[: 4 * rows, : 4 * cols].astype(np.int64).reshape(rows, 4, cols, 4)
    block = [x.sum(axis=(1, 3)) for x in (a, b, a * a + b * b, a * b)]  # ssim_4x4xn
    s1, s2, ss, s12 = (x[:-1, :-1] + x[:-1, 1:] + x[1:, :-1] + x[1:, 1:] for x in block)
    c1 = int(0.01 * 0.01 * 255 * 255 * 64 + 0.5)  # ssim_end1
    c2 = int(0.03 * 0.03 * 255 * 255 * 64 * 63 + 0.5)
    variance = ss * 64 - s1 * s1 - s2 * s2
    covariance = s12 * 64 - s1 * s2
    f32 = np.float32
    score = ((2 * s1 * s2 + c1).astype(f32) * (2 * covariance + c2).astype(f32)) / (
        (s1 * s1 + s2 * s2 + c1).astype(f32) * (variance + c2).astype(f32)
    )
    return float(score.astype(np.float64).mean())


def exact_sse(ref: U8, dist: U8) -> int:
    diff = ref.astype(np.int64) - dist.astype(np.int64)
    return int((diff * diff).sum())


def plane_pairs(rng: np.random.Generator, shape: tuple[int, int]) -> Iterator[tuple[U8, U8]]:
    """Unrelated noise, a mild distortion, and the worst case (0 against 255 everywhere)."""
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    yield a, rng.integers(0, 256, shape, dtype=np.uint8)
    yield a, np.clip(a.astype(np.int16) + rng.integers(-4, 5, shape), 0, 255).astype(np.uint8)
    checker = np.where((np.indices(shape).sum(axis=0) % 2) == 0, 0, 255).astype(np.uint8)
    yield checker, (255 - checker).astype(np.uint8)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(11)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    chosen: Backend = request.param
    if chosen == "numba" and jit_kernels() is None:
        pytest.skip("numba is not installed: only the numpy backend can run")
    return chosen


def test_constants_are_ffmpegs() -> None:
    assert (SSIM_C1, SSIM_C2) == (416, 235963)
    assert (_kernels.SSIM_C1, _kernels.SSIM_C2) == (SSIM_C1, SSIM_C2)


@pytest.mark.parametrize("shape", [(8, 8), (9, 13), (37, 61), (144, 176), (72, 88), (100, 36)])
def test_kernel_equals_the_c_transcription(
    shape: tuple[int, int], backend: Backend, rng: np.random.Generator
) -> None:
    for ref, dist in plane_pairs(rng, shape):
        score = plane_score(ref, dist, backend=backend)
        assert score.ssim == pytest.approx(ffmpeg_c_ssim(ref, dist), abs=1e-9)
        assert score.sse == exact_sse(ref, dist)
        assert score.pixels == shape[0] * shape[1]


def test_numba_and_numpy_backends_agree_on_a_720p_plane(rng: np.random.Generator) -> None:
    if jit_kernels() is None:
        pytest.skip("numba is not installed: nothing to compare the numpy backend with")
    shape = (720, 1280)
    for ref, dist in plane_pairs(rng, shape):
        numba_score = PlaneKernel(*shape, backend="numba").score(ref, dist)
        numpy_score = PlaneKernel(*shape, backend="numpy").score(ref, dist)
        assert numba_score.sse == numpy_score.sse
        assert numba_score.ssim == pytest.approx(numpy_score.ssim, abs=1e-12)


def test_strided_views_score_like_their_copies(backend: Backend, rng: np.random.Generator) -> None:
    """Planes that are views into larger arrays (e.g. every other row) need no copy first."""
    big_ref, big_dist = next(plane_pairs(rng, (90, 70)))
    ref, dist = big_ref[::2, 3:], big_dist[::2, 3:]
    assert not ref.flags.c_contiguous
    assert plane_score(ref, dist, backend=backend) == plane_score(
        ref.copy(), dist.copy(), backend=backend
    )


@pytest.mark.parametrize("strip_pixels", [1, 3 * 640, 5 * 640, 22 * 640])
def test_numpy_strips_of_any_height_give_the_same_result(
    strip_pixels: int, rng: np.random.Generator
) -> None:
    """Many strips, a last strip of a single block row: the carried row must be right."""
    shape = (4 * 23 + 3, 4 * 40 + 1)  # 23 block rows of 640 cropped pixels, and a border
    kernel = PlaneKernel(*shape, strip_pixels=strip_pixels, backend="numpy")
    for ref, dist in plane_pairs(rng, shape):
        score = kernel.score(ref, dist)
        assert score.ssim == pytest.approx(ffmpeg_c_ssim(ref, dist), abs=1e-9)
        assert score.sse == exact_sse(ref, dist)


def test_identical_planes_score_exactly_one(backend: Backend) -> None:
    plane = np.random.default_rng(3).integers(0, 256, (64, 80), dtype=np.uint8)
    assert ssim_plane(plane, plane.copy(), backend=backend) == 1.0
    flat = np.zeros((16, 16), np.uint8)
    assert ssim_plane(flat, flat, backend=backend) == 1.0


def test_reused_kernel_keeps_no_state_between_planes(
    backend: Backend, rng: np.random.Generator
) -> None:
    kernel = PlaneKernel(120, 160, strip_pixels=4 * 4 * 160, backend=backend)
    first, second = list(plane_pairs(rng, (120, 160)))[:2]
    before = kernel.score(*first)
    kernel.score(*second)
    assert kernel.score(*first) == before


def test_plane_smaller_than_one_window_is_rejected_with_its_size(backend: Backend) -> None:
    tiny = np.zeros((7, 20), np.uint8)
    with pytest.raises(ValueError, match=r"at least 8x8 .* got 20x7"):
        ssim_plane(tiny, tiny, backend=backend)


def test_kernel_rejects_planes_of_another_shape(backend: Backend) -> None:
    kernel = PlaneKernel(16, 16, backend=backend)
    other = np.zeros((16, 24), np.uint8)
    with pytest.raises(ValueError, match="16x16 planes, got 24x16"):
        kernel.score(other, other)


def test_mismatched_or_non_uint8_planes_are_rejected(backend: Backend) -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        ssim_plane(np.zeros((16, 16), np.uint8), np.zeros((16, 17), np.uint8), backend=backend)
    with pytest.raises(ValueError, match="must be uint8"):
        ssim_plane(np.zeros((16, 16), np.uint16), np.zeros((16, 16), np.uint16), backend=backend)


# --- choosing the backend ---------------------------------------------------------------


def test_setting_codeclab_no_numba_makes_numpy_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CODECLAB_NO_NUMBA", "1")
    assert default_backend() == "numpy"
    assert PlaneKernel(16, 16).backend == "numpy"


def test_numba_is_the_default_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    if jit_kernels() is None:
        pytest.skip("numba is not installed")
    monkeypatch.delenv("CODECLAB_NO_NUMBA", raising=False)
    assert default_backend() == "numba"
    monkeypatch.setenv("CODECLAB_NO_NUMBA", "0")
    assert default_backend() == "numba"
    assert resolve_backend("numpy") == "numpy"


def test_unknown_backend_is_rejected_with_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown backend 'cuda'; choose one of numba, numpy"):
        resolve_backend("cuda")  # type: ignore[arg-type]


# --- against the real ffmpeg binary, on real video ------------------------------------


@pytest.fixture(scope="module")
def carphone(clips_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> RawVideo:
    work = tmp_path_factory.mktemp("carphone")
    return prepare_clip(str(clips_dir / "carphone_qcif.y4m"), work).raw


@pytest.fixture(scope="module")
def carphone_noisy_blur(carphone: RawVideo, tmp_path_factory: pytest.TempPathFactory) -> RawVideo:
    """Every plane blurred horizontally and given seeded noise, written as raw frames."""
    rng = np.random.default_rng(5)

    def degrade(plane: U8) -> U8:
        p = plane.astype(np.int16)
        blurred = (p + np.roll(p, 1, axis=1) + np.roll(p, -1, axis=0)) // 3
        noisy: U8 = np.clip(blurred + rng.integers(-6, 7, p.shape), 0, 255).astype(np.uint8)
        return noisy

    frames = (Frame(degrade(f.y), degrade(f.u), degrade(f.v)) for f in carphone)
    path = tmp_path_factory.mktemp("noisy") / "carphone-noisy-blur.yuv"
    return write_raw(path, carphone.format, frames)


def assert_ssim_matches_ffmpeg(
    reference: RawVideo, distorted: RawVideo, ffmpeg: FfmpegScores, backend: Backend
) -> None:
    assert len(ffmpeg.frames) == reference.frame_count
    for scores, ref, dist in zip(ffmpeg.frames, reference, distorted, strict=True):
        assert ssim_plane(ref.y, dist.y, backend=backend) == pytest.approx(scores.ssim_y, abs=1e-4)
        assert ssim_plane(ref.u, dist.u, backend=backend) == pytest.approx(scores.ssim_u, abs=1e-4)
        assert ssim_plane(ref.v, dist.v, backend=backend) == pytest.approx(scores.ssim_v, abs=1e-4)


@pytest.mark.slow
def test_ssim_matches_ffmpeg_filter_on_x264_encoded_carphone(
    carphone: RawVideo, backend: Backend, tmp_path: Path
) -> None:
    distorted = x264_round_trip(carphone, tmp_path, crf=35)
    ffmpeg = run_psnr_ssim(carphone, distorted, tmp_path / "ffmpeg")
    assert min(s.ssim_y for s in ffmpeg.frames) < 0.95  # a visible distortion, not a no-op
    assert_ssim_matches_ffmpeg(carphone, distorted, ffmpeg, backend)


@pytest.mark.slow
def test_ssim_matches_ffmpeg_filter_on_blurred_noisy_carphone(
    carphone: RawVideo, carphone_noisy_blur: RawVideo, backend: Backend, tmp_path: Path
) -> None:
    ffmpeg = run_psnr_ssim(carphone, carphone_noisy_blur, tmp_path)
    assert_ssim_matches_ffmpeg(carphone, carphone_noisy_blur, ffmpeg, backend)


def test_backends_agree_frame_by_frame_on_real_video(
    carphone: RawVideo, carphone_noisy_blur: RawVideo
) -> None:
    if jit_kernels() is None:
        pytest.skip("numba is not installed: nothing to compare the numpy backend with")
    shape = (carphone.format.height, carphone.format.width)
    numba_kernel = PlaneKernel(*shape, backend="numba")
    numpy_kernel = PlaneKernel(*shape, backend="numpy")
    for ref, dist in zip(carphone, carphone_noisy_blur, strict=True):
        numba_score = numba_kernel.score(ref.y, dist.y)
        numpy_score = numpy_kernel.score(ref.y, dist.y)
        assert numba_score.sse == numpy_score.sse
        assert numba_score.ssim == pytest.approx(numpy_score.ssim, abs=1e-12)
