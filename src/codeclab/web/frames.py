"""The exact frames behind the dashboard's frame tool, heatmaps and transcodes.

* The **reconstruction** is the stored bitstream (``stream.bin``) decoded again by the stored
  ``decoder.py``, run in the lab's sandbox like any codec code (it is codec code).  The
  stream's sha256 must be the one measured at the operating point, so what is shown is what
  was scored.
* The **original** is the clip prepared again from its recorded source (file path or
  ``builtin:``), whose sha256 must match the clip's record.

Both are kept as raw yuv420p files under ``<cache_dir>/dashboard/``; only the newest
``keep`` decoded experiments are kept.  One decode per experiment runs at a time, and at most
``max_parallel`` in all.  The preview videos are never used: they are re-encoded, so lossy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

from codeclab.lab import Lab
from codeclab.sandbox.jobs import SandboxError, run_script
from codeclab.storage.objects import ObjectNotFound
from codeclab.storage.records import ClipRecord, ExperimentRecord, RecordNotFound
from codeclab.video.clips import prepare_clip
from codeclab.video.frames import Frame, VideoFormat
from codeclab.video.rawfile import RawVideo
from codeclab.video.source import VideoInputError

DECODER_FILE = "decoder.py"
STREAM_FILE = "stream.bin"


class FramesUnavailable(RuntimeError):  # noqa: N818 (the name says what happened)
    """The exact frames cannot be had; the message says why and what would help."""


def clip_format(clip: ClipRecord) -> VideoFormat:
    return VideoFormat(clip.width, clip.height, Fraction(clip.fps_num, clip.fps_den))


def measured_stream_sha256(record: ExperimentRecord) -> str | None:
    """The sha256 of the stream measured at the experiment's operating point."""
    comparison = record.comparison if isinstance(record.comparison, dict) else {}
    operating = comparison.get("operating_point") or {}
    quality = operating.get("quality_param")
    for point in record.metrics or []:
        if isinstance(point, dict) and point.get("quality") == quality:
            sha = point.get("stream_sha256")
            return sha if isinstance(sha, str) else None
    return None


class FrameSource:
    """Decoded and original frames of experiments, cached on disk."""

    def __init__(self, lab: Lab, *, keep: int = 8, max_parallel: int = 2) -> None:
        self.lab = lab
        self.root = lab.settings.cache_dir / "dashboard"
        self.keep = keep
        self._parallel = threading.BoundedSemaphore(max_parallel)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    @contextmanager
    def _exclusive(self, name: str) -> Iterator[None]:
        with self._locks_guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            yield

    # -- the clip ---------------------------------------------------------------------------

    def clip(self, record: ExperimentRecord) -> ClipRecord:
        if record.clip_sha256 is None:
            raise FramesUnavailable(f"experiment {record.id} records no clip")
        try:
            return self.lab.records.get_clip(record.clip_sha256)
        except RecordNotFound as exc:
            raise FramesUnavailable(str(exc)) from None

    def original(self, clip: ClipRecord) -> RawVideo:
        """The clip's frames, prepared from its recorded source and checked by sha256."""
        fmt = clip_format(clip)
        marker = self.root / "clips" / f"{clip.sha256}.json"
        with self._exclusive(f"clip:{clip.sha256}"):
            cached = self._cached_raw(marker, fmt, clip.frame_count)
            if cached is not None:
                return cached
            workdir = self.root / "clips" / clip.sha256
            shutil.rmtree(workdir, ignore_errors=True)
            try:
                prepared = prepare_clip(
                    clip.source,
                    workdir,
                    start=clip.start,
                    frames=clip.frame_count,
                    cache_dir=self.lab.settings.cache_dir,
                )
            except (VideoInputError, OSError) as exc:
                raise FramesUnavailable(
                    f"the source of clip {clip.name} ({clip.source}) cannot be read on this "
                    f"machine, so original frames cannot be shown: {exc}"
                ) from None
            if prepared.sha256 != clip.sha256:
                raise FramesUnavailable(
                    f"the clip at {clip.source} has changed since it was measured "
                    f"(sha256 {prepared.sha256[:12]}, recorded {clip.sha256[:12]})"
                )
            _write_marker(marker, prepared.raw.path, clip.sha256)
            return prepared.raw

    # -- the reconstruction -----------------------------------------------------------------

    def reconstructed(self, record: ExperimentRecord) -> RawVideo:
        """The operating point's frames, decoded from the stored stream by the stored decoder."""
        clip = self.clip(record)
        fmt = clip_format(clip)
        stream_key = record.artifacts.get("stream")
        decoder_key = record.artifacts.get("decoder")
        if stream_key is None or decoder_key is None:
            raise FramesUnavailable(
                f"experiment {record.id} is not published (publish status "
                f"{record.publish_status.value}): its bitstream and decoder were not stored, so "
                "its frames cannot be decoded; an admin can publish it"
            )
        expected = measured_stream_sha256(record)
        marker = self.root / "decoded" / f"{record.id}.json"
        with self._exclusive(f"decoded:{record.id}"):
            cached = self._cached_raw(marker, fmt, clip.frame_count, expected)
            if cached is not None:
                os.utime(marker)
                return cached
            try:
                stream = self.lab.store.get_bytes(stream_key)
                decoder = self.lab.store.get_bytes(decoder_key)
            except ObjectNotFound as exc:
                raise FramesUnavailable(f"experiment {record.id}: {exc}") from None
            digest = hashlib.sha256(stream).hexdigest()
            if expected is not None and digest != expected:
                raise FramesUnavailable(
                    f"experiment {record.id}: the stored {stream_key} (sha256 {digest[:12]}) is "
                    f"not the stream that was measured (sha256 {expected[:12]})"
                )
            raw = self._decode(record.id, decoder, stream, fmt)
            if raw.frame_count != clip.frame_count:
                raise FramesUnavailable(
                    f"experiment {record.id}: decoder.py gave {raw.frame_count} frames, the clip "
                    f"has {clip.frame_count}"
                )
            _write_marker(marker, raw.path, digest)
        self._prune()
        return raw

    def _decode(self, exp_id: str, decoder: bytes, stream: bytes, fmt: VideoFormat) -> RawVideo:
        target_dir = self.root / "decoded"
        target_dir.mkdir(parents=True, exist_ok=True)
        with self._parallel, tempfile.TemporaryDirectory(dir=target_dir) as tmp:
            try:
                result, produced = run_script(
                    {DECODER_FILE: decoder, STREAM_FILE: stream},
                    DECODER_FILE,
                    [STREAM_FILE, "-o", "out.yuv"],
                    outputs=["out.yuv"],
                    dest=Path(tmp),
                    settings=self.lab.settings.sandbox,
                )
            except SandboxError as exc:
                raise FramesUnavailable(
                    f"experiment {exp_id}: cannot start the sandbox: {exc}"
                ) from None
            if result.returncode != 0 or not produced:
                lines = (result.stderr.strip() or result.stdout.strip()).splitlines()
                reason = lines[-1] if lines else result.describe_failure()
                raise FramesUnavailable(f"experiment {exp_id}: decoder.py failed: {reason}")
            path = target_dir / f"{exp_id}.yuv"
            os.replace(produced[0], path)
        try:
            return RawVideo.open(path, fmt)
        except ValueError as exc:
            raise FramesUnavailable(f"experiment {exp_id}: decoder.py output: {exc}") from None

    def pair(self, record: ExperimentRecord, index: int) -> tuple[Frame, Frame]:
        """(original, reconstructed) frame `index`; IndexError names the valid range."""
        clip = self.clip(record)
        if not 0 <= index < clip.frame_count:
            raise IndexError(
                f"experiment {record.id} has frames 0..{clip.frame_count - 1}, not {index}"
            )
        return self.original(clip).frame(index), self.reconstructed(record).frame(index)

    # -- the cache --------------------------------------------------------------------------

    @staticmethod
    def _cached_raw(
        marker: Path, fmt: VideoFormat, frames: int, sha256: str | None = None
    ) -> RawVideo | None:
        try:
            data = json.loads(marker.read_text(encoding="utf-8"))
            path = Path(data["path"])
            if sha256 is not None and data.get("sha256") != sha256:
                return None
            if path.stat().st_size != frames * fmt.frame_bytes:
                return None
            return RawVideo.open(path, fmt)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _prune(self) -> None:
        """Keep the decoded frames of the `keep` most recently used experiments."""
        markers = sorted(
            (self.root / "decoded").glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True
        )
        for marker in markers[self.keep :]:
            with self._exclusive(f"decoded:{marker.stem}"):
                marker.unlink(missing_ok=True)
                marker.with_suffix(".yuv").unlink(missing_ok=True)


def _write_marker(marker: Path, path: Path, sha256: str) -> None:
    marker.parent.mkdir(parents=True, exist_ok=True)
    partial = marker.with_name(marker.name + ".partial")
    partial.write_text(json.dumps({"path": str(path), "sha256": sha256}), encoding="utf-8")
    os.replace(partial, marker)
