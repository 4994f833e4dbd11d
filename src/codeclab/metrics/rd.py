"""Rate-distortion curves and equal-rate / equal-quality reads on them.

A curve is a set of (bits per second, quality) points, reduced to its Pareto front
(see `bjontegaard.pareto_front`). Reads between points use the same interpolation as
BD-rate's default: PCHIP of quality against log10(rate) (and of log10(rate) against
quality); a read outside the curve's measured range is ``None``, never extrapolated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import PchipInterpolator

from codeclab.metrics.bjontegaard import pareto_front


@dataclass(frozen=True)
class RDCurve:
    """One encoder's curve for one quality metric (e.g. "psnr_y", "vmaf")."""

    label: str
    metric: str
    points: tuple[tuple[float, float], ...]  # (bits per second, quality)

    def front(self) -> tuple[np.ndarray, np.ndarray]:
        clean = pareto_front(self.points, self.label)
        return clean.rates, clean.qualities

    def quality_at_rate(self, bits_per_second: float) -> float | None:
        """Quality this curve reaches at `bits_per_second`; None outside its rate range."""
        rates, qualities = self.front()
        if rates.size == 0 or not math.isfinite(bits_per_second) or bits_per_second <= 0:
            return None
        x = math.log10(bits_per_second)
        logs = np.log10(rates)
        if not logs[0] <= x <= logs[-1]:
            return None
        if rates.size == 1:
            return float(qualities[0])
        return float(PchipInterpolator(logs, qualities)(x))

    def rate_at_quality(self, quality: float) -> float | None:
        """Bits per second this curve needs for `quality`; None outside its quality range."""
        rates, qualities = self.front()
        if rates.size == 0 or not math.isfinite(quality):
            return None
        if not qualities[0] <= quality <= qualities[-1]:
            return None
        if rates.size == 1:
            return float(rates[0])
        return float(10 ** PchipInterpolator(qualities, np.log10(rates))(quality))
