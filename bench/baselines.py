"""The three baseline ladders on each real clip, and how the encoders compare.

For every clip in ../shared/clips: x264 (medium), x265 (medium) and SVT-AV1 (preset 8)
CRF ladders on the same frames, each point measured by the lab (rate from the
elementary stream, PSNR-Y as the mean of per-frame PSNR, SSIM-Y, VMAF), the encode
speed, and the BD-rate (PCHIP) of x265 and SVT-AV1 against x264 on PSNR-Y and VMAF.
Sanity: both should come out below x264 (negative BD-rate).

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from _clips import shared_clips
from codeclab.baselines.ladder import BaselineLadder, run_baselines
from codeclab.metrics.bjontegaard import bd_rate
from codeclab.video.clips import prepare_clip

ENCODERS = ("x264", "x265", "svtav1")


def ladder_summary(ladder: BaselineLadder) -> dict[str, Any]:
    points = [
        {
            "crf": p.crf,
            "kbps": round(p.bits_per_second / 1e3, 2),
            "psnr_y": round(p.psnr_y, 3),
            "ssim_y": round(p.ssim_y, 5),
            "vmaf": None if p.vmaf is None else round(p.vmaf, 3),
            "encode_fps": round(p.encode_fps, 1),
        }
        for p in ladder.points
    ]
    fps = [p.encode_fps for p in ladder.points]
    return {
        "preset": ladder.preset,
        "version": ladder.version,
        "points": points,
        "encode_fps_mean": round(sum(fps) / len(fps), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", nargs="*", help="clip file names (default: all)")
    parser.add_argument("--frames", type=int, default=None, help="frames per clip (all)")
    parser.add_argument("--no-vmaf", action="store_true")
    parser.add_argument("--cache-dir", type=Path, default=None, help="reuse ladders")
    args = parser.parse_args()
    report: dict[str, Any] = {"benchmark": "baselines", "bd_method": "pchip", "clips": {}}
    with tempfile.TemporaryDirectory(prefix="bench-baselines-") as tmp:
        work = Path(tmp)
        cache = args.cache_dir or work / "cache"
        for path in shared_clips(args.clips):
            clip = prepare_clip(str(path), work / "clips", frames=args.frames)
            start = time.perf_counter()
            ladders = run_baselines(
                clip,
                ENCODERS,
                cache_dir=cache,
                workdir=work / path.stem,
                with_vmaf=not args.no_vmaf,
            )
            entry: dict[str, Any] = {
                "frames": clip.frame_count,
                "size": f"{clip.format.width}x{clip.format.height}",
                "seconds": round(time.perf_counter() - start, 1),
                "ladders": {name: ladder_summary(ladder) for name, ladder in ladders.items()},
                "bd_rate_vs_x264": {},
            }
            for name in ("x265", "svtav1"):
                result: dict[str, float | None] = {}
                for metric in ("psnr_y", "vmaf"):
                    bd = bd_rate(ladders["x264"].curve(metric), ladders[name].curve(metric))
                    result[metric] = None if bd.value is None else round(bd.value, 2)
                entry["bd_rate_vs_x264"][name] = result
            entry["sane"] = all(
                v is not None and v < 0
                for r in entry["bd_rate_vs_x264"].values()
                for v in [r["psnr_y"]]
            )
            report["clips"][path.name] = entry
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
