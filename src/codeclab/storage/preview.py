"""Preview videos: an H.264 MP4 of raw frames, for watching in a browser.

A preview is made for the decoder's output (the reconstruction) and for the source, so the two
can be watched side by side. It is *not* the codec's bitstream and not what was measured: it is
a high-quality re-encode (libx264, preset veryfast, CRF 16 by default) of the raw frames, and its
MP4 metadata (``title``, ``comment``) says so.

Choices:

* H.264 High profile, yuv420p, in MP4 with ``+faststart`` (the ``moov`` index before the
  media data, so a browser starts playing before the download ends): Debian's Chromium plays
  H.264 but not HEVC. CRF 0 is refused: lossless 8-bit H.264 needs the High 4:4:4 Predictive
  profile, which browsers do not play.
* The source frame rate, exactly (``num/den``); one output frame per input frame.
* x264 needs even frame sizes for 4:2:0. An odd width or height is padded by one pixel on the
  right or bottom by repeating the last column or row of luma (the chroma planes of an odd size
  already cover the padded size). Frames are never scaled, so every pixel of the preview above
  and left of the padding is the frame's own.
* Frames are streamed to ffmpeg's stdin, and the MP4 is written to a temporary name beside
  `out` and renamed at the end, so a failed encode never leaves a partial preview.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from codeclab.video.rawfile import RawVideo

DEFAULT_CRF = 16
PRESET = "veryfast"  # a preview: fast to make, still high quality at CRF 16
_STDERR_TAIL_LINES = 15


class PreviewError(RuntimeError):
    """ffmpeg could not make the preview; the message carries the tail of its stderr."""


@dataclass(frozen=True)
class PreviewInfo:
    """A preview MP4 that was written."""

    path: Path
    size_bytes: int
    duration_seconds: float
    frame_count: int
    width: int  # of the preview: the source width, rounded up to even
    height: int
    padded: bool  # True when a column or row was added to reach an even size
    crf: int
    ffmpeg_version: str
    encode_seconds: float


def preview_title(label: str) -> str:
    return f"PREVIEW for viewing: {label}"


def preview_comment(crf: int, source_size: tuple[int, int], size: tuple[int, int]) -> str:
    text = (
        f"Preview for viewing only, re-encoded by codeclab with libx264 (preset {PRESET}, "
        f"crf {crf}) from the raw frames. It is not the codec's bitstream and not what was "
        "measured: the measured stream and its decoder are in the experiment's decode package."
    )
    if size != source_size:
        text += (
            f" Padded from {source_size[0]}x{source_size[1]} to {size[0]}x{size[1]} by repeating "
            "the last column/row (H.264 4:2:0 needs even sizes); never scaled."
        )
    return text


def _frames(raw: RawVideo, pad_right: int, pad_bottom: int) -> Iterator[bytes]:
    for frame in raw:
        y = frame.y
        if pad_right or pad_bottom:
            y = np.pad(y, ((0, pad_bottom), (0, pad_right)), mode="edge")
        yield y.tobytes() + frame.u.tobytes() + frame.v.tobytes()


def _stderr_tail(stderr: bytes) -> str:
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    return "\n".join(lines[-_STDERR_TAIL_LINES:]) or "(ffmpeg printed nothing)"


def _run_ffmpeg(command: list[str], frames: Iterator[bytes]) -> tuple[int, bytes]:
    """Run ffmpeg feeding `frames` to its stdin: (exit status, stderr)."""
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr
        )
        stdin = process.stdin
        if stdin is None:
            raise RuntimeError("subprocess gave ffmpeg no stdin pipe")
        try:
            try:
                for data in frames:
                    stdin.write(data)
            except BrokenPipeError:
                pass  # ffmpeg stopped reading: its exit status and stderr say why
            finally:
                with contextlib.suppress(BrokenPipeError):
                    stdin.close()
            returncode = process.wait()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        stderr.seek(0)
        return returncode, stderr.read()


def make_preview(raw: RawVideo, out: Path, *, label: str, crf: int = DEFAULT_CRF) -> PreviewInfo:
    """Encode `raw` to the H.264 MP4 `out` for viewing; `label` names what it shows.

    `crf` is libx264's constant rate factor, 1..51 (lower is better; 16 is visually close to
    transparent). Raises ValueError for bad arguments and PreviewError if ffmpeg fails.
    """
    if not label.strip():
        raise ValueError("a preview needs a label saying what it shows")
    if not 1 <= crf <= 51:
        raise ValueError(f"crf {crf} is outside 1..51 (0 would need a profile browsers lack)")
    if raw.frame_count <= 0:
        raise ValueError(f"{raw.path}: no frames to preview")
    if not out.parent.is_dir():
        raise PreviewError(f"cannot write {out}: {out.parent} is not a directory")
    fmt = raw.format
    width, height = fmt.width + fmt.width % 2, fmt.height + fmt.height % 2
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    partial = out.with_name(out.name + ".partial")
    command = [
        ffmpeg,
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "yuv420p",
        "-s:v",
        f"{width}x{height}",
        "-framerate",
        f"{fmt.fps.numerator}/{fmt.fps.denominator}",
        "-i",
        "pipe:0",
        "-c:v",
        "libx264",
        "-preset",
        PRESET,
        "-crf",
        str(crf),
        "-profile:v",
        "high",
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
        "-metadata",
        f"title={preview_title(label)}",
        "-metadata",
        f"comment={preview_comment(crf, (fmt.width, fmt.height), (width, height))}",
        "-f",
        "mp4",
        str(partial),
    ]
    started = time.perf_counter()
    try:
        returncode, stderr = _run_ffmpeg(
            command, _frames(raw, width - fmt.width, height - fmt.height)
        )
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    seconds = time.perf_counter() - started
    if returncode != 0:
        partial.unlink(missing_ok=True)
        raise PreviewError(
            f"ffmpeg failed (exit status {returncode}) making the preview {out} of "
            f"{raw.path} ({fmt.width}x{fmt.height}, {raw.frame_count} frames):\n"
            f"{_stderr_tail(stderr)}"
        )
    os.replace(partial, out)
    return PreviewInfo(
        path=out,
        size_bytes=out.stat().st_size,
        duration_seconds=fmt.duration(raw.frame_count),
        frame_count=raw.frame_count,
        width=width,
        height=height,
        padded=(width, height) != (fmt.width, fmt.height),
        crf=crf,
        ffmpeg_version=imageio_ffmpeg.get_ffmpeg_version(),
        encode_seconds=seconds,
    )
