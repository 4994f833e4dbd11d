"""What model calls cost: a price table, the cost of one call, and a spending budget.

Prices are USD per million tokens, input and output. `DEFAULT_PRICES` holds a few public list
prices as a starting point only: they change, they differ by snapshot, batch and cache
pricing are ignored. Check them against your provider's price page and pass your own table
(`PriceTable.from_mapping`). A model missing from the table costs 0 and its calls are recorded
with ``priced=False``, so an unpriced total is never mistaken for a free one.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from codeclab.designers.base import Usage
from codeclab.designers.llm.providers import Completion

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens."""

    input_per_mtok: float
    output_per_mtok: float

    def __post_init__(self) -> None:
        if self.input_per_mtok < 0 or self.output_per_mtok < 0:
            raise ValueError(f"a price cannot be negative: {self}")

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1e6


DEFAULT_PRICES_AS_OF = "2025"

DEFAULT_PRICES: Mapping[str, ModelPrice] = {
    # DEFAULTS: public list prices (USD / million tokens) as of DEFAULT_PRICES_AS_OF.
    # Check them before relying on a budget; override them with your own table.
    "gpt-4o-mini": ModelPrice(0.15, 0.60),
    "gpt-4o": ModelPrice(2.50, 10.00),
    "gpt-4.1": ModelPrice(2.00, 8.00),
    "gpt-4.1-mini": ModelPrice(0.40, 1.60),
    "gpt-4.1-nano": ModelPrice(0.10, 0.40),
    "o3-mini": ModelPrice(1.10, 4.40),
    "o4-mini": ModelPrice(1.10, 4.40),
    "gpt-5": ModelPrice(1.25, 10.00),
    "gpt-5-mini": ModelPrice(0.25, 2.00),
    "gpt-5-nano": ModelPrice(0.05, 0.40),
    "claude-3-5-haiku": ModelPrice(0.80, 4.00),
    "claude-haiku-4-5": ModelPrice(1.00, 5.00),
    "claude-3-7-sonnet": ModelPrice(3.00, 15.00),
    "claude-sonnet-4": ModelPrice(3.00, 15.00),
    "claude-sonnet-4-5": ModelPrice(3.00, 15.00),
    "claude-opus-4": ModelPrice(15.00, 75.00),
    "claude-opus-4-1": ModelPrice(15.00, 75.00),
}
"""Default price table: a starting point the user should check, not a source of truth."""

_SNAPSHOT_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|latest)$")


@dataclass(frozen=True)
class PriceTable:
    """Prices by model name; a dated snapshot (``gpt-4o-mini-2024-07-18``,
    ``claude-sonnet-4-5-20250929``, ``...-latest``) falls back to its undated name."""

    prices: Mapping[str, ModelPrice] = field(default_factory=lambda: dict(DEFAULT_PRICES))

    @classmethod
    def from_mapping(
        cls, table: Mapping[str, Mapping[str, float]], *, with_defaults: bool = True
    ) -> PriceTable:
        """A table from config: ``{"model": {"input": usd_per_mtok, "output": usd_per_mtok}}``.

        With `with_defaults`, the given prices replace or extend `DEFAULT_PRICES`.
        """
        prices: dict[str, ModelPrice] = dict(DEFAULT_PRICES) if with_defaults else {}
        for model, entry in table.items():
            unknown = set(entry) - {"input", "output"}
            if unknown or len(entry) != 2:
                raise ValueError(
                    f"price of model {model!r} must have exactly the keys 'input' and 'output' "
                    f"(USD per million tokens), got {sorted(entry)}"
                )
            prices[model] = ModelPrice(float(entry["input"]), float(entry["output"]))
        return cls(prices)

    def lookup(self, model: str) -> ModelPrice | None:
        """The price of `model`, or None when the table does not know it."""
        if model in self.prices:
            return self.prices[model]
        undated = _SNAPSHOT_SUFFIX.sub("", model)
        return self.prices.get(undated)


@dataclass(frozen=True)
class CallCost:
    """The cost of one model call, as recorded."""

    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    priced: bool
    """False: the model is not in the price table and `cost_usd` is 0, not a real cost."""
    usage_reported: bool
    """False: the server sent no token counts; they are estimates from the text length."""

    @property
    def usage(self) -> Usage:
        return Usage(1, self.input_tokens, self.output_tokens, self.cost_usd)


def price_call(completion: Completion, requested_model: str, table: PriceTable) -> CallCost:
    """Cost of one call: tokens from the server's usage times the table's price.

    The model the server names (often a dated snapshot) is looked up first, then the one asked
    for.
    """
    price = table.lookup(completion.model) or table.lookup(requested_model)
    cost = price.cost(completion.input_tokens, completion.output_tokens) if price else 0.0
    return CallCost(
        model=completion.model,
        input_tokens=completion.input_tokens,
        output_tokens=completion.output_tokens,
        cost_usd=cost,
        priced=price is not None,
        usage_reported=completion.usage_reported,
    )


class BudgetExceeded(RuntimeError):  # noqa: N818 (the name says what happened)
    """No call may start: the money spent has reached the budget. Stops a campaign cleanly."""

    def __init__(self, spent_usd: float, max_usd: float) -> None:
        super().__init__(
            f"LLM budget exhausted: spent ${spent_usd:.4f} of ${max_usd:.4f}; no further model "
            "call is made (raise the budget to continue)"
        )
        self.spent_usd = spent_usd
        self.max_usd = max_usd
        self.usage = Usage()
        """Calls already made by the designer call this error ended (set by the designer)."""


class Budget:
    """At most `max_usd` of model calls, shared by everything that holds it (thread-safe).

    `check()` before a call raises `BudgetExceeded` once the spent total is >= `max_usd`; the
    call that crosses the line completes and is charged, the next one never starts.
    """

    def __init__(self, max_usd: float, spent_usd: float = 0.0) -> None:
        if max_usd < 0:
            raise ValueError(f"budget max_usd cannot be negative, got {max_usd}")
        self.max_usd = max_usd
        self.lock = threading.Lock()
        self.spent = spent_usd

    def __repr__(self) -> str:
        return f"Budget(max_usd={self.max_usd}, spent_usd={self.spent_usd})"

    @property
    def spent_usd(self) -> float:
        with self.lock:
            return self.spent

    @property
    def remaining_usd(self) -> float:
        with self.lock:
            return max(0.0, self.max_usd - self.spent)

    def check(self) -> None:
        """Raise `BudgetExceeded` if no call may start."""
        with self.lock:
            if self.spent >= self.max_usd:
                raise BudgetExceeded(self.spent, self.max_usd)

    def charge(self, cost: CallCost) -> None:
        """Add one call's cost (an unpriced call adds 0 and is logged once per model)."""
        with self.lock:
            self.spent += cost.cost_usd
        if not cost.priced:
            _warn_unpriced(cost.model)


_warned_unpriced: set[str] = set()


def _warn_unpriced(model: str) -> None:
    if model not in _warned_unpriced:
        _warned_unpriced.add(model)
        log.warning(
            "model %r is not in the price table: its calls are counted as $0 and the budget "
            "cannot limit them (add its prices to the table)",
            model,
        )
