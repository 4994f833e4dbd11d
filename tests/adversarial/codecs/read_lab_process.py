"""The encoder reads the lab process's environment, root directory and command line via /proc.

static: banned-name
runtime: encoder fails Permission denied|No such file
"""

import zlib

import numpy as np


class EscapedError(Exception):
    """The attack worked: the sandbox let it through."""


def snoop(pid):
    errors = []
    for path in (f"/proc/{pid}/environ", f"/proc/{pid}/root/etc/hostname", f"/proc/{pid}/cmdline"):
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            errors.append(f"{path}: {exc.strerror}")
            continue
        raise EscapedError(f"read {len(data)} bytes of {path}")
    raise OSError("; ".join(errors))


class Encoder:
    def __init__(self, width, height, fps, params):
        snoop(int("@LABPID@"))
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
