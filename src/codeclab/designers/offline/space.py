"""The codec design space: a genome of coding-tool knobs, each with its domain.

A `Genome` is one point of the space; `codeclab.designers.offline.render` turns it into a
standalone codec module. Every knob's domain is an ordered tuple, so "a neighbour" of a value
is the value beside it (a larger block, the next search pattern, one more dB of offset).

Genomes are kept canonical (`Genome.canonical`): knobs that cannot change the codec (motion
knobs of an all-intra codec, the zlib level of an lzma codec, a transform larger than the
macroblock) are set to one fixed value, so two genomes that render the same codec have the
same `key`.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

Knob = int | float | str


@dataclass(frozen=True)
class KnobSpec:
    """One knob: its domain (ordered: neighbours are adjacent values) and what it does."""

    name: str
    domain: tuple[Knob, ...]
    doc: str


KNOBS: tuple[KnobSpec, ...] = (
    KnobSpec("macroblock", (8, 16), "luma size of a motion-compensated block (chroma: half)"),
    KnobSpec("transform_size", (4, 8, 16), "residual transform size (luma; at most macroblock)"),
    KnobSpec(
        "adaptive_transform",
        (0, 1),
        "luma 8x8 blocks coded by one 8x8 transform, or each by one 8x8 or four 4x4 ones, "
        "whichever costs less SSD + lambda * bits (H.264 High's adaptive transform size; 8x8 "
        "transforms, CABAC only)",
    ),
    KnobSpec("transform", ("dct", "wht"), "integer-exact DCT-II or Walsh-Hadamard basis"),
    KnobSpec("quant_curve", ("ijg", "log"), "quality -> step: IJG scaling or 6 steps per octave"),
    KnobSpec("quant_matrix", ("flat", "slope", "jpeg"), "per-frequency step weights"),
    KnobSpec(
        "intra_pred",
        ("flat", "modes", "blocks", "blocks_4x4"),
        "I-frame prediction: flat 128 with DC differences, or per macroblock the best of "
        "DC / vertical / horizontal / plane from reconstructed neighbours, or that for chroma "
        "and per 8x8 luma block the best of H.264's nine Intra_8x8 directions (16x16 "
        "macroblocks, transforms up to 8x8, CABAC only), or per 8x8 luma block that or four "
        "4x4 blocks each with its own of the nine Intra_4x4 directions (H.264's Intra_NxN; "
        "needs adaptive transform sizes)",
    ),
    KnobSpec("intra_rounding", (0.5, 0.42, 0.33), "dead-zone rounding offset of I-frames"),
    KnobSpec("inter_rounding", (0.17, 0.25, 0.33, 0.5), "dead-zone rounding offset of P-frames"),
    KnobSpec("chroma_qp_offset", (-2, 0, 2, 4, 6), "chroma step offset (6 = twice the step)"),
    KnobSpec("p_qp_offset", (0, 1, 2, 3, 4, 6), "P-frame step offset against I-frames"),
    KnobSpec(
        "mbtree",
        (0, 1),
        "per-macroblock QP offsets of I- and P-frames from a lookahead of the next source "
        "frames: finer where later frames inherit much of a macroblock (x264's macroblock "
        "tree; CABAC, 16x16 macroblocks and 8x8 intra directions only)",
    ),
    KnobSpec("intra_period", (1, 10, 30, 60, 250), "frames between I-frames (1 = all intra)"),
    KnobSpec(
        "bframes",
        (0, 1, 2),
        "B-frames between anchor frames (forward, backward, bi-predicted or skipped "
        "macroblocks; not references); with CABAC only",
    ),
    KnobSpec(
        "b_qp_offset",
        (2, 4, 6, 8),
        "B-frame step offset against P-frames (B-frames are never references)",
    ),
    KnobSpec(
        "b_direct",
        ("zero", "temporal"),
        "vectors of a skipped B-frame macroblock: (0, 0), or H.264's temporal direct (the "
        "newer anchor's vector of the macroblock, split by the frames' distances)",
    ),
    KnobSpec(
        "b_decision",
        ("sad", "rd"),
        "direction of a coded B-frame macroblock (forward, backward or both): least SAD + "
        "lambda * vector bits, or least Lagrangian cost SSD + lambda * bits after coding the "
        "residual of each (x264's B-frame RD mode decision; needs RD decisions)",
    ),
    KnobSpec(
        "b_adapt",
        (0, 1),
        "B-frames per group: always `bframes`, or one after a P-frame that needed many intra "
        "macroblocks (motion too hard for long groups; needs p_intra and 2+ B-frames)",
    ),
    KnobSpec("num_refs", (1, 2), "reference frames a macroblock may predict from"),
    KnobSpec(
        "p_intra",
        (0, 1),
        "P-frame macroblocks may be intra (DC / V / H / plane from decoded neighbours) where "
        "that costs less (16x16 macroblocks, CABAC only)",
    ),
    KnobSpec(
        "search",
        ("diamond", "coarse_to_fine", "hybrid", "full"),
        "integer motion search: diamond descent from the last frame's vector, exhaustive on "
        "decimated planes refined at full size, both as start points of a diamond descent "
        "(hybrid), or exhaustive",
    ),
    KnobSpec(
        "partitions",
        ("16x16", "8x8"),
        "P-frame motion per 16x16 macroblock, or also split into four 8x8 partitions with "
        "their own vectors where that pays (16x16 macroblocks, CABAC only)",
    ),
    KnobSpec("search_range", (4, 8, 16, 32, 48, 64), "motion search range in luma pixels (+-)"),
    KnobSpec("subpel", ("none", "half", "quarter"), "sub-pixel motion precision"),
    KnobSpec(
        "interpolation",
        ("bilinear", "sixtap"),
        "sub-pixel luma interpolation: bilinear, or H.264's 6-tap half-pel filter with "
        "quarter-pel means (chroma stays bilinear)",
    ),
    KnobSpec("zero_bias", (0, 50, 100, 200, 400), "SAD (per 256 pixels) favouring (0, 0)/skip"),
    KnobSpec(
        "skip_mv",
        ("zero", "median"),
        "vector of a skipped macroblock: (0, 0), or the median of its neighbours' (H.264 P_Skip)",
    ),
    KnobSpec(
        "mv_pred",
        ("median", "amvp"),
        "motion vector predictor: the neighbours' median, or per macroblock the cheaper of it "
        "and the previous anchor's vector of the same macroblock (a coded choice; CABAC only)",
    ),
    KnobSpec(
        "me_lambda",
        (0.0, 0.2, 0.4, 0.8),
        "lambda/step of motion vectors chosen by SAD + lambda * bits of their difference "
        "from the neighbours' median (0 = SAD only)",
    ),
    KnobSpec(
        "me_metric",
        ("sad", "satd"),
        "block cost of sub-pel refinement, vector regularisation, partition and skip choices: "
        "SAD, or SATD (absolute 4x4 Hadamard coefficients of the difference, halved, as x264's "
        "subme), which tracks what the transform will code (sub-pel motion only)",
    ),
    KnobSpec(
        "rd_lambda", (0.0, 0.06, 0.12, 0.25, 0.4, 0.6), "lambda/step^2 of RD decisions (0 = off)"
    ),
    KnobSpec(
        "rdoq_lambda",
        (0.0, 0.1, 0.14, 0.17, 0.2, 0.25),
        "lambda/step^2 of rate-distortion optimised quantisation, levels priced by the CABAC "
        "contexts' probabilities (0 = dead-zone rounding; CABAC only)",
    ),
    KnobSpec("deblock", (0, 1, 2, 3), "in-loop deblocking strength (0 = off)"),
    KnobSpec(
        "downscale_below", (0, 20, 35, 50), "code at half size below this quality (0 = never)"
    ),
    KnobSpec(
        "entropy",
        ("zlib", "lzma", "range", "cabac"),
        "back end: zlib, lzma, adaptive range coder of bytes, or context-adaptive binary "
        "arithmetic coding of the symbols (CABAC-like)",
    ),
    KnobSpec("zlib_level", (1, 6, 9), "zlib compression level"),
)
"""Every knob of the space, in genome field order."""

SPECS: Mapping[str, KnobSpec] = {spec.name: spec for spec in KNOBS}

FULL_SEARCH_MAX_RANGE = 16
"""A full search beyond +-16 costs over a second per CIF frame: canonical genomes cap it."""


@dataclass(frozen=True)
class Genome:
    """One codec design: a value from each knob's domain (see `KNOBS`)."""

    macroblock: int = 16
    transform_size: int = 8
    adaptive_transform: int = 0
    transform: str = "dct"
    quant_curve: str = "log"
    quant_matrix: str = "flat"
    intra_pred: str = "flat"
    intra_rounding: float = 0.5
    inter_rounding: float = 0.17
    chroma_qp_offset: int = 0
    p_qp_offset: int = 0
    mbtree: int = 0
    intra_period: int = 30
    bframes: int = 0
    b_qp_offset: int = 2
    b_direct: str = "zero"
    b_decision: str = "sad"
    b_adapt: int = 0
    num_refs: int = 1
    p_intra: int = 0
    search: str = "coarse_to_fine"
    partitions: str = "16x16"
    search_range: int = 16
    subpel: str = "none"
    interpolation: str = "bilinear"
    zero_bias: int = 100
    skip_mv: str = "zero"
    mv_pred: str = "median"
    me_lambda: float = 0.0
    me_metric: str = "sad"
    rd_lambda: float = 0.0
    rdoq_lambda: float = 0.0
    deblock: int = 0
    downscale_below: int = 0
    entropy: str = "zlib"
    zlib_level: int = 9

    def __post_init__(self) -> None:
        for spec in KNOBS:
            value = getattr(self, spec.name)
            if value not in spec.domain or type(value) is not type(spec.domain[0]):
                raise ValueError(
                    f"genome knob {spec.name}={value!r} is outside its domain {spec.domain}"
                )

    # --- identity ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Knob]:
        return dict(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Genome:
        """The genome of `data` (missing knobs take their defaults); raises ValueError."""
        unknown = sorted(set(data) - set(SPECS))
        if unknown:
            raise ValueError(f"unknown genome knobs {unknown}; known: {sorted(SPECS)}")
        values: dict[str, Any] = {}
        for name, value in data.items():
            domain_type = type(SPECS[name].domain[0])
            if domain_type is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            values[name] = value
        return cls(**values)

    def key(self) -> str:
        """Hex digest naming the codec this genome renders (equal for equal canonical forms)."""
        text = json.dumps(self.canonical().to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def intra_only(self) -> bool:
        return self.intra_period == 1

    def canonical(self) -> Genome:
        """The same codec with every knob that cannot matter set to its default."""
        base = Genome()
        changes: dict[str, Any] = {"transform_size": min(self.transform_size, self.macroblock)}
        if self.intra_only:
            for name in (
                "inter_rounding",
                "partitions",
                "p_qp_offset",
                "bframes",
                "num_refs",
                "search",
                "search_range",
                "subpel",
                "interpolation",
                "zero_bias",
                "skip_mv",
                "mv_pred",
                "me_lambda",
                "rd_lambda",
            ):
                changes[name] = getattr(base, name)
        elif self.search == "full":
            changes["search_range"] = min(self.search_range, FULL_SEARCH_MAX_RANGE)
        if self.intra_only or self.subpel == "none":
            changes["interpolation"] = base.interpolation
            changes["me_metric"] = base.me_metric
        if self.intra_pred in ("blocks", "blocks_4x4") and (
            self.entropy != "cabac" or self.macroblock != 16 or self.transform_size > 8
        ):
            changes["intra_pred"] = "modes"
        elif self.intra_pred == "blocks_4x4" and (
            not self.adaptive_transform or self.transform_size != 8
        ):
            changes["intra_pred"] = "blocks"
        if self.entropy != "cabac" or self.intra_only or self.macroblock != 16:
            changes["p_intra"] = base.p_intra
        if self.entropy != "cabac" or min(self.transform_size, self.macroblock) != 8:
            changes["adaptive_transform"] = base.adaptive_transform
        if self.entropy != "cabac":
            changes["rdoq_lambda"] = base.rdoq_lambda
        elif self.rdoq_lambda:
            changes["intra_rounding"] = base.intra_rounding
            changes["inter_rounding"] = base.inter_rounding
        if self.intra_only or self.entropy != "cabac":
            changes["bframes"] = 0
            changes["mv_pred"] = base.mv_pred
            changes["partitions"] = base.partitions
        if self.macroblock != 16:
            changes["partitions"] = base.partitions
        no_b_frames = self.intra_only or self.entropy != "cabac" or not self.bframes
        if no_b_frames:
            changes["b_qp_offset"] = base.b_qp_offset
            changes["b_direct"] = base.b_direct
        if no_b_frames or not self.rd_lambda:
            changes["b_decision"] = base.b_decision
        if (
            self.intra_only
            or self.entropy != "cabac"
            or self.bframes < 2
            or not self.p_intra
            or self.macroblock != 16
        ):
            changes["b_adapt"] = base.b_adapt
        if self.entropy != "zlib":
            changes["zlib_level"] = base.zlib_level
        if self.intra_only or changes.get("intra_pred", self.intra_pred) not in (
            "blocks",
            "blocks_4x4",
        ):
            changes["mbtree"] = base.mbtree
        return replace(self, **changes)

    # --- variation --------------------------------------------------------------------------

    def mutate(self, rng: random.Random, rate: float) -> Genome:
        """Each knob moves with probability `rate` (to a neighbour 3 times in 4, else anywhere);
        at least one knob changes the canonical codec."""
        for _ in range(100):
            values = self.to_dict()
            for spec in KNOBS:
                if rng.random() < rate:
                    values[spec.name] = _move(spec, values[spec.name], rng)
            child = Genome.from_dict(values)
            if child.key() != self.key():
                return child.canonical()
        for spec in rng.sample(KNOBS, len(KNOBS)):  # a rate too low to move anything
            current = getattr(self, spec.name)
            for value in rng.sample(spec.domain, len(spec.domain)):
                child = Genome.from_dict({**self.to_dict(), spec.name: value})
                if value != current and child.key() != self.key():
                    return child.canonical()
        raise RuntimeError("no single-knob change alters this genome's codec")

    def crossover(self, other: Genome, rng: random.Random) -> Genome:
        """Uniform crossover: each knob from either parent with equal probability."""
        mine, theirs = self.to_dict(), other.to_dict()
        values = {spec.name: (mine if rng.random() < 0.5 else theirs)[spec.name] for spec in KNOBS}
        return Genome.from_dict(values).canonical()

    @classmethod
    def random(cls, rng: random.Random) -> Genome:
        """A genome with every knob drawn uniformly from its domain."""
        return cls.from_dict({spec.name: rng.choice(spec.domain) for spec in KNOBS}).canonical()

    def cheaper(self) -> Genome:
        """The same design with its costliest knobs (time and memory) turned down."""
        changes: dict[str, Any] = {
            "search": "diamond" if self.search == "full" else self.search,
            "search_range": min(self.search_range, 16),
            "num_refs": 1,
            "subpel": "half" if self.subpel == "quarter" else self.subpel,
            "entropy": "zlib" if self.entropy == "range" else self.entropy,
        }
        return replace(self, **changes).canonical()

    # --- text -------------------------------------------------------------------------------

    def describe(self) -> str:
        """One readable line, e.g. "inter (I every 30), 16x16 MB, 8x8 DCT, flat log quant..."."""
        g = self.canonical()
        parts = [
            "all-intra" if g.intra_only else f"inter (I every {g.intra_period})",
            f"{g.macroblock}x{g.macroblock} MB",
            f"{g.transform_size}x{g.transform_size}"
            + ("/4x4" if g.adaptive_transform else "")
            + f" {g.transform.upper()}",
            f"{g.quant_matrix} {g.quant_curve} quant",
            {
                "flat": "flat intra",
                "modes": "intra DC/V/H/plane",
                "blocks": "intra 8x8 directions",
                "blocks_4x4": "intra 8x8 / 4x4 directions",
            }[g.intra_pred],
            (
                f"RDOQ lambda {g.rdoq_lambda:g}"
                if g.rdoq_lambda
                else f"dead zone {g.intra_rounding:g}"
                + ("" if g.intra_only else f"/{g.inter_rounding:g}")
            ),
        ]
        if g.chroma_qp_offset:
            parts.append(f"chroma QP {g.chroma_qp_offset:+d}")
        if not g.intra_only:
            if g.p_qp_offset:
                parts.append(f"P QP {g.p_qp_offset:+d}")
            if g.mbtree:
                parts.append("macroblock-tree QP")
            subpel = {"none": "integer", "half": "half-pel", "quarter": "quarter-pel"}[g.subpel]
            if g.subpel != "none" and g.interpolation == "sixtap":
                subpel += " 6-tap"
            refs = f", {g.num_refs} refs" if g.num_refs > 1 else ""
            if g.p_intra:
                parts.append("intra macroblocks in P-frames")
            if g.bframes:
                plural = "s" if g.bframes > 1 else ""
                direct = ", temporal direct" if g.b_direct == "temporal" else ""
                direct += ", adaptive" if g.b_adapt else ""
                direct += ", RD directions" if g.b_decision == "rd" else ""
                parts.append(f"{g.bframes} B-frame{plural} (QP {g.b_qp_offset:+d}{direct})")
            split = ", 8x8 partitions" if g.partitions == "8x8" else ""
            search = g.search.replace("_", "-")
            parts.append(f"{search} {subpel} ME +-{g.search_range}{refs}{split}")
            parts.append(f"skip bias {g.zero_bias}")
            if g.skip_mv == "median":
                parts.append("median-vector skip")
            if g.mv_pred == "amvp":
                parts.append("AMVP (median or temporal MV predictor)")
            if g.me_lambda:
                parts.append(f"MV cost lambda {g.me_lambda:g}")
            if g.me_metric == "satd":
                parts.append("SATD motion costs")
            parts.append(f"RD lambda {g.rd_lambda:g}" if g.rd_lambda else "threshold skip")
        parts.append(f"deblock {g.deblock}" if g.deblock else "no deblock")
        if g.downscale_below:
            parts.append(f"half size below q{g.downscale_below}")
        entropy = {
            "zlib": f"zlib-{g.zlib_level}",
            "lzma": "lzma",
            "range": "range coder",
            "cabac": "CABAC",
        }
        parts.append(f"{entropy[g.entropy]} entropy")
        return ", ".join(parts)


def _move(spec: KnobSpec, value: Knob, rng: random.Random) -> Knob:
    """A different value of `spec`: a neighbour of `value` 3 times in 4, else any other."""
    domain = spec.domain
    if rng.random() >= 0.75:
        return rng.choice([v for v in domain if v != value])
    index = domain.index(value)
    neighbours = [domain[i] for i in (index - 1, index + 1) if 0 <= i < len(domain)]
    return rng.choice(neighbours)


def intra_dct_like() -> Genome:
    """The space's equivalent of the intra_dct reference codec."""
    return Genome(
        macroblock=16,
        transform_size=8,
        transform="dct",
        quant_curve="ijg",
        quant_matrix="jpeg",
        intra_rounding=0.5,
        intra_period=1,
        deblock=0,
        downscale_below=0,
        entropy="zlib",
        zlib_level=9,
    ).canonical()


def inter_dct_like() -> Genome:
    """The space's equivalent of the inter_dct reference codec."""
    return replace(
        intra_dct_like(),
        intra_period=30,
        inter_rounding=0.17,
        search="coarse_to_fine",
        search_range=16,
        subpel="none",
        zero_bias=100,
        rd_lambda=0.0,
        num_refs=1,
    ).canonical()


def default_genome() -> Genome:
    """A strong starting design: the inter codec with the tools that measured best together
    (bench/ablation.py): CABAC, hybrid quarter-pel 6-tap motion search with MV costs, SATD
    block costs and AMVP, two reference frames, 8x8 partitions, intra macroblocks in
    P-frames, RD decisions, rate-distortion optimised quantisation, two B-frames per P-frame
    (one where motion is hard) with temporal direct skips and directions chosen by RD, H.264's
    8x8 and 4x4 intra directions, 8x8 or 4x4 transforms per block by RD with a sloped matrix,
    I-frames 4 QP finer than P-frames (B-frames 8 coarser), deblocking at strength 3."""
    return replace(
        inter_dct_like(),
        transform_size=8,
        quant_curve="log",
        quant_matrix="slope",
        intra_pred="blocks_4x4",
        adaptive_transform=1,
        intra_rounding=0.33,
        subpel="quarter",
        interpolation="sixtap",
        deblock=3,
        chroma_qp_offset=2,
        p_qp_offset=4,
        mv_pred="amvp",
        search="hybrid",
        search_range=48,
        partitions="8x8",
        num_refs=2,
        me_lambda=0.4,
        me_metric="satd",
        rd_lambda=0.25,
        rdoq_lambda=0.2,
        p_intra=1,
        bframes=2,
        b_adapt=1,
        b_qp_offset=8,
        b_direct="temporal",
        b_decision="rd",
        entropy="cabac",
    ).canonical()


def knob_names() -> tuple[str, ...]:
    return tuple(f.name for f in fields(Genome))
