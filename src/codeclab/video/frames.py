"""The lab's picture model: 8-bit 4:2:0 planar frames of a fixed format."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import numpy.typing as npt

Plane = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class VideoFormat:
    """Size and rate of a 4:2:0 8-bit video. Chroma planes are ceil(w/2) x ceil(h/2)."""

    width: int
    height: int
    fps: Fraction

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"frame size must be positive, got {self.width}x{self.height}")
        if self.fps <= 0:
            raise ValueError(f"frame rate must be positive, got {self.fps}")

    @property
    def chroma_width(self) -> int:
        return (self.width + 1) // 2

    @property
    def chroma_height(self) -> int:
        return (self.height + 1) // 2

    @property
    def luma_size(self) -> int:
        return self.width * self.height

    @property
    def chroma_size(self) -> int:
        return self.chroma_width * self.chroma_height

    @property
    def frame_bytes(self) -> int:
        """Bytes of one frame in planar yuv420p (Y, then U, then V)."""
        return self.luma_size + 2 * self.chroma_size

    @property
    def pixels_per_frame(self) -> int:
        return self.luma_size

    def duration(self, frame_count: int) -> float:
        """Seconds that `frame_count` frames last at this rate."""
        return float(Fraction(frame_count) / self.fps)

    def describe(self) -> str:
        rate = (
            f"{self.fps.numerator}/{self.fps.denominator}"
            if self.fps.denominator != 1
            else str(self.fps.numerator)
        )
        return f"{self.width}x{self.height} @ {rate} fps ({float(self.fps):.3f})"


@dataclass(frozen=True)
class Frame:
    """One 4:2:0 frame as three uint8 planes."""

    y: Plane
    u: Plane
    v: Plane

    def check(self, fmt: VideoFormat, what: str = "frame") -> None:
        """Raise ValueError unless the planes are uint8 with the shapes `fmt` requires."""
        expected = {
            "y": (fmt.height, fmt.width),
            "u": (fmt.chroma_height, fmt.chroma_width),
            "v": (fmt.chroma_height, fmt.chroma_width),
        }
        for name, shape in expected.items():
            plane = getattr(self, name)
            if not isinstance(plane, np.ndarray):
                raise ValueError(f"{what}: plane {name} is {type(plane).__name__}, not an array")
            if plane.dtype != np.uint8:
                raise ValueError(f"{what}: plane {name} has dtype {plane.dtype}, expected uint8")
            if plane.shape != shape:
                raise ValueError(f"{what}: plane {name} has shape {plane.shape}, expected {shape}")

    def to_bytes(self) -> bytes:
        return b"".join(
            np.ascontiguousarray(p, dtype=np.uint8).tobytes() for p in (self.y, self.u, self.v)
        )

    @classmethod
    def from_buffer(
        cls, fmt: VideoFormat, buf: bytes | memoryview | npt.NDArray[np.uint8]
    ) -> Frame:
        """View one planar yuv420p frame (exactly `fmt.frame_bytes` long) as a Frame."""
        flat = np.frombuffer(buf, dtype=np.uint8) if not isinstance(buf, np.ndarray) else buf
        if flat.size != fmt.frame_bytes:
            raise ValueError(f"frame buffer holds {flat.size} bytes, expected {fmt.frame_bytes}")
        ly, lc = fmt.luma_size, fmt.chroma_size
        y = flat[:ly].reshape(fmt.height, fmt.width)
        u = flat[ly : ly + lc].reshape(fmt.chroma_height, fmt.chroma_width)
        v = flat[ly + lc :].reshape(fmt.chroma_height, fmt.chroma_width)
        return cls(y, u, v)

    @classmethod
    def blank(cls, fmt: VideoFormat, luma: int = 16, chroma: int = 128) -> Frame:
        return cls(
            np.full((fmt.height, fmt.width), luma, np.uint8),
            np.full((fmt.chroma_height, fmt.chroma_width), chroma, np.uint8),
            np.full((fmt.chroma_height, fmt.chroma_width), chroma, np.uint8),
        )
