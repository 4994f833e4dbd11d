"""The encoder listens on an abstract UNIX socket; the decoder connects to it.

static: import
runtime: decoder fails NothingLeakedError
"""

import socket
import zlib

import numpy as np


class EscapedError(Exception):
    """The attack worked: the sandbox let it through."""


class NothingLeakedError(Exception):
    """The decoder found nothing the encoder left for it outside the bitstream."""


NAME = b"\0codeclab-@TOKEN@"


def listen():
    try:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(NAME)
        server.listen()
    except OSError:
        return None
    return server


def call():
    try:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(NAME)
    except OSError as exc:
        raise NothingLeakedError(f"abstract socket: {exc.strerror}") from None
    client.close()
    raise EscapedError("reached the encoder's abstract socket")


class Encoder:
    def __init__(self, width, height, fps, params):
        self.server = listen()
        self.level = 6

    def encode(self, y, u, v):
        return zlib.compress(y.tobytes() + u.tobytes() + v.tobytes(), self.level)

    def flush(self):
        return []


class Decoder:
    def __init__(self, width, height, fps):
        call()
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
