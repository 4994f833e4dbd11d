"""The encoder changes the mode, times and extended attributes of a file of the lab's
(to the same mode and times: harmless even where it would succeed). File rules do not
cover metadata: a lab running as root owns the system's files, and a set-uid bit or an
attribute would outlive the job.

static: import
runtime: encoder fails Operation not permitted|No such file
"""

import os
import zlib

import numpy as np


class EscapedError(Exception):
    """The attack worked: the sandbox let it through."""


def touch_metadata(path):
    errors = []
    attempts = {
        "chmod": lambda: os.chmod(path, os.stat(path).st_mode & 0o7777),
        "utime": lambda: os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns)),
        "setxattr": lambda: os.setxattr(path, "user.codeclab", b"leak"),
    }
    for name, attempt in attempts.items():
        try:
            attempt()
        except OSError as exc:
            errors.append(f"{name}: {exc.strerror}")
            continue
        if name == "setxattr":
            os.removexattr(path, "user.codeclab")
        raise EscapedError(f"{name} worked on {path}")
    raise OSError("; ".join(errors))


class Encoder:
    def __init__(self, width, height, fps, params):
        touch_metadata("@SECRET@")
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
