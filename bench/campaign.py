"""Campaign throughput: experiments per hour with the offline designer on a 352x288 clip, with
1 local worker, 2 local workers and a 2-worker Dask cluster (LocalCluster, 1 thread each).

Each mode runs the same campaign (same seed, `--iterations` no larger than the offline
designer's seed population, so every mode evaluates the very same designs) into one shared
data directory whose baselines were computed by a warm-up run first; the time of each run is
the wall clock of `run_campaign` (worker start-up included). An experiment is one stage of one
design (smoke test or search clip). The target: 2 workers >= 1.8x the rate of 1.

Each mode also reports the CPU time of the whole process tree (campaign, workers, sandboxes,
ffmpeg; counted by a cgroup, see `_cpu.py`) and so how many cores it kept busy. One worker is
not one core: the decoder's sandbox starts while the encoder runs, and metrics and VMAF use
every core. `speedup_ceiling` is ``cores / cores busy with 1 worker``, the most any number of
workers can gain on this machine; `load_average_1min` before each mode tells whether something
else was running.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from _cpu import TreeCPU
from codeclab.config import Settings
from codeclab.lab import Lab
from codeclab.pipeline.analysis import Target
from codeclab.pipeline.campaign import CampaignConfig, run_campaign
from codeclab.sandbox.jobs import SandboxSettings


def measure(lab: Lab, config: CampaignConfig, cpu: TreeCPU) -> dict[str, Any]:
    load = os.getloadavg()[0]
    cpu_before = cpu.seconds()
    started = time.monotonic()
    result = run_campaign(lab, config)
    seconds = time.monotonic() - started
    cpu_used = cpu.seconds() - cpu_before
    experiments = sum(len(t.experiments) for t in result.trials)
    return {
        "run_id": result.run.id,
        "designs": len(result.trials),
        "experiments": experiments,
        "completed_designs": sum(1 for t in result.trials if t.state().completed),
        "seconds": round(seconds, 2),
        "experiments_per_hour": round(experiments / seconds * 3600, 1),
        "designs_per_hour": round(len(result.trials) / seconds * 3600, 1),
        "cpu_seconds": round(cpu_used, 2),
        "cores_busy": round(cpu_used / seconds, 2),
        "load_average_1min": round(load, 2),
        "codecs": [t.first.codec_sha256 for t in result.trials],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clip", default="builtin:lab-cif")
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=32)
    parser.add_argument("--modes", default="local-1,local-2,dask-2")
    args = parser.parse_args()
    from distributed import LocalCluster

    report: dict[str, Any] = {
        "benchmark": "campaign",
        "cores": os.cpu_count(),
        "clip": args.clip,
        "frames": args.frames,
        "designer": "offline",
        "iterations": args.iterations,
        "modes": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-campaign-") as tmp:
        data = Path(tmp) / "data"
        settings = Settings(data_dir=data, sandbox=SandboxSettings(scratch_root=data / "scratch"))
        base = CampaignConfig(
            clips=(args.clip,),
            frames=args.frames,
            iterations=args.iterations,
            population=max(8, args.iterations),
            baselines=("x264",),
            target=Target(min_vmaf=None),
            with_vmaf=True,
            publish="never",
            seed=1,
        )
        with TreeCPU() as cpu, Lab.open(settings) as lab:
            report["cpu_counted_by"] = cpu.source
            run_campaign(lab, replace(base, iterations=1))  # warm-up: baselines, clips
            for mode in args.modes.split(","):
                kind, workers = mode.rsplit("-", 1)
                config = replace(base, workers=int(workers))
                if kind == "dask":
                    with LocalCluster(  # type: ignore[no-untyped-call]
                        n_workers=int(workers),
                        threads_per_worker=1,
                        processes=True,
                        host="127.0.0.1",
                        dashboard_address=None,
                    ) as cluster:
                        url = cluster.scheduler_address.replace("tcp://", "dask://")
                        config = replace(config, executor=url)
                        report["modes"][mode] = measure(lab, config, cpu)
                else:
                    report["modes"][mode] = measure(lab, config, cpu)
    modes = report["modes"]
    report["same_designs_in_every_mode"] = (
        len({tuple(m.pop("codecs")) for m in modes.values()}) == 1
    )
    reference = modes.get("local-1")
    if reference:
        for entry in modes.values():
            entry["speedup_vs_local_1"] = round(
                entry["experiments_per_hour"] / reference["experiments_per_hour"], 2
            )
        cores = os.cpu_count() or 1
        report["speedup_ceiling"] = round(cores / max(reference["cores_busy"], 1.0), 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
