r"""The encoder unpickles a payload that calls os.system.

static: import
runtime: encoder fails system\(\) returned
"""

import pickle
import zlib

import numpy as np


class EscapedError(Exception):
    """The attack worked: the sandbox let it through."""


PAYLOAD = b"cposix\nsystem\n(S'cat /etc/passwd > /dev/null'\ntR."


def system(command):
    del command
    return pickle.loads(PAYLOAD)


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
