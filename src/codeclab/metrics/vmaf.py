"""VMAF and MS-SSIM of two raw yuv420p files, in one pass of ffmpeg's ``libvmaf`` filter.

The ffmpeg binary is the one `imageio_ffmpeg.get_ffmpeg_exe()` names (the wheel's own build
carries libvmaf; the ``IMAGEIO_FFMPEG_EXE`` environment variable overrides it).

Choices, each pinned so a number means the same thing on every machine:

* The model is pinned to libvmaf's built-in ``vmaf_v0.6.1`` (``model=version=vmaf_v0.6.1``),
  the model ffmpeg uses by default and the one VMAF numbers are usually quoted in.  libvmaf's
  JSON log does not name the model, so it is pinned rather than discovered: a binary without
  it fails loudly instead of scoring with something else.  The log's ``version`` field (the
  libvmaf build, e.g. a git hash) is recorded as `VmafReport.libvmaf_version`.
* libvmaf's first input is the *distorted* video, its second the *reference*.
* Identical inputs do not always score 100: vmaf_v0.6.1 takes a temporal (motion) feature,
  and with perfect fidelity it predicts about 97.43 for a frame without motion (the first
  frame, a still picture) and 100 (its clip) once motion is high enough.
* MS-SSIM is libvmaf's ``float_ms_ssim`` feature (luma, 5 scales, 11-tap Gaussian window).
  Its pyramid needs a luma plane of at least 176x176 (`MS_SSIM_MIN_SIZE`); on smaller video
  it is not computed and `VmafReport.ms_ssim_skipped` says why.  It is also by far the
  slower half of the pass (about 10x the cost of VMAF itself), hence ``ms_ssim=False``.
* Pooling comes from libvmaf's own ``pooled_metrics``: the arithmetic mean (the VMAF usually
  reported), the minimum, and libvmaf's harmonic mean, which is ``n / sum(1 / (x + 1)) - 1``
  (shifted by one so a frame scoring 0 does not divide by zero).  Per-frame values are the
  log's, rounded by libvmaf to 6 decimals.
* ``subsample=k`` scores frames 0, k, 2k, ... (libvmaf's ``n_subsample``);
  `VmafReport.frame_numbers` holds the index of each scored frame.
"""

from __future__ import annotations

import functools
import json
import math
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codeclab.video.rawfile import RawVideo

MODEL = "vmaf_v0.6.1"
MS_SSIM_FEATURE = "float_ms_ssim"
MS_SSIM_MIN_SIZE = 176  # 5 scales of an 11-tap window: 11 * 2**4
_LOG_NAME = "vmaf.json"  # written in a fresh temporary directory that is ffmpeg's cwd
_TAIL_LINES = 12


class VmafError(RuntimeError):
    """ffmpeg or libvmaf failed, or its log does not hold the scores asked for."""


@dataclass(frozen=True)
class VmafReport:
    """Per-frame and pooled VMAF (and MS-SSIM) of a distorted video against its reference."""

    model: str
    libvmaf_version: str | None
    vmaf_frames: list[float]
    ms_ssim_frames: list[float]  # empty when MS-SSIM was not computed
    vmaf_mean: float
    vmaf_harmonic_mean: float
    vmaf_min: float
    ms_ssim_mean: float | None  # None when MS-SSIM was not computed
    frame_numbers: list[int]  # source frame index of each score (0, k, 2k, ... with subsample k)
    ms_ssim_skipped: str | None = None  # why MS-SSIM was not computed, if it was not

    def to_dict(self, *, per_frame: bool = True) -> dict[str, Any]:
        """JSON-safe summary; ``per_frame=False`` leaves out the per-frame lists."""
        out: dict[str, Any] = {
            "model": self.model,
            "libvmaf_version": self.libvmaf_version,
            "frames_scored": len(self.vmaf_frames),
            "vmaf_mean": self.vmaf_mean,
            "vmaf_harmonic_mean": self.vmaf_harmonic_mean,
            "vmaf_min": self.vmaf_min,
            "ms_ssim_mean": self.ms_ssim_mean,
            "ms_ssim_skipped": self.ms_ssim_skipped,
        }
        if per_frame:
            out["frame_numbers"] = list(self.frame_numbers)
            out["vmaf_frames"] = list(self.vmaf_frames)
            out["ms_ssim_frames"] = list(self.ms_ssim_frames)
        return out


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary imageio-ffmpeg chooses, or VmafError if there is none."""
    import imageio_ffmpeg

    try:
        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError as exc:
        raise VmafError(f"no ffmpeg binary for VMAF: {exc}") from None


def vmaf_available() -> bool:
    """Whether the ffmpeg binary exists and has the libvmaf filter (answer cached per binary)."""
    try:
        exe = ffmpeg_exe()
    except VmafError:
        return False
    return _has_libvmaf_filter(exe)


@functools.cache
def _has_libvmaf_filter(exe: str) -> bool:
    try:
        done = subprocess.run(
            [exe, "-hide_banner", "-nostdin", "-filters"],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    # Filter lines read " .. libvmaf           VV->V      Calculate the VMAF ...".
    return done.returncode == 0 and any(
        line.split()[1:2] == ["libvmaf"] for line in done.stdout.splitlines()
    )


def ms_ssim_skip_reason(width: int, height: int) -> str | None:
    """Why libvmaf's MS-SSIM cannot score `width` x `height` video, or None if it can."""
    if width >= MS_SSIM_MIN_SIZE and height >= MS_SSIM_MIN_SIZE:
        return None
    return (
        f"MS-SSIM needs at least {MS_SSIM_MIN_SIZE}x{MS_SSIM_MIN_SIZE} luma "
        f"(5 scales of an 11-pixel window); the video is {width}x{height}"
    )


def measure_vmaf(
    reference: RawVideo,
    distorted: RawVideo,
    *,
    threads: int | None = None,
    subsample: int = 1,
    ms_ssim: bool = True,
) -> VmafReport:
    """VMAF (model `MODEL`) and MS-SSIM of `distorted` against `reference`, in one ffmpeg run.

    ``threads`` defaults to every CPU; ``ms_ssim=False`` skips the (costly) MS-SSIM feature.
    Raises ValueError for inputs that cannot be compared, VmafError when ffmpeg fails.
    """
    _check_pair(reference, distorted)
    if threads is None:
        threads = os.cpu_count() or 1
    if threads < 1:
        raise ValueError(f"threads must be 1 or more, got {threads}")
    if subsample < 1:
        raise ValueError(f"subsample must be 1 or more, got {subsample}")
    fmt = reference.format
    skipped = ms_ssim_skip_reason(fmt.width, fmt.height) if ms_ssim else "MS-SSIM was not requested"
    options = [
        f"model=version={MODEL}",
        "log_fmt=json",
        f"log_path={_LOG_NAME}",
        f"n_threads={threads}",
        f"n_subsample={subsample}",
        "shortest=1",  # a file shorter than its frame count shows up as a short log
    ]
    if skipped is None:
        options.append(f"feature=name={MS_SSIM_FEATURE}")
    command = [
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-loglevel",
        "error",
        *_raw_input(distorted),  # libvmaf input 0: the distorted video
        *_raw_input(reference),  # libvmaf input 1: the reference
        "-lavfi",
        "[0:v][1:v]libvmaf=" + ":".join(options),
        "-f",
        "null",
        "-",
    ]
    what = f"VMAF of {distorted.path} (distorted) against {reference.path} (reference)"
    # ffmpeg runs in a fresh directory so the log path needs no filter-graph escaping.
    with tempfile.TemporaryDirectory(prefix="codeclab-vmaf-") as workdir:
        try:
            done = subprocess.run(
                command, cwd=workdir, capture_output=True, text=True, errors="replace", check=False
            )
        except OSError as exc:
            raise VmafError(f"{what}: cannot run ffmpeg {command[0]}: {exc}") from None
        output = _tail(done.stderr, done.stdout)
        if done.returncode != 0:
            raise VmafError(f"{what}: ffmpeg exited with code {done.returncode}:\n{output}")
        log_path = Path(workdir) / _LOG_NAME
        try:
            log = json.loads(log_path.read_text())
        except (OSError, ValueError) as exc:
            raise VmafError(f"{what}: libvmaf wrote no readable log ({exc}):\n{output}") from None
    expected = len(range(0, reference.frame_count, subsample))
    return _report(log, expected, skipped, f"{what}:\n{output}")


def _check_pair(reference: RawVideo, distorted: RawVideo) -> None:
    ref, dist = reference.format, distorted.format
    if (ref.width, ref.height, ref.fps) != (dist.width, dist.height, dist.fps):
        raise ValueError(
            f"cannot compare {distorted.path} ({dist.describe()}) with reference "
            f"{reference.path} ({ref.describe()}): formats differ"
        )
    if reference.frame_count != distorted.frame_count:
        raise ValueError(
            f"cannot compare {distorted.path} ({distorted.frame_count} frames) with reference "
            f"{reference.path} ({reference.frame_count} frames): frame counts differ"
        )
    if reference.frame_count == 0:
        raise ValueError(f"{reference.path} and {distorted.path} hold no frames to score")


def _raw_input(video: RawVideo) -> list[str]:
    fmt = video.format
    return [
        "-f",
        "rawvideo",
        "-pix_fmt",
        "yuv420p",
        "-s",
        f"{fmt.width}x{fmt.height}",
        "-r",
        f"{fmt.fps.numerator}/{fmt.fps.denominator}",
        "-i",
        f"file:{video.path.resolve()}",  # "file:" so no part of a path reads as a protocol
    ]


def _tail(*texts: str) -> str:
    lines = [line for text in texts for line in text.splitlines() if line.strip()]
    if not lines:
        return "(ffmpeg printed nothing)"
    return "\n".join(lines[-_TAIL_LINES:])


def _report(log: Any, expected: int, skipped: str | None, context: str) -> VmafReport:
    """Read libvmaf's JSON log into a VmafReport, checking it holds every score asked for."""
    try:
        frames = log["frames"]
        pooled = log["pooled_metrics"]
        version = log.get("version")
        numbers = [int(frame["frameNum"]) for frame in frames]
        vmaf = [_finite(frame["metrics"]["vmaf"]) for frame in frames]
        vmaf_pool = pooled["vmaf"]
        vmaf_mean = _finite(vmaf_pool["mean"])
        vmaf_harmonic = _finite(vmaf_pool["harmonic_mean"])
        vmaf_min = _finite(vmaf_pool["min"])
    except (KeyError, TypeError, ValueError) as exc:
        raise VmafError(f"libvmaf log lacks VMAF scores ({exc!r}) for {context}") from None
    if len(frames) != expected:
        raise VmafError(
            f"libvmaf scored {len(frames)} frames, expected {expected} (is a file shorter "
            f"than its frame count?) for {context}"
        )
    ms_frames: list[float] = []
    ms_mean: float | None = None
    if skipped is None:
        try:
            ms_frames = [_finite(frame["metrics"][MS_SSIM_FEATURE]) for frame in frames]
            ms_mean = _finite(pooled[MS_SSIM_FEATURE]["mean"])
        except (KeyError, TypeError, ValueError) as exc:
            raise VmafError(f"libvmaf log lacks MS-SSIM scores ({exc!r}) for {context}") from None
    return VmafReport(
        model=MODEL,
        libvmaf_version=str(version) if version is not None else None,
        vmaf_frames=vmaf,
        ms_ssim_frames=ms_frames,
        vmaf_mean=vmaf_mean,
        vmaf_harmonic_mean=vmaf_harmonic,
        vmaf_min=vmaf_min,
        ms_ssim_mean=ms_mean,
        frame_numbers=numbers,
        ms_ssim_skipped=skipped,
    )


def _finite(value: Any) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"score {value!r} is not a finite number")
    return number
