"""The encoder forks without end.

static: import
runtime: encoder fails PermissionError
runtime without seccomp: encoder timeout wall-clock
wall: 3
"""

import ctypes
import os
import zlib

import numpy as np


class EscapedError(Exception):
    """The attack worked: the sandbox let it through."""


def name_this_process():
    """Name the process after the run's token, so the lab can look for survivors."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(15, b"cc@TOKEN@", 0, 0, 0)  # PR_SET_NAME


class Encoder:
    def __init__(self, width, height, fps, params):
        name_this_process()
        while True:
            os.fork()
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
