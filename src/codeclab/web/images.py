"""Frames as pictures: PNG encoding, YUV 4:2:0 to RGB, the difference image and a colour map.

The PNG writer is the format's minimum (IHDR, one zlib-compressed IDAT, IEND; 8-bit
greyscale or RGB, filter type 0 on every row), enough for a browser and small enough to read.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import numpy.typing as npt

from codeclab.video.frames import Frame

RGB = npt.NDArray[np.uint8]

DIFFERENCE_GAIN = 4
"""The difference image shows ``128 + DIFFERENCE_GAIN * (reconstructed - original)`` of luma."""

# Anchors of a perceptually ordered dark-to-bright map (close to matplotlib's "inferno").
_MAP_ANCHORS = np.array(
    [
        [0, 0, 4],
        [40, 11, 84],
        [101, 21, 110],
        [159, 42, 99],
        [212, 72, 66],
        [245, 125, 21],
        [250, 193, 39],
        [252, 255, 164],
    ],
    dtype=np.float64,
)


def encode_png(pixels: RGB, *, level: int = 6) -> bytes:
    """PNG bytes of an (h, w) greyscale or (h, w, 3) RGB uint8 array."""
    if pixels.dtype != np.uint8:
        raise ValueError(f"PNG pixels must be uint8, got {pixels.dtype}")
    if pixels.ndim == 2:
        color_type, channels = 0, 1
    elif pixels.ndim == 3 and pixels.shape[2] == 3:
        color_type, channels = 2, 3
    else:
        raise ValueError(f"PNG pixels must be (h, w) or (h, w, 3), got shape {pixels.shape}")
    height, width = pixels.shape[:2]
    if width == 0 or height == 0:
        raise ValueError(f"cannot write an empty {width}x{height} PNG")
    rows = np.ascontiguousarray(pixels).reshape(height, width * channels)
    raw = np.zeros((height, width * channels + 1), dtype=np.uint8)  # filter byte 0 per row
    raw[:, 1:] = rows
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(raw.tobytes(), level)),
            _chunk(b"IEND", b""),
        )
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def frame_to_rgb(frame: Frame) -> RGB:
    """BT.601 limited-range YUV 4:2:0 to RGB, chroma upsampled by repetition."""
    height, width = frame.y.shape
    y = frame.y.astype(np.float32) - 16.0
    u = np.repeat(np.repeat(frame.u, 2, axis=0), 2, axis=1)[:height, :width]
    v = np.repeat(np.repeat(frame.v, 2, axis=0), 2, axis=1)[:height, :width]
    cb = u.astype(np.float32) - 128.0
    cr = v.astype(np.float32) - 128.0
    luma = 1.164 * y
    rgb = np.empty((height, width, 3), dtype=np.float32)
    rgb[..., 0] = luma + 1.596 * cr
    rgb[..., 1] = luma - 0.392 * cb - 0.813 * cr
    rgb[..., 2] = luma + 2.017 * cb
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def difference_image(original: Frame, reconstructed: Frame) -> RGB:
    """Signed luma difference around mid-grey: brighter where the reconstruction is brighter."""
    diff = reconstructed.y.astype(np.int32) - original.y.astype(np.int32)
    return np.clip(128 + DIFFERENCE_GAIN * diff, 0, 255).astype(np.uint8)


def colour_map(values: npt.NDArray[np.float64]) -> RGB:
    """Map values in [0, 1] (clipped) to RGB, dark (0) to bright (1)."""
    t = np.clip(values, 0.0, 1.0) * (len(_MAP_ANCHORS) - 1)
    low = np.minimum(np.floor(t).astype(np.int64), len(_MAP_ANCHORS) - 2)
    frac = (t - low)[..., None]
    colours = _MAP_ANCHORS[low] * (1.0 - frac) + _MAP_ANCHORS[low + 1] * frac
    mapped: RGB = np.rint(colours).astype(np.uint8)
    return mapped
