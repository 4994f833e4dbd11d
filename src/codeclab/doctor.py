"""What this machine gives the lab, for `codeclab doctor`."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata

from codeclab.config import Settings
from codeclab.maintenance import isolation_report


def ffmpeg_version() -> tuple[str, str]:
    """(path, first line of -version) of the ffmpeg binary from imageio-ffmpeg."""
    import imageio_ffmpeg

    exe = str(imageio_ffmpeg.get_ffmpeg_exe())
    out = subprocess.run([exe, "-hide_banner", "-version"], capture_output=True, text=True)
    first = out.stdout.splitlines()[0] if out.stdout else f"exit code {out.returncode}"
    return exe, first.split(" Copyright")[0]


def _package(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def collect_report(settings: Settings) -> list[tuple[str, str]]:
    rows = [("python", f"{platform.python_version()} ({sys.executable})")]
    for package in ("numpy", "av", "imageio-ffmpeg", "scikit-image"):
        rows.append((package, _package(package)))
    try:
        exe, version = ffmpeg_version()
        rows.append(("ffmpeg", f"{version} ({exe})"))
    except (OSError, RuntimeError) as exc:
        rows.append(("ffmpeg", f"unavailable: {exc}"))
    rows.extend(isolation_report(settings.sandbox))
    limits = settings.sandbox.limits
    rows.append(
        (
            "sandbox limits",
            f"wall {limits.wall_seconds:g} s, cpu {limits.cpu_seconds} s, "
            f"memory {limits.memory_bytes >> 20} MiB, files {limits.file_bytes >> 20} MiB, "
            f"{limits.open_files} open files, {limits.processes} processes",
        )
    )
    rows.append(("data dir", str(settings.data_dir)))
    return rows
