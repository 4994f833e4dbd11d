"""Prompts: the contract and rules from the contract tables, history selection, size budget."""

from __future__ import annotations

from dataclasses import replace

import pytest

from codeclab.codec.contract import (
    ALLOWED_BUILTIN_BASES,
    BANNED_ATTRIBUTES,
    BANNED_DUNDER_METHODS,
    BANNED_NAMES,
    CODEC_CONTRACT,
    INTROSPECTION_ATTRIBUTES,
    MAX_DISPLAY_ELEMENTS,
    allowed_modules,
)
from codeclab.codecs import reference_codec_source
from codeclab.designers.base import Design, PastExperiment, TaskContext
from codeclab.designers.llm.prompt import (
    FAILING_ID,
    REFERENCE_ID,
    PromptLimits,
    best_experiments,
    fenced,
    propose_prompt,
    retry_text,
    revise_prompt,
    system_prompt,
)
from codeclab.designers.llm.tokens import estimate_tokens


@pytest.fixture
def task() -> TaskContext:
    return TaskContext(
        width=176,
        height=144,
        fps=30000 / 1001,
        frame_count=120,
        target_text="<= 0.5 Mbps, PSNR-Y >= 30 dB",
        max_mbps=0.5,
        min_psnr_y=30.0,
        min_vmaf=None,
    )


def experiment(
    id: str,
    *,
    source: str | None = None,
    bd: float | None = None,
    achieved: bool = False,
    status: str = "completed",
    error: str | None = None,
    psnr: float | None = 33.0,
) -> PastExperiment:
    return PastExperiment(
        id=id,
        source=source if source is not None else f"# codec {id}\nclass Encoder: ...\n",
        rationale=f"rationale of {id}",
        parent_ids=("exp-0",),
        params={},
        status=status,
        failed_phase="execution" if status == "failed" else None,
        error=error,
        bits_per_second=480_000.0 if status == "completed" else None,
        psnr_y=psnr if status == "completed" else None,
        ssim_y=0.93 if status == "completed" else None,
        vmaf=None,
        bd_rate_vs_x264=bd,
        target_achieved=achieved,
        curve=((120_000.0, 29.5), (480_000.0, 33.0)) if status == "completed" else (),
    )


def test_system_prompt_carries_every_contract_signature(task: TaskContext) -> None:
    text = system_prompt(task)

    for spec in CODEC_CONTRACT:
        assert f"class {spec.name}:" in text
        for method in spec.methods:
            assert f"def {method.name}({', '.join(('self', *method.positional_args))})" in text


def test_system_prompt_lists_every_rule_of_the_contract_tables(task: TaskContext) -> None:
    text = system_prompt(task)

    for table in (
        BANNED_NAMES,
        BANNED_ATTRIBUTES,
        BANNED_DUNDER_METHODS,
        INTROSPECTION_ATTRIBUTES,
        ALLOWED_BUILTIN_BASES,
        allowed_modules(),
    ):
        missing = [name for name in table if f"`{name}`" not in text]
        assert not missing
    assert "`self._x`" in text
    assert "super().__init__" in text
    assert f"{MAX_DISPLAY_ELEMENTS} elements" in text


def test_system_prompt_describes_the_clip_and_the_target(task: TaskContext) -> None:
    text = system_prompt(task)

    assert "176x144 pixels" in text
    assert "29.97 frames/s, 120 frames (4.0 s)" in text
    assert "Target: <= 0.5 Mbps, PSNR-Y >= 30 dB." in text
    assert "about 2,085 bytes per frame" in text


def test_without_completed_history_the_reference_codec_is_the_parent(task: TaskContext) -> None:
    prompt = propose_prompt(
        [experiment("exp-1", status="failed", error="boom")], task, PromptLimits()
    )

    assert prompt.parents == {REFERENCE_ID: reference_codec_source("inter_dct")}
    assert prompt.lineage == {REFERENCE_ID: ()}
    assert f"## Codec `{REFERENCE_ID}`" in prompt.user
    assert reference_codec_source("inter_dct") in prompt.user


def test_parents_are_ranked_by_target_then_bd_rate_and_limited_to_top_k() -> None:
    history = [
        experiment("no-bd", bd=None),
        experiment("worse", bd=20.0),
        experiment("better", bd=-5.0),
        experiment("on-target", bd=40.0, achieved=True),
        experiment("failed", status="failed", error="x"),
        experiment("same-as-better", bd=-5.0, source=experiment("better").source),
    ]

    ranked = [e.id for e in best_experiments(history, 3)]

    assert ranked == ["on-target", "better", "worse"]


def test_parent_sections_carry_source_rationale_and_numbers(task: TaskContext) -> None:
    parent = experiment("exp-7", bd=-12.34, achieved=True)

    prompt = propose_prompt([parent], task, PromptLimits())

    assert "## Codec `exp-7` (built on: exp-0)" in prompt.user
    assert "Rationale: rationale of exp-7" in prompt.user
    assert "480.0 kbit/s, PSNR-Y 33.00 dB, SSIM-Y 0.9300, VMAF n/a" in prompt.user
    assert "BD-rate vs x264 -12.3 %; target achieved: yes." in prompt.user
    assert "(120.0, 29.50), (480.0, 33.00)" in prompt.user
    assert parent.source in prompt.user
    assert prompt.parents == {"exp-7": parent.source}
    assert prompt.lineage == {"exp-7": ("exp-7",)}


def test_recent_failures_are_shown_newest_first_with_their_errors(task: TaskContext) -> None:
    history = [
        experiment(f"fail-{i}", status="failed", error=f"IndexError number {i}") for i in range(5)
    ]

    prompt = propose_prompt(history, task, PromptLimits(recent_failures=2))

    assert "IndexError number 4" in prompt.user
    assert "IndexError number 3" in prompt.user
    assert "IndexError number 2" not in prompt.user
    assert prompt.user.index("fail-4") < prompt.user.index("fail-3")
    assert "`fail-4` failed in execution" in prompt.user


def test_long_errors_keep_their_start_and_end(task: TaskContext) -> None:
    error = "Traceback start\n" + "x" * 10_000 + "\nValueError: the real cause"

    prompt = propose_prompt(
        [experiment("f", status="failed", error=error)], task, PromptLimits(max_error_chars=500)
    )

    assert "Traceback start" in prompt.user
    assert "ValueError: the real cause" in prompt.user
    assert "characters cut" in prompt.user


def test_prompt_stays_within_its_token_budget_with_a_large_history(task: TaskContext) -> None:
    big = "".join(f"x_{i} = {i}  # a line of codec source\n" for i in range(2_000))  # ~70k chars
    history = [experiment(f"exp-{i}", source=f"# {i}\n{big}", bd=float(i)) for i in range(10)]
    limits = PromptLimits(top_k=3, max_parent_chars=24_000, max_prompt_tokens=16_000)

    prompt = propose_prompt(history, task, limits)

    assert prompt.estimated_tokens <= limits.max_prompt_tokens
    assert "## Codec `exp-0`" in prompt.user
    assert "the rest is cut here, not in the codec" in prompt.user
    assert set(prompt.parents) <= {"exp-0", "exp-1", "exp-2"}
    assert prompt.parents["exp-0"] == history[0].source  # edits apply to the whole source


def test_first_parent_is_cut_further_when_it_alone_is_over_the_budget(task: TaskContext) -> None:
    big = "y = 1\n" * 20_000
    limits = PromptLimits(max_parent_chars=200_000, max_prompt_tokens=12_000)

    prompt = propose_prompt([experiment("huge", source=big, bd=1.0)], task, limits)

    assert prompt.estimated_tokens <= limits.max_prompt_tokens
    assert list(prompt.parents) == ["huge"]


def test_default_prompt_size_with_the_reference_codec(task: TaskContext) -> None:
    prompt = propose_prompt([], task, PromptLimits())

    assert 5_000 < prompt.estimated_tokens <= PromptLimits().max_prompt_tokens
    assert estimate_tokens(prompt.system) < 4_000


def test_revise_prompt_shows_the_failing_code_and_the_error(task: TaskContext) -> None:
    design = Design(source="class Encoder:\n    pass\n", rationale="r", parent_ids=("exp-2",))

    prompt = revise_prompt(design, "line 1: [contract] class Decoder missing", task, PromptLimits())

    assert "class Decoder missing" in prompt.user
    assert design.source in prompt.user
    assert f"PARENT: {FAILING_ID}" in prompt.user
    assert prompt.parents == {FAILING_ID: design.source}
    assert prompt.lineage == {FAILING_ID: ("exp-2",)}


def test_retry_text_mentions_truncation_only_when_the_reply_was_cut_off() -> None:
    limits = PromptLimits()

    assert "cut off" in retry_text("no code", truncated=True, limits=limits)
    assert "cut off" not in retry_text("no code", truncated=False, limits=limits)


def test_sources_holding_backtick_fences_get_a_longer_fence() -> None:
    text = fenced('DOC = """\n```python\nx\n```\n"""\n')

    assert text.startswith("````python\n")
    assert text.endswith("\n````")


def test_prompt_limits_reject_nonsense() -> None:
    with pytest.raises(ValueError, match="top_k"):
        PromptLimits(top_k=0)
    with pytest.raises(ValueError, match="too small"):
        replace(PromptLimits(), max_prompt_tokens=10)
