"""The LLM designer: prompt, call, parse, apply edits, validate, and send problems back.

`propose` asks for a new codec built on the best earlier ones; `revise` asks to fix one that
failed (the caller limits how many times). Inside either, a reply that cannot be used (no
code, edits that do not apply, a source the static validator rejects, a copy of a codec
already tried) is sent back to the model with the reason, up to `max_retries` times. Usage and
cost accumulate over all those calls into the returned `Design.usage`; every call is also kept
in `LLMDesigner.calls` with whether its model was priced.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from codeclab.codec.validate import ValidationReport, validate_source
from codeclab.designers.base import Design, Designer, PastExperiment, TaskContext, Usage
from codeclab.designers.llm.config import LLMConfig
from codeclab.designers.llm.cost import Budget, BudgetExceeded, CallCost, PriceTable, price_call
from codeclab.designers.llm.prompt import (
    FAILING_ID,
    Prompt,
    PromptLimits,
    propose_prompt,
    retry_text,
    revise_prompt,
)
from codeclab.designers.llm.providers import (
    ChatProvider,
    Completion,
    LLMError,
    Message,
    make_provider,
)
from codeclab.designers.llm.reply import EditError, Reply, ReplyError, apply_edits, parse_reply

log = logging.getLogger(__name__)

_MAX_VIOLATIONS_SHOWN = 30


class DesignError(RuntimeError):
    """`propose` got no usable codec from the model within its retries."""

    def __init__(self, message: str, *, attempts: int, usage: Usage) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.usage = usage


@dataclass
class _Conversation:
    """One propose or revise: the messages so far, the codecs edits may apply to, the spend."""

    prompt: Prompt
    known: Mapping[str, str]
    """Stripped source -> id, for every codec already tried or shown."""
    messages: list[Message] = field(default_factory=list)
    bases: dict[str, str] = field(default_factory=dict)
    lineage: dict[str, tuple[str, ...]] = field(default_factory=dict)
    candidates: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)

    def __post_init__(self) -> None:
        self.messages = [Message("system", self.prompt.system), Message("user", self.prompt.user)]
        self.bases = dict(self.prompt.parents)
        self.lineage = dict(self.prompt.lineage)


@dataclass(frozen=True)
class _Candidate:
    source: str
    rationale: str
    base: str | None
    """The codec it was made from (edited or named), None for an unattributed full module."""


class LLMDesigner:
    """A `Designer` backed by a chat model (see `LLMConfig` and `make_provider`)."""

    def __init__(
        self,
        config: LLMConfig,
        provider: ChatProvider | None = None,
        budget: Budget | None = None,
        *,
        max_retries: int = 2,
        limits: PromptLimits | None = None,
        prices: PriceTable | None = None,
    ) -> None:
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.config = config
        self.provider = provider if provider is not None else make_provider(config)
        self.budget = budget
        self.max_retries = max_retries
        self.limits = limits or PromptLimits()
        self.prices = prices or PriceTable()
        self.calls: list[CallCost] = []
        """Every model call made, in order, with its tokens, cost and whether it was priced."""
        self.last_usage = Usage()
        """Usage of the latest propose or revise, whatever its outcome."""

    def __repr__(self) -> str:
        return (
            f"LLMDesigner({self.config!r}, provider={self.provider!r}, budget={self.budget!r}, "
            f"max_retries={self.max_retries})"
        )

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def total_usage(self) -> Usage:
        total = Usage()
        for call in self.calls:
            total += call.usage
        return total

    def propose(self, history: Sequence[PastExperiment], task: TaskContext) -> Design:
        """A new codec built on the best codecs in `history`.

        Raises `DesignError` when no reply held a codec within the retries (a codec the
        validator still rejects after the retries is returned, for the validation phase to
        record), `LLMError` when the model cannot be reached, `BudgetExceeded` when the budget
        forbids the next call. Each carries `.usage` of the calls made.
        """
        prompt = propose_prompt(history, task, self.limits)
        log.debug("propose prompt: about %d tokens", prompt.estimated_tokens)
        known = _known_sources(history, prompt.parents)
        conversation = _Conversation(prompt, known)
        design, error = self._converse(conversation)
        if design is None:
            raise DesignError(
                f"{self.name} gave no usable codec in {1 + self.max_retries} replies; the last "
                f"problem: {error}",
                attempts=1 + self.max_retries,
                usage=conversation.usage,
            )
        return design

    def revise(
        self, design: Design, error: str, history: Sequence[PastExperiment], task: TaskContext
    ) -> Design | None:
        """`design` fixed after it failed with `error`, or None if no reply held a codec.

        Raises `LLMError` and `BudgetExceeded` like `propose`.
        """
        prompt = revise_prompt(design, error, task, self.limits)
        known = _known_sources(history, {FAILING_ID: design.source})
        conversation = _Conversation(prompt, known)
        revised, problem = self._converse(conversation)
        if revised is None:
            log.warning("%s could not revise the codec: %s", self.name, problem)
        return revised

    # --- the conversation loop ----------------------------------------------------------------

    def _converse(self, conversation: _Conversation) -> tuple[Design | None, str]:
        """Up to 1 + max_retries replies; the design, or None and the last problem."""
        last: _Candidate | None = None
        problem = ""
        for attempt in range(1, self.max_retries + 2):
            completion = self._call(conversation)
            try:
                candidate = self._candidate(parse_reply(completion.text), conversation)
            except ReplyError as exc:
                problem = str(exc)
                log.info("%s reply %d unusable: %s", self.name, attempt, _first_line(problem))
                self._send_back(conversation, completion, problem)
                continue
            report = validate_source(candidate.source, filename="candidate.py")
            duplicate = conversation.known.get(candidate.source.strip())
            if report.ok and duplicate is None:
                self.last_usage = conversation.usage
                return self._design(candidate, conversation), ""
            name = f"candidate-{attempt}"
            conversation.bases[name] = candidate.source
            conversation.lineage[name] = self._parent_ids(candidate, conversation)
            conversation.candidates.append(name)
            if duplicate is not None:
                problem = (
                    f"The codec you sent is identical to `{duplicate}`, which was already "
                    "tried or shown to you: change it."
                )
            else:
                last = candidate
                problem = _violations_text(report, candidate.source, name)
            log.info("%s reply %d rejected: %s", self.name, attempt, _first_line(problem))
            self._send_back(conversation, completion, problem)
        self.last_usage = conversation.usage
        if last is not None:
            # Still rejected by the validator after the retries: returned all the same, so the
            # validation phase records the code and why it failed.
            return self._design(last, conversation), problem
        return None, problem

    def _call(self, conversation: _Conversation) -> Completion:
        """One model call, charged to the budget and recorded."""
        try:
            if self.budget is not None:
                self.budget.check()
            completion = self.provider.complete(
                conversation.messages,
                model=self.config.model,
                temperature=self.config.temperature,
                max_tokens=self.config.max_tokens,
                timeout=self.config.timeout_s,
            )
        except (LLMError, BudgetExceeded) as exc:
            exc.usage = conversation.usage
            self.last_usage = conversation.usage
            raise
        cost = price_call(completion, self.config.model, self.prices)
        self.calls.append(cost)
        if self.budget is not None:
            self.budget.charge(cost)
        conversation.usage += cost.usage
        log.info(
            "%s call: %d input + %d output tokens, $%.4f%s",
            self.name,
            cost.input_tokens,
            cost.output_tokens,
            cost.cost_usd,
            "" if cost.priced else " (model not in the price table)",
        )
        return completion

    def _send_back(self, conversation: _Conversation, completion: Completion, problem: str) -> None:
        conversation.messages.append(Message("assistant", completion.text))
        text = retry_text(problem, truncated=completion.truncated, limits=self.limits)
        conversation.messages.append(Message("user", text))

    def _candidate(self, reply: Reply, conversation: _Conversation) -> _Candidate:
        """The source a reply proposes: its module, or its edits applied to their parent."""
        bases = conversation.bases
        if reply.module is not None:
            base = reply.parent if reply.parent in bases else None
            return _Candidate(reply.module, reply.rationale, base)
        if reply.parent is not None:
            if reply.parent not in bases:
                raise ReplyError(
                    f"PARENT `{reply.parent}` is not a codec shown to you; edits can apply to: "
                    f"{_ids(bases)}"
                )
            source = apply_edits(bases[reply.parent], reply.edits, parent=reply.parent)
            return _Candidate(source, reply.rationale, reply.parent)
        originals = list(conversation.prompt.parents)
        order = conversation.candidates[-1:] + (originals if len(originals) == 1 else [])
        if not order:
            raise ReplyError(
                "SEARCH/REPLACE edits need a line `PARENT: <id>` naming the codec they apply to; "
                f"one of: {_ids(bases)}"
            )
        failures: list[EditError] = []
        for base in order:  # the latest candidate first, then the only codec shown
            try:
                source = apply_edits(bases[base], reply.edits, parent=base)
            except EditError as exc:
                failures.append(exc)
                continue
            return _Candidate(source, reply.rationale, base)
        raise failures[0]

    def _parent_ids(self, candidate: _Candidate, conversation: _Conversation) -> tuple[str, ...]:
        """Experiment ids a candidate descends from (all codecs shown when it names none)."""
        if candidate.base is not None:
            return conversation.lineage.get(candidate.base, ())
        return _unique(
            experiment_id
            for name in conversation.prompt.parents
            for experiment_id in conversation.lineage.get(name, ())
        )

    def _design(self, candidate: _Candidate, conversation: _Conversation) -> Design:
        return Design(
            source=candidate.source,
            rationale=candidate.rationale,
            parent_ids=self._parent_ids(candidate, conversation),
            params={},
            designer=self.name,
            usage=conversation.usage,
        )


def _known_sources(history: Sequence[PastExperiment], shown: Mapping[str, str]) -> dict[str, str]:
    known = {experiment.source.strip(): experiment.id for experiment in history}
    known.update({source.strip(): name for name, source in shown.items()})
    return known


def _violations_text(report: ValidationReport, source: str, name: str) -> str:
    lines = source.split("\n")
    count = len(report.violations)
    out = [
        f"The static validator rejected your codec ({count} violation"
        f"{'s' if count != 1 else ''}); it is kept as `{name}`:"
    ]
    for violation in report.violations[:_MAX_VIOLATIONS_SHOWN]:
        out.append(str(violation))
        if violation.line is not None and 0 < violation.line <= len(lines):
            out.append(f"    {violation.line} | {lines[violation.line - 1].rstrip()}")
    if count > _MAX_VIOLATIONS_SHOWN:
        out.append(f"... and {count - _MAX_VIOLATIONS_SHOWN} more")
    out.append(
        f"Fix every violation: send SEARCH/REPLACE edits of `{name}` (PARENT: {name}) or a "
        "complete module."
    )
    return "\n".join(out)


def _ids(bases: Mapping[str, str]) -> str:
    return ", ".join(f"`{name}`" for name in bases)


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _first_line(text: str) -> str:
    return text.split("\n", 1)[0]


if TYPE_CHECKING:
    _IS_A_DESIGNER: type[Designer] = LLMDesigner  # mypy checks the protocol here
