"""Which model to ask and how: `LLMConfig`, and the `provider:model[@base_url]` spec parser.

The config names the environment variable that holds the API key, never the key itself, so a
config can be printed, logged and stored in records without leaking it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Literal, cast

Provider = Literal["openai", "anthropic"]

PROVIDERS: tuple[Provider, ...] = ("openai", "anthropic")

DEFAULT_KEY_ENV: dict[Provider, str] = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
}
"""Environment variable read for the key when `LLMConfig.api_key_env` is not set."""

_SPEC = re.compile(r"^(?P<provider>[a-z]+):(?P<model>.+?)(?:@(?P<url>https?://\S+))?$")


@dataclass(frozen=True)
class LLMConfig:
    """One chat model behind one endpoint, and how to call it.

    `base_url` None means the provider's public API (the SDK also honours OPENAI_BASE_URL /
    ANTHROPIC_BASE_URL then). For OpenAI-compatible servers give the URL up to ``/v1``
    (``http://127.0.0.1:8080/v1``); for Anthropic-compatible ones the URL before ``/v1``.
    """

    provider: Provider
    model: str
    base_url: str | None = None
    api_key_env: str | None = None
    """Name of the environment variable holding the key; None: `DEFAULT_KEY_ENV[provider]`."""
    temperature: float | None = None
    """None: not sent, the model's default applies (OpenAI's reasoning models and newer Claude
    models reject any other; the anthropic 2.x SDK no longer has the parameter, so it goes in
    the request body as is)."""
    max_tokens: int = 16384
    """Most tokens of one reply (a full codec module is 5-8k tokens)."""
    timeout_s: float = 300.0
    """Wall-clock limit of one HTTP attempt, streamed or not."""
    max_retries: int = 2
    """HTTP retries by the SDK, with exponential backoff, on 408/409/429/5xx and timeouts."""
    stream: bool = False
    """Stream the reply (server-sent events) and accumulate it."""

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise ValueError(
                f"unknown LLM provider {self.provider!r}; known: {', '.join(PROVIDERS)}"
            )
        if not self.model.strip():
            raise ValueError("LLM model name is empty")
        if self.timeout_s <= 0:
            raise ValueError(f"LLM timeout_s must be positive, got {self.timeout_s}")
        if self.max_retries < 0:
            raise ValueError(f"LLM max_retries must be >= 0, got {self.max_retries}")
        if self.max_tokens < 1:
            raise ValueError(f"LLM max_tokens must be >= 1, got {self.max_tokens}")

    @property
    def key_env(self) -> str:
        """The environment variable the key is read from."""
        return self.api_key_env or DEFAULT_KEY_ENV[self.provider]

    @property
    def name(self) -> str:
        """``provider:model``, how designs made with this config are labelled."""
        return f"{self.provider}:{self.model}"


def parse_spec(spec: str, **overrides: Any) -> LLMConfig:
    """`LLMConfig` from ``provider:model`` or ``provider:model@base_url``.

    Examples: ``openai:gpt-4o-mini``, ``anthropic:claude-sonnet-4-5``,
    ``openai:qwen2.5-coder:7b@http://127.0.0.1:11434/v1`` (the model may contain ``:``; the
    base URL starts at the first ``@http``). `overrides` set other `LLMConfig` fields.
    """
    match = _SPEC.match(spec.strip())
    if match is None:
        raise ValueError(
            f"cannot read LLM spec {spec!r}: expected 'provider:model' or "
            "'provider:model@http://host:port/v1', e.g. 'openai:gpt-4o-mini'"
        )
    provider = match["provider"]
    if provider not in PROVIDERS:
        raise ValueError(
            f"unknown LLM provider {provider!r} in spec {spec!r}; known: {', '.join(PROVIDERS)} "
            "(OpenAI-compatible servers such as vLLM, Ollama, llama.cpp and OpenRouter use "
            "'openai:MODEL@BASE_URL')"
        )
    config = LLMConfig(
        provider=cast(Provider, provider), model=match["model"], base_url=match["url"]
    )
    return replace(config, **overrides) if overrides else config
