"""The encoder calls bpf, io_uring_setup, perf_event_open, keyctl, userfaultfd, unshare and
mount as raw system calls: every one must be denied.

static: import
runtime: encoder fails all denied
runtime without seccomp: encoder fails answered|all denied
"""

import ctypes
import zlib

import numpy as np


class EscapedError(Exception):
    """The attack worked: the sandbox let it through."""


class Encoder:
    def __init__(self, width, height, fps, params):
        libc = ctypes.CDLL(None, use_errno=True)
        calls = {
            "bpf": 321,
            "io_uring_setup": 425,
            "perf_event_open": 298,
            "keyctl": 250,
            "userfaultfd": 323,
            "unshare": 272,
            "mount": 165,
        }
        answers = {}
        for name, number in calls.items():
            result = libc.syscall(number, 0, 0, 0, 0, 0)
            answers[name] = result if result >= 0 else -ctypes.get_errno()
        if all(value == -1 for value in answers.values()):  # -EPERM for each
            raise PermissionError(f"all denied: {answers}")
        raise RuntimeError(f"the kernel answered: {answers}")
        self.level = 6

    def encode(self, y, u, v):
        return zlib.compress(y.tobytes() + u.tobytes() + v.tobytes(), self.level)

    def flush(self):
        return []


class Decoder:
    def __init__(self, width, height, fps):
        self.width = width
        self.height = height

    def decode(self, packet):
        w, h = self.width, self.height
        cw, ch = (w + 1) // 2, (h + 1) // 2
        flat = np.frombuffer(zlib.decompress(packet), dtype=np.uint8)
        y = flat[: w * h].reshape(h, w)
        u = flat[w * h : w * h + cw * ch].reshape(ch, cw)
        v = flat[w * h + cw * ch :].reshape(ch, cw)
        return [(y, u, v)]

    def flush(self):
        return []
