"""Per-tool ablation of the offline design space, measured by the lab itself.

From the best genome (`default_genome()`), each coding tool is switched the other way (off when
the best genome uses it, on when it does not), one at a time. Every genome is rendered, run
sandboxed through the lab's evaluation (`pipeline.evaluate.evaluate_codec`) on the same frames as
x264 medium (`baselines.ladder.run_baseline`, the lab's cached CRF ladder), and measured by the
lab's metrics. One row per tool:

* ``bd_rate_tool_on_vs_off``: BD-rate (PCHIP, PSNR-Y, percent) of the genome with the tool
  against the genome without it; negative = the tool saves that many percent of the bits;
* ``bd_rate_vs_x264_on`` / ``_off``: each genome's BD-rate against x264 medium (PSNR-Y);
* ``encode_time_ratio``: sandboxed encode seconds with the tool / without it (all quality
  points, start-up included), with the seconds themselves; the same for decode.

Prints one JSON object. The machine's load average is recorded before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from _clips import shared_clips
from codeclab.baselines.ladder import run_baseline
from codeclab.designers.offline.render import render
from codeclab.designers.offline.space import Genome, default_genome
from codeclab.metrics.bjontegaard import bd_rate
from codeclab.pipeline.analysis import candidate_curve
from codeclab.pipeline.evaluate import Evaluation, evaluate_codec
from codeclab.sandbox.jobs import SandboxSettings
from codeclab.video.clips import prepare_clip

QUALITIES = (15, 25, 35, 45, 55, 65)
"""Qualities whose PSNR-Y spans x264's CRF 22-42 ladder on carphone with the default genome."""

TOOLS: dict[str, tuple[str, Any, Any, str]] = {
    "cabac": (
        "entropy",
        "cabac",
        "lzma",
        "CABAC-like coding of modes, MVDs, coefficients vs lzma (both without B-frames, AMVP, "
        "RDOQ, 8x8 intra directions and intra P macroblocks, which need CABAC)",
    ),
    "sixtap": ("interpolation", "sixtap", "bilinear", "H.264 6-tap luma interpolation"),
    "quarter_pel": ("subpel", "quarter", "half", "quarter-pel motion vs half-pel"),
    "mv_cost": ("me_lambda", 0.4, 0.0, "MV choice by SAD + lambda * MVD bits vs SAD only"),
    "satd": (
        "me_metric",
        "satd",
        "sad",
        "4x4 Hadamard (SATD) block costs in sub-pel refinement, vector regularisation, "
        "partition and zero-vector choices vs SAD",
    ),
    "b_rd_directions": (
        "b_decision",
        "rd",
        "sad",
        "B-frame direction by SSD + lambda * bits of the coded residual vs SAD + lambda * MV bits",
    ),
    "rd_modes": ("rd_lambda", 0.25, 0.0, "Lagrangian skip / block-zeroing vs threshold"),
    "intra_modes": ("intra_pred", "modes", "flat", "DC/V/H/plane intra vs flat I-frames"),
    "intra_8x8": (
        "intra_pred",
        "blocks",
        "modes",
        "H.264's nine Intra_8x8 luma directions per 8x8 block vs DC/V/H/plane per macroblock",
    ),
    "intra_4x4": (
        "intra_pred",
        "blocks_4x4",
        "blocks",
        "I-frame quadrants as four 4x4 blocks with their own Intra_4x4 directions where RD "
        "says so vs 8x8 directions only",
    ),
    "rdoq": (
        "rdoq_lambda",
        0.2,
        0.0,
        "rate-distortion optimised quantisation (levels priced by the CABAC contexts) vs "
        "dead-zone rounding (1/3 intra, 1/6 inter)",
    ),
    "deblock": ("deblock", 3, 0, "in-loop deblocking vs none"),
    "transform_8x8": ("transform_size", 8, 4, "8x8 transform vs 4x4 (both one size)"),
    "adaptive_transform": (
        "adaptive_transform",
        1,
        0,
        "per 8x8 luma block one 8x8 or four 4x4 transforms, by RD, vs 8x8 only",
    ),
    "quant_matrix": ("quant_matrix", "slope", "flat", "sloped quantisation matrix vs flat"),
    "i_frame_qp": ("p_qp_offset", 4, 0, "P-frame step 4 QP above I-frames vs equal"),
    "b_frames": (
        "bframes",
        2,
        0,
        "two B-frames (8 QP coarser, one where motion is hard) between anchors vs none",
    ),
    "adaptive_b_frames": (
        "b_adapt",
        1,
        0,
        "one B-frame after a P-frame with many intra macroblocks, else two, vs always two",
    ),
    "temporal_direct": (
        "b_direct",
        "temporal",
        "zero",
        "B-frame skips moved by H.264 temporal direct vectors vs (0, 0)",
    ),
    "partitions": (
        "partitions",
        "8x8",
        "16x16",
        "P-frame macroblocks split into four 8x8 partitions where RD says so vs whole",
    ),
    "p_intra": (
        "p_intra",
        1,
        0,
        "P-frame macroblocks coded intra (DC/V/H/plane) where RD says so vs always inter",
    ),
    "median_skip": ("skip_mv", "median", "zero", "H.264 P_Skip vectors vs (0, 0) skips"),
    "amvp": ("mv_pred", "amvp", "median", "median-or-temporal MV predictor vs median only"),
    "two_refs": ("num_refs", 2, 1, "two reference frames vs one"),
    "mbtree": (
        "mbtree",
        1,
        0,
        "per-macroblock QP offsets of I- and P-frames from a 20-frame lookahead (x264's "
        "macroblock tree) vs one QP per frame",
    ),
}
"""tool -> (knob, value with the tool, value without it, what is compared). The genome on the
side the best genome is not on differs from it in that knob only."""

COMMON: dict[str, dict[str, Any]] = {
    "cabac": {
        "bframes": 0,
        "mv_pred": "median",
        "rdoq_lambda": 0.0,
        "intra_pred": "modes",
        "p_intra": 0,
        "adaptive_transform": 0,
    },
    "rdoq": {"intra_rounding": 0.33, "inter_rounding": 0.17},
    "intra_modes": {"intra_pred": "modes"},
    "intra_8x8": {"intra_pred": "blocks"},
    "transform_8x8": {"adaptive_transform": 0},
}
"""Changes made on both sides of a tool's comparison (B-frames, AMVP, RDOQ and adaptive
transform sizes exist only with CABAC; the dead zones RDOQ replaces are the tuned ones;
macroblock-wide intra modes are compared with flat I-frames and 8x8 directions with
macroblock-wide modes; 8x8 vs 4x4 transforms compares one size with the other)."""


def tool_base(best: Genome, tool: str) -> Genome:
    """The genome `tool` is measured from: `best` with the tool's COMMON changes; raises
    ValueError when its knob holds neither of the tool's two values (the row would compare
    something else than it says)."""
    knob, with_tool, without_tool, _ = TOOLS[tool]
    base = replace(best, **COMMON.get(tool, {})).canonical()
    if getattr(base, knob) not in (with_tool, without_tool):
        raise ValueError(
            f"tool {tool}: the genome it is measured from has {knob}="
            f"{getattr(base, knob)!r}, neither {with_tool!r} nor {without_tool!r}"
        )
    return base


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def evaluate(genome: Genome, clip: Any, qualities: list[int], work: Path, name: str) -> Evaluation:
    return evaluate_codec(
        render(genome),
        clip,
        qualities,
        workdir=work / name,
        codec_name=name,
        settings=SandboxSettings(scratch_root=work / "scratch"),
    )


def summary(evaluation: Evaluation, reference: list[tuple[float, float]]) -> dict[str, Any]:
    curve = candidate_curve(evaluation.points, "psnr_y")
    bd = bd_rate(reference, curve)
    return {
        "ok": evaluation.ok,
        "bd_rate_vs_x264": None if bd.value is None else round(bd.value, 1),
        "encode_seconds": round(sum(p.encode_seconds for p in evaluation.points), 2),
        "decode_seconds": round(sum(p.decode_seconds for p in evaluation.points), 2),
        "curve_kbps_psnr_y": [(round(r / 1e3, 1), round(q, 2)) for r, q in curve],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", nargs="*", default=["carphone_qcif.y4m"])
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--qualities", default=",".join(map(str, QUALITIES)))
    parser.add_argument("--tools", nargs="*", choices=sorted(TOOLS), help="default: all")
    args = parser.parse_args()
    qualities = [int(q) for q in args.qualities.split(",")]
    best = default_genome()
    report: dict[str, Any] = {
        "benchmark": "ablation",
        "best_genome": best.to_dict(),
        "best_design": best.describe(),
        "reference": "x264 medium (CRF ladder, same frames)",
        "metric": "psnr_y",
        "bd_method": "pchip",
        "qualities": qualities,
        "frames": args.frames,
        "load_average_before": load_average(),
        "clips": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-ablation-") as tmp:
        work = Path(tmp)
        for path in shared_clips(args.clips):
            started = time.monotonic()
            clip = prepare_clip(str(path), work / "clips", frames=args.frames)
            x264 = run_baseline(clip, "x264", cache_dir=work / "cache", workdir=work / "x264")
            reference = x264.curve("psnr_y")
            best_eval = evaluate(best, clip, qualities, work, "best")
            best_row = summary(best_eval, reference)
            best_curve = candidate_curve(best_eval.points, "psnr_y")
            rows = []
            for tool in args.tools or list(TOOLS):
                knob, with_tool, without_tool, what = TOOLS[tool]
                base, base_row, base_curve = tool_base(best, tool), best_row, best_curve
                if tool in COMMON:
                    base_eval = evaluate(base, clip, qualities, work, f"{tool}-base")
                    base_row = summary(base_eval, reference)
                    base_curve = candidate_curve(base_eval.points, "psnr_y")
                uses_tool = getattr(base, knob) == with_tool
                other = without_tool if uses_tool else with_tool
                flipped = replace(base, **{knob: other}).canonical()
                if flipped.key() == base.key():
                    continue
                flipped_eval = evaluate(flipped, clip, qualities, work, tool)
                flipped_row = summary(flipped_eval, reference)
                flipped_curve = candidate_curve(flipped_eval.points, "psnr_y")
                on, off = (base_row, flipped_row) if uses_tool else (flipped_row, base_row)
                on_curve, off_curve = (
                    (base_curve, flipped_curve) if uses_tool else (flipped_curve, base_curve)
                )
                gain = bd_rate(off_curve, on_curve)
                row = {
                    "tool": tool,
                    "compares": what,
                    "knob": knob,
                    "in_best_genome": uses_tool,
                    "value_on": with_tool,
                    "value_off": without_tool,
                    "both_sides": COMMON.get(tool, {}),
                    "bd_rate_tool_on_vs_off": None if gain.value is None else round(gain.value, 1),
                    "bd_rate_vs_x264_on": on["bd_rate_vs_x264"],
                    "bd_rate_vs_x264_off": off["bd_rate_vs_x264"],
                    "encode_seconds_on": on["encode_seconds"],
                    "encode_seconds_off": off["encode_seconds"],
                    "encode_time_ratio": _ratio(on["encode_seconds"], off["encode_seconds"]),
                    "decode_time_ratio": _ratio(on["decode_seconds"], off["decode_seconds"]),
                    "ok": on["ok"] and off["ok"],
                }
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)  # as it goes
            report["clips"][path.name] = {
                "frames": clip.frame_count,
                "x264_curve_kbps_psnr_y": [(round(r / 1e3, 1), round(q, 2)) for r, q in reference],
                "best": best_row,
                "tools": rows,
                "minutes": round((time.monotonic() - started) / 60, 2),
            }
    report["load_average_after"] = load_average()
    print(json.dumps(report, indent=2))


def _ratio(on: float, off: float) -> float | None:
    return round(on / off, 2) if off > 0 else None


if __name__ == "__main__":
    main()
