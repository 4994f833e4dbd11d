"""Target, tiers and equal-rate reads, on measured-shaped data (no hard-coded baseline:
the baseline curves here are test inputs, as a real ladder would provide them)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import pytest

from codeclab.metrics.quality import FrameQuality, QualityReport, summarize
from codeclab.metrics.rate import measure_rate
from codeclab.pipeline.analysis import Target, analyse, tier_for
from codeclab.pipeline.evaluate import Evaluation, PointResult
from codeclab.video.clips import PreparedClip
from codeclab.video.frames import VideoFormat
from codeclab.video.rawfile import RawVideo

FMT = VideoFormat(352, 288, Fraction(30))
FRAMES = 30


@dataclass
class FakeLadder:
    """A baseline ladder as `run_baseline` returns it, reduced to its curves."""

    encoder: str
    points: list[tuple[float, float]]

    def curve(self, metric: str = "psnr_y") -> list[tuple[float, float]]:
        return self.points if metric == "psnr_y" else []


def _point(quality: int, bits_per_second: float, psnr: float) -> PointResult:
    frame = FrameQuality(0, 1.0, 1.0, 1.0, psnr, psnr, psnr, psnr, 0.9)
    stream_bytes = round(bits_per_second * FMT.duration(FRAMES) / 8)
    return PointResult(
        quality=quality,
        params={"quality": quality},
        ok=True,
        failed_phase=None,
        error=None,
        rate=measure_rate(stream_bytes, FMT, FRAMES),
        metrics=QualityReport([frame], summarize([frame])),
        vmaf=None,
        encode_seconds=1.0,
        decode_seconds=1.0,
        isolation="bwrap",
        stream_sha256="0" * 64,
    )


def _evaluation(tmp_path: Path, points: list[PointResult]) -> Evaluation:
    raw = RawVideo(tmp_path / "clip.yuv", FMT, FRAMES)
    clip = PreparedClip("clip", "clip.y4m", raw, 0, "ab" * 32, "y4m")
    return Evaluation("codec", "cd" * 32, clip, points)


def test_upstream_failure_is_not_a_success(tmp_path: Path) -> None:
    """0.73 Mbps at 19.8 dB PSNR was once counted as success; here it is not."""
    evaluation = _evaluation(tmp_path, [_point(10, 0.73e6, 19.84)])
    result = analyse(evaluation, {}, Target(min_vmaf=None))
    assert not result.target_achieved
    assert result.target_failures == ("PSNR-Y 19.84 dB < 28 dB",)


def test_target_needs_vmaf_when_a_vmaf_floor_is_set(tmp_path: Path) -> None:
    evaluation = _evaluation(tmp_path, [_point(50, 0.5e6, 38.0)])
    result = analyse(evaluation, {}, Target())
    assert not result.target_achieved
    assert "VMAF was not measured" in result.target_failures[0]


def test_target_achieved_needs_rate_and_quality(tmp_path: Path) -> None:
    evaluation = _evaluation(
        tmp_path, [_point(20, 0.3e6, 30.0), _point(50, 0.8e6, 35.0), _point(80, 2e6, 40.0)]
    )
    result = analyse(evaluation, {}, Target(min_vmaf=None))
    assert result.target_achieved
    assert result.operating_point is not None
    assert result.operating_point.quality_param == 50  # best quality within 1 Mbps


def test_rate_over_the_limit_fails_the_target(tmp_path: Path) -> None:
    evaluation = _evaluation(tmp_path, [_point(80, 2e6, 40.0)])
    result = analyse(evaluation, {}, Target(min_vmaf=None))
    assert not result.target_achieved
    assert result.target_failures == ("rate 2.000 Mbps > 1.000 Mbps",)


def test_bits_per_pixel_target_scales_with_resolution() -> None:
    target = Target(max_bpp=0.1)
    assert target.rate_limit(FMT) == pytest.approx(0.1 * 352 * 288 * 30)
    assert target.rate_limit(VideoFormat(1280, 720, Fraction(30))) == pytest.approx(
        0.1 * 1280 * 720 * 30
    )


def test_equal_quality_comparison_and_tier(tmp_path: Path) -> None:
    # the baseline needs 4x our rate for every quality: 75 % fewer bits -> tier 2
    ours = [(20, 0.25e6, 30.0), (50, 0.5e6, 33.0), (80, 1e6, 36.0)]
    evaluation = _evaluation(tmp_path, [_point(q, r, p) for q, r, p in ours])
    x265 = FakeLadder("x265", [(4 * r, p) for _, r, p in ours])
    result = analyse(evaluation, {"x265": x265}, Target(min_vmaf=None))
    comparison = result.comparisons["x265"]
    assert comparison.saving_percent == pytest.approx(75.0)
    assert comparison.bd_rate_psnr.value == pytest.approx(-75.0)
    assert result.tier == 2
    assert comparison.sentence() == (
        "x265 needs 4.000 Mbps for 36.00 dB PSNR-Y; we need 1.000 Mbps: 75 % less"
    )


def test_honest_opposite_when_the_baseline_is_better(tmp_path: Path) -> None:
    ours = [(20, 0.5e6, 30.0), (50, 1e6, 33.0)]
    evaluation = _evaluation(tmp_path, [_point(q, r, p) for q, r, p in ours])
    x264 = FakeLadder("x264", [(r / 2, p) for _, r, p in ours])
    result = analyse(evaluation, {"x264": x264}, Target(min_vmaf=None))
    comparison = result.comparisons["x264"]
    assert comparison.saving_percent == pytest.approx(-100.0)
    assert comparison.sentence().endswith("100 % more")
    assert result.tier is None


def test_baseline_that_never_reaches_our_quality_gives_no_number(tmp_path: Path) -> None:
    evaluation = _evaluation(tmp_path, [_point(50, 0.5e6, 45.0), _point(60, 0.9e6, 47.0)])
    x265 = FakeLadder("x265", [(1e6, 30.0), (2e6, 33.0), (4e6, 36.0)])
    result = analyse(evaluation, {"x265": x265}, Target(min_vmaf=None))
    comparison = result.comparisons["x265"]
    assert comparison.saving_percent is None
    assert not comparison.bd_rate_psnr.ok
    assert result.tier is None


@pytest.mark.parametrize(
    ("saving", "tier"), [(None, None), (-20.0, None), (49.9, None), (50.0, 1), (70.0, 2), (95, 3)]
)
def test_tiers(saving: float | None, tier: int | None) -> None:
    assert tier_for(saving) == tier


@dataclass
class LadderWithoutVmaf(FakeLadder):
    """A ladder measured with ``with_vmaf=False``: asking it for VMAF raises, as the real one."""

    def curve(self, metric: str = "psnr_y") -> list[tuple[float, float]]:
        if metric == "vmaf":
            raise ValueError("crf 22 has no vmaf: it was measured without VMAF (with_vmaf=False)")
        return self.points


def test_candidate_and_baselines_without_vmaf_compare_on_psnr(tmp_path: Path) -> None:
    """`eval --no-vmaf --baselines x264`: neither side has VMAF; PSNR-Y still compares."""
    ours = [(20, 0.5e6, 30.0), (50, 1e6, 33.0)]
    evaluation = _evaluation(tmp_path, [_point(q, r, p) for q, r, p in ours])
    x264 = LadderWithoutVmaf("x264", [(r / 2, p) for _, r, p in ours])
    comparison = analyse(evaluation, {"x264": x264}, Target(min_vmaf=None)).comparisons["x264"]
    assert comparison.bd_rate_vmaf is None
    assert comparison.bd_rate_psnr.value == pytest.approx(100.0)
