"""Encoder and decoder jobs: each in a fresh scratch directory and a fresh sandbox.

The encoder job sees the codec, the harness and the source frames. The decoder job
sees the codec, the harness, the container parser and the bitstream: never the
source clip, never the encoder's scratch directory (deleted before it starts).

Hardening (see `codeclab.sandbox.isolation` for the levels): a job refuses to start at a
weak level unless `SandboxSettings.allow_weak`; the harness must report the level it
confined itself to before the job's result counts; the scratch directory is watched and
the job killed if it grows past `Limits.file_bytes` or `MAX_SCRATCH_ENTRIES` entries (a
codec filling the disk); what the lab reads back from a scratch directory must be a
regular file, never a link (a codec could point one at a host file), and the encoder's
packets may not exceed `max_stream_bytes` of the clip.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from codeclab.codec import bitstream
from codeclab.sandbox.isolation import (
    HARNESS_FILES,
    SANDBOX_WORKDIR,
    Confinement,
    IsolationLevel,
    level_problem,
    probe_isolation,
)
from codeclab.sandbox.process import LimitedProcess, Limits, ProcessResult
from codeclab.video.frames import VideoFormat
from codeclab.video.rawfile import RawVideo

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class SandboxSettings:
    limits: Limits = field(default_factory=Limits)
    isolation: IsolationLevel | None = None  # None: the strongest level this machine has
    scratch_root: Path | None = None  # where scratch directories are made (default: TMPDIR)
    allow_weak: bool = False  # run codec code at a weak level (no file isolation) anyway

    def level(self) -> IsolationLevel:
        return self.isolation or probe_isolation().level


class SandboxError(RuntimeError):
    """The job could not even be started (not the codec's fault)."""


MAX_SCRATCH_ENTRIES = 10_000
"""Most files and directories a job may create in its scratch directory."""
SCRATCH_POLL_SECONDS = 0.2


def max_stream_bytes(raw_bytes: int) -> int:
    """Most bytes of packets the lab reads back from an encoder of `raw_bytes` of video:
    twice the raw video plus 16 MiB (a stream larger than that is no codec, and reading
    it would only cost the lab memory)."""
    return 2 * raw_bytes + (16 << 20)


def check_level(settings: SandboxSettings) -> IsolationLevel:
    """The level jobs with `settings` run at; SandboxError if it is weak and not allowed,
    or does not work here."""
    level = settings.level()
    if level.weak and not settings.allow_weak:
        raise SandboxError(
            f"refusing to run codec code at isolation level {level.value!r}: it has no file "
            "isolation, so the codec could read every file the lab can (the records, the "
            "object store, the source clips) and reach the network. Install bubblewrap "
            "(apt-get install bubblewrap), or use a kernel with Landlock and pip install "
            "pyseccomp; or accept the risk with `allow_weak_isolation = true` in the "
            "[sandbox] table of codeclab.toml"
        )
    problem = level_problem(level)
    if problem is not None:
        raise SandboxError(f"isolation level {level.value!r} does not work here: {problem}")
    return level


@dataclass(frozen=True)
class JobResult:
    """What one sandboxed run of a codec gave: its reason when it failed."""

    ok: bool
    error: str | None
    isolation: str
    wall_seconds: float
    process: ProcessResult


@dataclass(frozen=True)
class EncodeResult(JobResult):
    packets: list[bytes]


@dataclass(frozen=True)
class DecodeResult(JobResult):
    output: RawVideo | None


def _environment() -> dict[str, str]:
    """A minimal environment: no credentials, keys or proxies of the lab reach the codec."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": SANDBOX_WORKDIR,
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "NUMBA_NUM_THREADS": "1",
    }


def _confined_level(stdout: str) -> str | None:
    for line in stdout.splitlines():
        if line.startswith("@confined "):
            return line[len("@confined ") :].strip()
    return None


def _scratch_usage(directory: Path, max_entries: int) -> tuple[int, int]:
    """(bytes on disk, entries) under `directory`, counting at most `max_entries` + 1."""
    used, entries = 0, 0
    pending = [directory]
    while pending and entries <= max_entries:
        try:
            with os.scandir(pending.pop()) as it:
                for entry in it:
                    entries += 1
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    used += info.st_blocks * 512
                    if stat.S_ISDIR(info.st_mode):
                        pending.append(Path(entry.path))
        except OSError:
            continue
    return used, entries


class _ScratchGuard(threading.Thread):
    """Kills a job whose scratch directory grows past its budget (a codec filling the disk)."""

    def __init__(self, directory: Path, budget: int, kill: Callable[[], None]) -> None:
        super().__init__(daemon=True)
        self.directory = directory
        self.budget = budget
        self.kill = kill
        self.reason: str | None = None
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(SCRATCH_POLL_SECONDS):
            used, entries = _scratch_usage(self.directory, MAX_SCRATCH_ENTRIES)
            if used > self.budget or entries > MAX_SCRATCH_ENTRIES:
                self.reason = (
                    f"its scratch directory grew past the limit of {self.budget >> 20} MiB "
                    f"or {MAX_SCRATCH_ENTRIES} files ({used >> 20} MiB, {entries} entries)"
                )
                self.kill()
                return

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=5)


def _progress_parser(callback: ProgressCallback | None) -> Callable[[str], None] | None:
    if callback is None:
        return None

    def parse(text: str) -> None:
        done, _, total = text.partition("/")
        if done.isdigit() and total.isdigit():
            callback(int(done), int(total))

    return parse


class _Job:
    """One scratch directory, the files the lab puts into it, one sandboxed run."""

    def __init__(self, settings: SandboxSettings, kind: str) -> None:
        self.settings = settings
        self.level = check_level(settings)
        root = settings.scratch_root
        if root is not None:
            root.mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix=f"codeclab-{kind}-", dir=root))
        self.confinement = Confinement(self.level, self.dir)
        self.guard: _ScratchGuard | None = None

    def __enter__(self) -> _Job:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.guard is not None:
            self.guard.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, name: str, data: bytes) -> None:
        (self.dir / name).write_bytes(data)

    def expose(self, host_path: Path, name: str) -> None:
        """Make a host file readable as `name` in the job directory without copying it."""
        self.confinement.expose(host_path, name)

    def start(
        self,
        args: list[str],
        on_progress: ProgressCallback | None = None,
        *,
        stdin: bool = False,
    ) -> LimitedProcess:
        """Start the harness with `args` in this job's sandbox, the scratch guard beside it."""
        python = [
            sys.executable,
            "-I",
            "harness.py",
            f"--confine={self.confinement.spec()}",
            *args,
        ]
        try:
            argv = self.confinement.command(
                python, env=_environment(), processes=self.settings.limits.processes
            )
        except RuntimeError as exc:
            raise SandboxError(str(exc)) from None
        process = LimitedProcess(
            argv,
            cwd=self.dir,
            env=_environment(),
            limits=self.settings.limits,
            on_progress=_progress_parser(on_progress),
            stdin=stdin,
        )
        self.guard = _ScratchGuard(self.dir, self.settings.limits.file_bytes, process.kill)
        self.guard.start()
        return process

    def finished(self, process: ProcessResult, what: str) -> None:
        """Stop the guard; SandboxError if the harness never confined itself."""
        if self.guard is not None:
            self.guard.stop()
        if process.timed_out or (self.guard is not None and self.guard.reason):
            return
        confined = _confined_level(process.stdout)
        if confined == self.level.value:
            return
        if confined is not None:
            wanted = self.level.value
            raise SandboxError(
                f"{what}: the harness confined itself at {confined!r}, not {wanted!r}"
            )
        reason = _reported_error(process.stdout) or process.describe_failure()
        tail = _last_line(process.stderr)
        raise SandboxError(
            f"{what}: the sandbox did not start at isolation level {self.level.value!r}: "
            f"{reason}{'; stderr: ' + tail if tail else ''}"
        )

    def result_error(self, process: ProcessResult, what: str) -> str | None:
        if self.guard is not None and self.guard.reason:
            return f"{what} failed: killed: {self.guard.reason}"
        if process.returncode == 0 and not process.timed_out:
            return None
        reason = _reported_error(process.stdout)
        if reason is None:
            reason = process.describe_failure()
            tail = _last_line(process.stderr)
            if tail:
                reason += f"; stderr: {tail}"
        return f"{what} failed: {reason}"


def _reported_error(stdout: str) -> str | None:
    for line in stdout.splitlines():
        if line.startswith("@error "):
            return line[len("@error ") :]
    return None


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _install_harness(job: _Job, source: str) -> None:
    job.write("codec.py", source.encode("utf-8"))
    job.confinement.expose_harness()


def _read_regular(path: Path, limit: int, what: str) -> bytes:
    """The bytes of `path` if it is a regular file (not a link, FIFO, ...) of at most
    `limit` bytes; ValueError naming the problem otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ValueError(f"{what} was not written") from None
    except OSError as exc:
        raise ValueError(f"{what} cannot be opened ({exc.strerror}; a link?)") from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{what} is not a regular file")
        if info.st_size > limit:
            raise ValueError(f"{what} is {info.st_size} bytes, over the limit of {limit} bytes")
        return fh.read(limit + 1)


def run_encoder(
    source: str,
    clip: RawVideo,
    params: dict[str, Any],
    *,
    settings: SandboxSettings,
    on_progress: ProgressCallback | None = None,
) -> EncodeResult:
    """Encode every frame of `clip` with the codec `source` in a fresh sandbox."""
    fmt = clip.format
    with _Job(settings, "enc") as job:
        _install_harness(job, source)
        job.expose(clip.path, "input.yuv")
        job.write("params.json", json.dumps(params).encode())
        process = job.start(
            [
                "encode",
                "--codec=codec.py",
                "--input=input.yuv",
                "--output=packets.bin",
                "--params=params.json",
                f"--width={fmt.width}",
                f"--height={fmt.height}",
                f"--fps-num={fmt.fps.numerator}",
                f"--fps-den={fmt.fps.denominator}",
            ],
            on_progress,
        ).wait()
        job.finished(process, "encoder")
        error = job.result_error(process, "encoder")
        packets: list[bytes] = []
        if error is None:
            limit = max_stream_bytes(fmt.frame_bytes * clip.frame_count)
            try:
                data = _read_regular(job.dir / "packets.bin", limit, "packets.bin")
                packets = _read_packets(data)
            except ValueError as exc:
                error = f"encoder output unreadable: {exc}"
        return EncodeResult(
            ok=error is None,
            error=error,
            isolation=job.level.value,
            wall_seconds=process.wall_seconds,
            process=process,
            packets=packets,
        )


def _read_packets(data: bytes) -> list[bytes]:
    packets: list[bytes] = []
    pos = 0
    while pos < len(data):
        if pos + 4 > len(data):
            raise ValueError("truncated packet length")
        (length,) = struct.unpack_from(">I", data, pos)
        pos += 4
        if pos + length > len(data):
            raise ValueError("truncated packet")
        packets.append(data[pos : pos + length])
        pos += length
    return packets


class PendingDecode:
    """A decoder sandbox started ahead of its bitstream.

    The decoder process starts (interpreter, numpy, its confinement) while the encoder
    is still running; `finish` hands it the container on stdin and collects the frames.
    Only then does it load the codec module: no codec code runs in the decoder while the
    encoder runs. It still sees nothing but that container. Decode time is counted from
    the moment the stream is delivered.
    """

    def __init__(
        self,
        source: str,
        fmt: VideoFormat,
        *,
        output_path: Path,
        settings: SandboxSettings,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.fmt = fmt
        self.output_path = output_path
        self.job = _Job(settings, "dec")
        try:
            _install_harness(self.job, source)
            self.job.expose(Path(bitstream.__file__), "bitstream.py")
            self.process = self.job.start(
                [
                    "decode",
                    "--codec=codec.py",
                    "--bitstream=bitstream.py",
                    "--stream=-",
                    "--output=output.yuv",
                ],
                on_progress,
                stdin=True,
            )
        except BaseException:
            self.job.__exit__(None, None, None)
            raise

    def __enter__(self) -> PendingDecode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()

    def cancel(self) -> None:
        """Kill the decoder if it is still waiting, and remove its scratch directory."""
        self.process.kill()
        self.job.__exit__(None, None, None)

    def finish(self, stream: bytes) -> DecodeResult:
        """Deliver the container, wait for the decoder, and move its frames out."""
        delivered = time.perf_counter()
        self.process.send(stream)
        process = self.process.wait(since=delivered)
        job = self.job
        try:
            job.finished(process, "decoder")
            error = job.result_error(process, "decoder")
            output: RawVideo | None = None
            produced = job.dir / "output.yuv"
            if error is None:
                if not produced.is_file() or produced.is_symlink():
                    error = "decoder failed: it produced no output file (or not a regular file)"
                else:
                    self.output_path.parent.mkdir(parents=True, exist_ok=True)
                    shutil.move(produced, self.output_path)
                    try:
                        output = RawVideo.open(self.output_path, self.fmt)
                    except ValueError as exc:
                        error = f"decoder output unreadable: {exc}"
        finally:
            job.__exit__(None, None, None)
        return DecodeResult(
            ok=error is None,
            error=error,
            isolation=job.level.value,
            wall_seconds=process.wall_seconds,
            process=process,
            output=output,
        )


def run_decoder(
    source: str,
    stream: bytes,
    fmt: VideoFormat,
    *,
    output_path: Path,
    settings: SandboxSettings,
    on_progress: ProgressCallback | None = None,
) -> DecodeResult:
    """Decode the container `stream` with the codec `source`; frames land in `output_path`."""
    with PendingDecode(
        source, fmt, output_path=output_path, settings=settings, on_progress=on_progress
    ) as pending:
        return pending.finish(stream)


def run_script(
    files: dict[str, bytes],
    script: str,
    args: list[str],
    *,
    outputs: list[str],
    dest: Path,
    settings: SandboxSettings,
) -> tuple[ProcessResult, list[Path]]:
    """Run `python -I script args...` in a sandbox holding only `files`.

    Used to run a downloaded decode package's ``decoder.py``: it is codec code, so it
    runs sandboxed like any other. The named `outputs` are moved to `dest` afterwards
    (those that exist, are regular files and not links).
    """
    with _Job(settings, "script") as job:
        for name, data in files.items():
            if "/" in name or name.startswith(".") or name in HARNESS_FILES:
                raise SandboxError(f"{name}: only plain file names can be put in a sandbox")
            job.write(name, data)
        job.confinement.expose_harness()
        process = job.start(["run", script, *args]).wait()
        job.finished(process, "script")
        stdout = "".join(
            line for line in process.stdout.splitlines(keepends=True)
            if not line.startswith("@confined ")
        )  # fmt: skip
        process = replace(process, stdout=stdout)
        moved: list[Path] = []
        dest.mkdir(parents=True, exist_ok=True)
        for name in outputs:
            produced = job.dir / name
            if produced.is_file() and not produced.is_symlink():
                target = dest / name
                shutil.move(produced, target)
                moved.append(target)
        return process, moved
