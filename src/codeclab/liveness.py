"""Whether a process the records name is still running: a campaign's, a dashboard launch's.

A `ProcessRef` is the host, the pid and the pid's start time (from ``/proc``, in clock ticks
since boot), so a pid the kernel has since given to another process is never taken for the
one recorded. Only a process on this host can be checked; elsewhere the answer is "unknown".
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

OWNER_KEY = "process"
"""Where a run's config names the process running it (see `ProcessRef`)."""


def process_start(pid: int) -> int | None:
    """The start time of process `pid` from /proc (None where there is no such entry)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def pid_alive(pid: int, start: int | None) -> bool:
    """Whether `pid` is still the process that started at `start`, and not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel whether the pid exists at all
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return False
    return start is None or int(fields[19]) == start


@dataclass(frozen=True)
class ProcessRef:
    """One process, as a record names it."""

    host: str
    pid: int
    start: int | None

    @classmethod
    def current(cls) -> ProcessRef:
        pid = os.getpid()
        return cls(socket.gethostname(), pid, process_start(pid))

    def alive(self) -> bool | None:
        """True or False for a process of this host; None (unknown) for another host's."""
        if self.host != socket.gethostname():
            return None
        return pid_alive(self.pid, self.start)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProcessRef | None:
        """The reference in `data`, or None when it holds none (or a malformed one)."""
        try:
            start = data.get("start")
            return cls(str(data["host"]), int(data["pid"]), None if start is None else int(start))
        except (KeyError, TypeError, ValueError):
            return None
