"""The publish phase: upload what a user needs to see and reproduce an experiment.

For one experiment (at its operating point):

======================================  ===============================================
key                                     what
======================================  ===============================================
``experiments/<id>/reconstruction.mp4`` preview of the decoder's frames (H.264, labelled)
``clips/<clip sha256>/source.mp4``      preview of the source, for side-by-side viewing
``decoders/<id>_decoder.py``            the decoder source with its header (the seed's key)
``experiments/<id>/stream.bin``         the bitstream the rate was measured on
``experiments/<id>/package.zip``        decoder.py + stream.bin + manifest + README
======================================  ===============================================

Keys are fixed by the experiment, so publishing again overwrites the same objects
(idempotent). The record says ``published`` only after every object is stored and
checked; a failure leaves the experiment recorded with ``publish_status = failed`` and
the reason, so ``codeclab publish EXP_ID`` can retry it. The record never points at
an object that was not stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from codeclab.storage.objects import ObjectStore
from codeclab.storage.package import (
    ClipIdentity,
    DecoderHeader,
    PackageContents,
    build_package,
    render_decoder,
)
from codeclab.storage.preview import make_preview
from codeclab.storage.records import PublishStatus, RecordStore
from codeclab.video.clips import PreparedClip
from codeclab.video.rawfile import RawVideo

ARTIFACT_NAMES = ("reconstruction", "source", "decoder", "stream", "package")


def artifact_keys(experiment_id: str, clip_sha256: str) -> dict[str, str]:
    return {
        "reconstruction": f"experiments/{experiment_id}/reconstruction.mp4",
        "source": f"clips/{clip_sha256}/source.mp4",
        "decoder": f"decoders/{experiment_id}_decoder.py",
        "stream": f"experiments/{experiment_id}/stream.bin",
        "package": f"experiments/{experiment_id}/package.zip",
    }


@dataclass(frozen=True)
class PublishInputs:
    """Everything publishing needs, produced by the experiment's earlier phases."""

    experiment_id: str
    created_at: datetime
    codec_name: str
    codec_source: str
    clip: PreparedClip
    stream: bytes  # the container of the operating point
    decoded: RawVideo  # the decoder's frames of the operating point
    metrics: Mapping[str, float | None]  # `package.key_metrics` of the operating point


@dataclass(frozen=True)
class PublishResult:
    ok: bool
    artifacts: dict[str, str]
    bytes_stored: int
    error: str | None


def publish_experiment(
    store: ObjectStore, records: RecordStore, inputs: PublishInputs, *, workdir: Path
) -> PublishResult:
    """Build and upload the artifacts, then (only then) mark the record published."""
    exp_id = inputs.experiment_id
    records.update_experiment(exp_id, publish_status=PublishStatus.PENDING, publish_error=None)
    keys = artifact_keys(exp_id, inputs.clip.sha256)
    try:
        stored = _upload(store, inputs, keys, workdir)
    except Exception as exc:  # any failure: record the reason, keep the experiment
        reason = f"{type(exc).__name__}: {exc}"
        records.update_experiment(
            exp_id, publish_status=PublishStatus.FAILED, publish_error=reason[:2000]
        )
        return PublishResult(False, {}, 0, reason)
    # the source preview is shared by every experiment on the clip: not counted per experiment
    total = sum(size for name, size in stored.items() if name != "source")
    records.update_experiment(
        exp_id,
        publish_status=PublishStatus.PUBLISHED,
        publish_error=None,
        artifacts=keys,
        bytes_stored=total,
    )
    return PublishResult(True, keys, total, None)


def _upload(
    store: ObjectStore, inputs: PublishInputs, keys: Mapping[str, str], workdir: Path
) -> dict[str, int]:
    workdir.mkdir(parents=True, exist_ok=True)
    header = DecoderHeader(
        experiment_id=inputs.experiment_id,
        created_at=inputs.created_at,
        codec_name=inputs.codec_name,
        clip=ClipIdentity.from_clip(inputs.clip),
        metrics=dict(inputs.metrics),
    )
    reconstruction = make_preview(
        inputs.decoded,
        workdir / f"{inputs.experiment_id}-reconstruction.mp4",
        label=f"codeclab preview of experiment {inputs.experiment_id} (decoded frames)",
    )
    store.put_file(keys["reconstruction"], reconstruction.path, "video/mp4")
    if not store.exists(keys["source"]):
        source = make_preview(
            inputs.clip.raw,
            workdir / f"{inputs.clip.sha256[:16]}-source.mp4",
            label=f"codeclab preview of the source clip {inputs.clip.name}",
        )
        store.put_file(keys["source"], source.path, "video/mp4")
    decoder = render_decoder(inputs.codec_source, header=header).encode("utf-8")
    store.put_bytes(keys["decoder"], decoder, "text/x-python; charset=utf-8")
    store.put_bytes(keys["stream"], inputs.stream, "application/octet-stream")
    package = build_package(PackageContents(inputs.codec_source, inputs.stream, header))
    store.put_bytes(keys["package"], package, "application/zip")
    sizes: dict[str, int] = {}
    for name, key in keys.items():
        info = store.stat(key)
        if info is None:
            raise RuntimeError(f"{key} is missing from {store.store_url} right after upload")
        sizes[name] = info.size
    return sizes
