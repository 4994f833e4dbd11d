"""Render a genome to a standalone codec module.

Why fragments rather than string templates: the fragments (`fragments/`) are ordinary Python
modules, so ruff, mypy and the tests check and run them as they are; rendering only copies
their top-level definitions, verbatim, by name. The renderer starts from ``Encoder`` and
``Decoder``, follows the names each copied definition mentions, and binds every *switch*
(a name with one implementation per knob value, e.g. ``entropy_encode``) to the implementation
the genome picks, so a module holds only the code its genome reaches (an all-intra codec has
no motion search, prediction or mode decision at all). Knob values are baked in as constants and the
whole genome as a ``GENOME = {...}`` literal, which `genome_from_source` reads back.

The text depends only on the genome (and the fragments' source): same genome, same bytes.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from types import ModuleType

from codeclab.designers.offline import fragments
from codeclab.designers.offline.fragments import (
    cabac,
    codec,
    config,
    entropy,
    frame,
    lookahead,
    loopfilter,
    motion,
    transform,
    types,
)
from codeclab.designers.offline.space import Genome

FRAGMENT_MODULES: tuple[ModuleType, ...] = (
    types,
    config,
    transform,
    motion,
    loopfilter,
    entropy,
    frame,
    lookahead,
    cabac,
    codec,
)
"""Fragment modules in definition order (a module only uses names of earlier ones at import)."""

ROOTS = ("Encoder", "Decoder")

SUBPEL_SCALE: Mapping[str, int] = {"none": 1, "half": 2, "quarter": 4}
LUMA_MODE_CODERS: Mapping[str, str] = {
    "flat": "none",
    "modes": "none",
    "blocks": "8x8",
    "blocks_4x4": "nested",
}
"""intra_pred -> the coder of its luma modes (`luma_modes_*`, `parse_luma_modes_*`)."""


def switch_choices(genome: Genome) -> dict[str, str]:
    """Switch name -> the fragment function that implements it for `genome`."""
    g = genome.canonical()
    cabac_on = g.entropy == "cabac"
    intra = "blocks" if g.intra_pred == "blocks_4x4" else g.intra_pred
    byte_entropy = "zlib" if cabac_on else g.entropy
    return {
        "basis_1d": f"basis_{g.transform}",
        "quality_base": f"base_{g.quant_curve}",
        "quant_weights": f"weights_{g.quant_matrix}",
        "motion_search": f"search_{g.search}",
        "partition_search": "split_8x8" if g.partitions == "8x8" else "split_none",
        "block_cost": f"block_{g.me_metric}",
        "skip_vectors": f"skip_{g.skip_mv}",
        "luma_phases": "phase_planes_sixtap" if g.interpolation == "sixtap" else "phase_planes",
        "predict_luma": (
            "predict_plane_phases" if g.interpolation == "sixtap" else "predict_plane"
        ),
        "deblock": "deblock_on" if g.deblock else "deblock_off",
        "decide_modes": "decide_rd" if g.rd_lambda else "decide_threshold",
        "quantise_levels": "levels_rdoq" if g.rdoq_lambda else "levels_deadzone",
        "luma_levels": "luma_adaptive" if g.adaptive_transform else "luma_fixed",
        "level_prices": "prices_cabac" if g.rdoq_lambda else "prices_none",
        "entropy_encode": f"encode_{byte_entropy}",
        "entropy_decode": f"decode_{byte_entropy}",
        "payload_models": "models_cabac" if cabac_on else "entropy_models",
        "write_payload": "payload_cabac" if cabac_on else "payload_sections",
        "read_payload": "parse_cabac" if cabac_on else "parse_payload_sections",
        "inter_coding": "no_inter" if g.intra_only else "code_inter",
        "intra_macroblocks": "intra_mbs" if g.p_intra else "intra_none",
        "group_b_frames": "b_frames_adaptive" if g.b_adapt else "b_frames_fixed",
        "encode_b": "encode_b_frame" if g.bframes else "no_b_frame_encode",
        "decode_b": "decode_b_frame" if g.bframes else "no_b_frame_decode",
        "direct_vectors": f"direct_{g.b_direct}",
        "b_direction": f"b_direction_{g.b_decision}",
        "intra_coding": f"intra_levels_{intra}",
        "intra_planes": f"intra_planes_{intra}",
        "luma_mode_bins": f"luma_modes_{LUMA_MODE_CODERS[g.intra_pred]}",
        "parse_luma_modes": f"parse_luma_modes_{LUMA_MODE_CODERS[g.intra_pred]}",
        "predict_frame": "no_prediction" if g.intra_only else "motion_prediction",
    }


def knob_constants(genome: Genome) -> dict[str, object]:
    """The value of every name of `fragments.config` for `genome`."""
    g = genome.canonical()
    return {
        "GENOME": g.to_dict(),
        "MACROBLOCK": g.macroblock,
        "LUMA_T": g.transform_size,
        "ADAPTIVE_TRANSFORM": g.adaptive_transform,
        "CHROMA_T": min(g.transform_size, g.macroblock // 2),
        "INTRA_ROUNDING": g.intra_rounding,
        "INTRA_PRED": int(g.intra_pred != "flat"),
        "INTRA_4X4": int(g.intra_pred == "blocks_4x4"),
        "INTER_ROUNDING": g.inter_rounding,
        "CHROMA_QP_OFFSET": g.chroma_qp_offset,
        "P_QP_OFFSET": g.p_qp_offset,
        "MBTREE": g.mbtree,
        "P_INTRA": g.p_intra,
        "INTRA_PERIOD": g.intra_period,
        "NUM_REFS": g.num_refs,
        "SEARCH_RANGE": g.search_range,
        "SUBPEL": SUBPEL_SCALE[g.subpel],
        "ZERO_BIAS": g.zero_bias,
        "SKIP_MEDIAN": int(g.skip_mv == "median"),
        "AMVP": int(g.mv_pred == "amvp"),
        "PARTITIONS": int(g.partitions == "8x8"),
        "RD_LAMBDA": g.rd_lambda,
        "RDOQ_LAMBDA": g.rdoq_lambda,
        "ME_LAMBDA": g.me_lambda,
        "DEBLOCK": g.deblock,
        "BFRAMES": g.bframes,
        "B_QP_OFFSET": g.b_qp_offset,
        "DOWNSCALE_BELOW": g.downscale_below,
        "ZLIB_LEVEL": g.zlib_level,
    }


# --- the fragment library ----------------------------------------------------------------


@dataclass(frozen=True)
class Definition:
    """One top-level statement of a fragment module, as copied into a codec."""

    names: tuple[str, ...]
    kind: str  # "type", "knob", "plain" (assignment without calls), "def", "computed", "switch"
    source: str
    uses: frozenset[str]
    order: int


@dataclass(frozen=True)
class Library:
    """Every definition of the fragment modules by name, and the imports they rely on."""

    definitions: Mapping[str, Definition]
    imports: Mapping[str, str]  # bound name -> import statement

    def closure(self, switches: Mapping[str, str]) -> list[Definition]:
        """Definitions reachable from `ROOTS`, switches resolved, in `order`."""
        seen: set[str] = set()
        found: dict[int, Definition] = {}
        pending = list(ROOTS)
        while pending:
            name = pending.pop()
            if name in seen:
                continue
            seen.add(name)
            if name in switches:
                pending.append(switches[name])
                continue
            definition = self.definitions.get(name)
            if definition is None or definition.kind == "knob":
                continue
            found[definition.order] = definition
            pending.extend(sorted(definition.uses))
        return [found[order] for order in sorted(found)]

    def used_names(self, definitions: list[Definition]) -> set[str]:
        names: set[str] = set()
        for definition in definitions:
            names |= definition.uses
        return names


@cache
def library() -> Library:
    """The parsed fragment modules (cached: the fragments do not change while running)."""
    definitions: dict[str, Definition] = {}
    imports: dict[str, str] = {}
    order = 0
    for module in FRAGMENT_MODULES:
        text = inspect.getsource(module)
        tree = ast.parse(text)
        for node in tree.body:
            order += 1
            if isinstance(node, ast.Import | ast.ImportFrom):
                _record_import(node, imports)
                continue
            if isinstance(node, ast.Expr):
                continue  # the module docstring
            names, kind = _classify(node, module, definitions)
            segment = ast.get_source_segment(text, node)
            if segment is None:
                raise RuntimeError(f"fragment {module.__name__} line {node.lineno}: no source")
            uses = frozenset(n.id for n in ast.walk(node) if isinstance(n, ast.Name)) - set(names)
            definition = Definition(names, kind, segment, uses, order)
            for name in names:
                if name in definitions and kind != "switch":
                    raise RuntimeError(f"fragment name {name!r} is defined twice")
                if kind != "switch":
                    definitions[name] = definition
    return Library(definitions, imports)


def _record_import(node: ast.Import | ast.ImportFrom, imports: dict[str, str]) -> None:
    if isinstance(node, ast.ImportFrom):
        if node.module is None or not node.module.startswith(fragments.__name__):
            raise RuntimeError(f"fragments may import only modules, not names: {ast.unparse(node)}")
        return
    for alias in node.names:
        statement = f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
        imports[alias.asname or alias.name.split(".")[0]] = statement


def _classify(
    node: ast.stmt, module: ModuleType, definitions: Mapping[str, Definition]
) -> tuple[tuple[str, ...], str]:
    if isinstance(node, ast.FunctionDef | ast.ClassDef):
        return (node.name,), "def"
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        targets: list[ast.expr] = [node.target]
        value = node.value
    elif isinstance(node, ast.Assign):
        targets, value = list(node.targets), node.value
    else:
        raise RuntimeError(f"fragment {module.__name__} line {node.lineno}: unsupported statement")
    names: list[str] = []
    for target in targets:
        elements = target.elts if isinstance(target, ast.Tuple) else [target]
        for element in elements:
            if not isinstance(element, ast.Name):
                raise RuntimeError(f"fragment {module.__name__} line {node.lineno}: bad target")
            names.append(element.id)
    if module is config:
        return tuple(names), "knob"
    if module is types:
        return tuple(names), "type"
    if isinstance(value, ast.Name) and value.id in definitions:
        return tuple(names), "switch"
    has_call = value is not None and any(isinstance(n, ast.Call) for n in ast.walk(value))
    return tuple(names), "computed" if has_call else "plain"


# --- rendering ---------------------------------------------------------------------------

GENOME_LITERAL = re.compile(r"^GENOME = (\{[^{}]*\})$", re.MULTILINE)
KIND_ORDER = ("type", "plain", "def", "switch", "computed")


def render(genome: Genome) -> str:
    """Standalone codec source for `genome` (numpy + standard library only)."""
    g = genome.canonical()
    lib = library()
    switches = switch_choices(g)
    chosen = lib.closure(switches)
    used = lib.used_names(chosen)
    constants = knob_constants(g)
    knob_names = [n for n, d in lib.definitions.items() if d.kind == "knob"]
    if set(knob_names) != set(constants):
        raise RuntimeError(f"knob constants {sorted(constants)} != config names {knob_names}")
    parts = [_docstring(g), _imports(lib, used)]
    lines = [f"GENOME = {_genome_literal(g)}"]
    lines += [
        f"{name} = {constants[name]!r}" for name in knob_names if name in used and name != "GENOME"
    ]
    parts.append("\n".join(lines))
    for kind in KIND_ORDER:
        if kind == "switch":
            texts = [f"{name} = {target}" for name, target in switches.items() if name in used]
        else:
            texts = [d.source for d in chosen if d.kind == kind]
        if kind == "def":
            parts += texts
        elif texts:  # short statements of one kind stay together
            parts.append("\n".join(texts))
    return "\n\n\n".join(parts) + "\n"


def _imports(lib: Library, used: set[str]) -> str:
    statements = sorted({lib.imports[name] for name in used if name in lib.imports})
    stdlib = [s for s in statements if not s.startswith("import numpy")]
    third = [s for s in statements if s.startswith("import numpy")]
    return "\n\n".join("\n".join(group) for group in (stdlib, third) if group)


def _genome_literal(genome: Genome) -> str:
    items = "".join(f"\n    {name!r}: {value!r}," for name, value in genome.to_dict().items())
    return "{" + items + "\n}"


def _docstring(genome: Genome) -> str:
    return f'''"""Codec generated by codeclab's offline designer from genome {genome.key()[:16]}.

Design: {genome.describe()}.

Planes are padded to the macroblock grid (16 or 8 luma pixels; chroma half). I-frames code
every block against a flat 128; P-frames predict each macroblock from a reference frame moved
by its motion vector (bilinear sub-pixel interpolation in integers) or skip it (copy the
co-located pixels). Residuals go through an integer-exact inverse transform, so the encoder's
references are bit-identical to the decoder's output on any machine.

Packet: tag (0x49 I / 0x50 P) and quality bytes, then nine entropy-coded sections: macroblock
modes (0 skip, 1 + reference), motion vector differences (int8, -128 escapes to int16),
and for luma then chroma the zero runs (uint8, 255 = end of block), levels and escapes of
the zig-zag coefficients. The knobs below (GENOME) fix everything else.
"""'''


def genome_from_source(source: str) -> Genome | None:
    """The genome a rendered module was made from (its top-level ``GENOME = {...}`` literal),
    or None when there is none or it is not a genome. Reads only that literal: fast on long
    histories."""
    match = GENOME_LITERAL.search(source)
    if match is None:
        return None
    try:
        value = ast.literal_eval(match[1])
        return Genome.from_dict(value) if isinstance(value, dict) else None
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
