"""Encoder and decoder jobs: each in a fresh scratch directory and a fresh sandbox.

The encoder job sees the codec, the harness and the source frames. The decoder job
sees the codec, the harness, the container parser and the bitstream: never the
source clip, never the encoder's scratch directory (deleted before it starts).
"""

from __future__ import annotations

import json
import shutil
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codeclab.codec import bitstream
from codeclab.sandbox import harness
from codeclab.sandbox.isolation import (
    SANDBOX_WORKDIR,
    IsolationLevel,
    bwrap_prefix,
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

    def level(self) -> IsolationLevel:
        return self.isolation or probe_isolation().level


class SandboxError(RuntimeError):
    """The job could not even be started (not the codec's fault)."""


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
        self.level = settings.level()
        root = settings.scratch_root
        if root is not None:
            root.mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix=f"codeclab-{kind}-", dir=root))
        self.ro_binds: list[tuple[Path, str]] = []

    def __enter__(self) -> _Job:
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, name: str, data: bytes) -> None:
        (self.dir / name).write_bytes(data)

    def expose(self, host_path: Path, name: str) -> None:
        """Make a host file readable as `name` in the job directory without copying it."""
        if self.level is IsolationLevel.BWRAP:
            (self.dir / name).touch()
            self.ro_binds.append((host_path.resolve(), f"{SANDBOX_WORKDIR}/{name}"))
        else:
            (self.dir / name).symlink_to(host_path.resolve())

    def command(self, python: list[str]) -> list[str]:
        """`python` (an interpreter command line) wrapped in this job's isolation."""
        if self.level is not IsolationLevel.BWRAP:
            return python
        info = probe_isolation()
        if info.bwrap_path is None:
            raise SandboxError("bwrap isolation requested but bubblewrap is not installed")
        argv = bwrap_prefix(info.bwrap_path, self.dir)
        for host, inside in self.ro_binds:
            argv += ["--ro-bind", str(host), inside]
        prlimit = shutil.which("prlimit")
        if prlimit:  # RLIMIT_NPROC only bites inside the user namespace
            python = [prlimit, f"--nproc={self.settings.limits.processes}", "--", *python]
        return [*argv, "--", *python]

    def start(
        self, args: list[str], on_progress: ProgressCallback | None, *, stdin: bool = False
    ) -> LimitedProcess:
        """Start the harness with `args` in this job's sandbox."""
        return LimitedProcess(
            self.command([sys.executable, "-I", "harness.py", *args]),
            cwd=self.dir,
            env=_environment(),
            limits=self.settings.limits,
            on_progress=_progress_parser(on_progress),
            stdin=stdin,
        )

    def result_error(self, process: ProcessResult, what: str) -> str | None:
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
    job.expose(Path(harness.__file__), "harness.py")


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
        error = job.result_error(process, "encoder")
        packets: list[bytes] = []
        if error is None:
            try:
                packets = _read_packets(job.dir / "packets.bin")
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


def _read_packets(path: Path) -> list[bytes]:
    data = path.read_bytes()
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

    The decoder process starts (interpreter, numpy, the codec module) while the
    encoder is still running; `finish` hands it the container on stdin and collects
    the frames. It still sees nothing but that container. Decode time is counted
    from the moment the stream is delivered.
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
        error = job.result_error(process, "decoder")
        output: RawVideo | None = None
        produced = job.dir / "output.yuv"
        if error is None:
            if not produced.is_file() or produced.is_symlink():
                error = "decoder failed: it produced no output file"
            else:
                self.output_path.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(produced, self.output_path)
                try:
                    output = RawVideo.open(self.output_path, self.fmt)
                except ValueError as exc:
                    error = f"decoder output unreadable: {exc}"
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
            if "/" in name or name.startswith("."):
                raise SandboxError(f"{name}: only plain file names can be put in a sandbox")
            job.write(name, data)
        process = LimitedProcess(
            job.command([sys.executable, "-I", script, *args]),
            cwd=job.dir,
            env=_environment(),
            limits=settings.limits,
        ).wait()
        moved: list[Path] = []
        dest.mkdir(parents=True, exist_ok=True)
        for name in outputs:
            produced = job.dir / name
            if produced.is_file() and not produced.is_symlink():
                target = dest / name
                shutil.move(produced, target)
                moved.append(target)
        return process, moved
