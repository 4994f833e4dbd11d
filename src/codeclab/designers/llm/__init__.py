"""The LLM designer: chat providers (OpenAI-compatible, Anthropic), prompts, replies, cost.

Typical use::

    config = parse_spec("openai:gpt-4o-mini")            # key from OPENAI_API_KEY
    designer = LLMDesigner(config, budget=Budget(max_usd=5.0))
    design = designer.propose(history, task)
"""

from codeclab.designers.llm.config import LLMConfig, parse_spec
from codeclab.designers.llm.cost import (
    DEFAULT_PRICES,
    Budget,
    BudgetExceeded,
    CallCost,
    ModelPrice,
    PriceTable,
    price_call,
)
from codeclab.designers.llm.designer import DesignError, LLMDesigner
from codeclab.designers.llm.prompt import PromptLimits
from codeclab.designers.llm.providers import (
    AnthropicProvider,
    ChatProvider,
    Completion,
    LLMError,
    Message,
    OpenAIProvider,
    make_provider,
)
from codeclab.designers.llm.reply import EditError, ReplyError, apply_edits, parse_reply

__all__ = [
    "DEFAULT_PRICES",
    "AnthropicProvider",
    "Budget",
    "BudgetExceeded",
    "CallCost",
    "ChatProvider",
    "Completion",
    "DesignError",
    "EditError",
    "LLMConfig",
    "LLMDesigner",
    "LLMError",
    "Message",
    "ModelPrice",
    "OpenAIProvider",
    "PriceTable",
    "PromptLimits",
    "ReplyError",
    "apply_edits",
    "make_provider",
    "parse_reply",
    "parse_spec",
    "price_call",
]
