"""What an offline campaign discovers with a fixed budget: on each real clip in ../shared/clips
and on the built-in 352x288 clip, run `codeclab.pipeline.campaign` with the offline designer for
`--iterations` designs (the budget), then report the best codec of its leaderboard: BD-rate
(PCHIP, percent; negative = fewer bits than the baseline for the same quality) against x264
medium on PSNR-Y and on VMAF, and against x265 medium on PSNR-Y, all measured by the campaign
on the same frames, plus the codec's encode and decode speed in the sandbox (frames per second
over the search clip, start-up of the sandboxed process included, mean over the quality
points). The first design (the inter_dct reference codec's equivalent) is reported beside it.

The budget is stated in the output: designs per clip (`--iterations`), frames, quality points,
workers and seed, the wall-clock minutes each campaign took and the machine's load average
before and after. A ``summary`` gives, per clip, the best codec's BD-rates against x264 (PSNR-Y
and VMAF) and x265 (PSNR-Y) and its encode and decode speed.

The target is a rate in bits per pixel, so it means the same on every resolution.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _clips import shared_clips
from codeclab.config import Settings
from codeclab.lab import Lab
from codeclab.pipeline.analysis import Target
from codeclab.pipeline.campaign import CampaignConfig, run_campaign
from codeclab.pipeline.evaluate import DEFAULT_QUALITIES
from codeclab.pipeline.history import StageClips, Standing, standing
from codeclab.sandbox.jobs import SandboxSettings
from codeclab.storage.records import ExperimentRecord


def speed(record: ExperimentRecord) -> dict[str, float | None]:
    """Mean frames per second of encode and decode over the quality points."""
    encode: list[float] = []
    decode: list[float] = []
    for point in record.metrics or []:
        frames = (point.get("rate") or {}).get("frame_count")
        if frames and point.get("encode_seconds"):
            encode.append(frames / point["encode_seconds"])
        if frames and point.get("decode_seconds"):
            decode.append(frames / point["decode_seconds"])
    return {
        "encode_fps": round(sum(encode) / len(encode), 2) if encode else None,
        "decode_fps": round(sum(decode) / len(decode), 2) if decode else None,
    }


def describe(row: Standing) -> dict[str, Any]:
    record = row.experiment
    return {
        "design": row.alias,
        "experiment_id": record.id,
        "codec_sha256": record.codec_sha256,
        "target_achieved": row.target_achieved,
        "psnr_y_at_rate_limit_db": _round(row.score_db),
        "bd_rate_vs_x264_psnr_y": _round(row.bd_rate_x264),
        "bd_rate_vs_x264_vmaf": _round(row.bd_rate_x264_vmaf),
        "bd_rate_vs_x265_psnr_y": _round(row.bd_rate_x265),
        "operating_point": {
            "kbps": _round(row.bitrate_bps / 1e3 if row.bitrate_bps else None),
            "psnr_y": _round(row.psnr_y),
            "vmaf": _round(row.vmaf),
        },
        "genome": record.rationale.split("\n", 1)[0][:300],
        **speed(record),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", nargs="*", help="clip file names (default: all)")
    parser.add_argument("--builtin", default="builtin:lab-cif", help="'' to skip")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--iterations", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bpp", type=float, default=0.1, help="target rate in bits per pixel")
    parser.add_argument("--qualities", default=",".join(map(str, DEFAULT_QUALITIES)))
    args = parser.parse_args()
    qualities = tuple(int(q) for q in args.qualities.split(","))
    specs = [str(path) for path in shared_clips(args.clips)]
    if args.builtin:
        specs.append(args.builtin)
    target = Target(max_bpp=args.bpp, min_psnr_y=28.0, min_vmaf=60.0)
    report: dict[str, Any] = {
        "benchmark": "discovery",
        "designer": "offline",
        "budget": {
            "iterations": args.iterations,
            "frames": args.frames,
            "qualities": list(qualities),
            "workers": args.workers,
            "seed": args.seed,
            "cpus": os.cpu_count(),
        },
        "load_average_before": _load(),
        "target": target.to_dict(),
        "baselines": "x264 medium, x265 medium (CRF ladders, same frames)",
        "bd_method": "pchip",
        "clips": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-discovery-") as tmp:
        data = Path(tmp) / "data"
        settings = Settings(data_dir=data, sandbox=SandboxSettings(scratch_root=data / "scratch"))
        with Lab.open(settings) as lab:
            for spec in specs:
                config = CampaignConfig(
                    clips=(spec,),
                    frames=args.frames,
                    iterations=args.iterations,
                    workers=args.workers,
                    seed=args.seed,
                    qualities=qualities,
                    baselines=("x264", "x265"),
                    target=target,
                    publish="never",
                )
                started = time.monotonic()
                result = run_campaign(lab, config)
                first = standing(result.trials[0]) if result.trials else None
                search = StageClips.from_run_config(result.run.config, result.run.id).search
                entry: dict[str, Any] = {
                    "run_id": result.run.id,
                    "frames": search[0].frames,
                    "designs": len(result.trials),
                    "completed": sum(1 for t in result.trials if t.state().completed),
                    "minutes": round((time.monotonic() - started) / 60, 2),
                    "best": describe(result.leaderboard[0]) if result.leaderboard else None,
                    "first_design": describe(first) if first is not None else None,
                }
                bd = [r.bd_rate_x264 for r in result.leaderboard if r.bd_rate_x264 is not None]
                entry["lowest_bd_rate_vs_x264_psnr_y"] = _round(min(bd)) if bd else None
                bd = [r.bd_rate_x265 for r in result.leaderboard if r.bd_rate_x265 is not None]
                entry["lowest_bd_rate_vs_x265_psnr_y"] = _round(min(bd)) if bd else None
                report["clips"][Path(spec).name if "/" in spec else spec] = entry
                print(json.dumps({spec: entry}), flush=True, file=sys.stderr)  # as it goes
    report["load_average_after"] = _load()
    report["summary"] = {name: _headline(entry) for name, entry in report["clips"].items()}
    report["budget"]["minutes"] = round(sum(e["minutes"] for e in report["clips"].values()), 2)
    print(json.dumps(report, indent=2))


def _headline(entry: dict[str, Any]) -> dict[str, Any]:
    best = entry.get("best") or {}
    keys = (
        "bd_rate_vs_x264_psnr_y",
        "bd_rate_vs_x264_vmaf",
        "bd_rate_vs_x265_psnr_y",
        "encode_fps",
        "decode_fps",
    )
    return {"designs": entry["designs"], **{key: best.get(key) for key in keys}}


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


if __name__ == "__main__":
    main()
