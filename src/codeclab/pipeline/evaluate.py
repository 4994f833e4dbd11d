"""Evaluate one codec on one clip at a ladder of quality values.

For each quality point: the encoder runs in its own sandbox on the clip's frames,
the lab wraps its packets in the container, the decoder runs in a second sandbox on
that container alone, and the lab measures rate from the container's bytes and
quality from the frames the decoder wrote. Nothing the codec reports is trusted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeclab.codec.bitstream import StreamHeader, encode_stream
from codeclab.codec.validate import ValidationReport, validate_source
from codeclab.metrics.quality import QualityReport, measure
from codeclab.metrics.rate import Rate, measure_rate
from codeclab.metrics.vmaf import VmafReport, measure_vmaf
from codeclab.sandbox.jobs import PendingDecode, SandboxSettings, run_encoder
from codeclab.video.clips import PreparedClip
from codeclab.video.rawfile import RawVideo

DEFAULT_QUALITIES: tuple[int, ...] = (20, 40, 60, 80)

Progress = Callable[[str, int, int], None]
"""Called with (stage, done, total); stage is e.g. "q40 encode"."""


@dataclass(frozen=True)
class PointResult:
    """One quality point: its rate and quality, or the phase and reason it failed."""

    quality: int
    params: dict[str, Any]
    ok: bool
    failed_phase: str | None
    error: str | None
    rate: Rate | None
    metrics: QualityReport | None
    vmaf: VmafReport | None
    encode_seconds: float
    decode_seconds: float
    isolation: str
    stream_sha256: str | None

    def to_dict(self, *, per_frame: bool = True) -> dict[str, Any]:
        metrics: dict[str, Any] | None = None
        if self.metrics is not None:
            metrics = self.metrics.to_dict()
            if not per_frame:
                metrics.pop("frames", None)
        return {
            "quality": self.quality,
            "params": self.params,
            "ok": self.ok,
            "failed_phase": self.failed_phase,
            "error": self.error,
            "rate": self.rate.to_dict() if self.rate else None,
            "metrics": metrics,
            "vmaf": self.vmaf.to_dict(per_frame=per_frame) if self.vmaf else None,
            "encode_seconds": self.encode_seconds,
            "decode_seconds": self.decode_seconds,
            "isolation": self.isolation,
            "stream_sha256": self.stream_sha256,
        }


@dataclass(frozen=True)
class Evaluation:
    codec_name: str
    codec_sha256: str
    clip: PreparedClip
    points: list[PointResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.points) and all(p.ok for p in self.points)

    def to_dict(self, *, per_frame: bool = True) -> dict[str, Any]:
        return {
            "codec": {"name": self.codec_name, "sha256": self.codec_sha256},
            "clip": self.clip.to_dict(),
            "ok": self.ok,
            "points": [p.to_dict(per_frame=per_frame) for p in self.points],
        }


def check_qualities(qualities: Sequence[int]) -> tuple[int, ...]:
    if not qualities:
        raise ValueError("give at least one quality value")
    bad = [q for q in qualities if not 0 <= q <= 100]
    if bad:
        raise ValueError(f"quality values must lie in 0..100, got {bad}")
    return tuple(sorted(set(qualities)))


@dataclass(frozen=True)
class Execution:
    """The execution phase of one quality point: the container and the decoder's frames."""

    quality: int
    params: dict[str, Any]
    ok: bool
    error: str | None
    stream_path: Path | None
    stream_sha256: str | None
    stream_bytes: int
    decoded: RawVideo | None
    encode_seconds: float
    decode_seconds: float
    isolation: str


def evaluate_codec(
    source: str,
    clip: PreparedClip,
    qualities: Sequence[int] = DEFAULT_QUALITIES,
    *,
    workdir: Path,
    codec_name: str = "codec",
    settings: SandboxSettings | None = None,
    extra_params: Mapping[str, Any] | None = None,
    with_vmaf: bool = False,
    progress: Progress | None = None,
) -> Evaluation:
    """Validate `source`, then run and measure it at each quality.

    Raises CodecRejected if the source breaks a rule; a point that fails at run time is
    recorded with its phase and reason.
    """
    report: ValidationReport = validate_source(source, filename=codec_name)
    report.raise_for_violations(codec_name)
    settings = settings or SandboxSettings()
    evaluation = Evaluation(codec_name, report.sha256, clip)
    for quality in check_qualities(qualities):
        execution = execute_point(
            source,
            report.sha256,
            clip,
            {**(extra_params or {}), "quality": quality},
            workdir=workdir,
            settings=settings,
            progress=progress,
        )
        evaluation.points.append(
            verify_point(execution, clip, with_vmaf=with_vmaf, progress=progress)
        )
    return evaluation


def _stage_progress(progress: Progress | None, stage: str) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    return lambda done, total: progress(stage, done, total)


def execute_point(
    source: str,
    codec_sha256: str,
    clip: PreparedClip,
    params: dict[str, Any],
    *,
    workdir: Path,
    settings: SandboxSettings,
    progress: Progress | None = None,
) -> Execution:
    """Encode in one sandbox, wrap the packets in the container, decode in another.

    The container is kept as ``workdir/stream-<codec>-q<quality>.bin`` and the decoder's
    frames as a raw file beside it.
    """
    quality = int(params["quality"])
    fmt = clip.raw.format
    stem = f"{codec_sha256[:12]}-q{quality}"
    output_path = workdir / f"decoded-{stem}.yuv"

    def failed(error: str, encode: float = 0.0, decode: float = 0.0) -> Execution:
        return Execution(
            quality, params, False, error, None, None, 0, None, encode, decode,
            settings.level().value,
        )  # fmt: skip

    # The decoder sandbox starts now, so its start-up overlaps the encode; it receives
    # nothing until the bitstream is complete.
    with PendingDecode(
        source,
        fmt,
        output_path=output_path,
        settings=settings,
        on_progress=_stage_progress(progress, f"q{quality} decode"),
    ) as pending:
        encoded = run_encoder(
            source,
            clip.raw,
            params,
            settings=settings,
            on_progress=_stage_progress(progress, f"q{quality} encode"),
        )
        if not encoded.ok:
            return failed(encoded.error or "encoder failed", encoded.wall_seconds)
        header = StreamHeader(
            width=fmt.width,
            height=fmt.height,
            fps_num=fmt.fps.numerator,
            fps_den=fmt.fps.denominator,
            frame_count=clip.raw.frame_count,
            codec_sha256=bytes.fromhex(codec_sha256),
        )
        stream = encode_stream(header, encoded.packets)
        decoded = pending.finish(stream)
    if not decoded.ok or decoded.output is None:
        return failed(decoded.error or "decoder failed", encoded.wall_seconds, decoded.wall_seconds)
    workdir.mkdir(parents=True, exist_ok=True)
    stream_path = workdir / f"stream-{stem}.bin"
    stream_path.write_bytes(stream)
    return Execution(
        quality=quality,
        params=params,
        ok=True,
        error=None,
        stream_path=stream_path,
        stream_sha256=hashlib.sha256(stream).hexdigest(),
        stream_bytes=len(stream),
        decoded=decoded.output,
        encode_seconds=encoded.wall_seconds,
        decode_seconds=decoded.wall_seconds,
        isolation=encoded.isolation,
    )


def verify_point(
    execution: Execution,
    clip: PreparedClip,
    *,
    with_vmaf: bool = False,
    progress: Progress | None = None,
) -> PointResult:
    """Check the decoder's output and measure it against the source (the lab's numbers)."""
    quality = execution.quality

    def failed(phase: str, error: str) -> PointResult:
        return PointResult(
            quality=quality,
            params=execution.params,
            ok=False,
            failed_phase=phase,
            error=error,
            rate=None,
            metrics=None,
            vmaf=None,
            encode_seconds=execution.encode_seconds,
            decode_seconds=execution.decode_seconds,
            isolation=execution.isolation,
            stream_sha256=execution.stream_sha256,
        )

    if not execution.ok or execution.decoded is None:
        return failed("execution", execution.error or "execution failed")
    decoded = execution.decoded
    if decoded.frame_count != clip.raw.frame_count:
        return failed(
            "verification",
            f"decoder returned {decoded.frame_count} frames; the clip has {clip.raw.frame_count}",
        )
    if progress is not None:
        progress(f"q{quality} measure", 0, clip.raw.frame_count)
    metrics = measure(clip.raw, decoded)
    vmaf = None
    if with_vmaf:
        if progress is not None:
            progress(f"q{quality} vmaf", 0, clip.raw.frame_count)
        vmaf = measure_vmaf(clip.raw, decoded)
    return PointResult(
        quality=quality,
        params=execution.params,
        ok=True,
        failed_phase=None,
        error=None,
        rate=measure_rate(execution.stream_bytes, clip.raw.format, clip.raw.frame_count),
        metrics=metrics,
        vmaf=vmaf,
        encode_seconds=execution.encode_seconds,
        decode_seconds=execution.decode_seconds,
        isolation=execution.isolation,
        stream_sha256=execution.stream_sha256,
    )
