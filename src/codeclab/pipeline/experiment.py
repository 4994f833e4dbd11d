"""One experiment, phase by phase, recorded as it goes.

design -> validation -> deployment -> execution -> verification -> analysis -> publish

Each phase is recorded with its timing; a failing phase ends the experiment with its
reason (never the campaign). Validation never executes the code; execution runs it
only in sandboxes; verification and analysis use only the lab's own measurements.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeclab.baselines.ladder import BaselineLadder, run_baselines
from codeclab.codec.contract import MAX_SOURCE_BYTES
from codeclab.codec.validate import validate_source
from codeclab.designers.base import Design
from codeclab.lab import Lab
from codeclab.metrics.vmaf import vmaf_available
from codeclab.pipeline.analysis import Analysis, Target, analyse
from codeclab.pipeline.evaluate import (
    DEFAULT_QUALITIES,
    Evaluation,
    Execution,
    PointResult,
    check_qualities,
    execute_point,
    verify_point,
)
from codeclab.storage.package import key_metrics
from codeclab.storage.publish import PublishInputs, PublishResult, publish_experiment
from codeclab.storage.records import ClipRecord, CodecRecord, ExperimentRecord
from codeclab.video.clips import PreparedClip, prepare_clip

PHASES = (
    "design",
    "validation",
    "deployment",
    "execution",
    "verification",
    "analysis",
    "publish",
)

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ExperimentPlan:
    """How a design is tested: on which clip, at which qualities, against what."""

    clip: PreparedClip
    qualities: tuple[int, ...] = DEFAULT_QUALITIES
    target: Target = field(default_factory=Target)
    baselines: tuple[str, ...] = ("x264", "x265", "svtav1")
    with_vmaf: bool = True
    publish: str = "success"  # "success" | "always" | "never"


@dataclass(frozen=True)
class ExperimentOutcome:
    record: ExperimentRecord
    evaluation: Evaluation | None
    analysis: Analysis | None
    ladders: dict[str, BaselineLadder]
    published: PublishResult | None


def codec_key(sha256: str) -> str:
    return f"codecs/{sha256}.py"


def record_clip(lab: Lab, clip: PreparedClip) -> None:
    fmt = clip.raw.format
    lab.records.upsert_clip(
        ClipRecord(
            sha256=clip.sha256,
            name=clip.name,
            source=clip.source,
            width=fmt.width,
            height=fmt.height,
            fps_num=fmt.fps.numerator,
            fps_den=fmt.fps.denominator,
            frame_count=clip.raw.frame_count,
            start=clip.start,
        )
    )


def record_ladders(lab: Lab, ladders: Mapping[str, BaselineLadder]) -> None:
    """Keep the baseline ladders an analysis uses in the records (where the dashboard draws
    them), once per cache key: a ladder already recorded under its key is left alone."""
    for ladder in ladders.values():
        if lab.records.get_baseline(ladder.cache_key) is not None:
            continue
        lab.records.save_baseline(
            clip_sha256=ladder.clip_sha256,
            encoder=ladder.encoder,
            cache_key=ladder.cache_key,
            version=ladder.version,
            settings=ladder.settings,
            points=[point.to_dict() for point in ladder.points],
        )


def run_experiment(
    lab: Lab,
    design: Design,
    plan: ExperimentPlan,
    *,
    workdir: Path,
    run_id: str | None = None,
    codec_name: str = "codec",
    progress: Progress | None = None,
) -> ExperimentOutcome:
    """Take `design` through every phase on `plan.clip`, recording each."""
    records = lab.records
    record_clip(lab, plan.clip)
    exp = records.create_experiment(
        designer=design.designer or "manual",
        run_id=run_id,
        clip_sha256=plan.clip.sha256,
        params=design.params,
        rationale=design.rationale,
        parent_ids=design.parent_ids,
        target=plan.target.to_dict(),
    )
    exp_id = exp.id
    records.update_experiment(
        exp_id,
        status="running",
        cost_usd=design.usage.cost_usd,
        tokens_in=design.usage.input_tokens,
        tokens_out=design.usage.output_tokens,
    )
    records.start_phase(exp_id, "design")
    records.finish_phase(exp_id, "design")
    outcome = _run_phases(lab, exp_id, design, plan, workdir / exp_id, codec_name, progress)
    return outcome


def _keep_source(lab: Lab, exp_id: str, source: str, sha256: str, size: int, name: str) -> None:
    """Store `source` content-addressed and name it as the experiment's codec."""
    key = codec_key(sha256)
    if not lab.store.exists(key):
        lab.store.put_bytes(key, source.encode("utf-8"), "text/x-python; charset=utf-8")
    lab.records.upsert_codec(CodecRecord(sha256, name, key, size))
    lab.records.update_experiment(exp_id, codec_sha256=sha256)


def _fail(lab: Lab, exp_id: str, phase: str, error: str) -> ExperimentOutcome:
    lab.records.finish_phase(exp_id, phase, error=error)
    return ExperimentOutcome(lab.records.get_experiment(exp_id), None, None, {}, None)


def _run_phases(
    lab: Lab,
    exp_id: str,
    design: Design,
    plan: ExperimentPlan,
    workdir: Path,
    codec_name: str,
    progress: Progress | None,
) -> ExperimentOutcome:
    records, store, settings = lab.records, lab.store, lab.settings
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        # validation: parse and check only, never execute
        records.start_phase(exp_id, "validation")
        report = validate_source(design.source, filename=codec_name)
        if not report.ok:
            reasons = "; ".join(str(v) for v in report.violations[:20])
            if report.size <= MAX_SOURCE_BYTES:
                # kept as text (never run) so the record shows what was rejected, and a
                # designer asked to fix it gets it back even after a resume
                _keep_source(lab, exp_id, design.source, report.sha256, report.size, codec_name)
            return _fail(lab, exp_id, "validation", f"rejected: {reasons}")
        records.finish_phase(exp_id, "validation")

        # deployment: the source, content-addressed
        records.start_phase(exp_id, "deployment")
        _keep_source(lab, exp_id, design.source, report.sha256, report.size, codec_name)
        records.finish_phase(exp_id, "deployment")

        # execution: encoder and decoder sandboxes per quality point
        records.start_phase(exp_id, "execution")
        executions: list[Execution] = []
        for quality in check_qualities(plan.qualities):
            execution = execute_point(
                design.source,
                report.sha256,
                plan.clip,
                {**design.params, "quality": quality},
                workdir=workdir,
                settings=settings.sandbox,
                progress=progress,
            )
            executions.append(execution)
            if not execution.ok:
                records.update_experiment(exp_id, isolation=execution.isolation)
                return _fail(lab, exp_id, "execution", f"q{quality}: {execution.error}")
        records.update_experiment(exp_id, isolation=executions[0].isolation)
        records.finish_phase(exp_id, "execution")

        # verification: the lab measures the decoder's frames
        records.start_phase(exp_id, "verification")
        with_vmaf = plan.with_vmaf and vmaf_available()
        points: list[PointResult] = []
        for execution in executions:
            point = verify_point(execution, plan.clip, with_vmaf=with_vmaf, progress=progress)
            if not point.ok:
                return _fail(lab, exp_id, "verification", f"q{point.quality}: {point.error}")
            points.append(point)
            _store_frames(lab, exp_id, point)
        evaluation = Evaluation(codec_name, report.sha256, plan.clip, points)
        records.update_experiment(exp_id, metrics=[p.to_dict(per_frame=False) for p in points])
        records.finish_phase(exp_id, "verification")

        # analysis: real baselines on the same frames, BD-rate, target, tier
        records.start_phase(exp_id, "analysis")
        ladders = (
            run_baselines(
                plan.clip,
                plan.baselines,
                cache_dir=settings.cache_dir / "baselines",
                workdir=workdir / "baselines",
                with_vmaf=with_vmaf,
            )
            if plan.baselines
            else {}
        )
        record_ladders(lab, ladders)
        analysis = analyse(evaluation, ladders, plan.target)
        operating = analysis.operating_point
        records.update_experiment(
            exp_id,
            comparison=analysis.to_dict(),
            target_achieved=analysis.target_achieved,
            tier=analysis.tier,
            bitrate_bps=operating.bits_per_second if operating else None,
            psnr_y=_finite(operating.psnr_y) if operating else None,
            ssim_y=operating.ssim_y if operating else None,
            vmaf=operating.vmaf if operating else None,
        )
        records.finish_phase(exp_id, "analysis")

        # publish: for experiments that reach their target (or as configured)
        published = None
        if operating is not None and _should_publish(plan.publish, analysis.target_achieved):
            records.start_phase(exp_id, "publish")
            chosen = next(e for e in executions if e.quality == operating.quality_param)
            chosen_point = next(p for p in points if p.quality == operating.quality_param)
            published = publish_experiment(
                store,
                records,
                publish_inputs(
                    lab, exp_id, codec_name, design.source, plan.clip, chosen, chosen_point
                ),
                workdir=workdir / "publish",
            )
            # a failed upload is recorded in publish_status / publish_error and can be
            # retried with `codeclab publish`; it does not fail the experiment
            records.finish_phase(exp_id, "publish")
        records.update_experiment(exp_id, status="completed", current_phase=None)
        return ExperimentOutcome(
            records.get_experiment(exp_id), evaluation, analysis, ladders, published
        )
    except Exception as exc:  # a bug or an infrastructure failure: recorded, not fatal
        current = records.get_experiment(exp_id).current_phase
        if current is None:  # between phases: charge it to the next one
            current = "analysis"
            records.start_phase(exp_id, current)
        return _fail(lab, exp_id, current, f"{type(exc).__name__}: {exc}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def publish_inputs(
    lab: Lab,
    exp_id: str,
    codec_name: str,
    source: str,
    clip: PreparedClip,
    execution: Execution,
    point: PointResult,
) -> PublishInputs:
    assert execution.stream_path is not None and execution.decoded is not None
    assert point.rate is not None and point.metrics is not None
    record = lab.records.get_experiment(exp_id)
    return PublishInputs(
        experiment_id=exp_id,
        created_at=record.created_at,
        codec_name=codec_name,
        codec_source=source,
        clip=clip,
        stream=execution.stream_path.read_bytes(),
        decoded=execution.decoded,
        metrics=key_metrics(point.rate, point.metrics.summary, point.vmaf),
    )


def _should_publish(policy: str, achieved: bool) -> bool:
    return policy == "always" or (policy == "success" and achieved)


def _finite(value: float) -> float | None:
    return value if value != float("inf") else None


def _store_frames(lab: Lab, exp_id: str, point: PointResult) -> None:
    data: dict[str, Any] = {}
    if point.metrics is not None:
        data["quality"] = [f.to_dict() for f in point.metrics.frames]
    if point.vmaf is not None:
        data["vmaf"] = point.vmaf.to_dict(per_frame=True)
    lab.records.set_frames(exp_id, point.quality, data)


class RepublishError(RuntimeError):
    """The experiment cannot be published again; the message says why."""


def republish(lab: Lab, exp_id: str, *, workdir: Path) -> PublishResult:
    """Publish a completed experiment again (e.g. after a failed upload).

    The artifacts are rebuilt from stored facts: the codec source from the store, the
    clip from its recorded source (its sha256 must match), and the operating point is
    run again in the sandboxes; its bitstream must be byte-identical (same sha256) to
    the one measured, or nothing is published.
    """
    record = lab.records.get_experiment(exp_id)
    if record.status != "completed" or not record.comparison or not record.codec_sha256:
        raise RepublishError(f"{exp_id}: only completed experiments can be published")
    operating = record.comparison.get("operating_point") or {}
    quality = operating.get("quality_param")
    measured = {m["quality"]: m for m in record.metrics or []}
    if quality is None or quality not in measured:
        raise RepublishError(f"{exp_id}: no operating point recorded")
    codec = lab.records.get_codec(record.codec_sha256)
    source = lab.store.get_bytes(codec.source_key).decode("utf-8")
    clip_record = lab.records.get_clip(record.clip_sha256 or "")
    clip = prepare_clip(
        clip_record.source,
        workdir / "clip",
        start=clip_record.start,
        frames=clip_record.frame_count,
        cache_dir=lab.settings.cache_dir,
    )
    if clip.sha256 != clip_record.sha256:
        raise RepublishError(
            f"{exp_id}: the clip at {clip_record.source} has changed "
            f"(sha256 {clip.sha256[:12]}, recorded {clip_record.sha256[:12]})"
        )
    params = {**record.params, "quality": quality}
    execution = execute_point(
        source, codec.sha256, clip, params, workdir=workdir, settings=lab.settings.sandbox
    )
    if not execution.ok:
        raise RepublishError(f"{exp_id}: running the codec again failed: {execution.error}")
    if execution.stream_sha256 != measured[quality].get("stream_sha256"):
        raise RepublishError(
            f"{exp_id}: the codec is not deterministic: its stream differs from the one measured"
        )
    point = verify_point(execution, clip, with_vmaf=record.vmaf is not None and vmaf_available())
    if not point.ok:
        raise RepublishError(f"{exp_id}: verification failed again: {point.error}")
    return publish_experiment(
        lab.store,
        lab.records,
        publish_inputs(lab, exp_id, codec.name, source, clip, execution, point),
        workdir=workdir / "publish",
    )
