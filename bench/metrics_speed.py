"""Speed of the lab's quality pass against FFmpeg's psnr and ssim filters, same frames, same run.

Source: the built-in 1280x720 clip; distorted: the same frames encoded by x264 (crf 30)
and decoded back to raw.  Both sides read the same two raw yuv420p files from the page
cache.  The lab side is `codeclab.metrics.quality.measure` (PSNR of Y, U, V and SSIM of
Y per frame, plus the clip summary).  FFmpeg runs `psnr` and `ssim` in one command, in
two graphs: `ssim` fed the luma plane only (`extractplanes=y`, the lab's work) and `ssim`
on all three planes (its default); `ffmpeg_fps` is the faster of the two.  Times are wall
clock (`time.perf_counter`), best of `--repeats` with the runs taking turns; FFmpeg's
include its process start (about 20 ms here).  The lab is timed with `--threads` threads
(default: cpu count) and with one thread, both on its default backend (numba when
installed), and with the numpy fallback (`lab_numpy_fps`).

The lab's figures are its warm steady state: the compiled kernels are loaded once per
process, before the timed runs (`lab_warmup_s`), and that one-off cost is also measured in
fresh processes: `jit_first_call_s` with an empty numba cache (numba compiles and caches the
kernels, as on a machine's very first run), `jit_cached_call_s` with that cache in place
(every later process), each after `numba_import_s` of importing numba itself.  Medians of
the runs are reported beside the bests (`median_fps`, `ratio_of_medians`) to show the
spread on a shared machine.

Prints one JSON object. Target: lab frames/s >= ffmpeg frames/s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from codeclab.metrics.ffmpeg_reference import SsimPlanes, psnr_ssim_command, x264_round_trip
from codeclab.metrics.quality import QualityReport, measure
from codeclab.metrics.ssim import default_backend
from codeclab.video.clips import prepare_clip

CLIP = "builtin:lab-720p"
TARGET_RATIO = 1.0


# Run in a fresh interpreter: numba's import time, then the first jit_kernels() call.
FIRST_CALL_SCRIPT = """
import time
start = time.perf_counter()
import numba
imported = time.perf_counter()
from codeclab.metrics._kernels import jit_kernels
assert jit_kernels() is not None
print(imported - start, time.perf_counter() - imported)
"""


def wall_times(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Wall times of each run; the runs take turns, so a busy spell hits all of them."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return times


def first_call_seconds(cache_dir: Path) -> tuple[float, float]:
    """(numba import, first jit_kernels call) in a new process using ``cache_dir``."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    env.pop("CODECLAB_NO_NUMBA", None)
    out = subprocess.run(
        [sys.executable, "-c", FIRST_CALL_SCRIPT],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return float(out[0]), float(out[1])


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
        # This process's warm-up (numba import, kernels loaded or compiled), then the
        # one-off costs in fresh processes, the first one with an empty numba cache.
        start = time.perf_counter()
        backend = default_backend()
        warmup = time.perf_counter() - start
        numba_cache = work / "numba-cache"
        first_call = first_call_seconds(numba_cache) if backend == "numba" else None
        cached_call = first_call_seconds(numba_cache) if first_call is not None else None
        reports: list[QualityReport] = []
        times = wall_times(
            {
                "lab": lambda: reports.append(measure(reference, distorted, threads=args.threads)),
                "lab_1_thread": lambda: measure(reference, distorted, threads=1),
                "lab_numpy": lambda: measure(
                    reference, distorted, threads=args.threads, backend="numpy"
                ),
                "ffmpeg_luma_ssim": lambda: run_ffmpeg(luma, work),
                "ffmpeg_all_ssim": lambda: run_ffmpeg(full, work),
            },
            args.repeats,
        )

    summary = reports[-1].summary
    best = {name: frames / min(runs) for name, runs in times.items()}
    median = {name: frames / statistics.median(runs) for name, runs in times.items()}
    # The yardstick is ffmpeg's faster way to get at least what the lab computes.
    ffmpeg_fps = max(best["ffmpeg_luma_ssim"], best["ffmpeg_all_ssim"])
    ratio = best["lab"] / ffmpeg_fps
    ffmpeg_median = max(median["ffmpeg_luma_ssim"], median["ffmpeg_all_ssim"])
    result = {
        "clip": CLIP,
        "width": reference.format.width,
        "height": reference.format.height,
        "frames": frames,
        "distorted": f"x264 crf {args.crf}",
        "cpus": os.cpu_count(),
        "lab_threads": args.threads if args.threads is not None else os.cpu_count(),
        "lab_backend": backend,
        "repeats": args.repeats,
        "lab_fps": round(best["lab"], 1),
        "lab_1_thread_fps": round(best["lab_1_thread"], 1),
        "lab_numpy_fps": round(best["lab_numpy"], 1),
        "lab_work": "PSNR of Y, U, V and SSIM of Y per frame, plus the clip summary",
        "ffmpeg_fps": round(ffmpeg_fps, 1),
        "ffmpeg_luma_ssim_fps": round(best["ffmpeg_luma_ssim"], 1),
        "ffmpeg_all_ssim_fps": round(best["ffmpeg_all_ssim"], 1),
        "ratio": round(ratio, 3),
        "target": f">= {TARGET_RATIO}",
        "met": ratio >= TARGET_RATIO,
        "median_fps": {name: round(fps, 1) for name, fps in median.items()},
        "ratio_of_medians": round(median["lab"] / ffmpeg_median, 3),
        "numba_import_s": round(first_call[0], 3) if first_call else None,
        "jit_first_call_s": round(first_call[1], 3) if first_call else None,
        "jit_cached_call_s": round(cached_call[1], 3) if cached_call else None,
        "lab_warmup_s": round(warmup, 3),
        "lab_psnr_y_global": round(summary.psnr_y_global, 4),
        "lab_ssim_y_mean": round(summary.ssim_y_mean, 6),
    }
    text = json.dumps(result)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
