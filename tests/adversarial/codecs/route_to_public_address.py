"""The encoder looks for a route out: UDP sockets "connected" to documentation addresses.

Connecting a UDP socket sends no packet: nothing leaves even where it succeeds.

static: import
runtime: encoder fails PermissionError|Network is unreachable
"""

import socket
import zlib

import numpy as np


class EscapedError(Exception):
    """The attack worked: the sandbox let it through."""


def route_out():
    for family, address in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.connect((address, 9))
        finally:
            sock.close()
        raise EscapedError(f"a route to {address} exists")


class Encoder:
    def __init__(self, width, height, fps, params):
        route_out()
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
