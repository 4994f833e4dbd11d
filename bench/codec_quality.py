"""How far the reference codecs are from x264: BD-rate on each real clip.

Each reference codec (intra_dct, inter_dct) runs sandboxed through the full evaluation
at a ladder of quality values; x264 medium runs its CRF ladder on the same frames; the
BD-rate (PCHIP) of the codec against x264 on PSNR-Y and on VMAF is reported (positive:
the codec needs that many percent more bits than x264 for the same quality). This is
the figure the offline designer is judged by.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from _clips import shared_clips
from codeclab.baselines.ladder import run_baseline
from codeclab.codecs import REFERENCE_CODECS, reference_codec_source
from codeclab.metrics.bjontegaard import bd_rate
from codeclab.pipeline.analysis import candidate_curve
from codeclab.pipeline.evaluate import evaluate_codec
from codeclab.sandbox.jobs import SandboxSettings
from codeclab.video.clips import prepare_clip

QUALITIES = (10, 25, 40, 55, 70, 85)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", nargs="*", help="clip file names (default: all)")
    parser.add_argument("--frames", type=int, default=60, help="frames per clip")
    parser.add_argument("--qualities", default=",".join(map(str, QUALITIES)))
    args = parser.parse_args()
    qualities = [int(q) for q in args.qualities.split(",")]
    report: dict[str, Any] = {
        "benchmark": "codec_quality",
        "reference": "x264 medium",
        "bd_method": "pchip",
        "qualities": qualities,
        "clips": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-codec-quality-") as tmp:
        work = Path(tmp)
        settings = SandboxSettings(scratch_root=work / "scratch")
        for path in shared_clips(args.clips):
            clip = prepare_clip(str(path), work / "clips", frames=args.frames)
            x264 = run_baseline(clip, "x264", cache_dir=work / "cache", workdir=work / "x264")
            entry: dict[str, Any] = {"frames": clip.frame_count, "codecs": {}}
            for name in REFERENCE_CODECS:
                evaluation = evaluate_codec(
                    reference_codec_source(name),
                    clip,
                    qualities,
                    workdir=work / name,
                    codec_name=name,
                    settings=settings,
                    with_vmaf=True,
                )
                result: dict[str, Any] = {
                    "ok": evaluation.ok,
                    "kbps": [round(p.rate.kbps, 2) if p.rate else None for p in evaluation.points],
                    "psnr_y": [
                        round(p.metrics.summary.psnr_y_mean, 3) if p.metrics else None
                        for p in evaluation.points
                    ],
                }
                for metric in ("psnr_y", "vmaf"):
                    bd = bd_rate(x264.curve(metric), candidate_curve(evaluation.points, metric))
                    result[f"bd_rate_{metric}"] = None if bd.value is None else round(bd.value, 1)
                    if bd.value is None:
                        result[f"bd_rate_{metric}_reason"] = bd.reason
                entry["codecs"][name] = result
            report["clips"][path.name] = entry
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
