"""Sandbox layer: Landlock, the kernel's unprivileged access control for files (and more).

Where bubblewrap is not available, the harness restricts itself with a Landlock ruleset
before it loads the codec (`restrict`): the job's scratch directory read-write, the Python
installation read-only, the files the lab exposes to this job read-only (one rule per
file: the encoder gets its source clip, the decoder does not), a few devices
(``/dev/null`` ...), and nothing else: not ``/etc``, not ``/tmp``, not ``/proc``, not the
lab's data directory, not another job's scratch directory. Nothing may be executed.
Depending on the kernel's Landlock ABI the ruleset also denies:

* ABI 2: linking or renaming files across directories (else always denied);
* ABI 3: truncating files (else seccomp denies ``truncate`` by path);
* ABI 4: TCP bind and connect (seccomp denies sockets as well);
* ABI 5: ioctl on devices;
* ABI 6: connecting to abstract UNIX sockets and signalling processes outside the job.

Landlock needs Linux 5.13+ with ``landlock`` in the active LSMs. The rights are checked
when a file is opened; the harness has opened nothing of the codec's when it restricts.

This file is also copied into the sandbox and loaded by the harness as a standalone
module: standard library only.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# system call numbers (the same on x86-64 and the generic table of arm64, riscv ...)
SYS_CREATE_RULESET = 444
SYS_ADD_RULE = 445
SYS_RESTRICT_SELF = 446
CREATE_RULESET_VERSION = 1 << 0
RULE_PATH_BENEATH = 1
PR_SET_NO_NEW_PRIVS = 38

# file-system rights, by the ABI that introduced them
EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13  # ABI 2
TRUNCATE = 1 << 14  # ABI 3
IOCTL_DEV = 1 << 15  # ABI 5
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
"""The rights that apply to a file (a rule on a single file may grant only these)."""

NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1  # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1  # ABI 6

READ_ONLY = READ_FILE | READ_DIR
READ_WRITE = (
    READ_FILE
    | READ_DIR
    | WRITE_FILE
    | REMOVE_DIR
    | REMOVE_FILE
    | MAKE_DIR
    | MAKE_REG
    | MAKE_SOCK
    | MAKE_FIFO
    | MAKE_SYM
    | REFER
    | TRUNCATE
)
"""What a job may do in its scratch directory: everything but executing and making devices."""

DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")


class LandlockUnavailable(RuntimeError):  # noqa: N818 (the name says what happened)
    """This kernel (or its configuration) does not offer Landlock; the message says why."""


@dataclass(frozen=True)
class LandlockRules:
    """What one sandboxed process may reach; every other file is out of its reach."""

    read_write: tuple[str, ...]
    """Directories it may read and write (the job's scratch directory)."""
    read_only: tuple[str, ...]
    """Directories it may read (the Python installation)."""
    read_files: tuple[str, ...] = ()
    """Single files it may read (what the lab exposes to this job)."""
    devices: tuple[str, ...] = DEVICES
    """Character devices it may read and write, where they exist."""

    def to_json(self) -> dict[str, list[str]]:
        return {
            "read_write": list(self.read_write),
            "read_only": list(self.read_only),
            "read_files": list(self.read_files),
            "devices": list(self.devices),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LandlockRules:
        def strings(key: str) -> tuple[str, ...]:
            value = data.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"landlock rules: {key} must be a list of paths")
            return tuple(value)

        return cls(
            strings("read_write"), strings("read_only"), strings("read_files"), strings("devices")
        )


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _syscall() -> Any:
    libc = ctypes.CDLL(None, use_errno=True)
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    return syscall


def abi_version() -> int:
    """The kernel's Landlock ABI version (1, 2, ...), or 0 where Landlock is unavailable."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "aarch64", "riscv64"):
        return 0
    result = _syscall()(
        ctypes.c_long(SYS_CREATE_RULESET), None, ctypes.c_size_t(0), CREATE_RULESET_VERSION
    )
    return max(int(result), 0)


def unavailable_reason() -> str | None:
    """Why Landlock cannot be used here, or None when it can."""
    if platform.system() != "Linux":
        return f"Landlock is Linux-only (this is {platform.system()})"
    if platform.machine() not in ("x86_64", "aarch64", "riscv64"):
        return f"Landlock system-call numbers unknown for {platform.machine()}"
    result = _syscall()(
        ctypes.c_long(SYS_CREATE_RULESET), None, ctypes.c_size_t(0), CREATE_RULESET_VERSION
    )
    if result > 0:
        return None
    code = ctypes.get_errno()
    if code == errno.ENOSYS:
        return "the kernel has no Landlock (needs Linux 5.13+ built with CONFIG_SECURITY_LANDLOCK)"
    if code == errno.EOPNOTSUPP:
        return "Landlock is disabled at boot (add landlock to the lsm= kernel parameter)"
    return f"landlock_create_ruleset failed: {os.strerror(code)}"


def handled_rights(abi: int) -> tuple[int, int, int]:
    """(file-system rights, network rights, scopes) that ABI `abi` can deny."""
    fs = (1 << 13) - 1
    if abi >= 2:
        fs |= REFER
    if abi >= 3:
        fs |= TRUNCATE
    if abi >= 5:
        fs |= IOCTL_DEV
    net = NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0
    scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0
    return fs, net, scoped


def describe(abi: int) -> str:
    """What a ruleset of ABI `abi` covers, in words."""
    if abi <= 0:
        return "unavailable"
    covers = ["files"]
    if abi >= 4:
        covers.append("TCP bind/connect")
    if abi >= 6:
        covers.append("abstract UNIX sockets and signals outside the job")
    return f"ABI {abi}: restricts {', '.join(covers)}"


def restrict(rules: LandlockRules) -> int:
    """Restrict the calling thread (and what it starts later) to `rules`; returns the ABI.

    Sets no_new_privs first, as the kernel requires. Raises LandlockUnavailable when the
    kernel has no Landlock, OSError when a rule cannot be added (naming the path).
    """
    reason = unavailable_reason()
    if reason is not None:
        raise LandlockUnavailable(reason)
    abi = abi_version()
    syscall = _syscall()
    fs, net, scoped = handled_rights(abi)
    attr = _RulesetAttr(fs, net, scoped)
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else (16 if abi >= 4 else 8)
    ruleset = int(
        syscall(ctypes.c_long(SYS_CREATE_RULESET), ctypes.byref(attr), ctypes.c_size_t(size), 0)
    )
    if ruleset < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"landlock_create_ruleset: {os.strerror(code)}")
    try:
        for path in rules.read_write:
            _allow(syscall, ruleset, path, READ_WRITE & fs)
        for path in rules.read_only:
            _allow(syscall, ruleset, path, READ_ONLY)
        for path in rules.read_files:
            _allow(syscall, ruleset, path, READ_FILE)
        for path in rules.devices:
            if os.path.exists(path):
                _allow(syscall, ruleset, path, READ_FILE | WRITE_FILE)
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, ctypes.c_ulong(1), ctypes.c_ulong(0),
                      ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:  # fmt: skip
            code = ctypes.get_errno()
            raise OSError(code, f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(code)}")
        if syscall(ctypes.c_long(SYS_RESTRICT_SELF), ruleset, 0) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"landlock_restrict_self: {os.strerror(code)}")
    finally:
        os.close(ruleset)
    return abi


def _allow(syscall: Any, ruleset: int, path: str, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError as exc:
        raise OSError(exc.errno, f"landlock rule for {path}: {exc.strerror}") from None
    try:
        if not os.path.isdir(path):
            rights &= FILE_RIGHTS
        rule = _PathBeneathAttr(rights, fd)
        if syscall(ctypes.c_long(SYS_ADD_RULE), ruleset, RULE_PATH_BENEATH, ctypes.byref(rule), 0):
            code = ctypes.get_errno()
            raise OSError(code, f"landlock rule for {path}: {os.strerror(code)}")
    finally:
        os.close(fd)


def rules_for_job(
    scratch: str, python_roots: Sequence[str], read_files: Sequence[str]
) -> LandlockRules:
    """The ruleset of one job: its scratch directory, Python, and the files it is given."""
    return LandlockRules(
        read_write=(scratch,),
        read_only=tuple(python_roots),
        read_files=tuple(read_files),
    )
