"""BD-rate and BD-quality against known answers."""

from __future__ import annotations

import json
import math

import pytest

from codeclab.metrics.bjontegaard import BDResult, bd_quality, bd_rate

Curve = list[tuple[float, float]]
METHODS = ["pchip", "cubic"]

# An x264-like curve: (kbps, PSNR dB), concave in log rate.
X264_LIKE: Curve = [
    (200.0, 30.1),
    (400.0, 33.4),
    (800.0, 36.2),
    (1600.0, 38.9),
    (3200.0, 41.0),
]

# JCTVC-E137 example data and its PCHIP BD-rates, as used to validate Netflix VMAF's
# BD-rate calculator (Netflix/vmaf python/test/bd_rate_calculator_test.py,
# BDrateCalculatorJCTVCTest: -0.00465215420752807 and -0.018779823450567612 as fractions).
JCTVC_1_REF: Curve = [
    (108048.8736, 43.6471),
    (61279.976, 40.3953),
    (33905.6656, 37.247),
    (18883.6928, 34.2911),
]
JCTVC_1_TEST: Curve = [
    (108061.2784, 43.6768),
    (61299.9936, 40.4232),
    (33928.7472, 37.2761),
    (18910.912, 34.3147),
]
JCTVC_2_REF: Curve = [
    (40433.8848, 37.5761),
    (7622.7456, 35.3756),
    (2394.488, 33.8977),
    (1017.6184, 32.0603),
]
JCTVC_2_TEST: Curve = [
    (40370.12, 37.5982),
    (7587.0024, 35.4025),
    (2390.0944, 33.9194),
    (1017.0984, 32.0822),
]


def scale_rates(curve: Curve, k: float) -> Curve:
    return [(rate * k, quality) for rate, quality in curve]


def shift_quality(curve: Curve, d: float) -> Curve:
    return [(rate, quality + d) for rate, quality in curve]


def loglinear_curve(a: float, b: float, qualities: list[float]) -> Curve:
    """Points with log10(rate) = a + b * quality exactly."""
    return [(10.0 ** (a + b * q), q) for q in qualities]


@pytest.fixture(params=METHODS)
def method(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_identical_curves_give_zero(method: str) -> None:
    rate = bd_rate(X264_LIKE, X264_LIKE, method=method)
    quality = bd_quality(X264_LIKE, X264_LIKE, method=method)
    assert rate.ok and quality.ok
    assert rate.value == pytest.approx(0.0, abs=1e-10)
    assert quality.value == pytest.approx(0.0, abs=1e-10)
    assert rate.overlap == (30.1, 41.0)
    assert rate.method == method


@pytest.mark.parametrize("k", [0.5, 0.8, 1.25, 2.0, 3.0])
def test_rates_scaled_by_k_give_k_minus_one_percent(method: str, k: float) -> None:
    result = bd_rate(X264_LIKE, scale_rates(X264_LIKE, k), method=method)
    assert result.ok
    assert result.value == pytest.approx((k - 1.0) * 100.0, rel=1e-9)


@pytest.mark.parametrize("d", [-1.5, 0.25, 2.0])
def test_quality_shifted_by_d_gives_d(method: str, d: float) -> None:
    result = bd_quality(X264_LIKE, shift_quality(X264_LIKE, d), method=method)
    assert result.ok
    assert result.value == pytest.approx(d, rel=1e-9)


@pytest.mark.parametrize(
    ("reference", "test"),
    [(JCTVC_1_REF, JCTVC_1_TEST), (JCTVC_2_REF, JCTVC_2_TEST), (X264_LIKE, JCTVC_2_TEST)],
    ids=["jctvc1", "jctvc2", "partial-overlap"],
)
def test_swapping_curves_gives_the_inverse(method: str, reference: Curve, test: Curve) -> None:
    forward = bd_rate(reference, test, method=method, min_overlap=0.0)
    backward = bd_rate(test, reference, method=method, min_overlap=0.0)
    assert forward.value is not None and backward.value is not None
    r = forward.value / 100.0
    assert backward.value / 100.0 == pytest.approx(1.0 / (1.0 + r) - 1.0, rel=1e-9)
    assert forward.overlap == backward.overlap
    q_forward = bd_quality(reference, test, method=method, min_overlap=0.0).value
    q_backward = bd_quality(test, reference, method=method, min_overlap=0.0).value
    assert q_forward is not None and q_backward is not None
    assert q_backward == pytest.approx(-q_forward, rel=1e-9)


@pytest.mark.parametrize(
    ("reference", "test", "expected_percent"),
    [
        (JCTVC_1_REF, JCTVC_1_TEST, -0.465215420752807),
        (JCTVC_2_REF, JCTVC_2_TEST, -1.8779823450567612),
    ],
    ids=["jctvc-e137-1", "jctvc-e137-2"],
)
def test_pchip_matches_published_jctvc_e137_values(
    reference: Curve, test: Curve, expected_percent: float
) -> None:
    result = bd_rate(reference, test, method="pchip")
    assert result.value == pytest.approx(expected_percent, abs=1e-9)


def test_varying_gap_over_partial_overlap_matches_closed_form(method: str) -> None:
    # log10 R_ref = 1 + 0.1 q on q in [30, 40]; log10 R_test = 0.5 + 0.11 q on q in [34, 45].
    # Both methods reproduce straight lines exactly, so over the overlap [34, 40] the mean
    # gap is -0.5 + 0.01 * 37 = -0.13 decades.
    reference = loglinear_curve(1.0, 0.1, [30.0, 32.0, 35.0, 37.5, 40.0])
    test = loglinear_curve(0.5, 0.11, [34.0, 36.0, 39.0, 42.0, 45.0])
    result = bd_rate(reference, test, method=method)
    assert result.overlap == (34.0, 40.0)
    assert result.value == pytest.approx((10.0**-0.13 - 1.0) * 100.0, rel=1e-9)


def test_cubic_reproduces_a_cubic_curve_exactly() -> None:
    # log10 R_ref = cubic(q); the test curve adds 0.02 * (q - 35) decades. Over [30, 40]
    # that gap averages 0, over [32, 40] it averages 0.02 * (36 - 35) = 0.02.
    def cubic(q: float) -> float:
        return 2.0 + 0.05 * (q - 35.0) + 0.004 * (q - 35.0) ** 2 + 0.0002 * (q - 35.0) ** 3

    ref_q = [30.0, 32.5, 35.0, 37.0, 40.0]
    test_q = [32.0, 34.0, 36.0, 38.0, 40.0]
    reference = [(10.0 ** cubic(q), q) for q in ref_q]
    test = [(10.0 ** (cubic(q) + 0.02 * (q - 35.0)), q) for q in test_q]
    result = bd_rate(reference, test, method="cubic")
    assert result.overlap == (32.0, 40.0)
    assert result.value == pytest.approx((10.0**0.02 - 1.0) * 100.0, rel=1e-9)


def test_disjoint_curves_report_no_overlap(method: str) -> None:
    low = [(100.0, 25.0), (200.0, 27.0), (400.0, 29.0), (800.0, 31.0)]
    high = [(1000.0, 35.0), (2000.0, 37.0), (4000.0, 39.0), (8000.0, 41.0)]
    for result in (bd_rate(low, high, method=method), bd_quality(low, high, method=method)):
        assert not result.ok
        assert result.value is None
        assert result.overlap is None
        assert result.reason is not None and result.reason.startswith("not enough overlap")
        assert "do not overlap" in result.reason


def test_sliver_overlap_is_refused_unless_allowed() -> None:
    # The curves share [40.0, 41.0] dB: 9 % of the reference's quality range.
    test = shift_quality(X264_LIKE, 9.9)
    refused = bd_rate(X264_LIKE, test)
    assert not refused.ok
    assert refused.reason is not None
    assert "9.2% of the reference curve's range" in refused.reason
    allowed = bd_rate(X264_LIKE, test, min_overlap=0.05)
    assert allowed.ok
    assert allowed.overlap == pytest.approx((40.0, 41.0))


def test_dominated_point_is_dropped_with_a_note(method: str) -> None:
    # A point costing more than its neighbour for less quality is not on the RD curve.
    noisy = [*X264_LIKE, (900.0, 35.0)]
    result = bd_rate(X264_LIKE, noisy, method=method)
    assert result.value == pytest.approx(0.0, abs=1e-10)
    assert len(result.notes) == 1
    assert "test: dropped point (rate 900, quality 35), dominated" in result.notes[0]


def test_quality_falling_with_rate_leaves_too_few_points_not_a_number(method: str) -> None:
    inverted = [(100.0, 40.0), (200.0, 38.0), (400.0, 36.0), (800.0, 34.0)]
    result = bd_rate(X264_LIKE, inverted, method=method)
    assert not result.ok
    assert result.reason is not None
    assert result.reason.startswith(f"need at least {2 if method == 'pchip' else 4} points")
    assert "test has 1 after cleaning" in result.reason
    assert len(result.notes) == 3


def test_equal_quality_keeps_the_cheaper_point() -> None:
    plateau = [(200.0, 30.1), (400.0, 33.4), (800.0, 36.2), (1000.0, 36.2), (1600.0, 38.9)]
    clean = [(200.0, 30.1), (400.0, 33.4), (800.0, 36.2), (1600.0, 38.9)]
    assert bd_rate(X264_LIKE, plateau).value == bd_rate(X264_LIKE, clean).value


def test_cubic_with_three_points_gives_a_reason_and_pchip_does_not() -> None:
    three = X264_LIKE[:3]
    cubic = bd_rate(X264_LIKE, three, method="cubic")
    assert not cubic.ok
    assert cubic.reason == "need at least 4 points for cubic: test has 3 after cleaning"
    pchip = bd_rate(three, scale_rates(three, 2.0), method="pchip")
    assert pchip.value == pytest.approx(100.0, rel=1e-9)


def test_unsorted_input_with_duplicates_matches_clean_input(method: str) -> None:
    messy = [X264_LIKE[3], X264_LIKE[0], X264_LIKE[4], X264_LIKE[0], X264_LIKE[2], X264_LIKE[1]]
    test = scale_rates(X264_LIKE, 0.7)
    messy_result = bd_rate(messy, test, method=method)
    assert messy_result == bd_rate(X264_LIKE, test, method=method)
    assert messy_result.notes == ()


def test_lossless_point_is_dropped_with_a_note() -> None:
    with_lossless = [*X264_LIKE, (50000.0, math.inf)]
    result = bd_rate(with_lossless, scale_rates(X264_LIKE, 2.0))
    assert result.value == pytest.approx(100.0, rel=1e-9)
    assert result.notes == (
        "reference: dropped point 5 (rate 50000) with infinite quality (lossless)",
    )


@pytest.mark.parametrize(
    ("bad_point", "message"),
    [
        ((0.0, 35.0), "rate must be finite and > 0, got 0.0"),
        ((-5.0, 35.0), "rate must be finite and > 0, got -5.0"),
        ((math.inf, 35.0), "rate must be finite and > 0, got inf"),
        ((math.nan, 35.0), "rate must be finite and > 0, got nan"),
        ((500.0, math.nan), "quality must be a number, got nan"),
        ((500.0, -math.inf), "quality must be a number, got -inf"),
    ],
)
def test_invalid_point_raises_naming_curve_and_point(
    bad_point: tuple[float, float], message: str
) -> None:
    with pytest.raises(ValueError, match=f"^test curve point 2: {message}$"):
        bd_rate(X264_LIKE, [X264_LIKE[0], X264_LIKE[1], bad_point])


def test_malformed_points_raise() -> None:
    with pytest.raises(ValueError, match="sequence of \\(rate, quality\\) pairs"):
        bd_quality([(1.0, 2.0, 3.0)], X264_LIKE)  # type: ignore[list-item]


def test_unknown_method_raises() -> None:
    with pytest.raises(ValueError, match="unknown BD interpolation method 'akima'"):
        bd_rate(X264_LIKE, X264_LIKE, method="akima")


def test_empty_curve_gives_a_reason() -> None:
    result = bd_quality([], X264_LIKE)
    assert result.reason == "need at least 2 points for pchip: reference has 0 after cleaning"


def test_to_dict_is_json_safe_for_values_and_failures() -> None:
    good = bd_rate(X264_LIKE, scale_rates(X264_LIKE, 0.5), method="cubic")
    bad = bd_rate(X264_LIKE, X264_LIKE[:3], method="cubic")
    for result in (good, bad):
        assert json.loads(json.dumps(result.to_dict(), allow_nan=False)) == result.to_dict()
    assert good.to_dict() == {
        "ok": True,
        "value": pytest.approx(-50.0),
        "method": "cubic",
        "overlap": [30.1, 41.0],
        "reason": None,
        "notes": [],
    }
    assert bad.to_dict()["ok"] is False
    assert bad.to_dict()["value"] is None


def test_result_is_immutable() -> None:
    result = BDResult(value=1.0, method="pchip", overlap=(0.0, 1.0))
    with pytest.raises(AttributeError):
        result.value = 2.0  # type: ignore[misc]
