"""The lab's own default clips, generated from real photographs, bit-identical everywhere.

Each built-in clip is a camera panning across and slowly zooming into a photograph
(scikit-image's ``motorcycle_left.png``, a cluttered garage scene) while a cut-out
of a second photograph (the cup and saucer of ``coffee.png``, with a soft-edged
mask and a soft drop shadow) glides along a smooth path, turning a little. The RGB
picture is converted to BT.601 limited-range YCbCr 4:2:0 (chroma by 2x2 averaging),
then a small sensor-like noise is added (luma noise growing with the level) before
rounding.

Determinism: the photographs are lossless PNGs shipped inside the scikit-image
wheel (no download), and every step is written so the output is the same bytes on
every machine and numpy version:

* motion uses only +, -, *, / (no sin/cos: rotations use the rational
  parametrisation cos = (1-t^2)/(1+t^2), sin = 2t/(1+t^2)), all IEEE-exact;
* resampling is our own float64 code (separable, antialiased Keys bicubic for the
  camera; bilinear for the cut-out), with sums accumulated in a fixed order and no
  BLAS (matrix products may use FMA or threads and differ between machines);
* noise comes from the raw 64-bit output of numpy's PCG64 seeded through
  SeedSequence (both specified and stable), turned into near-Gaussian noise with
  integer arithmetic, not from distribution samplers whose algorithms may change;
* rounding is explicit: floor(x + 0.5), then clipping to 0..255.

Motion is defined per frame index (not relative to the clip length), so the first
N frames of a longer clip are the same as a clip of N frames.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import numpy.typing as npt
import skimage

from codeclab.video.frames import Frame, VideoFormat

Array = npt.NDArray[np.float64]

GENERATOR_VERSION = 1
"""Bumped whenever the generated pixels change, so caches of built-in clips go stale."""

DEFAULT_FRAME_COUNT = 60
_SEED = 0xC0DEC1AB
_BACKGROUND_PHOTO = "motorcycle_left.png"
_OBJECT_PHOTO = "coffee.png"


@dataclass(frozen=True)
class BuiltinClip:
    """A clip the lab generates itself; `frame_count` is its default length."""

    name: str
    width: int
    height: int
    fps: Fraction
    frame_count: int
    description: str

    @property
    def format(self) -> VideoFormat:
        return VideoFormat(self.width, self.height, self.fps)


_DESCRIPTION = (
    "camera pan and slow zoom over a garage photograph, a cup and saucer cut-out "
    "gliding and turning over it, light sensor noise"
)

BUILTIN_CLIPS: dict[str, BuiltinClip] = {
    clip.name: clip
    for clip in (
        BuiltinClip("lab-cif", 352, 288, Fraction(30), DEFAULT_FRAME_COUNT, _DESCRIPTION),
        BuiltinClip("lab-720p", 1280, 720, Fraction(30), DEFAULT_FRAME_COUNT, _DESCRIPTION),
    )
}


class UnknownBuiltinError(ValueError):
    """A built-in clip name that does not exist; the message lists the known ones."""


def get_builtin(name: str) -> BuiltinClip:
    try:
        return BUILTIN_CLIPS[name]
    except KeyError:
        known = ", ".join(BUILTIN_CLIPS)
        raise UnknownBuiltinError(f"unknown built-in clip {name!r}; known clips: {known}") from None


def generate_builtin(name: str, frame_count: int | None = None) -> Iterator[Frame]:
    """Generate the frames of built-in clip `name` (its default length if `frame_count` is None)."""
    clip = get_builtin(name)
    count = clip.frame_count if frame_count is None else frame_count
    if count < 1:
        raise ValueError(f"built-in clip {name}: frame count must be 1 or more, got {count}")
    scene = _Scene(clip.width, clip.height)
    return (scene.frame(i) for i in range(count))


# --- photographs ---------------------------------------------------------------------


def _photo_path(filename: str) -> Path:
    return Path(skimage.__file__).parent / "data" / filename


@functools.cache
def _photo(filename: str) -> Array:
    """An RGB photograph from scikit-image's bundled data: float64 0..255, (3, h, w), read-only."""
    path = _photo_path(filename)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: scikit-image's bundled photograph is missing; reinstall scikit-image"
        )
    import skimage.io  # deferred: it pulls in scipy, which most users of this module never need

    pixels = np.asarray(skimage.io.imread(path))
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] < 3:
        raise ValueError(f"{path}: expected an 8-bit RGB image, got {pixels.dtype} {pixels.shape}")
    rgb = np.ascontiguousarray(pixels[:, :, :3].transpose(2, 0, 1), dtype=np.float64)
    rgb.setflags(write=False)
    return rgb


def _box_downsample(image: Array, factor: int) -> Array:
    """Average `factor` x `factor` blocks of a (3, h, w) image (a ragged edge is dropped)."""
    if factor == 1:
        return image
    h, w = image.shape[1] // factor, image.shape[2] // factor
    acc = np.zeros((image.shape[0], h, w))
    for dy in range(factor):
        for dx in range(factor):
            acc += image[:, dy : h * factor : factor, dx : w * factor : factor]
    return acc / float(factor * factor)


# --- smooth motion without transcendental functions ----------------------------------


def _ease(x: float) -> float:
    """Back and forth 0 -> 1 -> 0 with period 2, eased (smoothstep): motion that stops and turns."""
    phase = x - 2.0 * math.floor(x / 2.0)
    s = phase if phase <= 1.0 else 2.0 - phase
    return s * s * (3.0 - 2.0 * s)


def _swing(x: float) -> float:
    """`_ease` mapped to -1..1."""
    return 2.0 * _ease(x) - 1.0


def _smoothstep(x: Array) -> Array:
    c = np.clip(x, 0.0, 1.0)
    result: Array = c * c * (3.0 - 2.0 * c)
    return result


# --- resampling --------------------------------------------------------------------


def _keys_cubic(x: Array) -> Array:
    """Keys' cubic convolution kernel (a = -0.5), support |x| < 2."""
    ax = np.abs(x)
    near = (1.5 * ax - 2.5) * ax * ax + 1.0
    far = ((-0.5 * ax + 2.5) * ax - 4.0) * ax + 2.0
    result: Array = np.where(ax < 1.0, near, np.where(ax < 2.0, far, 0.0))
    return result


def _taps(n_out: int, origin: float, step: float, n_src: int) -> tuple[npt.NDArray[np.intp], Array]:
    """Source indices and weights, (n_out, taps), for an antialiased cubic 1-D resampling.

    Output sample j covers source span [origin + j*step, origin + (j+1)*step) in pixel-edge
    coordinates. When shrinking (step > 1) the kernel is widened by `step`.
    """
    stretch = max(1.0, step)
    centres = origin + (np.arange(n_out, dtype=np.float64) + 0.5) * step - 0.5
    first = np.floor(centres - 2.0 * stretch).astype(np.intp) + 1
    count = int(np.ceil(4.0 * stretch))  # integers strictly inside (centre - 2s, centre + 2s)
    index = first[:, None] + np.arange(count, dtype=np.intp)[None, :]
    weights = _keys_cubic((index - centres[:, None]) / stretch)
    total = weights[:, 0].copy()
    for k in range(1, count):
        total += weights[:, k]
    return np.clip(index, 0, n_src - 1), weights / total[:, None]


_STRIP_ROWS = 32  # output rows per strip: keeps the working set in cache (results unchanged)


def _weighted_sum(
    source: Array, index: npt.NDArray[np.intp], weights: Array, axis: int, out: Array
) -> None:
    """out = sum over taps k (in order) of weights[:, k] * source taken at index[:, k] on `axis`."""
    shape = [1, 1, 1]
    shape[axis] = -1
    term = np.empty_like(out)
    np.take(source, index[:, 0], axis=axis, out=out, mode="clip")
    out *= weights[:, 0].reshape(shape)
    for k in range(1, index.shape[1]):
        np.take(source, index[:, k], axis=axis, out=term, mode="clip")
        term *= weights[:, k].reshape(shape)
        out += term


def _resample_window(
    image: Array, left: float, top: float, width: float, height: float, out_w: int, out_h: int
) -> Array:
    """The window (left, top, width, height) of a (3, h, w) image resampled to (3, out_h, out_w),
    clipped to 0..255.

    Separable: each strip of output rows takes the source rows it needs, resamples them
    across, then down.
    """
    channels = image.shape[0]
    ix, wx = _taps(out_w, left, width / out_w, image.shape[2])
    iy, wy = _taps(out_h, top, height / out_h, image.shape[1])
    out = np.empty((channels, out_h, out_w))
    for start in range(0, out_h, _STRIP_ROWS):
        stop = min(out_h, start + _STRIP_ROWS)
        rows_index = iy[start:stop]
        row0, row1 = int(rows_index.min()), int(rows_index.max()) + 1
        across = np.empty((channels, row1 - row0, out_w))
        _weighted_sum(image[:, row0:row1], ix, wx, 2, across)
        strip = out[:, start:stop]
        _weighted_sum(across, rows_index - row0, wy[start:stop], 1, strip)
        np.clip(strip, 0.0, 255.0, out=strip)  # cubic overshoot
    return out


def _bilinear(image: Array, u: Array, v: Array) -> Array:
    """Sample a (3, h, w) image at centre coordinates (u = column, v = row), edges clamped."""
    h, w = image.shape[1:]
    flat = image.reshape(image.shape[0], h * w)
    u0f, v0f = np.floor(u), np.floor(v)
    fu, fv = u - u0f, v - v0f
    u0 = np.clip(u0f.astype(np.intp), 0, w - 1)
    v0 = np.clip(v0f.astype(np.intp), 0, h - 1)
    du = (u0 < w - 1).astype(np.intp)
    dv = np.where(v0 < h - 1, w, 0)
    at = v0 * w + u0

    def tap(offset: npt.NDArray[np.intp] | int) -> Array:
        taken: Array = np.take(flat, at + offset, axis=1, mode="clip")
        return taken

    top = tap(0) * (1.0 - fu) + tap(du) * fu
    bottom = tap(dv) * (1.0 - fu) + tap(dv + du) * fu
    result: Array = top * (1.0 - fv) + bottom * fv
    return result


# --- colour ------------------------------------------------------------------------


def _round_u8(x: Array) -> npt.NDArray[np.uint8]:
    return np.clip(np.floor(x + 0.5), 0.0, 255.0).astype(np.uint8)


def _average_2x2(image: Array) -> Array:
    """Mean of each 2x2 block of a (c, h, w) image; odd sizes repeat the last row/column."""
    h, w = image.shape[1:]
    if h % 2 or w % 2:
        image = np.pad(image, ((0, 0), (0, h % 2), (0, w % 2)), mode="edge")
    total = image[:, 0::2, 0::2] + image[:, 0::2, 1::2]
    total += image[:, 1::2, 0::2]
    total += image[:, 1::2, 1::2]
    total *= 0.25
    return total


def _rgb_to_ycbcr420(rgb: Array) -> tuple[Array, Array, Array]:
    """RGB (3, h, w) 0..255 to BT.601 limited-range Y, Cb, Cr, unrounded; chroma of 2x2 means.

    The conversion is linear, so converting the 2x2 mean of RGB equals the 2x2 mean of Cb/Cr.
    Works in strips of rows so the temporaries stay in cache.
    """
    h, w = rgb.shape[1:]
    y = np.empty((h, w))
    cb = np.empty(((h + 1) // 2, (w + 1) // 2))
    cr = np.empty_like(cb)
    for start in range(0, h, _STRIP_ROWS):  # _STRIP_ROWS is even: strips keep 2x2 blocks whole
        stop = min(h, start + _STRIP_ROWS)
        part = rgb[:, start:stop]
        luma = y[start:stop]
        np.multiply(part[0], 65.481, out=luma)
        luma += part[1] * 128.553
        luma += part[2] * 24.966
        luma /= 255.0
        luma += 16.0
        small = _average_2x2(part)
        r, g, b = small[0], small[1], small[2]
        c0, c1 = start // 2, (stop + 1) // 2
        cb[c0:c1] = 128.0 + (r * -37.797 + g * -74.203 + b * 112.0) / 255.0
        cr[c0:c1] = 128.0 + (r * 112.0 + g * -93.786 + b * -18.214) / 255.0
    return y, cb, cr


def rgb_to_yuv420(rgb: Array) -> Frame:
    """RGB (3, h, w) float64 0..255 to a BT.601 limited-range 8-bit 4:2:0 frame."""
    y, cb, cr = _rgb_to_ycbcr420(rgb)
    return Frame(_round_u8(y), _round_u8(cb), _round_u8(cr))


def _unit_noise(seed: tuple[int, ...], size: int) -> Array:
    """`size` near-Gaussian values (mean 0, variance 1) from a seeded PCG64's raw output.

    Each value is the sum of the four 16-bit parts of one 64-bit draw (the same sum in
    either byte order): mean 4 * 65535 / 2, variance 4 * (65536^2 - 1) / 12. The integer
    sum is exact, so this is reproducible everywhere.
    """
    raw = np.random.PCG64(np.random.SeedSequence(list(seed))).random_raw(size)
    assert isinstance(raw, np.ndarray)
    parts = raw.view(np.uint16).reshape(size, 4)
    total = parts[:, 0].astype(np.int32)
    for k in (1, 2, 3):
        total += parts[:, k]
    unit: Array = (total.astype(np.float64) - 131070.0) / 37837.22
    return unit


# --- the scene -----------------------------------------------------------------------

# The cut-out, in coffee.png pixel coordinates: a saucer ellipse and the cup's rim.
_SAUCER = (277.0, 232.0, 204.0, 156.0)  # centre x, centre y, semi-axis x, semi-axis y
_CUP = (291.0, 113.0, 120.0, 96.0)
_PIVOT = (_SAUCER[0], _SAUCER[1])


class _Scene:
    """Everything that does not change from frame to frame, for one output size."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.background = _photo(_BACKGROUND_PHOTO)
        bh, bw = self.background.shape[1:]
        # Window height at zoom 1: 85% of the largest window with the output's aspect.
        self.base_height = 0.85 * min(float(bh), bw * height / width)
        # Cut-out: about 36% of the frame height at its nominal scale.
        self.object_scale = 0.36 * height / 370.0
        self.object_factor = max(1, int(1.0 / self.object_scale))
        self.object = _box_downsample(_photo(_OBJECT_PHOTO), self.object_factor)
        self.seed = (_SEED, width, height)

    def camera(self, index: int) -> tuple[float, float, float, float]:
        """The background window (left, top, width, height) seen in frame `index`."""
        bh, bw = self.background.shape[1:]
        zoom = 1.0 + 0.2 * _ease(index / 90.0)
        win_h = self.base_height / zoom
        win_w = win_h * self.width / self.height
        slack_x, slack_y = (bw - win_w) / 2.0, (bh - win_h) / 2.0
        cx = bw / 2.0 + 0.95 * slack_x * _swing((index + 15.0) / 110.0)
        cy = bh / 2.0 + 0.95 * slack_y * _swing((index + 40.0) / 130.0)
        return cx - win_w / 2.0, cy - win_h / 2.0, win_w, win_h

    def frame(self, index: int) -> Frame:
        left, top, win_w, win_h = self.camera(index)
        rgb = _resample_window(self.background, left, top, win_w, win_h, self.width, self.height)
        self._composite_object(rgb, index)  # convex blends and darkening: stays in 0..255
        y, cb, cr = _rgb_to_ycbcr420(rgb)
        # Sensor-like noise: luma sigma grows with the level (about 1.3 at mid-grey), chroma
        # gets a constant 0.6.
        y += _unit_noise((*self.seed, index, 0), y.size).reshape(y.shape) * np.sqrt(
            0.4 + 0.012 * (y - 16.0)
        )
        cb += _unit_noise((*self.seed, index, 1), cb.size).reshape(cb.shape) * 0.6
        cr += _unit_noise((*self.seed, index, 2), cr.size).reshape(cr.shape) * 0.6
        return Frame(_round_u8(y), _round_u8(cb), _round_u8(cr))

    def _composite_object(self, rgb: Array, index: int) -> None:
        w, h = self.width, self.height
        t = 0.08 * _swing((index + 10.0) / 64.0)  # tan(angle / 2): about +-9 degrees
        place = _Placement(
            x=w * (0.22 + 0.56 * _ease(index / 80.0)),
            y=h * (0.55 + 0.15 * _swing((index + 25.0) / 50.0)),
            scale=self.object_scale * (1.0 + 0.08 * _ease(index / 70.0)),
            cos=(1.0 - t * t) / (1.0 + t * t),
            sin=2.0 * t / (1.0 + t * t),
        )
        shadow_place = replace(place, x=place.x + 0.025 * h, y=place.y + 0.035 * h)
        found = shadow_place.coordinates(0.04 * h, w, h)
        if found is not None:
            (x0, y0, x1, y1), u, v = found
            rgb[:, y0:y1, x0:x1] *= 1.0 - 0.45 * _mask(u, v, 0.04 * h / place.scale)
        found = place.coordinates(_EDGE, w, h)
        if found is not None:
            (x0, y0, x1, y1), u, v = found
            k = float(self.object_factor)
            sample = _bilinear(self.object, (u + 0.5) / k - 0.5, (v + 0.5) / k - 0.5)
            box = rgb[:, y0:y1, x0:x1]
            sample -= box
            sample *= _mask(u, v, _EDGE / place.scale)
            box += sample


_EDGE = 1.5  # width of the cut-out's soft edge, output pixels


@dataclass(frozen=True)
class _Placement:
    """Where the cut-out's pivot lands in the frame, its scale and its rotation."""

    x: float
    y: float
    scale: float  # output pixels per coffee.png pixel
    cos: float
    sin: float

    def coordinates(
        self, soft: float, width: int, height: int
    ) -> tuple[tuple[int, int, int, int], Array, Array] | None:
        """The frame box (x0, y0, x1, y1) that holds the cut-out with a `soft` edge, and the
        coffee.png coordinates (u, v) of its pixels; None when the cut-out is off the frame."""
        x0, y0, x1, y1 = width, height, 0, 0
        for cx, cy, ax, ay in (_SAUCER, _CUP):
            du, dv = cx - _PIVOT[0], cy - _PIVOT[1]
            ex = self.x + self.scale * (self.cos * du - self.sin * dv)
            ey = self.y + self.scale * (self.sin * du + self.cos * dv)
            # the mask reaches radius 1 + (soft / 2) / (mean semi-axis) in object pixels
            grow = self.scale + soft / (ax + ay)
            hx = grow * math.sqrt((ax * self.cos) ** 2 + (ay * self.sin) ** 2) + 1.0
            hy = grow * math.sqrt((ax * self.sin) ** 2 + (ay * self.cos) ** 2) + 1.0
            x0, x1 = min(x0, math.floor(ex - hx)), max(x1, math.ceil(ex + hx) + 1)
            y0, y1 = min(y0, math.floor(ey - hy)), max(y1, math.ceil(ey + hy) + 1)
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
        if x0 >= x1 or y0 >= y1:
            return None
        dx = np.arange(x0, x1, dtype=np.float64)[None, :] - self.x
        dy = np.arange(y0, y1, dtype=np.float64)[:, None] - self.y
        u = _PIVOT[0] + (self.cos * dx + self.sin * dy) / self.scale
        v = _PIVOT[1] + (self.cos * dy - self.sin * dx) / self.scale
        return (x0, y0, x1, y1), u, v


def _mask(u: Array, v: Array, soft: float) -> Array:
    """Soft-edged cut-out mask (0..1) at object coordinates; `soft` is the edge width there."""
    best: Array | None = None
    for cx, cy, ax, ay in (_SAUCER, _CUP):
        du, dv = (u - cx) / ax, (v - cy) / ay
        radius = np.sqrt(du * du + dv * dv)
        inside = (1.0 - radius) * (0.5 * (ax + ay)) / soft + 0.5
        alpha = _smoothstep(inside)
        best = alpha if best is None else np.maximum(best, alpha)
    assert best is not None
    return best
