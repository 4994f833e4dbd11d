"""Still pictures of one frame (original, reconstructed, difference, heatmap) and its numbers.

Pictures are PNGs made from the exact frames (:mod:`codeclab.web.frames`) and kept in the
object store, so each is computed once:

* ``clips/<clip sha256>/frames/<n>.png``: the original frame (shared by every experiment on
  the clip),
* ``experiments/<id>/frames/<n>-reconstructed.png`` and ``<n>-difference.png``,
* ``experiments/<id>/heatmaps/<n>.png``: the per-block error (:mod:`codeclab.web.heatmap`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from codeclab.storage.objects import ObjectNotFound, ObjectStore
from codeclab.storage.records import ExperimentRecord
from codeclab.video.frames import Frame
from codeclab.web.frames import FrameSource
from codeclab.web.heatmap import BEST_DB, BLOCK, WORST_DB, block_errors, heatmap_image
from codeclab.web.images import DIFFERENCE_GAIN, difference_image, encode_png, frame_to_rgb

StillKind = Literal["original", "reconstructed", "difference", "heatmap"]
STILL_KINDS: tuple[StillKind, ...] = get_args(StillKind)


def still_key(record: ExperimentRecord, index: int, kind: StillKind) -> str:
    if kind == "original":
        return f"clips/{record.clip_sha256}/frames/{index}.png"
    if kind == "heatmap":
        return f"experiments/{record.id}/heatmaps/{index}.png"
    return f"experiments/{record.id}/frames/{index}-{kind}.png"


@dataclass(frozen=True)
class FrameStats:
    """The numbers of one frame, measured on the exact frames."""

    index: int
    frame_count: int
    width: int
    height: int
    psnr_y: float | None  # None: identical frames
    mse_y: float
    block_size: int
    block_psnr_min: float
    block_psnr_mean: float
    worst_block_x: int
    worst_block_y: int
    scale_worst_db: float
    scale_best_db: float
    difference_gain: int


class Stills:
    """Makes, caches and serves the pictures of frames."""

    def __init__(self, store: ObjectStore, frames: FrameSource) -> None:
        self.store = store
        self.frames = frames

    def png(self, record: ExperimentRecord, index: int, kind: StillKind) -> bytes:
        key = still_key(record, index, kind)
        try:
            return self.store.get_bytes(key)
        except ObjectNotFound:
            pass
        original, reconstructed = self.frames.pair(record, index)
        data = render(original, reconstructed, kind)
        self.store.put_bytes(key, data, "image/png")
        return data

    def stats(self, record: ExperimentRecord, index: int) -> FrameStats:
        original, reconstructed = self.frames.pair(record, index)
        errors = block_errors(original, reconstructed)
        x, y, worst = errors.worst_block()
        height, width = original.y.shape
        return FrameStats(
            index=index,
            frame_count=self.frames.clip(record).frame_count,
            width=width,
            height=height,
            psnr_y=errors.frame_psnr,
            mse_y=errors.frame_mse,
            block_size=BLOCK,
            block_psnr_min=worst,
            block_psnr_mean=float(errors.block_psnr().mean()),
            worst_block_x=x,
            worst_block_y=y,
            scale_worst_db=WORST_DB,
            scale_best_db=BEST_DB,
            difference_gain=DIFFERENCE_GAIN,
        )


def render(original: Frame, reconstructed: Frame, kind: StillKind) -> bytes:
    if kind == "original":
        return encode_png(frame_to_rgb(original))
    if kind == "reconstructed":
        return encode_png(frame_to_rgb(reconstructed))
    if kind == "difference":
        return encode_png(difference_image(original, reconstructed))
    height, width = original.y.shape
    return encode_png(heatmap_image(block_errors(original, reconstructed), width, height))
