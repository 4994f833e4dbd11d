"""The clip registry: turn a clip spec into the raw frames the lab measures.

A spec is ``builtin:NAME`` (a clip the lab generates, see `codeclab.video.builtin`)
or the path of any video file `open_video` reads. `prepare_clip` streams the chosen
frames into a raw yuv420p file in the work directory, hashing them on the way: the
sha256 identifies exactly the pixels every codec and baseline is measured on.

Choices:

* ``frames`` larger than what the clip holds from ``start`` takes every frame that
  exists (the result's `frame_count` says how many); ``frames`` of 0 or less is an
  error, and so is a ``start`` at or beyond the end.
* A built-in clip is generated once, at its default length, into
  ``<cache_dir>/<name>-g<generator version>.y4m`` (``cache_dir`` defaults to
  ``workdir / "builtin"``) and read back from there, so frames taken from it go
  through the same Y4M path as a user's file. The cache is written to a temporary
  name and renamed, so an interrupted run never leaves a partial clip behind.
* The raw file is ``<workdir>/<name>-<start>-<frames taken>-<sha256 prefix>.yuv``:
  two different clips of the same name never overwrite each other, and preparing
  the same spec again rewrites the same bytes.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from codeclab.video.builtin import (
    BUILTIN_CLIPS,
    GENERATOR_VERSION,
    BuiltinClip,
    UnknownBuiltinError,
    generate_builtin,
    get_builtin,
)
from codeclab.video.frames import VideoFormat
from codeclab.video.rawfile import RawVideo
from codeclab.video.source import VideoInputError, VideoSource, open_video
from codeclab.video.y4m import Y4MWriter

BUILTIN_PREFIX = "builtin:"


@dataclass(frozen=True)
class PreparedClip:
    """Frames taken from a clip, stored as a raw yuv420p file, with the hash of those bytes."""

    name: str  # "lab-cif", or the file name
    source: str  # "builtin:lab-cif", or the absolute path of the file
    raw: RawVideo
    start: int
    sha256: str
    container: str

    @property
    def format(self) -> VideoFormat:
        return self.raw.format

    @property
    def frame_count(self) -> int:
        return self.raw.frame_count

    @property
    def duration_seconds(self) -> float:
        return self.format.duration(self.frame_count)

    def to_dict(self) -> dict[str, object]:
        fps = self.format.fps
        return {
            "name": self.name,
            "source": self.source,
            "container": self.container,
            "width": self.format.width,
            "height": self.format.height,
            "fps": f"{fps.numerator}/{fps.denominator}",
            "frames": self.frame_count,
            "start": self.start,
            "sha256": self.sha256,
            "duration": self.duration_seconds,
        }


def list_builtin_clips() -> list[BuiltinClip]:
    return list(BUILTIN_CLIPS.values())


def builtin_cache_path(name: str, cache_dir: Path) -> Path:
    """Where the generated built-in clip `name` is kept."""
    return cache_dir / f"{name}-g{GENERATOR_VERSION}.y4m"


def ensure_builtin(name: str, cache_dir: Path) -> Path:
    """The cached Y4M of built-in clip `name`, generated now if it is not there yet."""
    clip = _builtin(name)
    path = builtin_cache_path(clip.name, cache_dir)
    if path.is_file():
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with Y4MWriter(partial, clip.format) as writer:
            for frame in generate_builtin(clip.name):
                writer.write(frame)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def prepare_clip(
    spec: str,
    workdir: Path,
    *,
    start: int = 0,
    frames: int | None = None,
    cache_dir: Path | None = None,
) -> PreparedClip:
    """Take frames [start, start + frames) of the clip `spec` into a raw file under `workdir`."""
    if start < 0:
        raise VideoInputError(f"{spec}: start frame must be 0 or more, got {start}")
    if frames is not None and frames < 1:
        raise VideoInputError(f"{spec}: frames to take must be 1 or more, got {frames}")
    if spec.startswith(BUILTIN_PREFIX):
        clip = _builtin(spec[len(BUILTIN_PREFIX) :])
        name, source = clip.name, f"{BUILTIN_PREFIX}{clip.name}"
        path = ensure_builtin(clip.name, workdir / "builtin" if cache_dir is None else cache_dir)
    else:
        path = Path(spec).expanduser()
        if not path.exists() and spec in BUILTIN_CLIPS:
            raise VideoInputError(
                f"{spec}: no such file; for the built-in clip write {BUILTIN_PREFIX}{spec}"
            )
        name, source = path.name, str(path.absolute())
    workdir.mkdir(parents=True, exist_ok=True)
    with open_video(path, start=start, frames=frames) as video:
        raw, digest = _write_raw(video, workdir, f"{name}-{start}")
        container = video.container
    return PreparedClip(name, source, raw, start, digest, container)


def _builtin(name: str) -> BuiltinClip:
    try:
        return get_builtin(name)
    except UnknownBuiltinError as exc:
        raise VideoInputError(str(exc)) from None


def _write_raw(video: VideoSource, workdir: Path, stem: str) -> tuple[RawVideo, str]:
    """Stream `video` into ``<workdir>/<stem>-<count>-<sha>.yuv``; returns it and its sha256."""
    fmt = video.format
    digest = hashlib.sha256()
    partial = workdir / f".{stem}.{os.getpid()}.partial"
    count = 0
    try:
        with partial.open("wb") as out:
            for frame in video:
                frame.check(fmt, f"{video.path}: frame {count}")
                data = frame.to_bytes()
                digest.update(data)
                out.write(data)
                count += 1
        path = workdir / f"{stem}-{count}-{digest.hexdigest()[:12]}.yuv"
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return RawVideo(path, fmt, count), digest.hexdigest()
