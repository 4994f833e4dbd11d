"""The encoder leaves the frames in a System V shared-memory segment (it outlives the
process); the decoder attaches to it by key.

static: import
runtime: decoder fails NothingLeakedError
"""

import ctypes
import zlib

import numpy as np


class EscapedError(Exception):
    """The attack worked: the sandbox let it through."""


class NothingLeakedError(Exception):
    """The decoder found nothing the encoder left for it outside the bitstream."""


KEY = int("@TOKEN@"[:7], 16) + 1
IPC_CREAT = 0o1000
IPC_RMID = 0


def libc():
    lib = ctypes.CDLL(None, use_errno=True)
    lib.shmat.restype = ctypes.c_void_p
    return lib


def leave():
    lib = libc()
    shmid = lib.shmget(KEY, 4096, IPC_CREAT | 0o600)
    if shmid >= 0:
        address = lib.shmat(shmid, None, 0)
        if address not in (None, ctypes.c_void_p(-1).value):
            ctypes.memmove(address, b"frames", 6)


def pick_up():
    lib = libc()
    shmid = lib.shmget(KEY, 0, 0)
    if shmid < 0:
        raise NothingLeakedError(f"shmget: errno {ctypes.get_errno()}")
    lib.shmctl(shmid, IPC_RMID, None)
    raise EscapedError("attached to the encoder's shared memory")


class Encoder:
    def __init__(self, width, height, fps, params):
        leave()
        self.level = 6

    def encode(self, y, u, v):
        return zlib.compress(y.tobytes() + u.tobytes() + v.tobytes(), self.level)

    def flush(self):
        return []


class Decoder:
    def __init__(self, width, height, fps):
        pick_up()
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
