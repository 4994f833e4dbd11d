"""Publishing cost on each object-store backend.

A 1280x720, 5 s experiment (bikes.mp4 from ../shared/clips scaled to 720p by ffmpeg,
125 frames at 25 fps) is encoded and decoded in the sandboxes by the reference codec
`intra_dct` at one quality; then the publish phase (two preview MP4s, decoder.py, the
bitstream, the decode package, record updates) runs against a local file store and
against an S3-compatible server (moto, on 127.0.0.1). Prints one JSON object with the
publish time per backend and the bytes stored against the bitstream's size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import imageio_ffmpeg
from moto.server import ThreadedMotoServer

from _clips import shared_clips
from codeclab.codec.validate import validate_source
from codeclab.codecs import reference_codec_source
from codeclab.pipeline.evaluate import execute_point, verify_point
from codeclab.sandbox.jobs import SandboxSettings
from codeclab.storage.objects import ObjectStore, S3Options, open_store
from codeclab.storage.package import key_metrics
from codeclab.storage.publish import PublishInputs, publish_experiment
from codeclab.storage.records import ClipRecord, RecordStore
from codeclab.video.clips import PreparedClip, prepare_clip


def make_720p_clip(work: Path, frames: int) -> PreparedClip:
    (source,) = shared_clips(["bikes.mp4"])
    y4m = work / "bikes-720p.y4m"
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(source),
            "-frames:v", str(frames), "-vf", "scale=1280:720:flags=lanczos",
            "-pix_fmt", "yuv420p", "-y", str(y4m),
        ],
        check=True,
    )  # fmt: skip
    return prepare_clip(str(y4m), work / "clip", frames=frames)


def publish_once(
    store: ObjectStore, records: RecordStore, inputs: PublishInputs, work: Path
) -> dict[str, Any]:
    exp = records.create_experiment(designer="bench", clip_sha256=inputs.clip.sha256)
    inputs = PublishInputs(**{**inputs.__dict__, "experiment_id": exp.id})
    start = time.perf_counter()
    result = publish_experiment(store, records, inputs, workdir=work / exp.id)
    seconds = time.perf_counter() - start
    assert result.ok, result.error
    return {
        "publish_seconds": round(seconds, 2),
        "bytes_stored": result.bytes_stored,
        "bytes_by_object": {
            name: store.stat(key).size  # type: ignore[union-attr]
            for name, key in result.artifacts.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=125)
    parser.add_argument("--quality", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp:
        work = Path(tmp)
        clip = make_720p_clip(work, args.frames)
        source = reference_codec_source("intra_dct")
        sha = validate_source(source).sha256
        settings = SandboxSettings(scratch_root=work / "scratch")
        execution = execute_point(
            source, sha, clip, {"quality": args.quality}, workdir=work / "exec", settings=settings
        )
        assert execution.ok and execution.stream_path is not None, execution.error
        point = verify_point(execution, clip)
        assert point.rate is not None and point.metrics is not None
        inputs = PublishInputs(
            experiment_id="",
            created_at=datetime.now(UTC),
            codec_name="intra_dct",
            codec_source=source,
            clip=clip,
            stream=execution.stream_path.read_bytes(),
            decoded=execution.decoded,  # type: ignore[arg-type]
            metrics=key_metrics(point.rate, point.metrics.summary),
        )
        fmt = clip.format
        records = RecordStore.open(f"sqlite:///{work / 'records.db'}")
        records.upsert_clip(
            ClipRecord(clip.sha256, clip.name, clip.source, fmt.width, fmt.height,
                       fmt.fps.numerator, fmt.fps.denominator, clip.frame_count)
        )  # fmt: skip
        results: dict[str, Any] = {}
        local = open_store((work / "objects").as_uri(), signing_secret=b"k" * 32)
        results["file"] = publish_once(local, records, inputs, work / "pub-file")
        os.environ.update(
            AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
        )
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            endpoint = f"http://{host}:{port}"
            boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="codeclab-bench")
            s3 = open_store(
                "s3://codeclab-bench/lab",
                s3_options=S3Options(endpoint_url=endpoint, addressing_style="path"),
            )
            results["s3 (moto on 127.0.0.1)"] = publish_once(s3, records, inputs, work / "pub-s3")
        finally:
            server.stop()
        records.close()
    stream_bytes = len(inputs.stream)
    report = {
        "benchmark": "storage",
        "clip": f"bikes.mp4 scaled to 1280x720, {clip.frame_count} frames, "
        f"{clip.duration_seconds:.1f} s",
        "codec": f"intra_dct q{args.quality}",
        "stream_bytes": stream_bytes,
        "backends": results,
        "stored_vs_stream": {
            name: round(r["bytes_stored"] / stream_bytes, 3) for name, r in results.items()
        },
        "note": "bytes_stored counts the experiment's own objects (not the shared source preview)",
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
