"""The encoder writes 64 MiB into /tmp and /dev/shm (memory file systems, outside its
address-space limit).

static: banned-name
runtime: encoder fails No space left|Read-only file system|Permission denied
"""

import zlib

import numpy as np


class EscapedError(Exception):
    """The attack worked: the sandbox let it through."""


def fill(paths):
    block = bytes(1 << 20)
    errors = []
    for path in paths:
        try:
            with open(path, "wb") as fh:
                for _ in range(64):
                    fh.write(block)
        except OSError as exc:
            errors.append(f"{path}: {exc.strerror}")
            continue
        raise EscapedError(f"put 64 MiB into {path}")
    raise OSError("; ".join(errors))


class Encoder:
    def __init__(self, width, height, fps, params):
        fill(["/tmp/fill-@TOKEN@", "/dev/shm/fill-@TOKEN@"])
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
