"""Chat providers: one request in, one `Completion` out, through the official SDKs.

`OpenAIProvider` speaks ``/v1/chat/completions`` (OpenAI, vLLM, Ollama, llama.cpp server,
OpenRouter: anything OpenAI-compatible behind `LLMConfig.base_url`); `AnthropicProvider` speaks
``/v1/messages``. Both can stream (the reply is accumulated) and both let the SDK retry
408/409/429/5xx and timeouts with exponential backoff (`LLMConfig.max_retries`); what still
fails becomes an `LLMError` naming the provider, the model and the HTTP status.

The API key is read from the environment variable named by the config, handed to the SDK
client and nowhere else: it is not kept on the provider, not in its repr, not logged.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from codeclab.designers.base import Usage
from codeclab.designers.llm.config import LLMConfig
from codeclab.designers.llm.tokens import estimate_tokens

if TYPE_CHECKING:  # the SDKs take seconds to import: only a provider in use loads its own
    from anthropic.types import MessageParam
    from openai.types.chat import ChatCompletionMessageParam

log = logging.getLogger(__name__)

Role = Literal["system", "user", "assistant"]

_MAX_ERROR_CHARS = 600


@dataclass(frozen=True)
class Message:
    """One chat message."""

    role: Role
    content: str


@dataclass(frozen=True)
class Completion:
    """One reply and what it cost in tokens."""

    text: str
    input_tokens: int
    output_tokens: int
    model: str
    """The model the server says answered (may be a dated snapshot of the one asked for)."""
    finish_reason: str | None
    """``stop`` / ``end_turn`` for a complete reply; ``length`` / ``max_tokens`` if cut off."""
    usage_reported: bool = True
    """False when the server sent no token counts and they were estimated from the text."""

    @property
    def truncated(self) -> bool:
        """Whether the reply was cut off at the token limit."""
        return self.finish_reason in ("length", "max_tokens")


class LLMError(RuntimeError):
    """A model call failed after the SDK's retries (HTTP status, timeout, connection)."""

    def __init__(
        self, message: str, *, provider: str, model: str, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.model = model
        self.status = status
        self.usage = Usage()
        """Calls already made by the designer call this error ended (set by the designer)."""


class ChatProvider(Protocol):
    """Sends a conversation to a chat model and returns its reply."""

    def complete(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        temperature: float | None,
        max_tokens: int,
        timeout: float,
    ) -> Completion: ...


def make_provider(config: LLMConfig) -> ChatProvider:
    """The SDK-backed provider for `config.provider`."""
    if config.provider == "anthropic":
        return AnthropicProvider(config)
    return OpenAIProvider(config)


def _missing_sdk(name: str, config: LLMConfig) -> LLMError:
    return LLMError(
        f"{config.name}: the {name!r} package is not installed (pip install 'codeclab[llm]' "
        f"or pip install {name})",
        provider=config.provider,
        model=config.model,
    )


def _read_key(config: LLMConfig) -> str | None:
    """The key from the environment; an `LLMError` if the public API is used without one."""
    key = os.environ.get(config.key_env) or None
    if key is None and config.base_url is None:
        raise LLMError(
            f"{config.name}: no API key: the environment variable {config.key_env} is not set "
            "(export it, or name another variable with api_key_env; a local server given by "
            "base_url needs no key)",
            provider=config.provider,
            model=config.model,
        )
    return key


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 3] + "..."


def _status_hint(status: int, config: LLMConfig) -> str:
    if status in (401, 403):
        return f" (check the key in {config.key_env})"
    if status == 404:
        return " (check the model name and the base URL)"
    if status == 429 or status >= 500:
        return f" (after {config.max_retries} retries with backoff)"
    return ""


def _translate(exc: Exception, config: LLMConfig, where: str) -> LLMError:
    """An `LLMError` that says what failed, from an exception of `config.provider`'s SDK."""
    if config.provider == "anthropic":
        import anthropic as sdk
    else:
        import openai as sdk  # type: ignore[no-redef]
    prefix = f"{config.name} at {where}"
    status: int | None = None
    if isinstance(exc, sdk.APITimeoutError):
        message = (
            f"{prefix}: no reply within the timeout of {config.timeout_s:g} s "
            f"(after {config.max_retries} retries)"
        )
    elif isinstance(exc, sdk.APIStatusError):
        status = exc.status_code
        message = f"{prefix}: HTTP {status}{_status_hint(status, config)}: {_clip(exc.message)}"
    elif isinstance(exc, sdk.APIConnectionError):
        message = (
            f"{prefix}: cannot connect (after {config.max_retries} retries): {_clip(str(exc))}"
        )
    else:
        message = f"{prefix}: {type(exc).__name__}: {_clip(str(exc))}"
    return LLMError(message, provider=config.provider, model=config.model, status=status)


class _Deadline:
    """Wall-clock limit on reading a streamed reply (read timeouts only bound each chunk)."""

    def __init__(self, seconds: float, config: LLMConfig, where: str) -> None:
        self.seconds = seconds
        self.config = config
        self.where = where
        self.end = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.end:
            raise LLMError(
                f"{self.config.name} at {self.where}: the streamed reply took longer than the "
                f"timeout of {self.seconds:g} s",
                provider=self.config.provider,
                model=self.config.model,
            )


def _completion(
    text: str,
    messages: Sequence[Message],
    model: str,
    finish_reason: str | None,
    tokens: tuple[int, int] | None,
) -> Completion:
    if tokens is None:
        prompt = "".join(m.content for m in messages)
        return Completion(
            text, estimate_tokens(prompt), estimate_tokens(text), model, finish_reason, False
        )
    return Completion(text, tokens[0], tokens[1], model, finish_reason)


class OpenAIProvider:
    """``POST {base_url}/chat/completions`` through the official `openai` SDK."""

    def __init__(self, config: LLMConfig) -> None:
        try:
            import openai
        except ImportError as exc:
            raise _missing_sdk("openai", config) from exc

        has_key = _read_key(config) is not None  # fails now if the public API has no key
        self.config = config
        self.where = config.base_url or "the OpenAI API"
        env = config.key_env
        # A local server without a key: the SDK needs the header omitted per request.
        self.omit_auth = not has_key
        self.sdk_error: type[Exception] = openai.OpenAIError
        self.client = openai.OpenAI(
            # A callable: the SDK asks for the key per request instead of storing it.
            api_key=lambda: os.environ.get(env, ""),
            base_url=config.base_url,
            timeout=config.timeout_s,
            max_retries=config.max_retries,
        )

    def __repr__(self) -> str:
        return f"OpenAIProvider({self.config!r})"

    def complete(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        temperature: float | None,
        max_tokens: int,
        timeout: float,
    ) -> Completion:
        options: dict[str, Any] = {"model": model, "messages": _openai_messages(messages)}
        # OpenAI's own API wants max_completion_tokens (its reasoning models reject
        # max_tokens); compatible servers (vLLM, Ollama, llama.cpp) know max_tokens.
        limit_field = "max_tokens" if self.config.base_url else "max_completion_tokens"
        options[limit_field] = max_tokens
        if temperature is not None:
            options["temperature"] = temperature
        if self.omit_auth:
            import openai

            options["extra_headers"] = {"Authorization": openai.omit}
        log.debug("calling %s at %s (stream=%s)", self.config.name, self.where, self.config.stream)
        try:
            if self.config.stream:
                return self.streamed(messages, options, timeout)
            response = self.client.chat.completions.create(**options, timeout=timeout)
        except self.sdk_error as exc:
            raise _translate(exc, self.config, self.where) from exc
        if not response.choices:
            raise LLMError(
                f"{self.config.name} at {self.where}: the reply holds no choices",
                provider=self.config.provider,
                model=model,
            )
        choice = response.choices[0]
        usage = response.usage
        tokens = (usage.prompt_tokens, usage.completion_tokens) if usage is not None else None
        text = choice.message.content or ""
        return _completion(text, messages, response.model or model, choice.finish_reason, tokens)

    def streamed(
        self, messages: Sequence[Message], options: dict[str, Any], timeout: float
    ) -> Completion:
        stream = self.client.chat.completions.create(
            **options, stream=True, stream_options={"include_usage": True}, timeout=timeout
        )
        deadline = _Deadline(timeout, self.config, self.where)
        parts: list[str] = []
        finish_reason: str | None = None
        tokens: tuple[int, int] | None = None
        model: str = options["model"]
        with stream:
            for chunk in stream:
                deadline.check()
                model = chunk.model or model
                if chunk.usage is not None:
                    tokens = (chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                for choice in chunk.choices:
                    if choice.index != 0:
                        continue
                    if choice.delta.content:
                        parts.append(choice.delta.content)
                    if choice.finish_reason is not None:
                        finish_reason = choice.finish_reason
        return _completion("".join(parts), messages, model, finish_reason, tokens)


def _openai_messages(messages: Iterable[Message]) -> list[ChatCompletionMessageParam]:
    converted: list[ChatCompletionMessageParam] = []
    for message in messages:
        if message.role == "system":
            converted.append({"role": "system", "content": message.content})
        elif message.role == "user":
            converted.append({"role": "user", "content": message.content})
        else:
            converted.append({"role": "assistant", "content": message.content})
    return converted


class AnthropicProvider:
    """``POST {base_url}/v1/messages`` through the official `anthropic` SDK."""

    def __init__(self, config: LLMConfig) -> None:
        try:
            import anthropic
        except ImportError as exc:
            raise _missing_sdk("anthropic", config) from exc

        key = _read_key(config)
        self.sdk_error: type[Exception] = anthropic.AnthropicError
        self.config = config
        self.where = config.base_url or "the Anthropic API"
        headers: dict[str, Any] = {}
        if key is None:
            # A local server without a key: an explicit empty key stops the SDK from looking
            # for profiles on disk, and the omitted header keeps "Bearer " off the wire.
            headers["Authorization"] = anthropic.omit
        self.client = anthropic.Anthropic(
            api_key=key or "",
            base_url=config.base_url,
            timeout=config.timeout_s,
            max_retries=config.max_retries,
            default_headers=headers,
        )

    def __repr__(self) -> str:
        return f"AnthropicProvider({self.config!r})"

    def complete(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        temperature: float | None,
        max_tokens: int,
        timeout: float,
    ) -> Completion:
        system = "\n\n".join(m.content for m in messages if m.role == "system")
        options: dict[str, Any] = {
            "model": model,
            "max_tokens": max_tokens,
            "messages": _anthropic_messages(messages),
        }
        if system:
            options["system"] = system
        if temperature is not None:
            # Gone from the SDK's signature since anthropic 1.0; the API still takes it for the
            # models that support sampling options.
            options["extra_body"] = {"temperature": temperature}
        log.debug("calling %s at %s (stream=%s)", self.config.name, self.where, self.config.stream)
        try:
            if self.config.stream:
                return self.streamed(messages, options, timeout)
            response = self.client.messages.create(**options, timeout=timeout)
        except self.sdk_error as exc:
            raise _translate(exc, self.config, self.where) from exc
        text = "".join(block.text for block in response.content if block.type == "text")
        tokens = (response.usage.input_tokens, response.usage.output_tokens)
        return _completion(text, messages, response.model or model, response.stop_reason, tokens)

    def streamed(
        self, messages: Sequence[Message], options: dict[str, Any], timeout: float
    ) -> Completion:
        stream = self.client.messages.create(**options, stream=True, timeout=timeout)
        deadline = _Deadline(timeout, self.config, self.where)
        parts: list[str] = []
        finish_reason: str | None = None
        input_tokens: int | None = None
        output_tokens: int | None = None
        model: str = options["model"]
        with stream:
            for event in stream:
                deadline.check()
                if event.type == "message_start":
                    model = event.message.model or model
                    input_tokens = event.message.usage.input_tokens
                    output_tokens = event.message.usage.output_tokens
                elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                    parts.append(event.delta.text)
                elif event.type == "message_delta":
                    finish_reason = event.delta.stop_reason or finish_reason
                    output_tokens = event.usage.output_tokens  # cumulative
                    if event.usage.input_tokens is not None:
                        input_tokens = event.usage.input_tokens
        tokens = None
        if input_tokens is not None and output_tokens is not None:
            tokens = (input_tokens, output_tokens)
        return _completion("".join(parts), messages, model, finish_reason, tokens)


def _anthropic_messages(messages: Iterable[Message]) -> list[MessageParam]:
    converted: list[MessageParam] = []
    for message in messages:
        if message.role == "user":
            converted.append({"role": "user", "content": message.content})
        elif message.role == "assistant":
            converted.append({"role": "assistant", "content": message.content})
    return converted
