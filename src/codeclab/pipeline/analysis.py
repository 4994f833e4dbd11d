"""The analysis phase: the candidate's curve against real baseline curves, the target
and the tier.

Every number here comes from measurements made in the same run (or the baseline
cache, keyed by the clip's sha256 and every encoder setting): there is no hard-coded
baseline. Definitions:

* **operating point**: the candidate's highest-PSNR-Y point within the target's rate
  limit; if no point is within it, its lowest-rate point (which then fails the target).
* **target achieved**: the operating point is within the rate limit *and* meets every
  quality floor (PSNR-Y, and VMAF when VMAF was measured; a floor on a metric that was
  not measured is not met).
* **equal-rate comparison** at the operating point, per baseline: the PSNR-Y the
  baseline reaches at the candidate's bitrate, and the bitrate the baseline needs for
  the candidate's PSNR-Y (PCHIP on the baseline's curve, no extrapolation).
* **tier**: the bit saving against x265 at equal PSNR-Y at the operating point: tier 1
  for >= 50 % fewer bits, tier 2 for >= 70 %, tier 3 for >= 90 % (the upstream
  project's tiers, here computed from real curves); ``None`` below 50 % or when x265's
  curve does not reach the candidate's quality.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from codeclab.metrics.bjontegaard import BDResult, bd_quality, bd_rate
from codeclab.metrics.rd import RDCurve
from codeclab.pipeline.evaluate import Evaluation, PointResult
from codeclab.video.frames import VideoFormat

TIERS: tuple[tuple[float, int], ...] = ((90.0, 3), (70.0, 2), (50.0, 1))
TIER_REFERENCE = "x265"


class BaselineCurves(Protocol):
    """What analysis needs of a baseline ladder: its encoder name and its curves."""

    @property
    def encoder(self) -> str: ...

    def curve(self, metric: str = "psnr_y") -> list[tuple[float, float]]: ...


@dataclass(frozen=True)
class Target:
    """A rate limit plus quality floors; all must hold for the target to be achieved.

    The rate limit is ``max_mbps`` or, when ``max_bpp`` is given, bits per pixel scaled
    by the clip's resolution and frame rate (``max_bpp * width * height * fps``).
    """

    max_mbps: float = 1.0
    max_bpp: float | None = None
    min_psnr_y: float | None = 28.0
    min_vmaf: float | None = 60.0

    def __post_init__(self) -> None:
        if not self.max_mbps > 0:
            raise ValueError(f"target max_mbps must be positive, got {self.max_mbps}")
        if self.max_bpp is not None and not self.max_bpp > 0:
            raise ValueError(f"target max_bpp must be positive, got {self.max_bpp}")

    def rate_limit(self, fmt: VideoFormat) -> float:
        """The limit in bits per second for a clip of format `fmt`."""
        if self.max_bpp is not None:
            return self.max_bpp * fmt.width * fmt.height * float(fmt.fps)
        return self.max_mbps * 1e6

    def describe(self, fmt: VideoFormat) -> str:
        limit = self.rate_limit(fmt) / 1e6
        rate = (
            f"<= {self.max_bpp:g} bpp ({limit:.3f} Mbps here)"
            if self.max_bpp is not None
            else f"<= {limit:g} Mbps"
        )
        floors = [
            f"PSNR-Y >= {self.min_psnr_y:g} dB" if self.min_psnr_y is not None else "",
            f"VMAF >= {self.min_vmaf:g}" if self.min_vmaf is not None else "",
        ]
        return ", ".join([rate, *[f for f in floors if f]])

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_mbps": self.max_mbps,
            "max_bpp": self.max_bpp,
            "min_psnr_y": self.min_psnr_y,
            "min_vmaf": self.min_vmaf,
        }


@dataclass(frozen=True)
class OperatingPoint:
    quality_param: int
    bits_per_second: float
    psnr_y: float
    ssim_y: float
    vmaf: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "quality_param": self.quality_param,
            "bits_per_second": self.bits_per_second,
            "mbps": self.bits_per_second / 1e6,
            "psnr_y": _json(self.psnr_y),
            "ssim_y": self.ssim_y,
            "vmaf": self.vmaf,
        }


@dataclass(frozen=True)
class BaselineComparison:
    """The candidate against one baseline encoder on the same frames."""

    encoder: str
    bd_rate_psnr: BDResult
    bd_psnr: BDResult
    bd_rate_vmaf: BDResult | None
    baseline_psnr_at_our_rate: float | None
    baseline_rate_for_our_psnr: float | None
    our_rate: float
    our_psnr: float

    @property
    def saving_percent(self) -> float | None:
        """Bits we save against this baseline at equal PSNR-Y (negative: we need more)."""
        if self.baseline_rate_for_our_psnr is None:
            return None
        return (1.0 - self.our_rate / self.baseline_rate_for_our_psnr) * 100.0

    def sentence(self) -> str:
        """ "x265 needs 2.10 Mbps for 34.20 dB PSNR-Y; we need 0.90 Mbps: 57 % less"."""
        saving = self.saving_percent
        if saving is None or self.baseline_rate_for_our_psnr is None:
            return (
                f"{self.encoder}'s measured curve does not reach {self.our_psnr:.2f} dB "
                "PSNR-Y: no equal-quality comparison"
            )
        word = "less" if saving >= 0 else "more"
        return (
            f"{self.encoder} needs {self.baseline_rate_for_our_psnr / 1e6:.3f} Mbps for "
            f"{self.our_psnr:.2f} dB PSNR-Y; we need {self.our_rate / 1e6:.3f} Mbps: "
            f"{abs(saving):.0f} % {word}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "encoder": self.encoder,
            "bd_rate_psnr_y": self.bd_rate_psnr.to_dict(),
            "bd_psnr_y": self.bd_psnr.to_dict(),
            "bd_rate_vmaf": self.bd_rate_vmaf.to_dict() if self.bd_rate_vmaf else None,
            "baseline_psnr_y_at_our_rate": self.baseline_psnr_at_our_rate,
            "baseline_rate_for_our_psnr_y": self.baseline_rate_for_our_psnr,
            "saving_percent_at_equal_psnr_y": self.saving_percent,
            "sentence": self.sentence(),
        }


@dataclass(frozen=True)
class Analysis:
    target: Target
    target_text: str
    rate_limit: float
    operating_point: OperatingPoint | None
    target_achieved: bool
    target_failures: tuple[str, ...]
    comparisons: dict[str, BaselineComparison] = field(default_factory=dict)
    tier: int | None = None

    def tier_label(self) -> str:
        if self.tier is None:
            return "no tier"
        threshold = next(t for t, n in TIERS if n == self.tier)
        return f"tier {self.tier} (>= {threshold:.0f} % fewer bits than {TIER_REFERENCE})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target.to_dict(),
            "target_text": self.target_text,
            "rate_limit_bps": self.rate_limit,
            "operating_point": self.operating_point.to_dict() if self.operating_point else None,
            "target_achieved": self.target_achieved,
            "target_failures": list(self.target_failures),
            "comparisons": {k: v.to_dict() for k, v in self.comparisons.items()},
            "tier": self.tier,
            "tier_label": self.tier_label(),
        }


def _json(value: float) -> float | str:
    return "inf" if math.isinf(value) else value


def candidate_curve(points: Sequence[PointResult], metric: str) -> list[tuple[float, float]]:
    """(bits per second, quality) of each successful point; metric "psnr_y", "ssim_y" or
    "vmaf" (points without VMAF are left out of a VMAF curve)."""
    curve: list[tuple[float, float]] = []
    for point in points:
        if not point.ok or point.rate is None or point.metrics is None:
            continue
        value = _point_metric(point, metric)
        if value is not None:
            curve.append((point.rate.bits_per_second, value))
    return curve


def _point_metric(point: PointResult, metric: str) -> float | None:
    assert point.metrics is not None
    summary = point.metrics.summary
    if metric == "psnr_y":
        return summary.psnr_y_mean
    if metric == "ssim_y":
        return summary.ssim_y_mean
    if metric == "vmaf":
        return point.vmaf.vmaf_mean if point.vmaf is not None else None
    raise ValueError(f"unknown metric {metric!r}; use psnr_y, ssim_y or vmaf")


def choose_operating_point(points: Sequence[PointResult], limit: float) -> OperatingPoint | None:
    good = [p for p in points if p.ok and p.rate is not None and p.metrics is not None]
    if not good:
        return None
    within = [p for p in good if p.rate is not None and p.rate.bits_per_second <= limit]
    if within:
        chosen = max(within, key=lambda p: _point_metric(p, "psnr_y") or 0.0)
    else:
        chosen = min(good, key=lambda p: p.rate.bits_per_second if p.rate else math.inf)
    assert chosen.rate is not None and chosen.metrics is not None
    return OperatingPoint(
        quality_param=chosen.quality,
        bits_per_second=chosen.rate.bits_per_second,
        psnr_y=chosen.metrics.summary.psnr_y_mean,
        ssim_y=chosen.metrics.summary.ssim_y_mean,
        vmaf=chosen.vmaf.vmaf_mean if chosen.vmaf is not None else None,
    )


def check_target(target: Target, point: OperatingPoint | None, limit: float) -> tuple[str, ...]:
    """Reasons the target is not achieved (empty: achieved)."""
    if point is None:
        return ("no quality point was measured successfully",)
    failures: list[str] = []
    if point.bits_per_second > limit:
        failures.append(f"rate {point.bits_per_second / 1e6:.3f} Mbps > {limit / 1e6:.3f} Mbps")
    if target.min_psnr_y is not None and not point.psnr_y >= target.min_psnr_y:
        failures.append(f"PSNR-Y {point.psnr_y:.2f} dB < {target.min_psnr_y:g} dB")
    if target.min_vmaf is not None:
        if point.vmaf is None:
            failures.append("VMAF was not measured, so its floor is not met")
        elif not point.vmaf >= target.min_vmaf:
            failures.append(f"VMAF {point.vmaf:.2f} < {target.min_vmaf:g}")
    return tuple(failures)


def compare(
    evaluation: Evaluation, baseline: BaselineCurves, point: OperatingPoint
) -> BaselineComparison:
    ours_psnr = candidate_curve(evaluation.points, "psnr_y")
    theirs_psnr = baseline.curve("psnr_y")
    ours_vmaf = candidate_curve(evaluation.points, "vmaf")
    # A candidate measured without VMAF has no VMAF curve; a baseline ladder measured without
    # it cannot give one (it raises): ask only when there is something to compare with.
    theirs_vmaf = baseline.curve("vmaf") if ours_vmaf else []
    curve = RDCurve(baseline.encoder, "psnr_y", tuple(theirs_psnr))
    return BaselineComparison(
        encoder=baseline.encoder,
        bd_rate_psnr=bd_rate(theirs_psnr, ours_psnr),
        bd_psnr=bd_quality(theirs_psnr, ours_psnr),
        bd_rate_vmaf=bd_rate(theirs_vmaf, ours_vmaf) if ours_vmaf and theirs_vmaf else None,
        baseline_psnr_at_our_rate=curve.quality_at_rate(point.bits_per_second),
        baseline_rate_for_our_psnr=curve.rate_at_quality(point.psnr_y),
        our_rate=point.bits_per_second,
        our_psnr=point.psnr_y,
    )


def tier_for(saving_percent: float | None) -> int | None:
    if saving_percent is None:
        return None
    for threshold, tier in TIERS:
        if saving_percent >= threshold:
            return tier
    return None


def analyse(
    evaluation: Evaluation,
    baselines: Mapping[str, BaselineCurves],
    target: Target,
) -> Analysis:
    """Compare `evaluation` with each baseline, check `target` and assign the tier."""
    limit = target.rate_limit(evaluation.clip.raw.format)
    point = choose_operating_point(evaluation.points, limit)
    failures = check_target(target, point, limit)
    comparisons: dict[str, BaselineComparison] = {}
    if point is not None and math.isfinite(point.psnr_y):
        comparisons = {name: compare(evaluation, b, point) for name, b in baselines.items()}
    reference = comparisons.get(TIER_REFERENCE)
    return Analysis(
        target=target,
        target_text=target.describe(evaluation.clip.raw.format),
        rate_limit=limit,
        operating_point=point,
        target_achieved=point is not None and not failures,
        target_failures=failures,
        comparisons=comparisons,
        tier=tier_for(reference.saving_percent if reference else None),
    )
