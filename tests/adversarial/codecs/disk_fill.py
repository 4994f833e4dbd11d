"""The encoder fills the disk with many files, each under the file-size limit.

static: banned-name
runtime: encoder fails scratch directory grew
"""

import zlib

import numpy as np


class EscapedError(Exception):
    """The attack worked: the sandbox let it through."""


class Encoder:
    def __init__(self, width, height, fps, params):
        block = bytes(8 << 20)
        for number in range(128):
            with open(f"fill-{number}.bin", "wb") as fh:
                fh.write(block)
        raise EscapedError("wrote 1 GiB in 128 files")
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
