"""CPU time of a whole process tree, sandboxes included.

`getrusage(RUSAGE_CHILDREN)` misses sandboxed processes: bubblewrap with a PID namespace does
not pass its children's CPU time on to the process that waits for it. A control group counts
every process in it whatever the namespaces, so `TreeCPU` moves this process into a new cgroup
(v2, or v1's cpuacct) whose descendants inherit it, and reads the group's CPU time. Where no
cgroup can be made (not root, no cgroup file system), it falls back to the whole machine's
busy time from /proc/stat, which also counts anything else running, and says so.
"""

from __future__ import annotations

import os
from pathlib import Path

V2_ROOTS = (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup"))
V1_CPUACCT = Path("/sys/fs/cgroup/cpuacct")


def _machine_busy_seconds() -> float:
    """Busy CPU seconds of every core since boot (user, nice, system, irq, softirq, steal)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class TreeCPU:
    """``with TreeCPU() as cpu: ...; cpu.seconds()``: CPU seconds of this process and of every
    process started from it since it was entered; `source` names what was counted."""

    def __init__(self) -> None:
        self.group: Path | None = None
        self.original: Path | None = None
        self.source = "machine"
        self.start = 0.0

    def __enter__(self) -> TreeCPU:
        name = f"codeclab-bench-{os.getpid()}"
        for root in V2_ROOTS:
            usable = (root / "cgroup.procs").is_file() and (root / "cpu.stat").is_file()
            if usable and self._join(root, root / name, "cgroup.procs"):
                self.source = "cgroup v2"
                break
        else:
            if (V1_CPUACCT / "cpuacct.usage").is_file() and self._join(
                V1_CPUACCT, V1_CPUACCT / name, "tasks"
            ):
                self.source = "cgroup v1 cpuacct"
        self.start = self._read()
        return self

    def _join(self, root: Path, group: Path, procs: str) -> bool:
        try:
            group.mkdir(exist_ok=True)
            (group / procs).write_text(str(os.getpid()))
        except OSError:
            return False
        self.group, self.original = group, root / procs
        return True

    def _read(self) -> float:
        if self.group is None:
            return _machine_busy_seconds()
        if self.source == "cgroup v2":
            for line in (self.group / "cpu.stat").read_text().splitlines():
                key, value = line.split()
                if key == "usage_usec":
                    return int(value) / 1e6
            raise RuntimeError(f"{self.group}/cpu.stat has no usage_usec")
        return int((self.group / "cpuacct.usage").read_text()) / 1e9

    def seconds(self) -> float:
        return self._read() - self.start

    def __exit__(self, *exc: object) -> None:
        if self.group is None or self.original is None:
            return
        try:
            self.original.write_text(str(os.getpid()))  # back where we came from
            self.group.rmdir()  # refused while a process is still in it: left, harmless
        except OSError:
            pass
