"""The encoder connects to a server of the lab's machine on 127.0.0.1.

The test's listener counts connections: there must be none.

static: import
runtime: encoder fails PermissionError|ConnectionRefusedError
"""

import socket
import zlib

import numpy as np


class EscapedError(Exception):
    """The attack worked: the sandbox let it through."""


def call_home(port):
    conn = socket.create_connection(("127.0.0.1", port), timeout=2)
    conn.close()
    raise EscapedError(f"connected to the lab's machine on port {port}")


class Encoder:
    def __init__(self, width, height, fps, params):
        call_home(int("@PORT@"))
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
