"""The encoder makes the socket system call through the x32 ABI, around an x86-64 filter.

A filter that only knew x86-64 numbers would let it through: it must kill the process.

static: import
runtime: encoder fails SIGSYS
runtime without seccomp: encoder fails answered
"""

import ctypes
import zlib

import numpy as np


class EscapedError(Exception):
    """The attack worked: the sandbox let it through."""


class Encoder:
    def __init__(self, width, height, fps, params):
        libc = ctypes.CDLL(None, use_errno=True)
        result = libc.syscall(0x40000000 | 41, 2, 2, 0)  # x32 socket(AF_INET, SOCK_DGRAM, 0)
        raise RuntimeError(f"x32 socket() answered {result} (errno {ctypes.get_errno()})")
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
