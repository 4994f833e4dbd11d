"""What pages show of a record: titles, savings against x265, phases, chart series."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from codeclab.storage.records import ExperimentRecord, ExperimentStatus, PhaseRecord, PhaseStatus
from codeclab.web import views

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def record(**fields: Any) -> ExperimentRecord:
    return ExperimentRecord(
        id="exp-1",
        run_id=None,
        created_at=NOW,
        updated_at=NOW,
        status=fields.pop("status", ExperimentStatus.COMPLETED),
        designer="llm",
        **fields,
    )


def test_the_first_rationale_line_is_the_title_and_the_rest_the_body() -> None:
    rationale = "Try a larger transform\n\nBecause flat areas dominate."
    assert views.post_title(rationale, "llm", "exp-1") == "Try a larger transform"
    assert views.post_body(rationale) == "Because flat areas dominate."
    assert views.post_title("", "llm", "exp-1") == "llm experiment exp-1"
    long = "x" * 200
    assert views.post_title(long, "llm", "exp-1") == "x" * 107 + "..."
    assert views.post_body(long) == long  # a cut title does not swallow the text


@pytest.mark.parametrize(
    ("percent", "direction", "change"),
    [(25.0, "fewer", -25.0), (-40.0, "more", 40.0), (0.0, "same", -0.0), (None, "none", None)],
)
def test_savings_against_x265_say_which_way_the_bits_went(
    percent: float | None, direction: str, change: float | None
) -> None:
    comparison = {"comparisons": {"x265": {"saving_percent_at_equal_psnr_y": percent}}}
    saving = views.reference_saving(record(comparison=comparison))
    assert saving is not None
    assert saving.direction == direction
    assert saving.change_percent == change


def test_no_x265_comparison_means_no_reference_saving() -> None:
    assert views.reference_saving(record(comparison={"comparisons": {}})) is None
    assert views.reference_saving(record(comparison=None)) is None


def test_phase_rows_list_every_phase_in_order_with_the_failure() -> None:
    phases = (
        PhaseRecord("design", PhaseStatus.COMPLETED, NOW, NOW, 0.1),
        PhaseRecord("validation", PhaseStatus.FAILED, NOW, NOW, 0.2, "rejected: import os"),
    )
    rows = views.phase_rows(
        record(status=ExperimentStatus.FAILED, phases=phases, failed_phase="validation")
    )
    assert [r.phase for r in rows] == list(views.PHASES[:-1])  # publish: not every one does
    assert [r.status for r in rows[:3]] == ["completed", "failed", "not reached"]
    assert rows[1].error == "rejected: import os"


def test_frame_series_are_columns_per_quality() -> None:
    frames = {
        30: {
            "quality": [{"index": 0, "psnr_y": 31.0, "ssim_y": 0.9}, {"index": 1, "psnr_y": 32.0}],
            "vmaf": {"vmaf_frames": [80.0, 81.0]},
        }
    }
    assert views.frame_series(frames) == {
        "30": {
            "frame": [0.0, 1.0],
            "psnr_y": [31.0, 32.0],
            "ssim_y": [0.9, None],
            "vmaf": [80.0, 81.0],
        }
    }
