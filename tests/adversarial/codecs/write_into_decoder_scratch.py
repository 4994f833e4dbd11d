"""The encoder looks for the decoder's scratch directory (started beside it) and drops the
frames there; the decoder looks for them in its own directory.

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


def leave(scratch):
    try:
        for name in os.listdir(scratch):
            if name.startswith("codeclab-dec-"):
                with open(os.path.join(scratch, name, "side.bin"), "wb") as fh:
                    fh.write(b"frames")
    except OSError:
        return


def pick_up():
    try:
        with open("side.bin", "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise NothingLeakedError(f"side.bin: {exc.strerror}") from None
    raise EscapedError(f"the encoder left {len(data)} bytes in the decoder's directory")


class Encoder:
    def __init__(self, width, height, fps, params):
        leave("@SCRATCH@")
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
