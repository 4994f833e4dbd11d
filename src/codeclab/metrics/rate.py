"""Rate from the real bitstream: every byte of the container counts."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from codeclab.video.frames import VideoFormat


@dataclass(frozen=True)
class Rate:
    """The rate of one encode.

    ``bits_per_second`` is the container size in bits over the clip's duration
    (frame count / frame rate); ``bits_per_pixel`` is the container size in bits
    over the luma samples of all frames.
    """

    stream_bytes: int
    frame_count: int
    duration_seconds: float
    bits_per_second: float
    bits_per_pixel: float

    @property
    def kbps(self) -> float:
        return self.bits_per_second / 1000.0

    @property
    def mbps(self) -> float:
        return self.bits_per_second / 1e6

    def to_dict(self) -> dict[str, float | int]:
        return {**asdict(self), "kbps": self.kbps, "mbps": self.mbps}


def measure_rate(stream_bytes: int, fmt: VideoFormat, frame_count: int) -> Rate:
    if frame_count <= 0:
        raise ValueError("a rate needs at least one frame")
    duration = fmt.duration(frame_count)
    bits = 8 * stream_bytes
    return Rate(
        stream_bytes=stream_bytes,
        frame_count=frame_count,
        duration_seconds=duration,
        bits_per_second=bits / duration,
        bits_per_pixel=bits / (fmt.pixels_per_frame * frame_count),
    )
