"""The encoder leaves a file next to its packets and one level up; the decoder looks beside
its bitstream and one level up.

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


PLACES = ("packets.bin.side", "../side-@TOKEN@", "/side-@TOKEN@")


def leave():
    for place in PLACES:
        try:
            with open(place, "wb") as fh:
                fh.write(b"frames")
        except OSError:
            pass


def pick_up():
    for place in PLACES:
        if os.path.exists(place):
            raise EscapedError(f"the encoder's {place} was there for the decoder")
    raise NothingLeakedError(f"none of {', '.join(PLACES)} exists")


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
