"""A tokenizer-free token estimate, for prompt budgets and servers that report no usage."""

from __future__ import annotations

import math

CHARS_PER_TOKEN = 3.5
"""Python source and English prose run at about 3.5-4 characters per token in the common BPE
vocabularies; the lower figure errs towards overestimating, which is the safe side of a budget."""


def estimate_tokens(text: str) -> int:
    """Estimated tokens of `text` (an overestimate for typical code and prose)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)
