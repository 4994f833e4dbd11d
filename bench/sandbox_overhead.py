"""Fixed cost of the sandbox: one sandboxed encode+decode of a 1-frame clip vs the
same codec run in-process, at each isolation level this machine has.

Prints one JSON object. Target: <= 0.3 s extra per encode+decode.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from codeclab.codec.bitstream import StreamHeader, encode_stream
from codeclab.codecs import reference_codec_path, reference_codec_source
from codeclab.sandbox.isolation import STRONGEST_FIRST, level_problem
from codeclab.sandbox.jobs import PendingDecode, SandboxSettings, run_encoder
from codeclab.video.clips import PreparedClip, prepare_clip

TARGET_SECONDS = 0.3


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_codec", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def in_process(codec_path: Path, clip: PreparedClip) -> float:
    """Load the module, encode and decode every frame, all in this process."""
    start = time.perf_counter()
    codec = _load(codec_path)
    fmt = clip.raw.format
    encoder = codec.Encoder(fmt.width, fmt.height, float(fmt.fps), {"quality": 50})
    packets = [encoder.encode(f.y, f.u, f.v) for f in clip.raw]
    packets += encoder.flush()
    decoder = codec.Decoder(fmt.width, fmt.height, float(fmt.fps))
    frames = [frame for packet in packets for frame in decoder.decode(packet)]
    frames += decoder.flush()
    assert len(frames) == clip.raw.frame_count
    return time.perf_counter() - start


def sandboxed(source: str, clip: PreparedClip, settings: SandboxSettings, out: Path) -> float:
    """As the pipeline does it: the decoder sandbox starts while the encoder runs."""
    start = time.perf_counter()
    fmt = clip.raw.format
    pending = PendingDecode(source, fmt, output_path=out, settings=settings)
    encoded = run_encoder(source, clip.raw, {"quality": 50}, settings=settings)
    assert encoded.ok, encoded.error
    header = StreamHeader(
        fmt.width,
        fmt.height,
        fmt.fps.numerator,
        fmt.fps.denominator,
        clip.raw.frame_count,
        bytes(32),
    )
    stream = encode_stream(header, encoded.packets)
    decoded = pending.finish(stream)
    assert decoded.ok, decoded.error
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--codec", default="intra_dct")
    parser.add_argument("--clip", default="builtin:lab-cif")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    source = reference_codec_source(args.codec)
    levels = [level for level in STRONGEST_FIRST if level_problem(level) is None]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        clip = prepare_clip(args.clip, work, frames=1, cache_dir=work / "cache")
        in_proc = statistics.median(
            in_process(reference_codec_path(args.codec), clip) for _ in range(args.repeats)
        )
        results: dict[str, Any] = {}
        for level in levels:
            settings = SandboxSettings(
                isolation=level,
                scratch_root=work / "scratch",
                allow_weak=level.weak,  # measured, not used for untrusted code
            )
            sandboxed(source, clip, settings, work / "warm.yuv")  # warm the page cache
            times = [
                sandboxed(source, clip, settings, work / f"out-{i}.yuv")
                for i in range(args.repeats)
            ]
            median = statistics.median(times)
            results[level.value] = {
                "sandboxed_seconds": round(median, 4),
                "extra_seconds": round(median - in_proc, 4),
                "met": median - in_proc <= TARGET_SECONDS,
            }
    report = {
        "benchmark": "sandbox_overhead",
        "codec": args.codec,
        "clip": clip.source,
        "frames": 1,
        "size": f"{clip.raw.format.width}x{clip.raw.format.height}",
        "repeats": args.repeats,
        "statistic": "median",
        "in_process_seconds": round(in_proc, 4),
        "levels": results,
        "target_extra_seconds": TARGET_SECONDS,
        "python": sys.version.split()[0],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
