"""Which isolation this machine gives untrusted code, probed once per process.

Levels, strongest first:

``bwrap``
    bubblewrap: new user, pid, network, ipc, uts and mount namespaces, read-only
    system, no capabilities, only the job's scratch directory visible and writable,
    plus the rlimits below. The child cannot see host files, the source clip, the
    records database or the network.
``rlimits``
    a plain child process with a scrubbed environment, its own session, the
    scratch directory as working directory and the rlimits. It can still read
    files the lab's user can read: recorded as the weaker level it is.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


class IsolationLevel(StrEnum):
    BWRAP = "bwrap"
    RLIMITS = "rlimits"


@dataclass(frozen=True)
class IsolationInfo:
    level: IsolationLevel
    bwrap_path: str | None
    detail: str


SANDBOX_WORKDIR = "/job"


def python_roots() -> list[Path]:
    """Directories the sandboxed interpreter needs read-only: its prefixes."""
    roots: list[Path] = []
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
        path = Path(prefix).resolve()
        if not any(path == r or r in path.parents for r in roots) and not _under_usr(path):
            roots.append(path)
    return sorted(roots)


def _under_usr(path: Path) -> bool:
    return path == Path("/usr") or Path("/usr") in path.parents


def bwrap_prefix(bwrap: str, workdir: Path) -> list[str]:
    """The bwrap command line that confines a child to `workdir` (mounted at /job)."""
    argv = [
        bwrap,
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--ro-bind",
        "/usr",
        "/usr",
    ]
    for name in ("lib", "lib64", "bin", "sbin", "lib32"):
        target = Path("/") / name
        if target.is_symlink():
            argv += ["--symlink", str(target.readlink()), str(target)]
        elif target.is_dir():
            argv += ["--ro-bind", str(target), str(target)]
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for root in python_roots():
        argv += ["--ro-bind", str(root), str(root)]
    argv += ["--bind", str(workdir), SANDBOX_WORKDIR, "--chdir", SANDBOX_WORKDIR, "--clearenv"]
    return argv


@functools.cache
def probe_isolation() -> IsolationInfo:
    """Find the strongest level that works here (run a trivial interpreter under it)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return IsolationInfo(IsolationLevel.RLIMITS, None, "bubblewrap (bwrap) is not installed")
    probe_dir = Path(sys.prefix)  # any existing directory will do for the probe
    argv = [*bwrap_prefix(bwrap, probe_dir), sys.executable, "-I", "-c", "import numpy"]
    try:
        result = subprocess.run(argv, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return IsolationInfo(IsolationLevel.RLIMITS, bwrap, f"bwrap failed to start: {exc}")
    if result.returncode != 0:
        reason = result.stderr.decode(errors="replace").strip().splitlines()
        last = reason[-1] if reason else f"exit code {result.returncode}"
        return IsolationInfo(IsolationLevel.RLIMITS, bwrap, f"bwrap does not work here: {last}")
    return IsolationInfo(
        IsolationLevel.BWRAP,
        bwrap,
        "bubblewrap: no network, read-only system, only the scratch directory visible",
    )
