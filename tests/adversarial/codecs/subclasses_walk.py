r"""The encoder walks object.__subclasses__() to os._wrap_close and takes os.system from
its globals.

static: dunder-attribute
runtime: encoder fails system\(\) returned
"""

import zlib

import numpy as np


class EscapedError(Exception):
    """The attack worked: the sandbox let it through."""


def system(command):
    for cls in ().__class__.__base__.__subclasses__():
        if cls.__name__ == "_wrap_close":
            return cls.__init__.__globals__["system"](command)
    raise LookupError("os._wrap_close not loaded")


class Encoder:
    def __init__(self, width, height, fps, params):
        status = system("cat /etc/passwd > /dev/null")
        if status == 0:
            raise EscapedError("ran a shell that read /etc/passwd")
        raise RuntimeError(f"system() returned {status}")
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
