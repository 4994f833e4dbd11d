"""Prices, call costs and the spending budget."""

from __future__ import annotations

import logging

import pytest

from codeclab.designers.base import Usage
from codeclab.designers.llm.cost import (
    DEFAULT_PRICES,
    Budget,
    BudgetExceeded,
    CallCost,
    ModelPrice,
    PriceTable,
    price_call,
)
from codeclab.designers.llm.providers import Completion


def same_usage(actual: Usage, expected: Usage) -> bool:
    """Equal counts and, to rounding, equal cost."""
    counts = (actual.calls, actual.input_tokens, actual.output_tokens)
    wanted = (expected.calls, expected.input_tokens, expected.output_tokens)
    return counts == wanted and actual.cost_usd == pytest.approx(expected.cost_usd)


def completion(
    model: str, input_tokens: int = 2_000_000, output_tokens: int = 500_000
) -> Completion:
    return Completion("text", input_tokens, output_tokens, model, "stop")


def test_cost_is_tokens_times_the_table_price() -> None:
    table = PriceTable({"m": ModelPrice(input_per_mtok=1.5, output_per_mtok=6.0)})

    cost = price_call(completion("m"), "m", table)

    assert cost.cost_usd == pytest.approx(2 * 1.5 + 0.5 * 6.0)
    assert cost.priced is True
    assert same_usage(cost.usage, Usage(1, 2_000_000, 500_000, 6.0))


def test_dated_snapshot_is_priced_as_its_model() -> None:
    table = PriceTable()

    assert table.lookup("gpt-4o-mini-2024-07-18") == DEFAULT_PRICES["gpt-4o-mini"]
    assert table.lookup("claude-sonnet-4-5-20250929") == DEFAULT_PRICES["claude-sonnet-4-5"]
    assert table.lookup("claude-3-5-haiku-latest") == DEFAULT_PRICES["claude-3-5-haiku"]


def test_model_is_not_priced_by_a_mere_prefix() -> None:
    table = PriceTable({"gpt-4o": ModelPrice(2.5, 10.0)})

    assert table.lookup("gpt-4o-mini") is None


def test_unknown_model_costs_nothing_and_is_marked_unpriced() -> None:
    cost = price_call(completion("qwen2.5-coder:7b"), "qwen2.5-coder:7b", PriceTable())

    assert cost.cost_usd == 0.0
    assert cost.priced is False


def test_requested_model_prices_a_call_when_the_answered_name_is_unknown() -> None:
    table = PriceTable({"m": ModelPrice(1.0, 1.0)})

    cost = price_call(completion("m-finetune-x", 1_000_000, 0), "m", table)

    assert cost.cost_usd == pytest.approx(1.0)


def test_price_table_from_config_extends_the_defaults() -> None:
    table = PriceTable.from_mapping({"local-model": {"input": 0.0, "output": 0.0}})

    assert table.lookup("local-model") == ModelPrice(0.0, 0.0)
    assert table.lookup("gpt-4o") == DEFAULT_PRICES["gpt-4o"]


def test_price_table_entry_without_both_prices_is_rejected() -> None:
    with pytest.raises(ValueError, match="'input' and 'output'"):
        PriceTable.from_mapping({"m": {"input": 1.0}})


def call_cost(usd: float, priced: bool = True) -> CallCost:
    return CallCost("m", 10, 10, usd, priced, True)


def test_budget_allows_calls_until_spent_reaches_the_maximum() -> None:
    budget = Budget(max_usd=1.0)
    budget.check()
    budget.charge(call_cost(0.6))
    budget.check()
    budget.charge(call_cost(0.5))  # the call that crosses the line completes

    with pytest.raises(BudgetExceeded, match=r"spent \$1.1000 of \$1.0000"):
        budget.check()
    assert budget.remaining_usd == 0.0


def test_unpriced_calls_are_logged_as_not_limited_by_the_budget(
    caplog: pytest.LogCaptureFixture,
) -> None:
    budget = Budget(max_usd=1.0)

    with caplog.at_level(logging.WARNING):
        budget.charge(CallCost("unlisted-model-x", 10, 10, 0.0, False, True))

    assert "not in the price table" in caplog.text
    assert budget.spent_usd == 0.0
