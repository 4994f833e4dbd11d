"""The prompts: the contract and validator rules, the task, the codecs to build on, failures.

Templates are package files (``prompts/*.md``, `string.Template` placeholders). The contract
and the validator's rules are generated from `codeclab.codec.contract`'s tables, so the prompt
says exactly what the validator enforces. Parent sources are shown whole up to
`PromptLimits.max_parent_chars` and the prompt is kept within `PromptLimits.max_prompt_tokens`
(estimated, see `codeclab.designers.llm.tokens`): lower-ranked parents are dropped first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from string import Template

from codeclab.codec.contract import (
    ALLOWED_AFTER_BANNED,
    ALLOWED_BUILTIN_BASES,
    ALLOWED_DUNDER_NAMES,
    BANNED_ATTRIBUTE_PATTERNS,
    BANNED_ATTRIBUTES,
    BANNED_DUNDER_METHODS,
    BANNED_NAMES,
    CODEC_CONTRACT,
    INTROSPECTION_ATTRIBUTES,
    MAX_DISPLAY_ELEMENTS,
    MAX_LITERAL_BYTES,
    MAX_LITERAL_PAYLOAD_BYTES,
    MAX_SOURCE_BYTES,
    allowed_modules,
)
from codeclab.codecs import reference_codec_source
from codeclab.designers.base import Design, PastExperiment, TaskContext
from codeclab.designers.llm.tokens import CHARS_PER_TOKEN, estimate_tokens

REFERENCE_CODEC = "inter_dct"
REFERENCE_ID = f"reference:{REFERENCE_CODEC}"
"""How the reference codec is named in the prompt when no experiment has completed yet."""

FAILING_ID = "failing"
"""How the codec under repair is named in a revise prompt."""


@dataclass(frozen=True)
class PromptLimits:
    """How much history goes into a prompt."""

    top_k: int = 3
    """Best completed codecs shown, with source and numbers."""
    recent_failures: int = 3
    """Most recent failed experiments shown, with their error."""
    max_parent_chars: int = 24_000
    """A parent's source is cut after this many characters (the reference codec is ~21k)."""
    max_error_chars: int = 2_000
    """An error text is cut after this many characters (its start and its end are kept)."""
    max_prompt_tokens: int = 24_000
    """Estimated tokens of system + user prompt; parents are dropped or cut to stay within."""

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if self.recent_failures < 0:
            raise ValueError(f"recent_failures must be >= 0, got {self.recent_failures}")
        if min(self.max_parent_chars, self.max_error_chars, self.max_prompt_tokens) < 200:
            raise ValueError(f"prompt limits are too small to hold anything useful: {self}")


@dataclass(frozen=True)
class Prompt:
    """A system and a user prompt, and the codecs the model may edit by id."""

    system: str
    user: str
    parents: Mapping[str, str] = field(default_factory=dict)
    """id -> full source of every codec shown (edits apply to the full text, not the cut one)."""
    lineage: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """id -> the experiment ids a design built on it descends from."""

    @property
    def estimated_tokens(self) -> int:
        return estimate_tokens(self.system) + estimate_tokens(self.user)


@cache
def template(name: str) -> Template:
    """The package template ``prompts/<name>.md``."""
    path = resources.files(__package__ or "codeclab.designers.llm") / "prompts" / f"{name}.md"
    return Template(path.read_text(encoding="utf-8"))


# --- the contract and the rules, from codeclab.codec.contract ---------------------------------


def contract_text() -> str:
    """The contract's classes and method signatures, as Python."""
    lines: list[str] = []
    for spec in CODEC_CONTRACT:
        if lines:
            lines.append("")
        lines.append(f"class {spec.name}:")
        for method in spec.methods:
            args = ", ".join(("self", *method.positional_args))
            need = "required" if method.required else "optional"
            lines.append(f"    def {method.name}({args}): ...  # {need}")
    return "\n".join(lines)


def _names(names: Sequence[str] | frozenset[str]) -> str:
    return ", ".join(f"`{name}`" for name in sorted(names))


def _by_reason(table: Mapping[str, str]) -> list[str]:
    groups: dict[str, list[str]] = {}
    for name, reason in table.items():
        groups.setdefault(reason, []).append(name)
    return [f"  - {_names(names)}: {reason}" for reason, names in groups.items()]


@cache
def rules_text() -> str:
    """The validator's rules as a bullet list, generated from the contract's tables."""
    kib = 1024
    exceptions = [
        f"`.{banned}.{after}`"
        for banned, afters in ALLOWED_AFTER_BANNED.items()
        for after in sorted(afters)
    ]
    patterns = [f"`{pattern.pattern}` ({reason})" for pattern, reason in BANNED_ATTRIBUTE_PATTERNS]
    lines = [
        f"- Imports: only these modules and their public submodules: "
        f"{_names(allowed_modules())}. No relative imports, no `import *`, no "
        "`from __future__ import ...`, no private (`_name`) or banned (below) module or member.",
        "- These built-in names may not appear at all, not even as your own variable names:",
        *_by_reason(BANNED_NAMES),
        "- `type` only as `type(x)` with one argument.",
        "- NO attribute whose name starts with an underscore, on ANY object, your own included: "
        "`self._x`, `obj._cache` and `self.__x` are all rejected; name attributes `self.x`. "
        "Module-level names such as `_TABLE` are fine (plain names, not attributes).",
        "- NO dunder attribute at all: `x.__class__`, `x.__dict__` and `super().__init__(...)` "
        "are rejected (do not call `super().__init__`; initialise in your own `__init__`). "
        f"The only dunder names usable as plain names: {_names(ALLOWED_DUNDER_NAMES)}. A class "
        "may define dunder methods (`__init__`, `__len__`, ...) except:",
        *_by_reason(BANNED_DUNDER_METHODS),
        '- No str constant that is or formats a dunder name (`"__class__"`, `"{0.__dict__}"`).',
        "- These attribute names are rejected on any object (whatever the receiver):",
        *_by_reason(BANNED_ATTRIBUTES),
        f"  - names matching {', '.join(patterns)}",
        f"  - frame, generator and code attributes: {_names(INTROSPECTION_ATTRIBUTES)}",
        f"  - allowed although the name before is banned: {', '.join(exceptions)}",
        "- Classes take no keywords (no `metaclass=`) and inherit only from classes defined in "
        f"the module or from {_names(ALLOWED_BUILTIN_BASES)}.",
        "- Annotations in strings are code: they must parse and obey these rules (simplest: "
        "write no string annotations).",
        "- Contract methods are plain `def`s in the class (or a base class defined in the "
        "module): no decorators, not `async`, callable with the contract's positional "
        "arguments (extra parameters need defaults).",
        f"- Size: at most {MAX_SOURCE_BYTES // kib} KiB of source; one str/bytes/int literal at "
        f"most {MAX_LITERAL_BYTES // kib} KiB; one list/tuple/set/dict display at most "
        f"{MAX_DISPLAY_ELEMENTS} elements; all constants together at most "
        f"{MAX_LITERAL_PAYLOAD_BYTES // kib} KiB. Compute tables in code instead of listing them.",
        "- No `# coding:` line; the file is UTF-8.",
    ]
    return "\n".join(lines)


# --- the task ---------------------------------------------------------------------------------


def task_text(task: TaskContext) -> str:
    """The clip's properties and the target, for the system prompt."""
    duration = task.frame_count / task.fps if task.fps > 0 else 0.0
    bytes_per_frame = task.max_mbps * 1e6 / 8 / task.fps if task.fps > 0 else 0.0
    floors = []
    if task.min_psnr_y is not None:
        floors.append(f"PSNR-Y >= {task.min_psnr_y:g} dB")
    if task.min_vmaf is not None:
        floors.append(f"VMAF >= {task.min_vmaf:g}")
    floor_text = " and ".join(floors) if floors else "no quality floor"
    return "\n".join(
        [
            f"- Clip: {task.width}x{task.height} pixels, 4:2:0, {task.fps:g} frames/s, "
            f"{task.frame_count} frames ({duration:.1f} s). You never see its frames; the "
            "codec is also scored on other clips of this kind.",
            f"- Target: {task.target_text}.",
            f"- That is at most {task.max_mbps:g} Mbit/s (about {bytes_per_frame:,.0f} bytes per "
            f"frame on average, container included) with {floor_text}, at the operating point: "
            "the highest-PSNR-Y quality setting within the rate limit.",
            "- Ranking: BD-rate against x264 on PSNR-Y (negative = fewer bits than x264 for the "
            "same quality; lower is better).",
        ]
    )


def system_prompt(task: TaskContext) -> str:
    return template("system").substitute(
        contract=contract_text(), rules=rules_text(), task=task_text(task)
    )


# --- history ----------------------------------------------------------------------------------


def rank_key(experiment: PastExperiment) -> tuple[bool, bool, float, float]:
    """Sort key, best first: target achieved, then lowest BD-rate vs x264, then highest PSNR-Y."""
    bd = experiment.bd_rate_vs_x264
    psnr = experiment.psnr_y if experiment.psnr_y is not None else -math.inf
    return (not experiment.target_achieved, bd is None, bd if bd is not None else 0.0, -psnr)


def best_experiments(history: Sequence[PastExperiment], k: int) -> list[PastExperiment]:
    """The `k` best completed experiments with distinct sources, best first."""
    completed = sorted((e for e in history if e.status == "completed"), key=rank_key)
    chosen: list[PastExperiment] = []
    seen: set[str] = set()
    for experiment in completed:
        if experiment.source.strip() in seen:
            continue
        seen.add(experiment.source.strip())
        chosen.append(experiment)
        if len(chosen) == k:
            break
    return chosen


def clip_middle(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, keeping its start and its end."""
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    tail = limit - head
    cut = len(text) - head - tail
    return f"{text[:head]}\n[... {cut} characters cut ...]\n{text[-tail:]}"


def fenced(source: str, language: str = "python") -> str:
    """`source` in a code fence longer than any backtick run inside it."""
    longest = 0
    run = 0
    for char in source:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    body = source if source.endswith("\n") else source + "\n"
    return f"{fence}{language}\n{body}{fence}"


def source_block(source: str, limit: int) -> str:
    """A codec's source for the prompt, cut after `limit` characters with a note."""
    if len(source) <= limit:
        return f"Source ({len(source)} characters):\n\n{fenced(source)}"
    shown = source[:limit]
    shown = shown[: shown.rfind("\n") + 1] or shown
    return (
        f"Source (first {len(shown)} of {len(source)} characters; the rest is cut here, not in "
        "the codec: SEARCH blocks may quote only lines shown):\n\n" + fenced(shown)
    )


def _number(value: float | None, fmt: str, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:{fmt}}{unit}"


def results_text(experiment: PastExperiment) -> str:
    rate = None if experiment.bits_per_second is None else experiment.bits_per_second / 1000
    bd = experiment.bd_rate_vs_x264
    lines = [
        f"Results at the operating point: {_number(rate, '.1f', ' kbit/s')}, "
        f"PSNR-Y {_number(experiment.psnr_y, '.2f', ' dB')}, "
        f"SSIM-Y {_number(experiment.ssim_y, '.4f')}, VMAF {_number(experiment.vmaf, '.1f')}; "
        f"BD-rate vs x264 {_number(bd, '+.1f', ' %')}; "
        f"target achieved: {'yes' if experiment.target_achieved else 'no'}.",
    ]
    if experiment.curve:
        points = ", ".join(f"({bps / 1000:.1f}, {db:.2f})" for bps, db in experiment.curve)
        lines.append(f"RD curve (kbit/s, PSNR-Y dB) over the quality sweep: {points}.")
    if experiment.params:
        lines.append(f"Extra encoder params: {experiment.params}.")
    return "\n".join(lines)


def parent_text(experiment: PastExperiment, source_limit: int) -> str:
    parents = ", ".join(experiment.parent_ids) or "none"
    return "\n\n".join(
        [
            f"## Codec `{experiment.id}` (built on: {parents})",
            f"Rationale: {experiment.rationale.strip() or '(none given)'}",
            results_text(experiment),
            source_block(experiment.source, source_limit),
        ]
    )


def reference_text(source: str, source_limit: int) -> str:
    return "\n\n".join(
        [
            f"## Codec `{REFERENCE_ID}` (the lab's reference codec)",
            "No experiment has completed yet. This reference codec passes validation and runs: "
            "motion-compensated prediction, 8x8 DCT, JPEG-style quantisation, run-length and "
            "zlib coding. It has not been measured on this clip yet.",
            source_block(source, source_limit),
        ]
    )


def failure_text(experiment: PastExperiment, error_limit: int) -> str:
    phase = experiment.failed_phase or "unknown phase"
    error = clip_middle((experiment.error or "(no error text)").strip(), error_limit)
    parents = ", ".join(experiment.parent_ids) or "none"
    return (
        f"## `{experiment.id}` failed in {phase} (built on: {parents})\n\n"
        f"Rationale: {experiment.rationale.strip() or '(none given)'}\n\n"
        f"{fenced(error, 'text')}"
    )


def propose_prompt(
    history: Sequence[PastExperiment], task: TaskContext, limits: PromptLimits
) -> Prompt:
    """The prompt asking for a new codec, within `limits.max_prompt_tokens` (estimated)."""
    system = system_prompt(task)
    failed = [e for e in history if e.status == "failed"][-limits.recent_failures :]
    failed = failed if limits.recent_failures else []
    failures = "\n\n".join(failure_text(e, limits.max_error_chars) for e in reversed(failed))
    failures = failures or "(none)"
    frame = template("propose")
    fixed = estimate_tokens(system) + estimate_tokens(
        frame.substitute(parents="", failures=failures)
    )
    room = limits.max_prompt_tokens - fixed

    best = best_experiments(history, limits.top_k)
    sections: list[str] = []
    parents: dict[str, str] = {}
    lineage: dict[str, tuple[str, ...]] = {}
    if best:
        for experiment in best:
            text = parent_text(experiment, limits.max_parent_chars)
            if sections and estimate_tokens(text) + 2 > room:
                break
            if not sections and estimate_tokens(text) > room:
                text = parent_text(experiment, _chars_for(room, text, experiment.source))
            sections.append(text)
            room -= estimate_tokens(text) + 2
            parents[experiment.id] = experiment.source
            lineage[experiment.id] = (experiment.id,)
    else:
        source = reference_codec_source(REFERENCE_CODEC)
        text = reference_text(source, limits.max_parent_chars)
        if estimate_tokens(text) > room:
            text = reference_text(source, _chars_for(room, text, source))
        sections.append(text)
        parents[REFERENCE_ID] = source
        lineage[REFERENCE_ID] = ()
    user = frame.substitute(parents="\n\n".join(sections), failures=failures)
    return Prompt(system, user, parents, lineage)


def _chars_for(room_tokens: int, text: str, source: str) -> int:
    """Source characters that fit when the section `text` (holding all of `source`) is cut."""
    overhead = max(0, len(text) - len(source))
    return max(200, int(room_tokens * CHARS_PER_TOKEN) - overhead - 200)


def revise_prompt(design: Design, error: str, task: TaskContext, limits: PromptLimits) -> Prompt:
    """The prompt asking to fix `design`, which failed with `error`.

    The failing source is shown whole unless the token budget forbids it.
    """
    system = system_prompt(task)
    frame = template("revise")
    error_text = clip_middle(error.strip(), limits.max_error_chars)
    fixed = estimate_tokens(system) + estimate_tokens(
        frame.substitute(parent_id=FAILING_ID, error=error_text, source="")
    )
    room_chars = int((limits.max_prompt_tokens - fixed) * CHARS_PER_TOKEN) - 200
    user = frame.substitute(
        parent_id=FAILING_ID,
        error=error_text,
        source=source_block(design.source, max(200, room_chars)),
    )
    return Prompt(
        system,
        user,
        {FAILING_ID: design.source},
        {FAILING_ID: design.parent_ids},
    )


def retry_text(error: str, *, truncated: bool, limits: PromptLimits) -> str:
    """The message sending a reply's problem back to the model."""
    note = ""
    if truncated:
        note = (
            "\nYour reply was cut off at the output token limit: send SEARCH/REPLACE edits "
            "instead of a full module, or a shorter module.\n"
        )
    return template("retry").substitute(
        error=clip_middle(error.strip(), limits.max_error_chars), note=note
    )
