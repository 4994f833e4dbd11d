"""Bjøntegaard delta metrics: BD-rate and BD-quality between two rate-quality curves.

Definitions (G. Bjøntegaard, VCEG-M33, 2001; JCTVC-L1100 / JVET CTC sheets for PCHIP):

* **BD-rate** interpolates ``log10(rate)`` as a function of quality for each curve,
  integrates both over the quality interval where the curves overlap, and turns the
  mean difference ``D = mean(log10 R_test) - mean(log10 R_ref)`` into a percentage
  ``(10**D - 1) * 100``. Negative means the test curve needs fewer bits for the same
  quality. Swapping the curves gives ``1 / (1 + r) - 1`` (as fractions).
* **BD-quality** (BD-PSNR when quality is PSNR) interpolates quality as a function of
  ``log10(rate)``, integrates over the overlapping log-rate interval and returns the mean
  difference ``mean(Q_test) - mean(Q_ref)`` in quality units. Positive means the test
  curve is better at the same rate.

Interpolation methods:

* ``"pchip"`` (default): piecewise cubic Hermite interpolation (Fritsch-Carlson slopes,
  ``scipy.interpolate.PchipInterpolator``), integrated exactly piece by piece. This is
  what the JCT-VC/JVET common-test-condition Excel sheets and the ``bjontegaard`` package
  compute; it reproduces the JCTVC-E137 reference values (see the tests). Needs >= 2
  points per curve.
* ``"cubic"``: the classic VCEG-M33 least-squares cubic polynomial, integrated exactly.
  Needs >= 4 points per curve. Known to misbehave when the fitted cubic is not monotonic.

Input policy (each curve is a sequence of ``(rate, quality)`` pairs, same rate unit for
both curves):

* a rate that is not finite or not > 0, or a quality that is NaN or -inf, raises
  :class:`ValueError` naming the curve and the point (that is a measurement bug, not a
  curve shape);
* points with quality +inf (lossless, e.g. PSNR of identical frames) are dropped, with a
  note in :attr:`BDResult.notes`;
* exact duplicate points are dropped silently;
* a point *dominated* by another (one with lower-or-equal rate and higher-or-equal
  quality) is dropped with a note: what is left is the Pareto front of the curve, strictly
  increasing in both rate and quality, which is how codec engineers read an RD curve;
* if too few points remain, or the curves overlap on less than ``min_overlap`` (default
  20 %) of *either* curve's range in the integration domain, the result has
  ``value=None`` and a ``reason`` instead of a fabricated number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.interpolate import PchipInterpolator

Points = Sequence[tuple[float, float]]
FloatArray = npt.NDArray[np.float64]

METHODS = ("pchip", "cubic")
MIN_POINTS = {"pchip": 2, "cubic": 4}
MIN_OVERLAP_FRACTION = 0.2


@dataclass(frozen=True)
class BDResult:
    """One Bjøntegaard delta.

    ``value`` is a percentage for :func:`bd_rate` (negative = the test curve needs fewer
    bits) and quality units for :func:`bd_quality` (positive = the test curve is better);
    it is ``None`` when no honest number exists, and ``reason`` says why. ``overlap`` is
    the interval integrated over: quality for BD-rate, log10(rate) for BD-quality.
    ``notes`` lists points dropped from either curve while cleaning it.
    """

    value: float | None
    method: str
    overlap: tuple[float, float] | None
    reason: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.value is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "value": self.value,
            "method": self.method,
            "overlap": list(self.overlap) if self.overlap is not None else None,
            "reason": self.reason,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class CleanCurve:
    """A cleaned curve: rates and qualities both strictly increasing."""

    rates: FloatArray
    qualities: FloatArray
    notes: tuple[str, ...]


def bd_rate(
    reference: Points,
    test: Points,
    *,
    method: str = "pchip",
    min_overlap: float = MIN_OVERLAP_FRACTION,
) -> BDResult:
    """Average bitrate difference of ``test`` against ``reference`` at equal quality, in %."""
    return _delta(reference, test, method, min_overlap, over_quality=True)


def bd_quality(
    reference: Points,
    test: Points,
    *,
    method: str = "pchip",
    min_overlap: float = MIN_OVERLAP_FRACTION,
) -> BDResult:
    """Average quality difference of ``test`` against ``reference`` at equal rate."""
    return _delta(reference, test, method, min_overlap, over_quality=False)


def _delta(
    reference: Points, test: Points, method: str, min_overlap: float, *, over_quality: bool
) -> BDResult:
    if method not in METHODS:
        raise ValueError(f"unknown BD interpolation method {method!r}; use one of {METHODS}")
    if not 0.0 <= min_overlap <= 1.0:
        raise ValueError(f"min_overlap must be a fraction in [0, 1], got {min_overlap}")
    ref = pareto_front(reference, "reference")
    tst = pareto_front(test, "test")
    notes = ref.notes + tst.notes

    def fail(reason: str) -> BDResult:
        return BDResult(value=None, method=method, overlap=None, reason=reason, notes=notes)

    need = MIN_POINTS[method]
    for name, curve in (("reference", ref), ("test", tst)):
        if len(curve.rates) < need:
            return fail(
                f"need at least {need} points for {method}: {name} has {len(curve.rates)} "
                "after cleaning"
            )

    if over_quality:  # log10(rate) as a function of quality
        ref_x, ref_y = ref.qualities, np.log10(ref.rates)
        tst_x, tst_y = tst.qualities, np.log10(tst.rates)
        domain = "quality"
    else:  # quality as a function of log10(rate)
        ref_x, ref_y = np.log10(ref.rates), ref.qualities
        tst_x, tst_y = np.log10(tst.rates), tst.qualities
        domain = "log10 rate"

    lo = max(float(ref_x[0]), float(tst_x[0]))
    hi = min(float(ref_x[-1]), float(tst_x[-1]))
    if hi <= lo:
        return fail(
            f"not enough overlap: {domain} ranges [{ref_x[0]:.6g}, {ref_x[-1]:.6g}] (reference) "
            f"and [{tst_x[0]:.6g}, {tst_x[-1]:.6g}] (test) do not overlap"
        )
    for name, x in (("reference", ref_x), ("test", tst_x)):
        fraction = (hi - lo) / float(x[-1] - x[0])
        if fraction < min_overlap:
            return fail(
                f"not enough overlap: the common {domain} interval [{lo:.6g}, {hi:.6g}] covers "
                f"{fraction:.1%} of the {name} curve's range, below the {min_overlap:.0%} minimum"
            )

    mean_diff = _mean(tst_x, tst_y, lo, hi, method) - _mean(ref_x, ref_y, lo, hi, method)
    value = (10.0**mean_diff - 1.0) * 100.0 if over_quality else mean_diff
    if not math.isfinite(value):
        return fail(f"the {method} interpolation gave a non-finite delta ({value})")
    return BDResult(value=value, method=method, overlap=(lo, hi), reason=None, notes=notes)


def _mean(x: FloatArray, y: FloatArray, lo: float, hi: float, method: str) -> float:
    """Mean of the interpolant of ``y(x)`` over ``[lo, hi]``, integrated exactly."""
    if method == "pchip":
        integral = float(PchipInterpolator(x, y).integrate(lo, hi))
    else:
        # Polynomial.fit maps x to [-1, 1] (better conditioned than np.polyfit);
        # integ() accounts for that mapping, so the antiderivative is in x units.
        antiderivative = np.polynomial.Polynomial.fit(x, y, 3).integ()
        integral = float(antiderivative(hi) - antiderivative(lo))
    return integral / (hi - lo)


def pareto_front(points: Points, name: str) -> CleanCurve:
    """Validate ``points`` and reduce them to their Pareto front (see the module doc)."""
    data = np.asarray(points, dtype=np.float64)
    if data.size == 0:
        return CleanCurve(np.empty(0), np.empty(0), ())
    if data.ndim != 2 or data.shape[1] != 2:
        raise ValueError(f"{name} curve must be a sequence of (rate, quality) pairs")
    notes: list[str] = []
    for i, (rate, quality) in enumerate(data):
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"{name} curve point {i}: rate must be finite and > 0, got {rate}")
        if math.isnan(quality) or quality == -math.inf:
            raise ValueError(f"{name} curve point {i}: quality must be a number, got {quality}")
    lossless = np.isinf(data[:, 1])
    for index in np.flatnonzero(lossless).tolist():
        notes.append(
            f"{name}: dropped point {index} (rate {data[index, 0]:.6g}) with infinite quality "
            "(lossless)"
        )
    data = np.unique(data[~lossless], axis=0)  # drops exact duplicates, sorts by rate
    # Sort by rate ascending, then quality descending: scanning in that order, a point
    # survives only if it beats the best quality seen so far at a lower-or-equal rate.
    data = data[np.lexsort((-data[:, 1], data[:, 0]))]
    keep: list[int] = []
    best = -math.inf
    for i, (rate, quality) in enumerate(data):
        if quality > best:
            keep.append(i)
            best = quality
        else:
            notes.append(
                f"{name}: dropped point (rate {rate:.6g}, quality {quality:.6g}), dominated by "
                "a point with lower-or-equal rate and higher-or-equal quality"
            )
    front = data[keep]
    return CleanCurve(rates=front[:, 0], qualities=front[:, 1], notes=tuple(notes))
