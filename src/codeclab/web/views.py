"""What pages and the API show of a record: result cards, savings, phases, chart series.

Pure functions from records to plain data; no I/O, so pages and API agree on every number.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from codeclab.storage.records import BaselineRecord, ExperimentRecord

PHASES = (
    "design",
    "validation",
    "deployment",
    "execution",
    "verification",
    "analysis",
    "publish",
)
REFERENCE_ENCODER = "x265"  # the seed compares against HEVC
TITLE_CHARS = 110


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def finite_number(value: Any) -> float | None:
    """A JSON value as a finite float; None for anything else (bools, strings, NaN, inf)."""
    return _number(value)


def comparison_of(record: ExperimentRecord) -> dict[str, Any]:
    return record.comparison if isinstance(record.comparison, dict) else {}


def operating_quality(record: ExperimentRecord) -> int | None:
    operating = comparison_of(record).get("operating_point") or {}
    quality = operating.get("quality_param")
    return quality if isinstance(quality, int) else None


@dataclass(frozen=True)
class Saving:
    """Bits against one baseline at equal PSNR-Y: positive = we need fewer bits."""

    encoder: str
    percent: float | None
    sentence: str | None
    bd_rate_psnr_y: float | None

    @property
    def change_percent(self) -> float | None:
        """Change in bits (the seed's "-92.7 % vs HEVC"): negative = fewer bits."""
        return None if self.percent is None else -self.percent

    @property
    def direction(self) -> str:
        if self.percent is None:
            return "none"
        return "fewer" if self.percent > 0 else "more" if self.percent < 0 else "same"


def savings(record: ExperimentRecord) -> dict[str, Saving]:
    comparisons = comparison_of(record).get("comparisons") or {}
    out: dict[str, Saving] = {}
    if not isinstance(comparisons, Mapping):
        return out
    for encoder, data in sorted(comparisons.items()):
        if not isinstance(data, Mapping):
            continue
        bd = data.get("bd_rate_psnr_y") or {}
        out[encoder] = Saving(
            encoder=encoder,
            percent=_number(data.get("saving_percent_at_equal_psnr_y")),
            sentence=data.get("sentence") if isinstance(data.get("sentence"), str) else None,
            bd_rate_psnr_y=_number(bd.get("value")) if isinstance(bd, Mapping) else None,
        )
    return out


def reference_saving(record: ExperimentRecord) -> Saving | None:
    return savings(record).get(REFERENCE_ENCODER)


@dataclass(frozen=True)
class PhaseRow:
    phase: str
    status: str  # "completed", "failed", "running", or "not reached"
    seconds: float | None
    started_at: datetime | None
    error: str | None

    @property
    def css(self) -> str:
        return self.status.replace(" ", "-")

    @property
    def short_seconds(self) -> str:
        return "" if self.seconds is None else f"{self.seconds:.1f} s"

    @property
    def title(self) -> str:
        timing = "" if self.seconds is None else f", {self.seconds:.2f} s"
        return f"{self.phase}: {self.status}{timing}"


def phase_rows(record: ExperimentRecord) -> list[PhaseRow]:
    """Every phase of the seed in order (the last attempt of each), unreached ones included."""
    latest = {phase.phase: phase for phase in record.phases}
    names = list(PHASES) + [p.phase for p in record.phases if p.phase not in PHASES]
    rows: list[PhaseRow] = []
    for name in dict.fromkeys(names):
        phase = latest.get(name)
        if phase is None:
            if name == "publish" and record.status.value in ("completed", "failed"):
                continue  # not every experiment publishes
            rows.append(PhaseRow(name, "not reached", None, None, None))
        else:
            rows.append(
                PhaseRow(name, phase.status.value, phase.seconds, phase.started_at, phase.error)
            )
    return rows


@dataclass(frozen=True)
class RDPoint:
    quality: int | None
    bits_per_second: float
    psnr_y: float | None
    ssim_y: float | None
    vmaf: float | None
    label: str


def candidate_points(record: ExperimentRecord) -> list[RDPoint]:
    """The experiment's measured quality points, by rate."""
    points: list[RDPoint] = []
    for item in record.metrics or []:
        if not isinstance(item, Mapping) or not item.get("ok", True):
            continue
        rate = _number((item.get("rate") or {}).get("bits_per_second"))
        if rate is None:
            continue
        summary = (item.get("metrics") or {}).get("summary") or {}
        vmaf = item.get("vmaf") or {}
        quality = item.get("quality")
        points.append(
            RDPoint(
                quality=quality if isinstance(quality, int) else None,
                bits_per_second=rate,
                psnr_y=_number(summary.get("psnr_y_mean")),
                ssim_y=_number(summary.get("ssim_y_mean")),
                vmaf=_number(vmaf.get("vmaf_mean")) if isinstance(vmaf, Mapping) else None,
                label=f"q{quality}",
            )
        )
    return sorted(points, key=lambda p: p.bits_per_second)


def baseline_points(baselines: Iterable[BaselineRecord]) -> dict[str, list[RDPoint]]:
    """The newest ladder of each encoder, by rate."""
    newest: dict[str, BaselineRecord] = {}
    for baseline in baselines:
        current = newest.get(baseline.encoder)
        if current is None or baseline.created_at >= current.created_at:
            newest[baseline.encoder] = baseline
    out: dict[str, list[RDPoint]] = {}
    for encoder, baseline in sorted(newest.items()):
        points: list[RDPoint] = []
        for item in baseline.points:
            if not isinstance(item, Mapping):
                continue
            rate = _number(item.get("bits_per_second"))
            if rate is None:
                continue
            crf = item.get("crf")
            points.append(
                RDPoint(
                    quality=None,
                    bits_per_second=rate,
                    psnr_y=_number(item.get("psnr_y")),
                    ssim_y=_number(item.get("ssim_y")),
                    vmaf=_number(item.get("vmaf")),
                    label=f"crf {crf}",
                )
            )
        out[encoder] = sorted(points, key=lambda p: p.bits_per_second)
    return out


def rd_chart_data(
    candidates: Mapping[str, Sequence[RDPoint]], baselines: Mapping[str, Sequence[RDPoint]]
) -> dict[str, Any]:
    """Series for the RD chart script: name -> kbit/s, PSNR-Y, VMAF, labels."""

    def series(points: Sequence[RDPoint], kind: str) -> dict[str, Any]:
        return {
            "kind": kind,
            "kbps": [p.bits_per_second / 1000 for p in points],
            "psnr_y": [p.psnr_y for p in points],
            "vmaf": [p.vmaf for p in points],
            "labels": [p.label for p in points],
        }

    data = {name: series(points, "candidate") for name, points in candidates.items()}
    data.update({name: series(points, "baseline") for name, points in baselines.items()})
    return data


def frame_series(frames: Mapping[int, Any]) -> dict[str, dict[str, list[float | None]]]:
    """Per-frame PSNR-Y, SSIM-Y and VMAF of each quality point (keys are str for JSON)."""
    out: dict[str, dict[str, list[float | None]]] = {}
    for quality, data in sorted(frames.items()):
        if not isinstance(data, Mapping):
            continue
        rows = data.get("quality") or []
        vmaf = data.get("vmaf") or {}
        vmaf_frames = vmaf.get("vmaf_frames") if isinstance(vmaf, Mapping) else None
        series: dict[str, list[float | None]] = {
            "frame": [float(row.get("index", i)) for i, row in enumerate(rows)],
            "psnr_y": [_number(row.get("psnr_y")) for row in rows],
            "ssim_y": [_number(row.get("ssim_y")) for row in rows],
        }
        if isinstance(vmaf_frames, list) and len(vmaf_frames) == len(rows):
            series["vmaf"] = [_number(v) for v in vmaf_frames]
        else:
            series["vmaf"] = [None] * len(rows)
        out[str(quality)] = series
    return out


def mbps(record: ExperimentRecord) -> float | None:
    return None if record.bitrate_bps is None else record.bitrate_bps / 1e6


def post_title(rationale: str, designer: str, exp_id: str) -> str:
    """A post title: the first line of the rationale, else the designer and id."""
    first = rationale.strip().splitlines()[0].strip() if rationale.strip() else ""
    if len(first) > TITLE_CHARS:
        first = first[: TITLE_CHARS - 3].rstrip() + "..."
    return first or f"{designer} experiment {exp_id}"


def post_body(rationale: str) -> str:
    """The rationale without the line :func:`post_title` made the title of."""
    lines = rationale.strip().splitlines()
    if not lines or len(lines[0].strip()) > TITLE_CHARS:
        return rationale.strip()
    return "\n".join(lines[1:]).strip()


def status_text(status: str, failed_phase: str | None, current_phase: str | None) -> str:
    if failed_phase:
        return f"failed in {failed_phase}"
    if status == "running" and current_phase:
        return f"running: {current_phase}"
    return status


def title(record: ExperimentRecord) -> str:
    return post_title(record.rationale, record.designer, record.id)


def status_label(record: ExperimentRecord) -> str:
    return status_text(record.status.value, record.failed_phase, record.current_phase)
