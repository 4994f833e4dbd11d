"""The encoder calls socket(AF_INET) as a raw system call through ctypes.

static: import
runtime: encoder fails Operation not permitted
runtime without seccomp: encoder fails answered fd
"""

import ctypes
import os
import zlib

import numpy as np


class EscapedError(Exception):
    """The attack worked: the sandbox let it through."""


class Encoder:
    def __init__(self, width, height, fps, params):
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.syscall(41, 2, 2, 0)  # socket(AF_INET, SOCK_DGRAM, 0) on x86-64
        if fd < 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        raise RuntimeError(f"socket() answered fd {fd}")
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
