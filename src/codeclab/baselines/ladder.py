"""Rate-distortion ladders of the baseline encoders on exactly the frames a candidate saw.

For each CRF of an encoder's ladder, `run_baseline`:

1. encodes the prepared clip's raw yuv420p file with ffmpeg into an elementary stream
   (see `codeclab.baselines.encoders` for the streams, presets and threads);
2. takes the **rate** from that stream: ``stream bytes * 8 / (frames / fps)`` bits per
   second, and ``stream bytes * 8 / (luma pixels * frames)`` bits per pixel, through
   `codeclab.metrics.rate.measure_rate` like a candidate's rate.  The stream has no
   container, so no container overhead is counted;
3. decodes the stream back to raw yuv420p with the same ffmpeg binary and checks it holds
   exactly the clip's frame count (an encoder must not drop or duplicate frames);
4. measures the decoded frames against the clip with the lab's own metrics
   (`codeclab.metrics.quality.measure`: PSNR, SSIM) and, when ``with_vmaf``, VMAF and
   MS-SSIM (`codeclab.metrics.vmaf.measure_vmaf`, model ``vmaf_v0.6.1``).

``BaselinePoint.psnr_y`` is the **mean of per-frame PSNR-Y**; ``psnr_y_global`` is the PSNR
of the mean MSE (FFmpeg's psnr summary); ``psnr_yuv`` is the mean of per-frame 6:1:1
PSNR-YUV; ``ssim_y`` the mean of per-frame SSIM-Y.  ``encode_seconds`` is the wall time of
the whole ffmpeg encode process (start-up and reading the raw file included).

Results are cached (`codeclab.baselines.cache`) under a key built from everything that
made them: the clip's sha256, size, rate and frame count, the encoder's name, library,
preset, CRF ladder and extra arguments, the exact ffmpeg command lines, the ffmpeg and
encoder versions, the metrics (with or without VMAF, the VMAF model) and a fingerprint of
the metrics' source code.  The streams stay in ``<workdir>/<encoder>-<key prefix>/``
(`stream_path`); the decoded frames are deleted once measured.  One run per workdir at a
time.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

from codeclab.baselines import encoders as _ffmpeg
from codeclab.baselines.cache import ResultCache, cache_key
from codeclab.baselines.encoders import BaselineEncoder, BaselineError, get_encoder
from codeclab.metrics import psnr as psnr_module
from codeclab.metrics import quality as quality_module
from codeclab.metrics import rate as rate_module
from codeclab.metrics import ssim as ssim_module
from codeclab.metrics import vmaf as vmaf_module
from codeclab.metrics.psnr import json_number, parse_json_number
from codeclab.metrics.quality import measure
from codeclab.metrics.rate import measure_rate
from codeclab.metrics.vmaf import measure_vmaf, vmaf_available
from codeclab.video.clips import PreparedClip
from codeclab.video.rawfile import RawVideo

log = logging.getLogger(__name__)

RESULT_VERSION = 1
"""Bumped when this module changes how a ladder is computed or stored."""

Progress = Callable[[str], None]

CURVE_METRICS = ("psnr_y", "psnr_y_global", "psnr_yuv", "ssim_y", "vmaf", "ms_ssim")

_FLOAT_FIELDS = (
    "bits_per_second",
    "bits_per_pixel",
    "psnr_y",
    "psnr_y_global",
    "psnr_yuv",
    "ssim_y",
    "encode_seconds",
    "encode_fps",
)


@dataclass(frozen=True)
class BaselinePoint:
    """One encode of the ladder, measured.  Qualities pool frames as the module doc says."""

    crf: int
    stream_bytes: int
    bits_per_second: float
    bits_per_pixel: float
    psnr_y: float  # mean of per-frame PSNR-Y
    psnr_y_global: float  # PSNR of the mean MSE-Y
    psnr_yuv: float  # mean of per-frame 6:1:1 PSNR-YUV
    ssim_y: float  # mean of per-frame SSIM-Y
    vmaf: float | None  # mean VMAF (vmaf_v0.6.1); None without VMAF
    ms_ssim: float | None  # mean MS-SSIM; None without VMAF or when the video is too small
    encode_seconds: float
    encode_fps: float
    metrics: dict[str, Any]  # {"quality": QualitySummary dict, "vmaf": VmafReport dict | None}
    per_frame: dict[str, Any] | None = None  # {"psnr_y": [...], "ssim_y": [...], "vmaf": [...]}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"crf": self.crf, "stream_bytes": self.stream_bytes}
        for name in _FLOAT_FIELDS:
            out[name] = json_number(getattr(self, name))
        out["vmaf"] = None if self.vmaf is None else json_number(self.vmaf)
        out["ms_ssim"] = None if self.ms_ssim is None else json_number(self.ms_ssim)
        out["metrics"] = self.metrics
        out["per_frame"] = self.per_frame
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BaselinePoint:
        floats = {name: parse_json_number(data[name]) for name in _FLOAT_FIELDS}
        metrics = data["metrics"]
        per_frame = data.get("per_frame")
        if not isinstance(metrics, dict) or not (per_frame is None or isinstance(per_frame, dict)):
            raise ValueError("a baseline point's metrics and per_frame must be objects")
        return cls(
            crf=int(data["crf"]),
            stream_bytes=int(data["stream_bytes"]),
            vmaf=None if data["vmaf"] is None else parse_json_number(data["vmaf"]),
            ms_ssim=None if data["ms_ssim"] is None else parse_json_number(data["ms_ssim"]),
            metrics=metrics,
            per_frame=per_frame,
            **floats,
        )

    def quality(self, metric: str) -> float:
        """The clip-level value of `metric` (one of `CURVE_METRICS`)."""
        if metric not in CURVE_METRICS:
            raise ValueError(f"unknown quality metric {metric!r}; use one of {CURVE_METRICS}")
        value: float | None = getattr(self, metric)
        if value is None:
            raise ValueError(
                f"crf {self.crf} has no {metric}: it was measured without VMAF (with_vmaf=False)"
                if metric == "vmaf" or self.vmaf is None
                else f"crf {self.crf} has no {metric}: {self._ms_ssim_reason()}"
            )
        return value

    def _ms_ssim_reason(self) -> str:
        vmaf = self.metrics.get("vmaf") or {}
        return str(vmaf.get("ms_ssim_skipped") or "it was not computed")


@dataclass(frozen=True)
class BaselineLadder:
    """An encoder's RD ladder on one clip (points in ladder order), and what produced it."""

    encoder: str
    preset: str
    version: str  # "<ffmpeg version line>; <encoder library version>"
    clip_sha256: str
    settings: dict[str, Any]
    points: list[BaselinePoint]
    cached: bool = field(default=False, compare=False)

    def curve(self, metric: str = "psnr_y") -> list[tuple[float, float]]:
        """(bits_per_second, quality) pairs sorted by rate, as BD-rate takes them."""
        pairs = [(p.bits_per_second, p.quality(metric)) for p in self.points]
        return sorted(pairs)

    def key_parts(self) -> dict[str, Any]:
        """Everything the cache key is the hash of."""
        return _key_parts(self.encoder, self.version, self.clip_sha256, self.settings)

    @property
    def cache_key(self) -> str:
        return cache_key(self.key_parts())

    def to_dict(self) -> dict[str, Any]:
        return {
            "encoder": self.encoder,
            "preset": self.preset,
            "version": self.version,
            "clip_sha256": self.clip_sha256,
            "settings": self.settings,
            "points": [p.to_dict() for p in self.points],
            "cached": self.cached,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BaselineLadder:
        settings = data["settings"]
        if not isinstance(settings, dict):
            raise ValueError("a baseline ladder's settings must be an object")
        return cls(
            encoder=str(data["encoder"]),
            preset=str(data["preset"]),
            version=str(data["version"]),
            clip_sha256=str(data["clip_sha256"]),
            settings=settings,
            points=[BaselinePoint.from_dict(p) for p in data["points"]],
            cached=bool(data.get("cached", False)),
        )


def stream_dir(workdir: Path, ladder: BaselineLadder) -> Path:
    """Where the ladder's elementary streams are written."""
    return workdir / f"{ladder.encoder}-{ladder.cache_key[:16]}"


def stream_path(workdir: Path, ladder: BaselineLadder, crf: int) -> Path:
    """The elementary stream of ladder point `crf` (present once the ladder was computed)."""
    extension = ladder.settings["stream_format"]["extension"]
    return stream_dir(workdir, ladder) / f"crf{crf:02d}.{extension}"


def run_baseline(
    clip: PreparedClip,
    encoder: BaselineEncoder | str,
    *,
    cache_dir: Path,
    workdir: Path,
    with_vmaf: bool = True,
    progress: Progress | None = None,
) -> BaselineLadder:
    """The RD ladder of `encoder` on `clip`: from the cache when it holds it, else computed.

    Raises BaselineError when the encoder cannot take the clip's size, ffmpeg fails, a
    stream decodes to the wrong frame count, or VMAF is asked for and the ffmpeg binary has
    no libvmaf.
    """
    enc = get_encoder(encoder)
    enc.check_size(clip.format, clip.name)
    say = progress or (lambda _message: None)
    exe = _ffmpeg.ffmpeg_exe()
    version = f"{_ffmpeg.ffmpeg_version(exe)}; {_ffmpeg.encoder_banner(exe, enc.library)}"
    settings = _settings(clip, enc, with_vmaf)
    empty = BaselineLadder(enc.name, enc.preset, version, clip.sha256, settings, [])
    cache = ResultCache(cache_dir)
    parts = empty.key_parts()

    stored = cache.load(enc.name, parts)
    if stored is not None:
        try:
            ladder = BaselineLadder.from_dict(stored)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning(
                "ignoring cache file %s: unreadable ladder (%r); recomputing",
                cache.path(enc.name, cache_key(parts)),
                exc,
            )
        else:
            say(f"{enc.name}: {len(ladder.points)} points from the cache")
            return replace(ladder, cached=True)

    if with_vmaf and not vmaf_available():
        raise BaselineError(
            f"ffmpeg {exe} has no libvmaf filter: VMAF cannot be measured; "
            "run the baseline with with_vmaf=False"
        )
    directory = stream_dir(workdir, empty)
    directory.mkdir(parents=True, exist_ok=True)
    points = []
    for i, crf in enumerate(enc.crf_ladder, 1):
        say(f"{enc.name}: crf {crf} ({i}/{len(enc.crf_ladder)})")
        stream = stream_path(workdir, empty, crf)
        points.append(_run_point(exe, clip, enc, crf, stream, with_vmaf))
    ladder = replace(empty, points=points)
    cache.store(enc.name, parts, ladder.to_dict())
    return ladder


def run_baselines(
    clip: PreparedClip,
    encoders: Sequence[BaselineEncoder | str] = ("x264", "x265", "svtav1"),
    *,
    cache_dir: Path,
    workdir: Path,
    with_vmaf: bool = True,
    progress: Progress | None = None,
) -> dict[str, BaselineLadder]:
    """`run_baseline` for each encoder, keyed by encoder name."""
    ladders: dict[str, BaselineLadder] = {}
    for encoder in encoders:
        ladder = run_baseline(
            clip,
            encoder,
            cache_dir=cache_dir,
            workdir=workdir,
            with_vmaf=with_vmaf,
            progress=progress,
        )
        ladders[ladder.encoder] = ladder
    return ladders


# --- one point ----------------------------------------------------------------------------


def _run_point(
    exe: str, clip: PreparedClip, enc: BaselineEncoder, crf: int, stream: Path, with_vmaf: bool
) -> BaselinePoint:
    fmt, frames = clip.format, clip.frame_count
    what = f"{enc.name} crf {crf} of {clip.name}"
    command = _ffmpeg.encode_command(exe, enc, crf, clip.raw.path, fmt, stream)
    started = time.perf_counter()
    _ffmpeg.run_ffmpeg(command, what=f"encoding {what}")
    encode_seconds = time.perf_counter() - started
    stream_bytes = stream.stat().st_size
    rate = measure_rate(stream_bytes, fmt, frames)

    decoded_path = stream.with_suffix(".yuv")
    try:
        _ffmpeg.run_ffmpeg(
            _ffmpeg.decode_command(exe, enc, stream, decoded_path), what=f"decoding {what}"
        )
        decoded_bytes = decoded_path.stat().st_size
        if decoded_bytes != frames * fmt.frame_bytes:
            raise BaselineError(
                f"{stream}: decodes to {decoded_bytes / fmt.frame_bytes:g} frames of "
                f"{fmt.width}x{fmt.height}, but {clip.name} has {frames}: the {enc.name} "
                "encode dropped or duplicated frames"
            )
        decoded = RawVideo(decoded_path, fmt, frames)
        report = measure(clip.raw, decoded)
        vmaf = measure_vmaf(clip.raw, decoded) if with_vmaf else None
    finally:
        decoded_path.unlink(missing_ok=True)

    summary = report.summary
    per_frame: dict[str, Any] = {
        "psnr_y": [json_number(f.psnr_y) for f in report.frames],
        "ssim_y": [json_number(f.ssim_y) for f in report.frames],
    }
    if vmaf is not None:
        per_frame["vmaf"] = list(vmaf.vmaf_frames)
    return BaselinePoint(
        crf=crf,
        stream_bytes=stream_bytes,
        bits_per_second=rate.bits_per_second,
        bits_per_pixel=rate.bits_per_pixel,
        psnr_y=summary.psnr_y_mean,
        psnr_y_global=summary.psnr_y_global,
        psnr_yuv=summary.psnr_yuv_mean,
        ssim_y=summary.ssim_y_mean,
        vmaf=None if vmaf is None else vmaf.vmaf_mean,
        ms_ssim=None if vmaf is None else vmaf.ms_ssim_mean,
        encode_seconds=encode_seconds,
        encode_fps=frames / encode_seconds if encode_seconds > 0 else math.inf,
        metrics={
            "quality": summary.to_dict(),
            "vmaf": None if vmaf is None else vmaf.to_dict(per_frame=False),
        },
        per_frame=per_frame,
    )


# --- what the cache key covers ------------------------------------------------------------


def _key_parts(
    encoder: str, version: str, clip_sha256: str, settings: dict[str, Any]
) -> dict[str, Any]:
    return {
        "result_version": RESULT_VERSION,
        "encoder": encoder,
        "version": version,
        "clip_sha256": clip_sha256,
        "settings": settings,
    }


def _settings(clip: PreparedClip, enc: BaselineEncoder, with_vmaf: bool) -> dict[str, Any]:
    """Every input of the ladder besides the clip hash and the versions (JSON-safe)."""
    fmt = clip.format
    source, stream, decoded = Path("{source}"), Path("{stream}"), Path("{decoded}")
    metric_modules: list[ModuleType] = [quality_module, psnr_module, ssim_module, rate_module]
    if with_vmaf:
        metric_modules.append(vmaf_module)
    return {
        "clip": {
            "sha256": clip.sha256,
            "width": fmt.width,
            "height": fmt.height,
            "fps": f"{fmt.fps.numerator}/{fmt.fps.denominator}",
            "frames": clip.frame_count,
        },
        "encoder": enc.to_dict(),
        "stream_format": enc.stream_format.to_dict(),
        "threads": _ffmpeg.THREADS,
        "encode_commands": {
            str(crf): _ffmpeg.encode_command("ffmpeg", enc, crf, source, fmt, stream)
            for crf in enc.crf_ladder
        },
        "decode_command": _ffmpeg.decode_command("ffmpeg", enc, stream, decoded),
        "rate": "elementary stream bytes * 8 / (frames / fps); no container",
        "metrics": {
            "quality": "codeclab.metrics.quality.measure",
            "psnr_y": "mean of per-frame PSNR-Y",
            "with_vmaf": with_vmaf,
            "vmaf_model": vmaf_module.MODEL if with_vmaf else None,
            "ms_ssim": with_vmaf,
            "code_sha256": _code_fingerprint(metric_modules),
        },
    }


def _code_fingerprint(modules: Sequence[ModuleType]) -> str:
    """sha256 of the metrics modules' source: a changed metric never reuses old numbers."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(module.__name__.encode())
        if module.__file__ is not None:
            digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()
