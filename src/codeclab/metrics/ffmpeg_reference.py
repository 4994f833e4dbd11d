"""FFmpeg's own ``psnr`` and ``ssim`` filters on two raw clips: the yardstick for the lab's.

Runs the ffmpeg binary shipped by ``imageio-ffmpeg`` on the same raw yuv420p files the lab
reads, in one command: both inputs are split, one pair goes through ``psnr`` (per-frame
values taken at full precision from ``metadata=print``, since the psnr stats file rounds
to two decimals), the other through ``ssim`` (per-frame stats file).  Used by the tests
and by ``bench/metrics_speed.py``; the lab itself never needs ffmpeg to score a clip.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import imageio_ffmpeg

from codeclab.video.frames import VideoFormat
from codeclab.video.rawfile import RawVideo

PSNR_FILE = "psnr_frames.txt"
SSIM_FILE = "ssim_frames.txt"


class SsimPlanes(Enum):
    """What the ``ssim`` filter is fed: all three planes (its default) or luma only."""

    ALL = "all"
    LUMA = "luma"


@dataclass(frozen=True)
class FfmpegFrameScores:
    index: int
    mse_y: float
    mse_u: float
    mse_v: float
    psnr_y: float
    psnr_u: float
    psnr_v: float
    ssim_y: float
    ssim_u: float | None  # None when the ssim filter saw luma only
    ssim_v: float | None


@dataclass(frozen=True)
class FfmpegScores:
    """Per-frame scores and ffmpeg's own summary lines (PSNR of mean MSE, mean SSIM)."""

    frames: list[FfmpegFrameScores]
    psnr_y_summary: float
    psnr_u_summary: float
    psnr_v_summary: float
    ssim_y_summary: float


def ffmpeg_exe() -> str:
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def raw_input_args(fmt: VideoFormat) -> list[str]:
    """ffmpeg options that read a headerless yuv420p file of format ``fmt``."""
    rate = f"{fmt.fps.numerator}/{fmt.fps.denominator}"
    return ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{fmt.width}x{fmt.height}", "-r", rate]


def x264_round_trip(
    source: RawVideo, workdir: Path, *, crf: int, preset: str = "medium"
) -> RawVideo:
    """Encode ``source`` with libx264 at ``crf``, decode it back: a real codec's distortion.

    Writes ``x264-crf<crf>.mp4`` and ``x264-crf<crf>.yuv`` in ``workdir``.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    encoded = workdir / f"x264-crf{crf}.mp4"
    decoded = workdir / f"x264-crf{crf}.yuv"
    quiet = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    encode = [
        *quiet,
        *raw_input_args(source.format),
        "-i",
        str(source.path),
        "-c:v",
        "libx264",
        "-preset",
        preset,
        "-crf",
        str(crf),
        "-pix_fmt",
        "yuv420p",
        str(encoded),
    ]
    decode = [*quiet, "-i", str(encoded), "-f", "rawvideo", "-pix_fmt", "yuv420p", str(decoded)]
    for cmd in (encode, decode):
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"ffmpeg x264 round trip of {source.path} failed: {done.stderr}")
    result = RawVideo.open(decoded, source.format)
    if result.frame_count != source.frame_count:
        raise RuntimeError(
            f"x264 round trip of {source.path} gave {result.frame_count} frames, "
            f"expected {source.frame_count}"
        )
    return result


def psnr_ssim_command(
    reference: RawVideo,
    distorted: RawVideo,
    *,
    stats: bool = True,
    ssim_planes: SsimPlanes = SsimPlanes.ALL,
) -> list[str]:
    """One ffmpeg command running ``psnr`` and ``ssim`` on the two raw files.

    With ``stats`` the per-frame values go to ``PSNR_FILE`` and ``SSIM_FILE`` in the
    working directory the command runs in; the summaries are logged at level info.
    """
    psnr_out = f",metadata=mode=print:file={PSNR_FILE}" if stats else ""
    ssim_opts = f"=stats_file={SSIM_FILE}" if stats else ""
    if ssim_planes is SsimPlanes.LUMA:
        ssim_in = "[d2]extractplanes=y[dy];[r2]extractplanes=y[ry];[dy][ry]"
    else:
        ssim_in = "[d2][r2]"
    graph = (
        "[0:v]split[d1][d2];[1:v]split[r1][r2];"
        f"[d1][r1]psnr{psnr_out}[o1];{ssim_in}ssim{ssim_opts}[o2]"
    )
    fmt = reference.format
    return [
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-loglevel",
        "info",
        *raw_input_args(fmt),
        "-i",
        str(distorted.path.resolve()),
        *raw_input_args(fmt),
        "-i",
        str(reference.path.resolve()),
        "-lavfi",
        graph,
        "-map",
        "[o1]",
        "-f",
        "null",
        "-",
        "-map",
        "[o2]",
        "-f",
        "null",
        "-",
    ]


def run_psnr_ssim(
    reference: RawVideo,
    distorted: RawVideo,
    workdir: Path,
    *,
    ssim_planes: SsimPlanes = SsimPlanes.ALL,
) -> FfmpegScores:
    """Run ffmpeg's filters on the two clips and parse every frame's scores."""
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = psnr_ssim_command(reference, distorted, ssim_planes=ssim_planes)
    done = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(
            f"ffmpeg psnr/ssim on {distorted.path} vs {reference.path} failed "
            f"(exit {done.returncode}):\n{tail}"
        )
    psnr = _parse_psnr_metadata((workdir / PSNR_FILE).read_text())
    ssim = _parse_ssim_stats((workdir / SSIM_FILE).read_text())
    if len(psnr) != len(ssim):
        raise RuntimeError(f"ffmpeg scored {len(psnr)} frames for PSNR but {len(ssim)} for SSIM")
    frames = [
        FfmpegFrameScores(
            index=i,
            mse_y=p["mse.y"],
            mse_u=p["mse.u"],
            mse_v=p["mse.v"],
            psnr_y=p["psnr.y"],
            psnr_u=p["psnr.u"],
            psnr_v=p["psnr.v"],
            ssim_y=s["Y"],
            ssim_u=s.get("U"),
            ssim_v=s.get("V"),
        )
        for i, (p, s) in enumerate(zip(psnr, ssim, strict=True))
    ]
    summary_psnr = _summary(done.stderr, r"PSNR y:(\S+) u:(\S+) v:(\S+)")
    summary_ssim = _summary(done.stderr, r"SSIM Y:(\S+)")
    return FfmpegScores(
        frames=frames,
        psnr_y_summary=summary_psnr[0],
        psnr_u_summary=summary_psnr[1],
        psnr_v_summary=summary_psnr[2],
        ssim_y_summary=summary_ssim[0],
    )


def _parse_psnr_metadata(text: str) -> list[dict[str, float]]:
    """``metadata=print`` output: a ``frame:N`` line, then ``lavfi.psnr.KEY=VALUE`` lines."""
    frames: list[dict[str, float]] = []
    for line in text.splitlines():
        if line.startswith("frame:"):
            frames.append({})
        elif line.startswith("lavfi.psnr.") and frames:
            key, _, value = line[len("lavfi.psnr.") :].partition("=")
            frames[-1][key] = float(value)
    return frames


def _parse_ssim_stats(text: str) -> list[dict[str, float]]:
    """Lines like ``n:1 Y:0.991595 U:0.997754 V:0.997842 All:0.993663 (21.980916)``."""
    frames: list[dict[str, float]] = []
    for line in text.splitlines():
        if line.startswith("n:"):
            pairs = re.findall(r"\b([YUV]):(\S+)", line)
            frames.append({plane: float(value) for plane, value in pairs})
    return frames


def _summary(log: str, pattern: str) -> list[float]:
    match = re.search(pattern, log)
    if match is None:
        raise RuntimeError(f"ffmpeg log has no summary line matching {pattern!r}")
    return [float(value) for value in match.groups()]
