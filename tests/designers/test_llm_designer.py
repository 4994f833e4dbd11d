"""The LLM designer end to end: real SDKs, a scripted HTTP server on 127.0.0.1, the validator."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from codeclab.codec.validate import validate_source
from codeclab.codecs import reference_codec_source
from codeclab.designers.base import Design, PastExperiment, TaskContext, Usage
from codeclab.designers.llm.config import LLMConfig, Provider
from codeclab.designers.llm.cost import Budget, BudgetExceeded, ModelPrice, PriceTable
from codeclab.designers.llm.designer import DesignError, LLMDesigner
from codeclab.designers.llm.providers import LLMError
from tests.designers.llm_server import Delay, Failure, Reply, ScriptedLLMServer, running_server

SECRETS = {"openai": "sk-test-openai-91c2e7d4aa", "anthropic": "sk-ant-test-5e0b3f8c77"}
PROVIDERS: tuple[Provider, ...] = ("openai", "anthropic")
PRICE = ModelPrice(input_per_mtok=2.0, output_per_mtok=8.0)

GOOD = """import zlib

import numpy as np


class Encoder:
    def __init__(self, width, height, fps, params):
        self.level = 1 + int(params.get("quality", 50)) * 8 // 100

    def encode(self, y, u, v):
        return zlib.compress(y.tobytes() + u.tobytes() + v.tobytes(), self.level)


class Decoder:
    def __init__(self, width, height, fps):
        self.width = width
        self.height = height

    def decode(self, packet):
        w, h = self.width, self.height
        cw, ch = (w + 1) // 2, (h + 1) // 2
        flat = np.frombuffer(zlib.decompress(packet), dtype=np.uint8)
        y = flat[: w * h].reshape(h, w)
        u = flat[w * h : w * h + cw * ch].reshape(ch, cw)
        v = flat[w * h + cw * ch :].reshape(ch, cw)
        return [(y, u, v)]
"""
BROKEN = GOOD.replace("self.level", "self._level")
FIX_BROKEN = (
    "RATIONALE: rename the private attribute.\nPARENT: candidate-1\n"
    "<<<<<<< SEARCH\n"
    '        self._level = 1 + int(params.get("quality", 50)) * 8 // 100\n'
    "=======\n"
    '        self.level = 1 + int(params.get("quality", 50)) * 8 // 100\n'
    ">>>>>>> REPLACE\n"
    "<<<<<<< SEARCH\n"
    "        return zlib.compress(y.tobytes() + u.tobytes() + v.tobytes(), self._level)\n"
    "=======\n"
    "        return zlib.compress(y.tobytes() + u.tobytes() + v.tobytes(), self.level)\n"
    ">>>>>>> REPLACE\n"
)


def same_usage(actual: Usage, expected: Usage) -> bool:
    """Equal counts and, to rounding, equal cost."""
    counts = (actual.calls, actual.input_tokens, actual.output_tokens)
    wanted = (expected.calls, expected.input_tokens, expected.output_tokens)
    return counts == wanted and actual.cost_usd == pytest.approx(expected.cost_usd)


def module_reply(source: str, rationale: str = "lossless zlib as a first baseline") -> str:
    return f"RATIONALE: {rationale}\n\n```python\n{source}```\n"


def edit_reply(parent: str, search: str, replace: str, rationale: str = "tune it") -> str:
    return (
        f"RATIONALE: {rationale}\nPARENT: {parent}\n"
        f"<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"
    )


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedLLMServer]:
    with running_server() as running:
        yield running


@pytest.fixture
def llm(server: ScriptedLLMServer, monkeypatch: pytest.MonkeyPatch) -> ScriptedLLMServer:
    server.reset()
    monkeypatch.setenv("OPENAI_API_KEY", SECRETS["openai"])
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRETS["anthropic"])
    return server


@pytest.fixture
def task() -> TaskContext:
    return TaskContext(176, 144, 30000 / 1001, 120, "<= 0.5 Mbps, PSNR-Y >= 30 dB", 0.5, 30.0, None)


@pytest.fixture
def parent() -> PastExperiment:
    return PastExperiment(
        id="exp-1",
        source=reference_codec_source("inter_dct"),
        rationale="the reference codec as a start",
        parent_ids=(),
        params={},
        status="completed",
        failed_phase=None,
        error=None,
        bits_per_second=612_000.0,
        psnr_y=34.1,
        ssim_y=0.95,
        vmaf=None,
        bd_rate_vs_x264=48.5,
        target_achieved=False,
        curve=((210_000.0, 30.2), (612_000.0, 34.1)),
    )


def designer_for(
    llm: ScriptedLLMServer,
    provider: Provider = "openai",
    *,
    stream: bool = False,
    budget: Budget | None = None,
    max_retries: int = 2,
    http_retries: int = 1,
    timeout_s: float = 5.0,
) -> LLMDesigner:
    config = LLMConfig(
        provider,
        "test-model",
        base_url=llm.base_url(provider),
        stream=stream,
        max_retries=http_retries,
        timeout_s=timeout_s,
    )
    prices = PriceTable({"test-model": PRICE})
    return LLMDesigner(config, budget=budget, max_retries=max_retries, prices=prices)


def conversation(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(role, text) of every message a request sent, the system prompt first."""
    messages = [(m["role"], m["content"]) for m in body["messages"]]
    if "system" in body:
        return [("system", body["system"]), *messages]
    return messages


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_good_module_becomes_a_design_in_one_call(
    llm: ScriptedLLMServer, task: TaskContext, provider: Provider, stream: bool
) -> None:
    designer = designer_for(llm, provider, stream=stream)
    llm.enqueue(Reply(module_reply(GOOD), input_tokens=9000, output_tokens=400))

    design = designer.propose([], task)

    assert design.source == GOOD
    assert validate_source(design.source).ok
    assert design.rationale == "lossless zlib as a first baseline"
    assert design.designer == f"{provider}:test-model"
    assert design.parent_ids == ()  # built on the reference codec, not on an experiment
    assert design.params == {}
    assert same_usage(design.usage, Usage(1, 9000, 400, 9000 * 2e-6 + 400 * 8e-6))
    assert len(llm.requests) == 1


def test_prompt_sent_carries_rules_task_and_the_parent_codec(
    llm: ScriptedLLMServer, task: TaskContext, parent: PastExperiment
) -> None:
    llm.enqueue(Reply(module_reply(GOOD)))

    designer_for(llm).propose([parent], task)

    (system_role, system), (user_role, user) = conversation(llm.requests[0].json())
    assert (system_role, user_role) == ("system", "user")
    assert "class Encoder:" in system
    assert "`self._x`" in system
    assert "Target: <= 0.5 Mbps, PSNR-Y >= 30 dB." in system
    assert "## Codec `exp-1`" in user
    assert parent.source in user
    assert "BD-rate vs x264 +48.5 %" in user


@pytest.mark.parametrize("provider", PROVIDERS)
def test_codec_failing_validation_is_sent_back_and_fixed_by_edits(
    llm: ScriptedLLMServer, task: TaskContext, provider: Provider
) -> None:
    designer = designer_for(llm, provider)
    llm.enqueue(
        Reply(module_reply(BROKEN), input_tokens=1000, output_tokens=300),
        Reply(FIX_BROKEN, input_tokens=1500, output_tokens=100),
    )

    design = designer.propose([], task)

    assert design.source == GOOD
    assert design.rationale == "rename the private attribute."
    assert same_usage(design.usage, Usage(2, 2500, 400, 2500 * 2e-6 + 400 * 8e-6))
    retry = conversation(llm.requests[1].json())
    assert [role for role, _ in retry] == ["system", "user", "assistant", "user"]
    assert retry[2][1] == module_reply(BROKEN)
    feedback = retry[3][1]
    assert "[private-attribute]" in feedback
    assert "8 |         self._level = 1 +" in feedback  # the offending line, quoted
    assert "`candidate-1`" in feedback


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_search_replace_edit_of_a_parent_applies(
    llm: ScriptedLLMServer,
    task: TaskContext,
    parent: PastExperiment,
    provider: Provider,
    stream: bool,
) -> None:
    designer = designer_for(llm, provider, stream=stream)
    search = next(line for line in parent.source.split("\n") if line.startswith("_ZERO_BIAS"))
    llm.enqueue(Reply(edit_reply("exp-1", search + "\n", "_ZERO_BIAS = 160\n", "skip more")))

    design = designer.propose([parent], task)

    assert design.source == parent.source.replace(search, "_ZERO_BIAS = 160")
    assert design.parent_ids == ("exp-1",)
    assert design.rationale == "skip more"
    assert validate_source(design.source).ok


@pytest.mark.parametrize("provider", PROVIDERS)
def test_edit_that_does_not_apply_is_sent_back_then_a_good_reply_is_used(
    llm: ScriptedLLMServer, task: TaskContext, parent: PastExperiment, provider: Provider
) -> None:
    designer = designer_for(llm, provider)
    llm.enqueue(
        Reply(edit_reply("exp-1", "QUANT_SCALE = 3\n", "QUANT_SCALE = 4\n")),
        Reply(module_reply(GOOD, "start over"), input_tokens=10, output_tokens=10),
    )

    design = designer.propose([parent], task)

    assert design.source == GOOD
    assert design.parent_ids == ("exp-1",)  # the module names no parent: all codecs shown
    feedback = conversation(llm.requests[1].json())[-1][1]
    assert "did not apply to `exp-1`" in feedback
    assert "block 1: its SEARCH text is not in `exp-1`" in feedback
    assert "('QUANT_SCALE = 3') appears nowhere" in feedback
    assert design.usage.calls == 2


def test_edits_without_parent_apply_to_the_only_codec_shown(
    llm: ScriptedLLMServer, task: TaskContext, parent: PastExperiment
) -> None:
    search = next(line for line in parent.source.split("\n") if line.startswith("_ZERO_BIAS"))
    reply = edit_reply("x", search + "\n", "_ZERO_BIAS = 90\n").replace("PARENT: x\n", "")
    llm.enqueue(Reply(reply))

    design = designer_for(llm).propose([parent], task)

    assert "_ZERO_BIAS = 90\n" in design.source
    assert design.parent_ids == ("exp-1",)


def test_edits_without_parent_among_several_codecs_are_sent_back(
    llm: ScriptedLLMServer, task: TaskContext, parent: PastExperiment
) -> None:
    other = replace(parent, id="exp-2", source=GOOD, bd_rate_vs_x264=60.0)
    no_parent = edit_reply("x", "import zlib\n", "import zlib\nimport math\n")
    llm.enqueue(
        Reply(no_parent.replace("PARENT: x\n", "")),
        Reply(no_parent.replace("PARENT: x", "PARENT: exp-9")),
        Reply(no_parent.replace("PARENT: x", "PARENT: exp-2")),
    )

    design = designer_for(llm).propose([parent, other], task)

    assert design.source == GOOD.replace("import zlib\n", "import zlib\nimport math\n")
    assert design.parent_ids == ("exp-2",)
    first, second = (conversation(r.json())[-1][1] for r in llm.requests[1:])
    assert "need a line `PARENT: <id>`" in first
    assert "one of: `exp-1`, `exp-2`" in first
    assert "PARENT `exp-9` is not a codec shown to you" in second


def test_malformed_reply_is_sent_back_with_what_was_expected(
    llm: ScriptedLLMServer, task: TaskContext
) -> None:
    designer = designer_for(llm, "anthropic")
    llm.enqueue(Reply("I think a wavelet codec would be great."), Reply(module_reply(GOOD)))

    design = designer.propose([], task)

    assert design.source == GOOD
    feedback = conversation(llm.requests[1].json())[-1][1]
    assert "neither a ```python code block" in feedback


def test_reply_cut_off_at_the_token_limit_is_told_so(
    llm: ScriptedLLMServer, task: TaskContext
) -> None:
    designer = designer_for(llm)
    llm.enqueue(Reply(module_reply(GOOD)[:300], finish_reason="length"), Reply(module_reply(GOOD)))

    designer.propose([], task)

    feedback = conversation(llm.requests[1].json())[-1][1]
    assert "never closed" in feedback
    assert "cut off at the output token limit" in feedback


def test_persistently_malformed_replies_end_in_a_design_error_with_usage(
    llm: ScriptedLLMServer, task: TaskContext
) -> None:
    designer = designer_for(llm, max_retries=2)
    llm.enqueue(*[Reply("no code, sorry", input_tokens=100, output_tokens=5)] * 3)

    with pytest.raises(DesignError, match="no usable codec in 3 replies") as caught:
        designer.propose([], task)

    assert caught.value.usage.calls == 3
    assert caught.value.usage.input_tokens == 300
    assert designer.last_usage == caught.value.usage
    assert llm.pending == 0


def test_codec_still_invalid_after_the_retries_is_returned_for_the_validation_phase(
    llm: ScriptedLLMServer, task: TaskContext
) -> None:
    designer = designer_for(llm, max_retries=1)
    still_broken = BROKEN.replace("import zlib", "import zlib  # tried")
    llm.enqueue(Reply(module_reply(BROKEN)), Reply(module_reply(still_broken)))

    design = designer.propose([], task)

    assert design.source == still_broken
    assert not validate_source(design.source).ok
    assert design.usage.calls == 2


def test_copy_of_a_codec_already_tried_is_sent_back(
    llm: ScriptedLLMServer, task: TaskContext, parent: PastExperiment
) -> None:
    designer = designer_for(llm)
    llm.enqueue(Reply(module_reply(parent.source)), Reply(module_reply(GOOD)))

    design = designer.propose([parent], task)

    assert design.source == GOOD
    assert "identical to `exp-1`" in conversation(llm.requests[1].json())[-1][1]


def test_rate_limit_is_retried_inside_one_call(llm: ScriptedLLMServer, task: TaskContext) -> None:
    designer = designer_for(llm, "anthropic", http_retries=2)
    llm.enqueue(Failure(429, "slow down", {"retry-after-ms": "1"}), Reply(module_reply(GOOD)))

    design = designer.propose([], task)

    assert design.source == GOOD
    assert design.usage.calls == 1
    assert len(llm.requests) == 2


def test_persistent_rate_limit_is_an_llm_error_carrying_the_usage_so_far(
    llm: ScriptedLLMServer, task: TaskContext
) -> None:
    designer = designer_for(llm, http_retries=1)
    fast = {"retry-after-ms": "1"}
    llm.enqueue(
        Reply("no code", input_tokens=50, output_tokens=5),
        Failure(429, "limit", fast),
        Failure(429, "limit", fast),
    )

    with pytest.raises(LLMError, match=r"openai:test-model .*HTTP 429") as caught:
        designer.propose([], task)

    assert caught.value.status == 429
    assert caught.value.usage.calls == 1
    assert caught.value.usage.input_tokens == 50


@pytest.mark.timeout(20)
def test_timeout_is_an_llm_error(llm: ScriptedLLMServer, task: TaskContext) -> None:
    designer = designer_for(llm, "anthropic", http_retries=0, timeout_s=0.3)
    llm.enqueue(Delay(5.0, Reply(module_reply(GOOD))))

    with pytest.raises(LLMError, match=r"no reply within the timeout of 0\.3 s"):
        designer.propose([], task)


def test_calls_are_recorded_with_cost_and_whether_the_model_was_priced(
    llm: ScriptedLLMServer, task: TaskContext
) -> None:
    designer = designer_for(llm)
    llm.enqueue(
        Reply(module_reply(GOOD), input_tokens=1_000_000, output_tokens=250_000),
        Reply(module_reply(GOOD), input_tokens=1_000, output_tokens=1_000, model="mystery-7b"),
    )

    first = designer.propose([], task)
    designer.prices = PriceTable({})  # the second model is in no table
    second = designer.propose([], task)

    assert first.usage.cost_usd == pytest.approx(1.0 * 2.0 + 0.25 * 8.0)
    assert second.usage.cost_usd == 0.0
    assert [(c.model, c.priced) for c in designer.calls] == [
        ("test-model", True),
        ("mystery-7b", False),
    ]
    assert same_usage(designer.total_usage, Usage(2, 1_001_000, 251_000, 4.0))


def test_budget_stops_before_the_call_that_would_exceed_it(
    llm: ScriptedLLMServer, task: TaskContext
) -> None:
    budget = Budget(max_usd=0.01)
    designer = designer_for(llm, budget=budget)
    # 4000 input + 500 output tokens at $2 / $8 per million: $0.012, over the budget.
    llm.enqueue(Reply(module_reply(GOOD), input_tokens=4000, output_tokens=500))
    llm.enqueue(Reply(module_reply(GOOD)))

    designer.propose([], task)
    with pytest.raises(BudgetExceeded, match=r"spent \$0.0120 of \$0.0100"):
        designer.propose([], task)

    assert len(llm.requests) == 1
    assert llm.pending == 1
    assert budget.spent_usd == pytest.approx(0.012)


def test_budget_reached_during_retries_stops_with_the_usage_so_far(
    llm: ScriptedLLMServer, task: TaskContext
) -> None:
    designer = designer_for(llm, budget=Budget(max_usd=0.001))
    llm.enqueue(Reply("no code", input_tokens=1000, output_tokens=0), Reply(module_reply(GOOD)))

    with pytest.raises(BudgetExceeded) as caught:
        designer.propose([], task)

    assert same_usage(caught.value.usage, Usage(1, 1000, 0, 0.002))
    assert len(llm.requests) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_revise_sends_the_failing_code_and_error_and_returns_the_fix(
    llm: ScriptedLLMServer, task: TaskContext, provider: Provider
) -> None:
    designer = designer_for(llm, provider)
    failing = Design(GOOD, "first try", parent_ids=("exp-4",), designer="openai:test-model")
    error = "decode: ValueError: cannot reshape array of size 0 into shape (144,176)"
    fixed_line = "        flat = np.frombuffer(zlib.decompress(packet), dtype=np.uint8).copy()\n"
    llm.enqueue(
        Reply(
            edit_reply(
                "failing",
                "        flat = np.frombuffer(zlib.decompress(packet), dtype=np.uint8)\n",
                fixed_line,
                "copy the decoded buffer",
            )
        )
    )

    revised = designer.revise(failing, error, [], task)

    assert revised is not None
    assert fixed_line in revised.source
    assert revised.parent_ids == ("exp-4",)
    assert revised.rationale == "copy the decoded buffer"
    assert revised.usage.calls == 1
    user = conversation(llm.requests[0].json())[-1][1]
    assert error in user
    assert GOOD in user


def test_revise_gives_up_with_none_when_no_reply_holds_code(
    llm: ScriptedLLMServer, task: TaskContext
) -> None:
    designer = designer_for(llm, max_retries=1)
    llm.enqueue(Reply("cannot fix"), Reply("still cannot"))

    assert designer.revise(Design(GOOD, "r"), "boom", [], task) is None
    assert designer.last_usage.calls == 2


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_key_never_appears_in_requests_reprs_or_logs(
    llm: ScriptedLLMServer,
    task: TaskContext,
    provider: Provider,
    stream: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = SECRETS[provider]
    with caplog.at_level(logging.DEBUG):
        designer = designer_for(llm, provider, stream=stream)
        llm.enqueue(Reply(module_reply(BROKEN)), Reply(FIX_BROKEN))
        design = designer.propose([], task)

    assert len(llm.requests) == 2
    for request in llm.requests:
        assert secret.encode() not in request.body
        assert request.headers["authorization"] == f"Bearer {secret}"
    assert secret not in repr(designer)
    assert secret not in repr(design)
    assert secret not in repr(designer.calls)
    assert secret not in caplog.text
    assert "call: " in caplog.text  # the designer did log its calls
