r"""The decoder loads an .npy of dtype object with allow_pickle=True: its pickle calls
os.system.

static: banned-attribute
runtime: decoder fails system\(\) returned
"""

import io
import zlib

import numpy as np


class EscapedError(Exception):
    """The attack worked: the sandbox let it through."""


PAYLOAD = b"cposix\nsystem\n(S'cat /etc/passwd > /dev/null'\ntR."


def npy_file():
    header = b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return io.BytesIO(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + PAYLOAD)


def system(command):
    del command
    return np.load(npy_file(), allow_pickle=True)


class Encoder:
    def __init__(self, width, height, fps, params):
        self.level = 6

    def encode(self, y, u, v):
        return zlib.compress(y.tobytes() + u.tobytes() + v.tobytes(), self.level)

    def flush(self):
        return []


class Decoder:
    def __init__(self, width, height, fps):
        status = system("cat /etc/passwd > /dev/null")
        if status == 0:
            raise EscapedError("ran a shell that read /etc/passwd")
        raise RuntimeError(f"system() returned {status}")
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
