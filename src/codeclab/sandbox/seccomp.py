"""Sandbox layer: a seccomp filter that denies the system calls a codec has no use for.

The lab compiles the filter once per process (`compile_filter`, through pyseccomp and the
system's libseccomp) into a classic BPF program; the harness installs it in the sandboxed
interpreter (`install`) before it loads the codec, so it holds for every line of codec code
and for every thread the codec starts. Anything not listed stays allowed: this is a deny
list of ways out, not a whitelist of what numpy needs.

Denied with EPERM:

* ``socket(2)`` for every address family, AF_UNIX included: no network, and no named or
  abstract socket that could link two sandboxes (``socketpair`` stays: it links nothing);
* new processes: ``fork``, ``vfork``, ``clone`` without ``CLONE_THREAD`` or with any
  ``CLONE_NEW*`` flag (threads stay allowed; ``clone3`` answers ENOSYS so the C library
  falls back to ``clone``, whose flags can be checked), ``execve``/``execveat`` (the
  sandboxed interpreter is already running, nothing else may start), and leaving the
  process group (``setsid``, ``setpgid``): nothing can outlive the job's group;
* reaching other processes: signals (``kill``, ``tkill``, ``tgkill``, ...), ``ptrace``,
  ``process_vm_readv/writev``, ``pidfd_*``, ``kcmp``, and ``prlimit64``, ``setpriority``,
  ``sched_set*`` or ``migrate_pages``/``move_pages`` aimed at another process;
* System V and POSIX IPC (``shmget``, ``msgget``, ``semget``, ``mq_open``, ...): they
  outlive a process and would carry data from the encoder to the decoder;
* namespaces, mounts and the kernel's own interfaces: ``unshare``, ``setns``, ``mount``,
  ``bpf``, ``keyctl``, ``perf_event_open``, ``io_uring_*``, ``userfaultfd``, module and
  ``kexec`` loading, ``reboot``, clocks, ...; ``truncate`` by path (a Landlock ruleset older
  than ABI 3 would not stop it); the ``TIOCSTI``/``TIOCLINUX`` ioctls;
* file metadata (``chmod``, ``chown``, extended attributes, times), which Landlock does not
  check: outside bubblewrap, a lab running as root owns the system's files.

System calls of another ABI (x32, i386 on x86-64) kill the process: they would bypass every
rule above.

This file is also copied into the sandbox and loaded by the harness as a standalone module:
it imports only the standard library (pyseccomp is imported by `compile_filter`, in the lab).
"""

from __future__ import annotations

import ctypes
import errno
import importlib
import os
import platform
import tempfile
from dataclasses import dataclass
from typing import Any

DENIED: dict[str, str] = {
    "socket": "creates sockets (network, or channels between sandboxes)",
    "fork": "starts processes",
    "vfork": "starts processes",
    "execve": "starts another program",
    "execveat": "starts another program",
    "setsid": "leaves the job's process group",
    "setpgid": "leaves the job's process group",
    "kill": "signals other processes",
    "tkill": "signals other processes",
    "tgkill": "signals other processes",
    "rt_sigqueueinfo": "signals other processes",
    "rt_tgsigqueueinfo": "signals other processes",
    "pidfd_open": "reaches other processes",
    "pidfd_send_signal": "signals other processes",
    "pidfd_getfd": "steals other processes' files",
    "ptrace": "debugs other processes",
    "process_vm_readv": "reads other processes' memory",
    "process_vm_writev": "writes other processes' memory",
    "process_madvise": "reaches other processes' memory",
    "kcmp": "inspects other processes",
    "migrate_pages": "moves other processes' memory",
    "move_pages": "moves other processes' memory",
    "shmget": "System V shared memory outlives the process",
    "shmat": "System V shared memory outlives the process",
    "shmctl": "System V shared memory outlives the process",
    "shmdt": "System V shared memory outlives the process",
    "msgget": "System V message queues outlive the process",
    "msgsnd": "System V message queues outlive the process",
    "msgrcv": "System V message queues outlive the process",
    "msgctl": "System V message queues outlive the process",
    "semget": "System V semaphores outlive the process",
    "semop": "System V semaphores outlive the process",
    "semtimedop": "System V semaphores outlive the process",
    "semctl": "System V semaphores outlive the process",
    "mq_open": "POSIX message queues outlive the process",
    "mq_unlink": "POSIX message queues outlive the process",
    "mq_timedsend": "POSIX message queues outlive the process",
    "mq_timedreceive": "POSIX message queues outlive the process",
    "mq_notify": "POSIX message queues outlive the process",
    "mq_getsetattr": "POSIX message queues outlive the process",
    "unshare": "creates namespaces",
    "setns": "enters namespaces",
    "mount": "changes mounts",
    "umount2": "changes mounts",
    "pivot_root": "changes mounts",
    "chroot": "changes the root directory",
    "mount_setattr": "changes mounts",
    "move_mount": "changes mounts",
    "open_tree": "changes mounts",
    "fsopen": "changes mounts",
    "fsconfig": "changes mounts",
    "fsmount": "changes mounts",
    "fspick": "changes mounts",
    "bpf": "loads kernel programs",
    "perf_event_open": "reads kernel and hardware events",
    "keyctl": "reaches the kernel keyrings",
    "add_key": "reaches the kernel keyrings",
    "request_key": "reaches the kernel keyrings",
    "io_uring_setup": "io_uring bypasses system-call filters",
    "io_uring_enter": "io_uring bypasses system-call filters",
    "io_uring_register": "io_uring bypasses system-call filters",
    "userfaultfd": "is a kernel-exploit primitive",
    "fanotify_init": "watches the whole file system",
    "name_to_handle_at": "opens files by handle, around path checks",
    "open_by_handle_at": "opens files by handle, around path checks",
    "kexec_load": "replaces the kernel",
    "kexec_file_load": "replaces the kernel",
    "init_module": "loads kernel modules",
    "finit_module": "loads kernel modules",
    "delete_module": "unloads kernel modules",
    "reboot": "reboots the machine",
    "swapon": "changes swap",
    "swapoff": "changes swap",
    "syslog": "reads the kernel log",
    "acct": "switches process accounting",
    "quotactl": "changes disk quotas",
    "quotactl_fd": "changes disk quotas",
    "settimeofday": "sets the clock",
    "clock_settime": "sets the clock",
    "clock_adjtime": "sets the clock",
    "adjtimex": "sets the clock",
    "sethostname": "renames the machine",
    "setdomainname": "renames the machine",
    "iopl": "reaches I/O ports",
    "ioperm": "reaches I/O ports",
    "vhangup": "hangs up terminals",
    "uselib": "loads libraries by path (obsolete)",
    "lookup_dcookie": "reads kernel profiling data",
    "truncate": "truncates files by path (older Landlock versions do not check it)",
    # file metadata: Landlock checks none of it, and a lab running as root owns the system's
    # files (a codec could make one set-uid, or hide data in its extended attributes)
    **dict.fromkeys(("chmod", "fchmod", "fchmodat", "fchmodat2"), "changes file modes"),
    **dict.fromkeys(("chown", "lchown", "fchown", "fchownat"), "changes file owners"),
    **dict.fromkeys(
        ("setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr", "fremovexattr"),
        "changes extended attributes",
    ),
    **dict.fromkeys(("utime", "utimes", "futimesat", "utimensat"), "changes file times"),
}
"""System calls denied outright, with the reason."""

DENIED_X86_64_NUMBERS: dict[int, str] = {
    463: "setxattrat: changes extended attributes",
    466: "removexattrat: changes extended attributes",
    467: "open_tree_attr: changes mounts",
    469: "file_setattr: changes file attributes",
}
"""Newer x86-64 system calls an older libseccomp has no name for, denied by number."""

CLONE_THREAD = 0x00010000
CLONE_NEW_FLAGS = {
    "CLONE_NEWNS": 0x00020000,
    "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000,
    "CLONE_NEWUSER": 0x10000000,
    "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000,
}
OTHER_PROCESS_ARGUMENT = {
    "prlimit64": 0,
    "sched_setaffinity": 0,
    "sched_setscheduler": 0,
    "sched_setparam": 0,
    "sched_setattr": 0,
    "setpriority": 1,
}
"""System calls allowed on the calling process only: the argument (by index) naming the
process must be 0, "myself"."""

TTY_INJECTION_IOCTLS = {"TIOCSTI": 0x5412, "TIOCLINUX": 0x541C}

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
BPF_INSTRUCTION_BYTES = 8


class SeccompUnavailable(RuntimeError):  # noqa: N818 (the name says what happened)
    """The filter cannot be compiled here (pyseccomp or libseccomp missing); says which."""


@dataclass(frozen=True)
class FilterProgram:
    """A compiled filter: classic BPF for this machine's architecture."""

    bpf: bytes
    rules: int
    unknown: tuple[str, ...]
    """Names of `DENIED` that this libseccomp does not know (not filtered)."""
    library: str

    @property
    def instructions(self) -> int:
        return len(self.bpf) // BPF_INSTRUCTION_BYTES


def compile_filter() -> FilterProgram:
    """Compile the filter with pyseccomp (in the lab, never in the sandbox)."""
    try:
        lib: Any = importlib.import_module("pyseccomp")
    except ImportError as exc:
        raise SeccompUnavailable(
            f"the Python package pyseccomp is not installed ({exc}); pip install pyseccomp"
        ) from None
    except OSError as exc:  # pyseccomp loads libseccomp.so.2 at import
        raise SeccompUnavailable(
            f"libseccomp cannot be loaded ({exc}); apt-get install libseccomp2"
        ) from None
    try:
        return _build(lib)
    except (OSError, RuntimeError, ValueError) as exc:
        raise SeccompUnavailable(f"libseccomp failed to build the filter: {exc}") from None


def _build(lib: Any) -> FilterProgram:
    deny = lib.ERRNO(errno.EPERM)
    flt = lib.SyscallFilter(lib.ALLOW)
    flt.set_attr(lib.Attr.ACT_BADARCH, lib.KILL_PROCESS)
    rules = 0
    unknown: list[str] = []

    def add(action: int, name: str | int, *args: Any, label: str = "") -> None:
        nonlocal rules
        try:
            flt.add_rule(action, name, *args)
        except (OSError, RuntimeError, ValueError):
            missing = label or str(name)
            if missing not in unknown:
                unknown.append(missing)
            return
        rules += 1

    for name in DENIED:
        add(deny, name)
    if platform.machine() == "x86_64":
        for number, what in DENIED_X86_64_NUMBERS.items():
            add(deny, number, label=what.split(":")[0])
    add(lib.ERRNO(errno.ENOSYS), "clone3")
    add(deny, "clone", lib.Arg(0, lib.MASKED_EQ, CLONE_THREAD, 0))
    for flag in CLONE_NEW_FLAGS.values():
        add(deny, "clone", lib.Arg(0, lib.MASKED_EQ, flag, flag))
    for name, index in OTHER_PROCESS_ARGUMENT.items():
        add(deny, name, lib.Arg(index, lib.NE, 0))
    for request in TTY_INJECTION_IOCTLS.values():
        add(deny, "ioctl", lib.Arg(1, lib.EQ, request))
    with tempfile.TemporaryFile() as out:
        flt.export_bpf(out)
        out.seek(0)
        bpf = out.read()
    if not bpf or len(bpf) % BPF_INSTRUCTION_BYTES:
        raise SeccompUnavailable(f"libseccomp exported {len(bpf)} bytes, not a BPF program")
    version = getattr(lib, "__version__", "?")
    return FilterProgram(bpf, rules, tuple(unknown), f"pyseccomp {version} (libseccomp)")


# --- in the sandbox ------------------------------------------------------------------------


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _prctl() -> Any:
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


def install(bpf: bytes) -> None:
    """Install the filter `bpf` on the calling thread and everything it starts afterwards.

    Sets no_new_privs first (the kernel requires it of unprivileged callers). Call it while
    the process has a single thread: a thread started before keeps running unfiltered.
    """
    if not bpf or len(bpf) % BPF_INSTRUCTION_BYTES:
        raise ValueError(f"a BPF program is a multiple of 8 bytes, got {len(bpf)}")
    prctl = _prctl()
    buffer = ctypes.create_string_buffer(bpf, len(bpf))
    program = _SockFprog(len(bpf) // BPF_INSTRUCTION_BYTES, ctypes.cast(buffer, ctypes.c_void_p))
    if prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(code)}")
    address = ctypes.addressof(program)
    if prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, address, 0, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"prctl(PR_SET_SECCOMP): {os.strerror(code)}")
