"""Run one child process under resource limits and a wall-clock deadline.

The child gets its own session (so the whole group can be killed), a scrubbed
environment, rlimits applied before exec, and stdout/stderr read into capped
buffers. Lines the child writes to stdout that start with ``@progress`` are
passed to a callback instead of being kept.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

PROGRESS_PREFIX = b"@progress "


@dataclass(frozen=True)
class Limits:
    """Resource limits for one sandboxed process."""

    wall_seconds: float = 900.0
    cpu_seconds: int = 900
    memory_bytes: int = 4 << 30
    file_bytes: int = 4 << 30
    open_files: int = 64
    processes: int = 64
    output_bytes: int = 64 << 10


@dataclass(frozen=True)
class ProcessResult:
    returncode: int
    timed_out: bool
    wall_seconds: float
    stdout: str
    stderr: str
    stdout_bytes: int
    stderr_bytes: int

    @property
    def signal(self) -> int | None:
        """The signal that ended the child, if any (bwrap reports it as 128+N)."""
        if self.returncode < 0:
            return -self.returncode
        if 128 < self.returncode < 128 + 65:
            return self.returncode - 128
        return None

    def describe_failure(self) -> str:
        if self.timed_out:
            return f"killed after the {self.wall_seconds:.1f} s wall-clock limit"
        sig = self.signal
        if sig is not None:
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = f"signal {sig}"
            hint = {
                "SIGXCPU": " (CPU-time limit)",
                "SIGXFSZ": " (file-size limit)",
                "SIGKILL": " (killed; memory or process limit?)",
            }.get(name, "")
            return f"killed by {name}{hint}"
        return f"exit code {self.returncode}"


def _limit_setter(limits: Limits) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))

    return apply


class _CappedReader(threading.Thread):
    """Drain a pipe, keeping at most `cap` bytes and handing progress lines to a callback."""

    def __init__(
        self, pipe: IO[bytes], cap: int, on_progress: Callable[[str], None] | None
    ) -> None:
        super().__init__(daemon=True)
        self.pipe = pipe
        self.cap = cap
        self.on_progress = on_progress
        self.kept = bytearray()
        self.total = 0

    def run(self) -> None:
        for line in iter(lambda: self.pipe.readline(1 << 16), b""):
            if self.on_progress is not None and line.startswith(PROGRESS_PREFIX):
                self.on_progress(line[len(PROGRESS_PREFIX) :].decode(errors="replace").strip())
                continue
            self.total += len(line)
            room = self.cap - len(self.kept)
            if room > 0:
                self.kept += line[:room]
        self.pipe.close()

    def text(self) -> str:
        out = self.kept.decode(errors="replace")
        if self.total > len(self.kept):
            out += f"\n[... {self.total - len(self.kept)} more bytes not kept]"
        return out


class LimitedProcess:
    """A started child under limits; `wait` collects it (killing its group at the deadline).

    With ``stdin=True`` the child blocks on its stdin until `send` delivers the data:
    the lab uses this to start a decoder while the encoder is still running.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: dict[str, str],
        limits: Limits,
        on_progress: Callable[[str], None] | None = None,
        stdin: bool = False,
    ) -> None:
        self.limits = limits
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_limit_setter(limits),
            close_fds=True,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.readers = [
            _CappedReader(self.proc.stdout, limits.output_bytes, on_progress),
            _CappedReader(self.proc.stderr, limits.output_bytes, None),
        ]
        for reader in self.readers:
            reader.start()

    def send(self, data: bytes) -> None:
        """Write `data` to the child's stdin and close it (a child that died is fine)."""
        if self.proc.stdin is None:
            raise ValueError("this process was started without stdin")
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass

    def kill(self) -> None:
        _kill_group(self.proc.pid)

    def wait(self, *, since: float | None = None) -> ProcessResult:
        """Wait until the child ends or the wall-clock limit (counted from `since`,
        default the start) passes; the result's wall time is counted from `since` too."""
        origin = self.started if since is None else since
        timed_out = False
        try:
            remaining = self.limits.wall_seconds - (time.perf_counter() - origin)
            self.proc.wait(timeout=max(remaining, 0.0))
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            _kill_group(self.proc.pid)
            self.proc.wait()
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        for reader in self.readers:
            reader.join(timeout=5)
        return ProcessResult(
            returncode=self.proc.returncode,
            timed_out=timed_out,
            wall_seconds=time.perf_counter() - origin,
            stdout=self.readers[0].text(),
            stderr=self.readers[1].text(),
            stdout_bytes=self.readers[0].total,
            stderr_bytes=self.readers[1].total,
        )


def run_limited(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    limits: Limits,
    on_progress: Callable[[str], None] | None = None,
) -> ProcessResult:
    """Run `argv` to completion or until the wall-clock limit, then kill its whole group."""
    return LimitedProcess(argv, cwd=cwd, env=env, limits=limits, on_progress=on_progress).wait()


def _kill_group(pgid: int) -> None:
    """Kill whatever is left in the child's process group (daemons included)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
