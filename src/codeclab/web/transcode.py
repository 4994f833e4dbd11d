"""The reconstruction in other formats, made on demand from the exact decoded frames.

``webm``: VP9 (libvpx-vp9, constant quality ``-crf 20 -b:v 0``), ``mp4``: H.264 (libx264
preset medium, CRF 16, ``+faststart``, High profile, which browsers play).  The input is the
stored stream decoded again by the stored decoder (:mod:`codeclab.web.frames`), not the
preview MP4, so nothing is re-encoded twice.  For MP4, odd sizes are padded to even by
repeating the last column or row, as the preview does (VP9 takes odd sizes); frames are never
scaled.  The result is kept at
``experiments/<id>/transcodes/reconstruction.<format>``, so each is made once.
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import imageio_ffmpeg

from codeclab.storage.objects import ObjectStore
from codeclab.storage.records import ExperimentRecord
from codeclab.video.rawfile import RawVideo
from codeclab.web.frames import FrameSource

TranscodeFormat = Literal["webm", "mp4"]
TRANSCODE_FORMATS: tuple[TranscodeFormat, ...] = get_args(TranscodeFormat)
CONTENT_TYPES = {"webm": "video/webm", "mp4": "video/mp4"}
_CODEC_ARGS: dict[str, list[str]] = {
    "webm": ["-c:v", "libvpx-vp9", "-crf", "20", "-b:v", "0", "-row-mt", "1", "-f", "webm"],
    "mp4": [
        "-c:v", "libx264", "-preset", "medium", "-crf", "16", "-profile:v", "high",
        "-movflags", "+faststart", "-f", "mp4",
    ],
}  # fmt: skip
_STDERR_TAIL = 10


class TranscodeError(RuntimeError):
    """ffmpeg failed; the message carries the end of its output."""


@dataclass(frozen=True)
class Transcoded:
    key: str
    size: int
    content_type: str
    cached: bool  # True: it was already in the store


def transcode_key(exp_id: str, fmt: TranscodeFormat) -> str:
    return f"experiments/{exp_id}/transcodes/reconstruction.{fmt}"


class Transcoder:
    def __init__(self, store: ObjectStore, frames: FrameSource) -> None:
        self.store = store
        self.frames = frames
        self._lock = threading.Lock()  # one ffmpeg at a time: it uses every core

    def transcode(self, record: ExperimentRecord, fmt: TranscodeFormat) -> Transcoded:
        key = transcode_key(record.id, fmt)
        stored = self.store.stat(key)
        if stored is not None:
            return Transcoded(key, stored.size, stored.content_type, cached=True)
        raw = self.frames.reconstructed(record)
        with self._lock:
            stored = self.store.stat(key)  # made by another request meanwhile?
            if stored is not None:
                return Transcoded(key, stored.size, stored.content_type, cached=True)
            with tempfile.TemporaryDirectory(prefix="codeclab-transcode-") as tmp:
                out = Path(tmp) / f"reconstruction.{fmt}"
                encode(raw, out, fmt)
                stored = self.store.put_file(key, out, CONTENT_TYPES[fmt])
        return Transcoded(key, stored.size, stored.content_type, cached=False)


def _even_size_filter(width: int, height: int) -> str:
    """H.264 4:2:0 needs even sizes: pad by repeating the last column/row (VP9 needs not)."""
    right, bottom = width % 2, height % 2
    if not right and not bottom:
        return "null"
    return (
        f"pad={width + right}:{height + bottom}:0:0,"
        f"fillborders=right={right}:bottom={bottom}:mode=smear"
    )


def encode(raw: RawVideo, out: Path, fmt: TranscodeFormat) -> None:
    video = raw.format
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s:v", f"{video.width}x{video.height}",
        "-framerate", f"{video.fps.numerator}/{video.fps.denominator}",
        "-i", str(raw.path),
        "-vf", _even_size_filter(video.width, video.height) if fmt == "mp4" else "null",
        "-pix_fmt", "yuv420p",
        "-metadata", "comment=codeclab: the experiment's decoded frames, re-encoded for viewing",
        *_CODEC_ARGS[fmt],
        str(out),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0:
        lines = result.stderr.decode("utf-8", "replace").strip().splitlines()
        tail = "\n".join(lines[-_STDERR_TAIL:]) or "(ffmpeg printed nothing)"
        raise TranscodeError(
            f"ffmpeg failed (exit status {result.returncode}) making {fmt} of {raw.path}:\n{tail}"
        )
