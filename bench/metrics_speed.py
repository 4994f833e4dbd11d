"""Speed of the lab's quality pass against FFmpeg's psnr and ssim filters, same frames, same run.

Source: the built-in 1280x720 clip; distorted: the same frames encoded by x264 (crf 30)
and decoded back to raw.  Both sides read the same two raw yuv420p files from the page
cache.  The lab side is `codeclab.metrics.quality.measure` (PSNR of Y, U, V and SSIM of
Y per frame, plus the clip summary).  FFmpeg runs `psnr` and `ssim` in one command, in
two graphs: `ssim` fed the luma plane only (`extractplanes=y`, the lab's work) and `ssim`
on all three planes (its default); `ffmpeg_fps` is the faster of the two.  Times are wall
clock (`time.perf_counter`), best of `--repeats` with the three runs taking turns; FFmpeg's
include its process start (about 20 ms here).  The lab is also timed on one thread.

Prints one JSON object. Target: lab frames/s >= ffmpeg frames/s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from codeclab.metrics.ffmpeg_reference import SsimPlanes, psnr_ssim_command, x264_round_trip
from codeclab.metrics.quality import QualityReport, measure
from codeclab.video.clips import prepare_clip

CLIP = "builtin:lab-720p"
TARGET_RATIO = 1.0


def best_times(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best wall time of each run; the runs take turns, so a busy spell hits all of them."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def run_ffmpeg(cmd: list[str], cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=60, help="frames of the clip (max 60)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the best counts")
    parser.add_argument("--threads", type=int, default=None, help="lab threads (cpu count)")
    parser.add_argument("--crf", type=int, default=30, help="x264 crf of the distorted clip")
    parser.add_argument("--cache-dir", type=Path, default=None, help="keep the built-in clip")
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="metrics-speed-") as tmp:
        work = Path(tmp)
        cache = args.cache_dir if args.cache_dir is not None else work / "cache"
        reference = prepare_clip(CLIP, work, frames=args.frames, cache_dir=cache).raw
        distorted = x264_round_trip(reference, work, crf=args.crf)
        frames = reference.frame_count
        luma = psnr_ssim_command(reference, distorted, stats=False, ssim_planes=SsimPlanes.LUMA)
        full = psnr_ssim_command(reference, distorted, stats=False, ssim_planes=SsimPlanes.ALL)
        reports: list[QualityReport] = []
        best = best_times(
            {
                "lab": lambda: reports.append(measure(reference, distorted, threads=args.threads)),
                "lab_1_thread": lambda: measure(reference, distorted, threads=1),
                "ffmpeg_luma_ssim": lambda: run_ffmpeg(luma, work),
                "ffmpeg_all_ssim": lambda: run_ffmpeg(full, work),
            },
            args.repeats,
        )

    summary = reports[-1].summary
    lab_fps = frames / best["lab"]
    luma_fps = frames / best["ffmpeg_luma_ssim"]
    all_fps = frames / best["ffmpeg_all_ssim"]
    # The yardstick is ffmpeg's faster way to get at least what the lab computes.
    ffmpeg_fps = max(luma_fps, all_fps)
    ratio = lab_fps / ffmpeg_fps
    result = {
        "clip": CLIP,
        "width": reference.format.width,
        "height": reference.format.height,
        "frames": frames,
        "distorted": f"x264 crf {args.crf}",
        "cpus": os.cpu_count(),
        "lab_threads": args.threads if args.threads is not None else os.cpu_count(),
        "repeats": args.repeats,
        "lab_fps": round(lab_fps, 1),
        "lab_1_thread_fps": round(frames / best["lab_1_thread"], 1),
        "lab_work": "PSNR of Y, U, V and SSIM of Y per frame, plus the clip summary",
        "ffmpeg_fps": round(ffmpeg_fps, 1),
        "ffmpeg_luma_ssim_fps": round(luma_fps, 1),
        "ffmpeg_all_ssim_fps": round(all_fps, 1),
        "ratio": round(ratio, 3),
        "target": f">= {TARGET_RATIO}",
        "met": ratio >= TARGET_RATIO,
        "lab_psnr_y_global": round(summary.psnr_y_global, 4),
        "lab_ssim_y_mean": round(summary.ssim_y_mean, 6),
    }
    text = json.dumps(result)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
