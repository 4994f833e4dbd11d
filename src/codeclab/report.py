"""Console rendering of evaluations, baseline ladders and analyses (rich tables)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import datetime
from enum import Enum
from typing import Any

from rich.console import Console
from rich.table import Table

from codeclab.baselines.ladder import BaselineLadder
from codeclab.lab import Lab
from codeclab.metrics.bjontegaard import BDResult
from codeclab.pipeline.analysis import Analysis
from codeclab.pipeline.evaluate import Evaluation
from codeclab.storage.costs import human_bytes, monthly_cost
from codeclab.storage.records import ExperimentRecord


def db(value: float | None) -> str:
    if value is None:
        return "-"
    return "inf (lossless)" if math.isinf(value) else f"{value:.2f}"


def _optional(value: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if value is None else fmt.format(value)


def print_evaluation(console: Console, evaluation: Evaluation) -> None:
    clip = evaluation.clip
    console.print(
        f"[bold]{evaluation.codec_name}[/] ({evaluation.codec_sha256[:12]}) on "
        f"[bold]{clip.name}[/] {clip.raw.format.describe()}, {clip.raw.frame_count} frames "
        f"from {clip.start}, clip sha256 {clip.sha256[:12]}"
    )
    table = Table()
    columns = ("quality", "bytes", "kbit/s", "bpp", "PSNR-Y dB", "PSNR-YUV dB", "SSIM-Y")
    for column in (*columns, "VMAF", "encode s", "decode s", "isolation"):
        table.add_column(column, justify="right")
    for point in evaluation.points:
        if not point.ok or point.rate is None or point.metrics is None:
            table.add_row(
                str(point.quality),
                f"[red]failed in {point.failed_phase}[/]",
                *[""] * 6,
                f"{point.encode_seconds:.2f}",
                f"{point.decode_seconds:.2f}",
                point.isolation,
            )
            continue
        summary = point.metrics.summary
        table.add_row(
            str(point.quality),
            f"{point.rate.stream_bytes:,}",
            f"{point.rate.kbps:.1f}",
            f"{point.rate.bits_per_pixel:.4f}",
            db(summary.psnr_y_mean),
            db(summary.psnr_yuv_mean),
            f"{summary.ssim_y_mean:.4f}",
            _optional(point.vmaf.vmaf_mean if point.vmaf else None),
            f"{point.encode_seconds:.2f}",
            f"{point.decode_seconds:.2f}",
            point.isolation,
        )
    console.print(table)
    console.print(
        "PSNR columns are the mean of per-frame PSNR; PSNR-YUV weights Y:U:V as 6:1:1; "
        "kbit/s counts every byte of the container.",
        style="dim",
    )


def print_failures(console: Console, evaluation: Evaluation) -> None:
    for point in evaluation.points:
        if not point.ok:
            console.print(
                f"quality {point.quality}: {point.error}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )


def print_ladders(console: Console, ladders: Mapping[str, BaselineLadder]) -> None:
    table = Table(title="baseline ladders (same frames, measured by the lab)")
    for column in ("encoder", "preset", "crf", "bytes", "kbit/s", "PSNR-Y dB", "SSIM-Y"):
        table.add_column(column, justify="right")
    for column in ("VMAF", "encode fps", "cached"):
        table.add_column(column, justify="right")
    for ladder in ladders.values():
        for point in ladder.points:
            table.add_row(
                ladder.encoder,
                ladder.preset,
                str(point.crf),
                f"{point.stream_bytes:,}",
                f"{point.bits_per_second / 1e3:.1f}",
                db(point.psnr_y),
                f"{point.ssim_y:.4f}",
                _optional(point.vmaf),
                f"{point.encode_fps:.0f}",
                "yes" if ladder.cached else "no",
            )
    console.print(table)
    versions = "; ".join(f"{ladder.encoder}: {ladder.version}" for ladder in ladders.values())
    console.print(f"versions: {versions}", style="dim", highlight=False)


def _bd(result: BDResult | None, unit: str) -> str:
    if result is None:
        return "-"
    if result.value is None:
        return f"n/a ({result.reason.split(':')[0]})" if result.reason else "n/a"
    return f"{result.value:+.2f} {unit}"


def print_analysis(console: Console, analysis: Analysis) -> None:
    if analysis.comparisons:
        table = Table(title="against the baselines (negative BD-rate: we need fewer bits)")
        for column in ("baseline", "BD-rate PSNR-Y", "BD-PSNR-Y", "BD-rate VMAF"):
            table.add_column(column, justify="right")
        table.add_column("at our operating point", justify="left")
        for comparison in analysis.comparisons.values():
            table.add_row(
                comparison.encoder,
                _bd(comparison.bd_rate_psnr, "%"),
                _bd(comparison.bd_psnr, "dB"),
                _bd(comparison.bd_rate_vmaf, "%"),
                comparison.sentence(),
            )
        console.print(table)
    point = analysis.operating_point
    if point is not None:
        console.print(
            f"operating point: quality {point.quality_param}, {point.bits_per_second / 1e6:.3f} "
            f"Mbps, PSNR-Y {db(point.psnr_y)} dB, SSIM-Y {point.ssim_y:.4f}, VMAF "
            f"{_optional(point.vmaf)}",
            highlight=False,
        )
    verdict = "[bold green]achieved[/]" if analysis.target_achieved else "[bold red]not achieved[/]"
    console.print(f"target ({analysis.target_text}): {verdict}")
    for failure in analysis.target_failures:
        console.print(f"  - {failure}", highlight=False)
    console.print(f"tier: {analysis.tier_label()}", highlight=False)


def record_to_dict(record: ExperimentRecord) -> dict[str, Any]:
    """An experiment record as JSON-safe data (times in ISO 8601 UTC)."""

    def plain(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, Enum):
            return value.value
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    data = {f.name: getattr(record, f.name) for f in fields(record)}
    data["phases"] = [phase.to_json() for phase in record.phases]
    return {k: plain(v) for k, v in data.items()}


def print_record_summary(console: Console, lab: Lab, record: ExperimentRecord) -> None:
    verdict = {True: "achieved", False: "not achieved", None: "-"}[record.target_achieved]
    console.print(
        f"experiment [bold]{record.id}[/]: {record.status.value}, target {verdict}, "
        f"publish {record.publish_status.value}",
        highlight=False,
    )
    if record.publish_error:
        console.print(f"  publish error: {record.publish_error}", highlight=False, markup=False)
    for name, key in sorted(record.artifacts.items()):
        console.print(f"  {name}: {lab.store.url(key)}", highlight=False, soft_wrap=True)
    if record.artifacts:
        console.print(
            f"  links expire in 7 days; `codeclab url {record.id}` makes new ones", style="dim"
        )


def print_experiment_list(
    console: Console, records: Sequence[ExperimentRecord], *, price_per_gb_month: float
) -> None:
    table = Table()
    columns = ("id", "created (UTC)", "status", "designer", "Mbps", "PSNR-Y", "VMAF")
    for column in (*columns, "target", "tier", "published", "stored"):
        table.add_column(column)
    for r in records:
        table.add_row(
            r.id,
            r.created_at.strftime("%Y-%m-%d %H:%M"),
            r.status.value if r.failed_phase is None else f"failed ({r.failed_phase})",
            r.designer,
            _optional(None if r.bitrate_bps is None else r.bitrate_bps / 1e6, "{:.3f}"),
            _optional(r.psnr_y),
            _optional(r.vmaf),
            {True: "yes", False: "no", None: "-"}[r.target_achieved],
            "-" if r.tier is None else str(r.tier),
            r.publish_status.value,
            human_bytes(r.bytes_stored),
        )
    console.print(table)
    total = sum(r.bytes_stored for r in records)
    console.print(
        f"{len(records)} experiments, {human_bytes(total)} stored, about "
        f"${monthly_cost(total, price_per_gb_month):.4f}/month at "
        f"${price_per_gb_month}/GB-month",
        highlight=False,
    )


def print_experiment(console: Console, lab: Lab, record: ExperimentRecord) -> None:
    table = Table(show_header=False, title=f"experiment {record.id}")
    table.add_column("field")
    table.add_column("value", overflow="fold")
    skip = {"phases", "metrics", "comparison", "artifacts", "rationale"}
    for key, value in record_to_dict(record).items():
        if key not in skip:
            table.add_row(key, "-" if value is None or value == "" else str(value))
    console.print(table)
    if record.rationale:
        console.print(f"rationale: {record.rationale}", highlight=False, markup=False)
    timeline = Table(title="phases")
    for column in ("phase", "status", "started (UTC)", "seconds", "error"):
        timeline.add_column(column)
    for phase in record.phases:
        timeline.add_row(
            phase.phase,
            phase.status.value,
            phase.started_at.strftime("%H:%M:%S"),
            _optional(phase.seconds),
            phase.error or "",
        )
    console.print(timeline)
    if record.comparison:
        for comparison in record.comparison.get("comparisons", {}).values():
            console.print(f"vs {comparison['encoder']}: {comparison['sentence']}", highlight=False)
    objects = Table(title="artifacts")
    for column in ("name", "key", "exists", "size"):
        objects.add_column(column)
    for name, key in sorted(record.artifacts.items()):
        info = lab.store.stat(key)
        objects.add_row(
            name,
            key,
            "yes" if info else "[red]MISSING[/]",
            human_bytes(info.size) if info else "-",
        )
    if record.codec_sha256:
        key = f"codecs/{record.codec_sha256}.py"
        info = lab.store.stat(key)
        objects.add_row("codec source", key, "yes" if info else "[red]MISSING[/]", "-")
    console.print(objects)
