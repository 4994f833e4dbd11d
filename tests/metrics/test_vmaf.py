"""measure_vmaf: VMAF and MS-SSIM of real clips through ffmpeg's libvmaf filter."""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from codeclab.metrics.vmaf import (
    MODEL,
    MS_SSIM_MIN_SIZE,
    VmafError,
    ffmpeg_exe,
    measure_vmaf,
    vmaf_available,
)
from codeclab.video.clips import prepare_clip
from codeclab.video.frames import VideoFormat
from codeclab.video.rawfile import RawVideo, write_raw

pytestmark = pytest.mark.skipif(not vmaf_available(), reason="ffmpeg lacks the libvmaf filter")

# vmaf_v0.6.1 with perfect fidelity (VIF = ADM = 1) on a frame without motion, e.g. a still
# picture or a clip's first frame: observed 97.4284 on carphone and 97.4268 on bikes (ADM
# varies in its 6th decimal).  With enough motion the same perfect fidelity clips to 100.
STILL_PERFECT_VMAF = 97.428
CRFS = (20, 30, 40)


@pytest.fixture(scope="module")
def carphone(clips_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> RawVideo:
    """First 20 frames of carphone (176x144): too small for libvmaf's MS-SSIM."""
    workdir = tmp_path_factory.mktemp("carphone")
    return prepare_clip(str(clips_dir / "carphone_qcif.y4m"), workdir, frames=20).raw


@pytest.fixture(scope="module")
def bikes(clips_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> RawVideo:
    """Frames 50..59 of bikes (640x272): large enough for MS-SSIM, with motion."""
    workdir = tmp_path_factory.mktemp("bikes")
    return prepare_clip(str(clips_dir / "bikes.mp4"), workdir, start=50, frames=10).raw


def x264_roundtrip(source: RawVideo, crf: int, workdir: Path) -> RawVideo:
    """Encode `source` with libx264 at `crf` and decode it back to a raw file."""
    fmt = source.format
    stream = workdir / f"{source.path.stem}-crf{crf}.264"
    decoded = workdir / f"{source.path.stem}-crf{crf}.yuv"
    rate = f"{fmt.fps.numerator}/{fmt.fps.denominator}"
    raw_in = ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{fmt.width}x{fmt.height}"]
    quiet = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    x264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf)]
    subprocess.run(
        [*quiet, *raw_in, "-r", rate, "-i", str(source.path), *x264, str(stream)], check=True
    )
    subprocess.run(
        [*quiet, "-i", str(stream), "-f", "rawvideo", "-pix_fmt", "yuv420p", str(decoded)],
        check=True,
    )
    return RawVideo.open(decoded, fmt)


@pytest.fixture(scope="module")
def carphone_crf(
    carphone: RawVideo, tmp_path_factory: pytest.TempPathFactory
) -> dict[int, RawVideo]:
    workdir = tmp_path_factory.mktemp("carphone-x264")
    return {crf: x264_roundtrip(carphone, crf, workdir) for crf in CRFS}


def still_clip(source: RawVideo, frames: int, path: Path) -> RawVideo:
    """`frames` copies of the first frame of `source`: a video without motion."""
    first = source.frame(0)
    return write_raw(path, source.format, [first] * frames)


def test_identical_still_video_scores_the_models_perfect_fidelity_value_on_every_frame(
    carphone: RawVideo, tmp_path: Path
) -> None:
    still = still_clip(carphone, 5, tmp_path / "still.yuv")
    report = measure_vmaf(still, still)
    assert report.vmaf_frames == pytest.approx([STILL_PERFECT_VMAF] * 5, abs=0.01)


def test_identical_moving_video_scores_between_the_still_value_and_the_cap_of_100(
    carphone: RawVideo,
) -> None:
    report = measure_vmaf(carphone, carphone)
    assert report.model == MODEL
    assert all(STILL_PERFECT_VMAF - 0.01 <= v <= 100.0 for v in report.vmaf_frames)
    # The first frame has no motion; moving frames reach the model's cap of exactly 100.
    assert report.vmaf_frames[0] == pytest.approx(STILL_PERFECT_VMAF, abs=0.01)
    assert max(report.vmaf_frames) == 100.0
    assert report.vmaf_mean >= 99.0


def test_per_frame_scores_cover_every_frame_in_order(
    carphone: RawVideo, carphone_crf: dict[int, RawVideo]
) -> None:
    report = measure_vmaf(carphone, carphone_crf[30])
    assert len(report.vmaf_frames) == carphone.frame_count == 20
    assert report.frame_numbers == list(range(20))


def test_pooled_values_follow_libvmafs_definitions_of_the_per_frame_scores(
    carphone: RawVideo, carphone_crf: dict[int, RawVideo]
) -> None:
    report = measure_vmaf(carphone, carphone_crf[40])
    v = report.vmaf_frames
    assert report.vmaf_mean == pytest.approx(sum(v) / len(v), abs=1e-5)
    assert report.vmaf_min == min(v)
    # libvmaf's harmonic mean is shifted by one: n / sum(1 / (x + 1)) - 1.
    harmonic = len(v) / sum(1 / (x + 1) for x in v) - 1
    assert report.vmaf_harmonic_mean == pytest.approx(harmonic, abs=1e-5)
    assert report.vmaf_min <= report.vmaf_harmonic_mean <= report.vmaf_mean


def test_vmaf_falls_as_x264_crf_rises(
    carphone: RawVideo, carphone_crf: dict[int, RawVideo]
) -> None:
    means = [measure_vmaf(carphone, carphone_crf[crf]).vmaf_mean for crf in CRFS]
    assert means[0] > means[1] > means[2]
    assert means[0] < 100.0


def test_distorted_video_is_libvmafs_first_input(
    carphone: RawVideo, carphone_crf: dict[int, RawVideo]
) -> None:
    # VMAF is not symmetric: VIF and ADM penalise detail the distorted video lost, and score
    # the reverse (the source taken as a "distortion" of the encode) higher: 38.1 vs 46.8
    # here.  Swapping libvmaf's inputs would flip this.
    encode = carphone_crf[40]
    assert measure_vmaf(carphone, encode).vmaf_mean < measure_vmaf(encode, carphone).vmaf_mean - 3


def test_ms_ssim_is_skipped_with_a_reason_below_its_minimum_size(carphone: RawVideo) -> None:
    report = measure_vmaf(carphone, carphone)
    assert report.ms_ssim_mean is None
    assert report.ms_ssim_frames == []
    assert report.ms_ssim_skipped is not None
    assert f"{MS_SSIM_MIN_SIZE}x{MS_SSIM_MIN_SIZE}" in report.ms_ssim_skipped
    assert "176x144" in report.ms_ssim_skipped


def test_ms_ssim_of_identical_video_is_one(bikes: RawVideo) -> None:
    report = measure_vmaf(bikes, bikes)
    assert report.ms_ssim_skipped is None
    assert report.ms_ssim_frames == [1.0] * bikes.frame_count
    assert report.ms_ssim_mean == 1.0
    assert min(report.vmaf_frames) >= STILL_PERFECT_VMAF - 0.01


def test_x264_at_crf_40_lowers_both_vmaf_and_ms_ssim(bikes: RawVideo, tmp_path: Path) -> None:
    clean = measure_vmaf(bikes, bikes)
    degraded = measure_vmaf(bikes, x264_roundtrip(bikes, 40, tmp_path))
    assert degraded.ms_ssim_mean is not None and clean.ms_ssim_mean is not None
    assert degraded.vmaf_mean < clean.vmaf_mean - 10
    assert degraded.ms_ssim_mean < clean.ms_ssim_mean
    assert len(degraded.ms_ssim_frames) == bikes.frame_count
    assert all(0.0 < s < 1.0 for s in degraded.ms_ssim_frames)


def test_ms_ssim_can_be_left_out_of_the_pass(bikes: RawVideo) -> None:
    report = measure_vmaf(bikes, bikes, ms_ssim=False)
    assert report.ms_ssim_mean is None
    assert report.ms_ssim_frames == []
    assert report.ms_ssim_skipped == "MS-SSIM was not requested"
    assert len(report.vmaf_frames) == bikes.frame_count


def test_subsample_scores_every_kth_frame(
    carphone: RawVideo, carphone_crf: dict[int, RawVideo]
) -> None:
    full = measure_vmaf(carphone, carphone_crf[40])
    sparse = measure_vmaf(carphone, carphone_crf[40], subsample=3)
    assert sparse.frame_numbers == [0, 3, 6, 9, 12, 15, 18]
    assert sparse.vmaf_frames[0] == full.vmaf_frames[0]


def test_report_dict_is_json_safe_and_can_leave_out_per_frame_lists(
    carphone: RawVideo, carphone_crf: dict[int, RawVideo]
) -> None:
    report = measure_vmaf(carphone, carphone_crf[40], threads=1)
    full = json.loads(json.dumps(report.to_dict()))
    assert full["model"] == MODEL
    assert full["libvmaf_version"] == report.libvmaf_version
    assert full["vmaf_frames"] == report.vmaf_frames
    assert full["frames_scored"] == 20
    summary = report.to_dict(per_frame=False)
    assert "vmaf_frames" not in summary and "ms_ssim_frames" not in summary
    assert summary["vmaf_mean"] == report.vmaf_mean


def test_inputs_of_different_sizes_are_refused_naming_both_files(
    carphone: RawVideo, bikes: RawVideo
) -> None:
    with pytest.raises(ValueError, match="formats differ") as info:
        measure_vmaf(carphone, bikes)
    assert str(carphone.path) in str(info.value) and str(bikes.path) in str(info.value)


def test_inputs_of_different_frame_rates_are_refused(carphone: RawVideo) -> None:
    fmt = carphone.format
    other = RawVideo(carphone.path, VideoFormat(fmt.width, fmt.height, Fraction(25)), 20)
    with pytest.raises(ValueError, match="formats differ"):
        measure_vmaf(carphone, other)


def test_inputs_of_different_lengths_are_refused_naming_both_files(
    carphone: RawVideo, tmp_path: Path
) -> None:
    shorter = still_clip(carphone, 5, tmp_path / "shorter.yuv")
    with pytest.raises(ValueError, match="frame counts differ") as info:
        measure_vmaf(carphone, shorter)
    assert str(carphone.path) in str(info.value) and str(shorter.path) in str(info.value)


def test_missing_ffmpeg_binary_raises_vmaf_error(
    carphone: RawVideo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-such-ffmpeg"
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(missing))
    assert not vmaf_available()
    with pytest.raises(VmafError, match="cannot run ffmpeg") as info:
        measure_vmaf(carphone, carphone)
    assert str(missing) in str(info.value)


def test_missing_input_file_raises_vmaf_error_with_ffmpegs_reason(
    carphone: RawVideo, tmp_path: Path
) -> None:
    gone = RawVideo(tmp_path / "gone.yuv", carphone.format, carphone.frame_count)
    with pytest.raises(VmafError, match="No such file") as info:
        measure_vmaf(carphone, gone)
    assert str(gone.path) in str(info.value)


def test_file_shorter_than_its_frame_count_raises_vmaf_error(
    carphone: RawVideo, tmp_path: Path
) -> None:
    truncated = tmp_path / "truncated.yuv"
    truncated.write_bytes(carphone.path.read_bytes()[: 12 * carphone.format.frame_bytes])
    claimed = RawVideo(truncated, carphone.format, carphone.frame_count)
    with pytest.raises(VmafError, match="scored 12 frames, expected 20"):
        measure_vmaf(carphone, claimed)


def test_nonpositive_threads_or_subsample_are_refused(carphone: RawVideo) -> None:
    with pytest.raises(ValueError, match="threads"):
        measure_vmaf(carphone, carphone, threads=0)
    with pytest.raises(ValueError, match="subsample"):
        measure_vmaf(carphone, carphone, subsample=0)
