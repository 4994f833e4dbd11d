"""Raw planar yuv420p files: the lab's working form of a clip and of a decoder's output.

A prepared clip is written once as raw frames, back to back, with no header; the
format travels beside it. Readers memory-map the file so metrics and sandboxes can
stream over clips larger than memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codeclab.video.frames import Frame, VideoFormat


@dataclass(frozen=True)
class RawVideo:
    """A raw yuv420p file of `frame_count` frames in `format`."""

    path: Path
    format: VideoFormat
    frame_count: int

    @classmethod
    def open(cls, path: Path, fmt: VideoFormat) -> RawVideo:
        """Open an existing raw file; its size must be a whole number of frames."""
        size = path.stat().st_size
        if size % fmt.frame_bytes:
            raise ValueError(
                f"{path}: {size} bytes is not a whole number of {fmt.width}x{fmt.height} "
                f"yuv420p frames ({fmt.frame_bytes} bytes each)"
            )
        return cls(path, fmt, size // fmt.frame_bytes)

    def frame(self, index: int) -> Frame:
        if not 0 <= index < self.frame_count:
            raise IndexError(f"{self.path}: frame {index} out of range 0..{self.frame_count - 1}")
        data = np.memmap(
            self.path,
            dtype=np.uint8,
            mode="r",
            offset=index * self.format.frame_bytes,
            shape=(self.format.frame_bytes,),
        )
        return Frame.from_buffer(self.format, data)

    def __iter__(self) -> Iterator[Frame]:
        for i in range(self.frame_count):
            yield self.frame(i)

    def __len__(self) -> int:
        return self.frame_count


def write_raw(path: Path, fmt: VideoFormat, frames: Iterable[Frame]) -> RawVideo:
    """Write frames to a raw yuv420p file, checking each against `fmt`."""
    count = 0
    with path.open("wb") as out:
        for frame in frames:
            frame.check(fmt, f"frame {count}")
            out.write(frame.to_bytes())
            count += 1
    return RawVideo(path, fmt, count)
