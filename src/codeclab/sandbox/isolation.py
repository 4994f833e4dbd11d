"""Which isolation this machine gives untrusted code, probed once per process, and how a
process is confined at each level.

Every level runs the codec in a fresh child process with a scrubbed environment, its own
process group, the rlimits of `process.Limits` (memory, CPU, file size, open files) and a
wall clock that kills the whole group; the harness sets no_new_privs and drops every
capability before it loads the codec. Levels, strongest first:

``bwrap+seccomp``
    bubblewrap: new user, pid, network, ipc, uts and mount namespaces; the system, ``/``
    and ``/dev`` read-only, a private 4 MiB ``/tmp``, only the job's scratch directory
    visible and writable; no capabilities; a process-count limit inside; dies with the lab.
    Plus the seccomp filter of `codeclab.sandbox.seccomp` (no sockets, no new processes,
    no IPC, no signals, no namespaces or mounts ...). The child cannot see host files, the
    source clip (decoder), the records database, the object store or the network.
``bwrap``
    the same without the seccomp filter (pyseccomp or libseccomp missing).
``landlock+seccomp``
    no namespaces (bubblewrap missing or blocked): a Landlock ruleset limits the child to
    its scratch directory (read-write), the Python installation and the files exposed to
    the job (read-only); the seccomp filter as above; the child dies with the lab.
``rlimits``
    a plain child process with the limits above. It can still read every file the lab's
    user can read and reach the network: *weak*. The lab refuses to run codec code at a
    weak level unless the user allows it (``[sandbox] allow_weak_isolation = true``).

The level used is recorded with every experiment.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from codeclab.sandbox import landlock, seccomp


class IsolationLevel(StrEnum):
    BWRAP_SECCOMP = "bwrap+seccomp"
    BWRAP = "bwrap"
    LANDLOCK_SECCOMP = "landlock+seccomp"
    RLIMITS = "rlimits"

    @property
    def uses_bwrap(self) -> bool:
        return self in (IsolationLevel.BWRAP_SECCOMP, IsolationLevel.BWRAP)

    @property
    def uses_seccomp(self) -> bool:
        return self in (IsolationLevel.BWRAP_SECCOMP, IsolationLevel.LANDLOCK_SECCOMP)

    @property
    def uses_landlock(self) -> bool:
        return self is IsolationLevel.LANDLOCK_SECCOMP

    @property
    def weak(self) -> bool:
        """No file isolation: the codec could read whatever the lab's user can."""
        return not (self.uses_bwrap or self.uses_landlock)


STRONGEST_FIRST: tuple[IsolationLevel, ...] = (
    IsolationLevel.BWRAP_SECCOMP,
    IsolationLevel.BWRAP,
    IsolationLevel.LANDLOCK_SECCOMP,
    IsolationLevel.RLIMITS,
)

LEVEL_SUMMARY: dict[IsolationLevel, str] = {
    IsolationLevel.BWRAP_SECCOMP: (
        "bubblewrap namespaces (only the scratch directory visible, no network) "
        "+ seccomp filter + rlimits"
    ),
    IsolationLevel.BWRAP: (
        "bubblewrap namespaces (only the scratch directory visible, no network) + rlimits"
    ),
    IsolationLevel.LANDLOCK_SECCOMP: (
        "Landlock file rules (scratch directory and Python only) + seccomp filter "
        "(no sockets, processes, IPC, signals) + rlimits"
    ),
    IsolationLevel.RLIMITS: (
        "rlimits only: WEAK, the codec can read the lab's files and reach the network"
    ),
}

SANDBOX_WORKDIR = "/job"
TMP_BYTES = 4 << 20
"""Size of the private /tmp of a bubblewrap sandbox (it is memory)."""
HARNESS_FILES: dict[str, Path] = {
    "harness.py": Path(__file__).with_name("harness.py"),
    "layer_landlock.py": Path(landlock.__file__),
    "layer_seccomp.py": Path(seccomp.__file__),
}
"""The lab's files every job gets: the harness and the layers it installs."""

PROBE_ENV = {
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


@dataclass(frozen=True)
class IsolationInfo:
    level: IsolationLevel
    bwrap_path: str | None
    detail: str


@dataclass(frozen=True)
class Layers:
    """What each layer gives on this machine (a None error means it works)."""

    bwrap_path: str | None
    bwrap_error: str | None
    seccomp: seccomp.FilterProgram | None
    seccomp_error: str | None
    landlock_abi: int
    landlock_error: str | None


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
    """The bwrap command line that confines a child to `workdir` (mounted at /job).

    Extra binds may follow; `BWRAP_SEAL` must come last, before ``--``.
    """
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
    # hardening: /dev (with /dev/shm) and /tmp live in memory; /dev is read-only and /tmp
    # small, so a codec cannot fill the machine's memory through them
    argv += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev"]
    argv += ["--size", str(TMP_BYTES), "--tmpfs", "/tmp"]
    for root in python_roots():
        argv += ["--ro-bind", str(root), str(root)]
    argv += ["--bind", str(workdir), SANDBOX_WORKDIR, "--chdir", SANDBOX_WORKDIR, "--clearenv"]
    return argv


BWRAP_SEAL = ["--remount-ro", "/"]
"""Ends a bwrap command line: the root (a tmpfs) read-only once every mount point exists."""


class Confinement:
    """How one job's process is confined: its level, its scratch directory, what it sees.

    `expose` makes a host file readable in the scratch directory (a read-only bind under
    bubblewrap, else a symbolic link plus a Landlock rule for that one file); `command`
    wraps an interpreter command line; `spec` is what the harness needs to confine itself.
    """

    def __init__(self, level: IsolationLevel, workdir: Path) -> None:
        self.level = level
        self.workdir = workdir
        self.binds: list[tuple[Path, str]] = []
        self.read_files: list[str] = []

    def expose(self, host_path: Path, name: str) -> None:
        resolved = host_path.resolve()
        if self.level.uses_bwrap:
            (self.workdir / name).touch()
            self.binds.append((resolved, f"{SANDBOX_WORKDIR}/{name}"))
        else:
            (self.workdir / name).symlink_to(resolved)
            self.read_files.append(str(resolved))

    def expose_harness(self) -> None:
        for name, path in HARNESS_FILES.items():
            self.expose(path, name)

    def command(self, python: list[str], *, env: dict[str, str], processes: int) -> list[str]:
        """`python` (an interpreter command line) wrapped in this level's isolation; `env`
        is the child's whole environment (bubblewrap clears the one it is started with)."""
        if not self.level.uses_bwrap:
            return python
        layers = detect_layers()
        if layers.bwrap_path is None:
            raise RuntimeError("bwrap isolation requested but bubblewrap is not installed")
        argv = bwrap_prefix(layers.bwrap_path, self.workdir)
        for name, value in env.items():
            argv += ["--setenv", name, value]
        for host, inside in self.binds:
            argv += ["--ro-bind", str(host), inside]
        argv += BWRAP_SEAL
        prlimit = shutil.which("prlimit")
        if prlimit:  # RLIMIT_NPROC only bites inside the user namespace
            python = [prlimit, f"--nproc={processes}", "--", *python]
        return [*argv, "--", *python]

    def spec(self) -> str:
        """The harness's ``--confine`` argument (JSON)."""
        rules = None
        if self.level.uses_landlock:
            roots = [str(p) for p in python_roots()] + ["/usr"]
            rules = landlock.rules_for_job(
                str(self.workdir.resolve()), roots, self.read_files
            ).to_json()
        program = None
        if self.level.uses_seccomp:
            compiled = detect_layers().seccomp
            if compiled is None:
                raise RuntimeError("seccomp isolation requested but the filter is unavailable")
            program = compiled.bpf.hex()
        return json.dumps(
            {
                "level": self.level.value,
                # outside bubblewrap the harness is the lab's own child: it dies with the lab
                "parent_pid": None if self.level.uses_bwrap else os.getpid(),
                "landlock": rules,
                "seccomp": program,
            },
            separators=(",", ":"),
        )


# --- probing ------------------------------------------------------------------------------


@functools.cache
def detect_layers() -> Layers:
    """Which layers work here: bubblewrap starts, the filter compiles, Landlock exists."""
    bwrap = shutil.which("bwrap")
    bwrap_error = None if bwrap else "bubblewrap (bwrap) is not installed"
    if bwrap is not None:
        bwrap_error = _bwrap_problem(bwrap)
    try:
        program: seccomp.FilterProgram | None = seccomp.compile_filter()
        seccomp_error = None
    except seccomp.SeccompUnavailable as exc:
        program, seccomp_error = None, str(exc)
    landlock_error = landlock.unavailable_reason()
    abi = landlock.abi_version() if landlock_error is None else 0
    return Layers(bwrap, bwrap_error, program, seccomp_error, abi, landlock_error)


def _bwrap_problem(bwrap: str) -> str | None:
    argv = [*bwrap_prefix(bwrap, Path(sys.prefix)), *BWRAP_SEAL, "--", "/bin/true"]
    try:
        result = subprocess.run(argv, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap failed to start: {exc}"
    if result.returncode != 0:
        reason = result.stderr.decode(errors="replace").strip().splitlines()
        last = reason[-1] if reason else f"exit code {result.returncode}"
        return f"bwrap does not work here: {last}"
    return None


def missing_layer(level: IsolationLevel) -> str | None:
    """Why `level` cannot be built here (a missing layer), or None."""
    layers = detect_layers()
    if level.uses_bwrap and layers.bwrap_error:
        return layers.bwrap_error
    if level.uses_seccomp and layers.seccomp_error:
        return f"seccomp: {layers.seccomp_error}"
    if level.uses_landlock and layers.landlock_error:
        return f"Landlock: {layers.landlock_error}"
    return None


@functools.cache
def level_problem(level: IsolationLevel) -> str | None:
    """Why `level` does not work here, or None: a missing layer, or a failed trial run in
    which the harness confined itself and checked that files outside, sockets and new
    processes were out of reach as the level promises."""
    missing = missing_layer(level)
    if missing is not None:
        return missing
    with tempfile.TemporaryDirectory(prefix="codeclab-probe-") as tmp:
        root = Path(tmp)
        work = root / "job"
        work.mkdir()
        outside = root / "outside.txt"
        outside.write_text("the lab's file\n")
        confinement = Confinement(level, work)
        confinement.expose_harness()
        python = [
            sys.executable,
            "-I",
            "harness.py",
            f"--confine={confinement.spec()}",
            "probe",
            f"--outside={outside}",
        ]
        try:
            result = subprocess.run(
                confinement.command(python, env=PROBE_ENV, processes=16),
                cwd=work,
                env=PROBE_ENV,
                capture_output=True,
                timeout=60,
                check=False,
                start_new_session=True,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"trial run failed: {exc}"
    return _judge_probe(level, result)


def _judge_probe(level: IsolationLevel, result: subprocess.CompletedProcess[bytes]) -> str | None:
    out = result.stdout.decode(errors="replace")
    found = [line.split()[1:] for line in out.splitlines() if line.startswith("@probe ")]
    if result.returncode != 0 or not found:
        err = result.stderr.decode(errors="replace").strip().splitlines()
        said = [line for line in out.splitlines() if line.startswith("@error ")]
        reason = said[-1][len("@error ") :] if said else (err[-1] if err else "no report")
        return f"trial run failed (exit code {result.returncode}): {reason}"
    checks = dict(item.partition("=")[::2] for item in found[-1])
    expected = {
        "files": "denied" if not level.weak else None,
        "socket": "denied" if level.uses_seccomp else None,
        "fork": "denied" if level.uses_seccomp else None,
    }
    for check, want in expected.items():
        if want is not None and checks.get(check) != want:
            return f"trial run: {check} was {checks.get(check, 'not checked')}, expected {want}"
    return None


@functools.cache
def probe_isolation() -> IsolationInfo:
    """The strongest level that works here (its layers exist and a trial run holds)."""
    layers = detect_layers()
    problems: list[str] = []
    for level in STRONGEST_FIRST:
        problem = level_problem(level)
        if problem is None:
            detail = LEVEL_SUMMARY[level]
            if problems:
                detail += f" (stronger levels unavailable: {'; '.join(problems)})"
            return IsolationInfo(level, layers.bwrap_path, detail)
        problems.append(f"{level.value}: {problem}")
    raise RuntimeError(f"no isolation level works here, not even rlimits: {'; '.join(problems)}")


def fallback_level() -> IsolationLevel | None:
    """The strongest working level without bubblewrap (what a machine without it would get),
    or None if only weak levels remain."""
    for level in STRONGEST_FIRST:
        if not level.uses_bwrap and not level.weak and level_problem(level) is None:
            return level
    return None
