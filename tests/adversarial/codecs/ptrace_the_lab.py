"""The encoder tries to seize the lab process with ptrace (seize stops nothing).

static: import
runtime: encoder fails ptrace
"""

import ctypes
import zlib

import numpy as np


class EscapedError(Exception):
    """The attack worked: the sandbox let it through."""


class Encoder:
    def __init__(self, width, height, fps, params):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.ptrace.restype = ctypes.c_long
        args = (ctypes.c_long(0x4206), ctypes.c_long(int("@LABPID@")), None, None)  # PTRACE_SEIZE
        if libc.ptrace(*args) == 0:
            libc.ptrace(
                ctypes.c_long(17), ctypes.c_long(int("@LABPID@")), None, None
            )  # PTRACE_DETACH
            raise EscapedError("seized the lab with ptrace")
        raise OSError(f"ptrace: errno {ctypes.get_errno()}")
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
