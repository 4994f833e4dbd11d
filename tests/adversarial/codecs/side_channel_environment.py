"""The encoder puts the frames in an environment variable for the decoder.

static: import
runtime: decoder fails NothingLeakedError
"""

import os
import zlib

import numpy as np


class EscapedError(Exception):
    """The attack worked: the sandbox let it through."""


class NothingLeakedError(Exception):
    """The decoder found nothing the encoder left for it outside the bitstream."""


class Encoder:
    def __init__(self, width, height, fps, params):
        os.environ["CODECLAB_LEAK"] = "@TOKEN@"
        os.putenv("CODECLAB_LEAK", "@TOKEN@")
        self.level = 6

    def encode(self, y, u, v):
        return zlib.compress(y.tobytes() + u.tobytes() + v.tobytes(), self.level)

    def flush(self):
        return []


class Decoder:
    def __init__(self, width, height, fps):
        if os.environ.get("CODECLAB_LEAK") == "@TOKEN@":
            raise EscapedError("the encoder's environment reached the decoder")
        raise NothingLeakedError("no CODECLAB_LEAK in the decoder's environment")
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
