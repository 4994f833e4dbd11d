"""Robustness of the lab against hostile codecs.

1. Runs every case of the adversarial corpus (tests/adversarial/codecs) around the
   validator, straight into the sandbox, at the strongest isolation level here and at the
   fallback level a machine without bubblewrap gets: attacks tried, contained, escaped
   (must be 0), and how many got exactly the outcome the corpus expects.
2. Measures the lab's throughput (evaluations per minute: one sandboxed encode + decode +
   measurement of a real reference codec on a small clip) alone, and again while a hostile
   codec spins in a neighbouring worker (its sandbox killed at its wall-clock limit and
   started again, for the whole measurement).

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

from codeclab.codecs import reference_codec_source
from codeclab.pipeline.evaluate import execute_point, verify_point
from codeclab.sandbox.isolation import HARNESS_FILES, fallback_level, probe_isolation
from codeclab.sandbox.jobs import SandboxSettings, run_encoder
from codeclab.sandbox.process import Limits
from codeclab.video.clips import PreparedClip, prepare_clip

ROOT = Path(__file__).resolve().parents[1]


def _corpus() -> ModuleType:
    sys.path.insert(0, str(ROOT))
    return importlib.import_module("tests.adversarial.corpus")


def attacks(work: Path) -> dict[str, Any]:
    corpus = _corpus()
    cases = corpus.load_cases()
    best = probe_isolation().level
    fallback = fallback_level()
    levels = [best] + ([fallback] if fallback is not None and fallback is not best else [])
    listener = corpus.Listener()
    secret = work / "secret.txt"
    secret.write_text(corpus.SECRET_TEXT)
    outside = work / "outside"
    outside.mkdir()
    (work / "store" / "objects").mkdir(parents=True)
    stored = work / "store" / "objects" / "object.bin"
    stored.write_text(corpus.SECRET_TEXT)
    database = work / "codeclab.db"
    database.write_bytes(b"SQLite format 3\0" + corpus.SECRET_TEXT.encode())
    base = corpus.Targets(
        clip=corpus.make_clip(work / "clip"),
        records_db=database,
        object_file=stored,
        store_dir=work / "store",
        secret=secret,
        outside=outside,
        scratch=work / "scratch",
        harness=HARNESS_FILES["harness.py"],
        listener_port=listener.port,
        token="",
    )
    tried = contained = as_expected = 0
    escaped: list[dict[str, str]] = []
    unexpected: list[dict[str, str]] = []
    per_level: dict[str, dict[str, int]] = {}
    started = time.perf_counter()
    try:
        for level in levels:
            counts = per_level.setdefault(level.value, {"tried": 0, "contained": 0})
            for case in cases:
                targets = replace(base, token=uuid.uuid4().hex[:8])
                accepted = listener.accepted
                observed = corpus.run_case(case, targets, level, work / "out")
                signs = list(observed.escaped)
                if listener.accepted != accepted:
                    signs.append("reached the lab's TCP listener")
                if corpus.outside_leftovers(targets):
                    signs.append("wrote into the lab's directory")
                if secret.read_text() != corpus.SECRET_TEXT:
                    signs.append("changed the lab's secret file")
                tried += 1
                counts["tried"] += 1
                if signs:
                    escaped.append(
                        {"case": case.name, "level": level.value, "how": "; ".join(signs)}
                    )
                    continue
                contained += 1
                counts["contained"] += 1
                if observed.matches(case.expected(level)):
                    as_expected += 1
                else:
                    unexpected.append(
                        {
                            "case": case.name,
                            "level": level.value,
                            "expected": case.expected(level).describe(),
                            "observed": observed.describe(),
                        }
                    )
    finally:
        listener.close()
    return {
        "cases": len(cases),
        "levels": [level.value for level in levels],
        "tried": tried,
        "contained": contained,
        "escaped": len(escaped),
        "escapes": escaped,
        "as_expected": as_expected,
        "unexpected": unexpected,
        "per_level": per_level,
        "seconds": round(time.perf_counter() - started, 1),
    }


def _evaluate_once(
    source: str, sha256: str, clip: PreparedClip, settings: SandboxSettings, work: Path
) -> None:
    params = {"quality": 50}
    execution = execute_point(source, sha256, clip, params, workdir=work, settings=settings)
    point = verify_point(execution, clip)
    if not point.ok:
        raise RuntimeError(f"the reference codec failed: {point.error}")


def throughput(work: Path, seconds: float, codec: str, frames: int) -> dict[str, Any]:
    source = reference_codec_source(codec)
    sha256 = hashlib.sha256(source.encode()).hexdigest()
    clip = prepare_clip("builtin:lab-cif", work / "clip", frames=frames, cache_dir=work / "cache")
    settings = SandboxSettings(scratch_root=work / "scratch")
    _evaluate_once(source, sha256, clip, settings, work / "warm")

    def rate() -> float:
        done = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            _evaluate_once(source, sha256, clip, settings, work / "eval")
            done += 1
        return done * 60.0 / (time.perf_counter() - start)

    alone = rate()
    spinner = (ROOT / "tests" / "adversarial" / "codecs" / "cpu_spin.py").read_text()
    hostile = SandboxSettings(
        limits=Limits(wall_seconds=5, cpu_seconds=10), scratch_root=work / "hostile"
    )
    stop = threading.Event()
    spun = [0]

    def neighbour() -> None:
        while not stop.is_set():
            result = run_encoder(spinner, clip.raw, {"quality": 50}, settings=hostile)
            if not result.process.timed_out:
                raise RuntimeError(
                    f"the spinning codec was not stopped by the wall clock: {result}"
                )
            spun[0] += 1

    thread = threading.Thread(target=neighbour, daemon=True)
    thread.start()
    time.sleep(1.0)  # let the spinner get going
    beside = rate()
    stop.set()
    thread.join()
    return {
        "codec": codec,
        "clip": f"builtin:lab-cif, {frames} frames, {clip.raw.format.describe()}",
        "evaluation": "one quality: sandboxed encode + decode, PSNR/SSIM measurement",
        "window_seconds": seconds,
        "evaluations_per_minute_alone": round(alone, 1),
        "evaluations_per_minute_beside_spinning_codec": round(beside, 1),
        "ratio": round(beside / alone, 3) if alone else None,
        "spinning_sandboxes_killed": spun[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0, help="each throughput window")
    parser.add_argument("--codec", default="intra_dct")
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="codeclab-robustness-") as tmp:
        work = Path(tmp)
        (work / "attacks").mkdir()
        report: dict[str, Any] = {
            "benchmark": "robustness",
            "isolation": probe_isolation().level.value,
            "attacks": attacks(work / "attacks"),
        }
        if not args.skip_throughput:
            (work / "throughput").mkdir()
            report["throughput"] = throughput(
                work / "throughput", args.seconds, args.codec, args.frames
            )
    report["python"] = sys.version.split()[0]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
