"""Measure one change to the best genome against x264 medium, quickly: the codec engineer's loop.

`default_genome()` with the knobs given by ``--set knob=value`` (none: the default itself) is
rendered, run sandboxed through the lab's evaluation on each clip (the real clips in
../shared/clips by name, and ``builtin:lab-cif``), and compared with x264 medium's CRF ladder on
the same frames (cached in ``--cache`` between runs). Clips run in parallel, one process each.

Per clip: BD-rate (PCHIP, PSNR-Y, percent; negative = fewer bits than x264 for the same
quality), the curve, and the sandboxed encode and decode seconds summed over the quality points.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from _clips import shared_clips
from codeclab.baselines.ladder import run_baseline
from codeclab.designers.offline.render import render
from codeclab.designers.offline.space import Genome, default_genome
from codeclab.metrics.bjontegaard import bd_rate
from codeclab.pipeline.analysis import candidate_curve
from codeclab.pipeline.evaluate import evaluate_codec
from codeclab.sandbox.jobs import SandboxSettings
from codeclab.video.clips import prepare_clip

QUALITIES = (20, 35, 50, 65, 80)
SHORT_NAMES = {"carphone": "carphone_qcif.y4m", "bikes": "bikes.mp4", "cif": "builtin:lab-cif"}


def parse_value(text: str) -> Any:
    """A knob value from the command line: int, float or string."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def genome_with(settings: list[str]) -> Genome:
    changes = {}
    for item in settings:
        knob, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set wants knob=value, got {item!r}")
        changes[knob] = parse_value(value)
    return replace(default_genome(), **changes).canonical()


def clip_spec(name: str) -> str:
    name = SHORT_NAMES.get(name, name)
    if name.startswith("builtin:"):
        return name
    return str(shared_clips([name])[0])


def measure(
    spec: str, genome: Genome, frames: int, qualities: list[int], cache: Path
) -> dict[str, object]:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-tune-") as tmp:
        work = Path(tmp)
        clip = prepare_clip(spec, cache / "clips", frames=frames)
        x264 = run_baseline(clip, "x264", cache_dir=cache, workdir=work / "x264", with_vmaf=False)
        evaluation = evaluate_codec(
            render(genome),
            clip,
            qualities,
            workdir=work / "codec",
            codec_name="tuned",
            settings=SandboxSettings(scratch_root=work / "scratch"),
        )
    curve = candidate_curve(evaluation.points, "psnr_y")
    bd = bd_rate(x264.curve("psnr_y"), curve)
    failed = [p.error for p in evaluation.points if not p.ok]
    return {
        "bd_rate_vs_x264_psnr_y": None if bd.value is None else round(bd.value, 2),
        "curve_kbps_psnr_y": [(round(r / 1e3, 1), round(q, 2)) for r, q in curve],
        "encode_seconds": round(sum(p.encode_seconds for p in evaluation.points), 2),
        "decode_seconds": round(sum(p.decode_seconds for p in evaluation.points), 2),
        "failed": failed,
        "minutes": round((time.monotonic() - started) / 60, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--set", action="append", default=[], help="knob=value (repeatable)")
    parser.add_argument("--clips", nargs="*", default=["carphone", "bikes", "cif"])
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--qualities", default=",".join(map(str, QUALITIES)))
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "codeclab-bench-cache"
    )
    args = parser.parse_args()
    genome = genome_with(args.set)
    qualities = [int(q) for q in args.qualities.split(",")]
    specs = [clip_spec(name) for name in args.clips]
    with ProcessPoolExecutor(max_workers=min(args.workers, len(specs))) as pool:
        jobs = {
            spec: pool.submit(measure, spec, genome, args.frames, qualities, args.cache)
            for spec in specs
        }
        clips = {Path(spec).name: job.result() for spec, job in jobs.items()}
    summary = {name: row["bd_rate_vs_x264_psnr_y"] for name, row in clips.items()}
    print(json.dumps(summary), file=sys.stderr)
    report = {
        "benchmark": "tune",
        "changes": args.set,
        "genome": genome.describe(),
        "frames": args.frames,
        "qualities": qualities,
        "clips": clips,
        "summary_bd_rate_vs_x264_psnr_y": summary,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
