"""Chat providers through the real SDKs against a scripted HTTP server on 127.0.0.1."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest

from codeclab.designers.llm.config import LLMConfig, Provider
from codeclab.designers.llm.providers import ChatProvider, LLMError, Message, make_provider
from tests.designers.llm_server import (
    Delay,
    Failure,
    Reply,
    ScriptedLLMServer,
    SlowStream,
    running_server,
)

SECRETS = {"openai": "sk-test-openai-7f3a9c1e5b", "anthropic": "sk-ant-test-2d8e6b4a0c"}
PROVIDERS: tuple[Provider, ...] = ("openai", "anthropic")
FAST_RETRY = {"retry-after-ms": "1"}
MESSAGES = [Message("system", "You design codecs."), Message("user", "Propose a codec.")]


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


def provider_for(
    llm: ScriptedLLMServer,
    provider: Provider,
    *,
    stream: bool = False,
    max_retries: int = 1,
    timeout_s: float = 5.0,
    temperature: float | None = None,
) -> tuple[ChatProvider, LLMConfig]:
    config = LLMConfig(
        provider,
        "test-model",
        base_url=llm.base_url(provider),
        stream=stream,
        max_retries=max_retries,
        timeout_s=timeout_s,
        temperature=temperature,
    )
    return make_provider(config), config


def ask(provider: ChatProvider, config: LLMConfig, messages: list[Message] = MESSAGES) -> str:
    completion = provider.complete(
        messages,
        model=config.model,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        timeout=config.timeout_s,
    )
    return completion.text


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("name", PROVIDERS)
def test_reply_text_tokens_and_finish_reason_come_back(
    llm: ScriptedLLMServer, name: Provider, stream: bool
) -> None:
    provider, _ = provider_for(llm, name, stream=stream)
    text = "RATIONALE: bigger blocks.\n```python\nclass Encoder: ...\n```\n" * 3
    llm.enqueue(Reply(text, input_tokens=1234, output_tokens=567, model="test-model-2025"))

    completion = provider.complete(
        MESSAGES, model="test-model", temperature=None, max_tokens=900, timeout=5.0
    )

    assert completion.text == text
    assert (completion.input_tokens, completion.output_tokens) == (1234, 567)
    assert completion.usage_reported is True
    assert completion.model == "test-model-2025"
    assert completion.finish_reason in ("stop", "end_turn")
    assert not completion.truncated


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_openai_request_carries_messages_model_and_token_limit(
    llm: ScriptedLLMServer, stream: bool
) -> None:
    provider, config = provider_for(llm, "openai", stream=stream)
    llm.enqueue(Reply("ok"))

    ask(provider, config)

    request = llm.requests[-1]
    body = request.json()
    assert request.path == "/v1/chat/completions"
    assert body["model"] == "test-model"
    assert body["messages"] == [
        {"role": "system", "content": "You design codecs."},
        {"role": "user", "content": "Propose a codec."},
    ]
    assert body["max_tokens"] == config.max_tokens
    assert "temperature" not in body
    assert body.get("stream", False) is stream
    if stream:
        assert body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_anthropic_request_puts_the_system_prompt_apart(
    llm: ScriptedLLMServer, stream: bool
) -> None:
    provider, config = provider_for(llm, "anthropic", stream=stream, temperature=0.2)
    llm.enqueue(Reply("ok"))

    ask(provider, config)

    request = llm.requests[-1]
    body = request.json()
    assert request.path == "/v1/messages"
    assert body["system"] == "You design codecs."
    assert body["messages"] == [{"role": "user", "content": "Propose a codec."}]
    assert body["max_tokens"] == config.max_tokens
    assert body["temperature"] == 0.2
    assert body.get("stream", False) is stream


def test_openai_public_api_gets_max_completion_tokens(
    llm: ScriptedLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No base_url in the config: the SDK's own OPENAI_BASE_URL points it at the test server.
    monkeypatch.setenv("OPENAI_BASE_URL", llm.openai_base_url)
    config = LLMConfig("openai", "test-model", max_retries=0, timeout_s=5.0, temperature=0.5)
    llm.enqueue(Reply("ok"))

    ask(make_provider(config), config)

    body = llm.requests[-1].json()
    assert body["max_completion_tokens"] == config.max_tokens
    assert "max_tokens" not in body
    assert body["temperature"] == 0.5


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("name", PROVIDERS)
def test_rate_limit_is_retried_then_succeeds(
    llm: ScriptedLLMServer, name: Provider, stream: bool
) -> None:
    provider, config = provider_for(llm, name, stream=stream, max_retries=2)
    llm.enqueue(
        Failure(429, "slow down", FAST_RETRY), Failure(503, "busy", FAST_RETRY), Reply("ok")
    )

    assert ask(provider, config) == "ok"
    assert [r.headers["x-stainless-retry-count"] for r in llm.requests] == ["0", "1", "2"]


@pytest.mark.parametrize("name", PROVIDERS)
def test_persistent_rate_limit_is_an_llm_error_naming_provider_model_and_status(
    llm: ScriptedLLMServer, name: Provider
) -> None:
    provider, config = provider_for(llm, name, max_retries=2)
    llm.enqueue(*[Failure(429, "rate limited", FAST_RETRY)] * 3)

    with pytest.raises(LLMError) as caught:
        ask(provider, config)

    error = caught.value
    assert (error.provider, error.model, error.status) == (name, "test-model", 429)
    assert f"{name}:test-model at {llm.base_url(name)}: HTTP 429" in str(error)
    assert "after 2 retries" in str(error)
    assert len(llm.requests) == 3


@pytest.mark.parametrize("name", PROVIDERS)
def test_client_error_is_not_retried(llm: ScriptedLLMServer, name: Provider) -> None:
    provider, config = provider_for(llm, name, max_retries=2)
    llm.enqueue(Failure(404, "no such model"))

    with pytest.raises(LLMError, match="HTTP 404 \\(check the model name and the base URL\\)"):
        ask(provider, config)
    assert len(llm.requests) == 1


@pytest.mark.timeout(20)
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("name", PROVIDERS)
def test_server_slower_than_the_timeout_is_an_llm_error(
    llm: ScriptedLLMServer, name: Provider, stream: bool
) -> None:
    provider, config = provider_for(llm, name, stream=stream, max_retries=0, timeout_s=0.3)
    llm.enqueue(Delay(5.0, Reply("too late")))

    with pytest.raises(LLMError, match=r"no reply within the timeout of 0\.3 s") as caught:
        ask(provider, config)
    assert caught.value.status is None


@pytest.mark.timeout(20)
@pytest.mark.parametrize("name", PROVIDERS)
def test_stream_trickling_past_the_timeout_is_an_llm_error(
    llm: ScriptedLLMServer, name: Provider
) -> None:
    # Each chunk arrives well within the read timeout; the whole reply does not.
    provider, config = provider_for(llm, name, stream=True, max_retries=0, timeout_s=0.5)
    llm.enqueue(SlowStream(Reply("x" * 2_000), chunk_delay=0.1))

    with pytest.raises(LLMError, match=r"streamed reply took longer than the timeout of 0\.5 s"):
        ask(provider, config)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_missing_usage_is_estimated_and_flagged(llm: ScriptedLLMServer, stream: bool) -> None:
    provider, _ = provider_for(llm, "openai", stream=stream)
    llm.enqueue(Reply("a" * 700, usage=False))

    completion = provider.complete(
        MESSAGES, model="test-model", temperature=None, max_tokens=100, timeout=5.0
    )

    assert completion.usage_reported is False
    assert completion.output_tokens == 200  # 700 characters at 3.5 per token
    assert completion.input_tokens > 0


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_reply_cut_at_the_token_limit_is_marked_truncated(
    llm: ScriptedLLMServer, stream: bool
) -> None:
    cut_off: tuple[tuple[Provider, str], ...] = (("openai", "length"), ("anthropic", "max_tokens"))
    for name, reason in cut_off:
        provider, _ = provider_for(llm, name, stream=stream)
        llm.enqueue(Reply("```python\nclass Enc", finish_reason=reason))

        completion = provider.complete(
            MESSAGES, model="test-model", temperature=None, max_tokens=10, timeout=5.0
        )

        assert completion.truncated


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("name", PROVIDERS)
def test_key_goes_only_into_the_authorization_header(
    llm: ScriptedLLMServer, name: Provider, stream: bool, caplog: pytest.LogCaptureFixture
) -> None:
    secret = SECRETS[name]
    with caplog.at_level(logging.DEBUG):
        provider, config = provider_for(llm, name, stream=stream, max_retries=1)
        llm.enqueue(Failure(500, "oops", FAST_RETRY), Reply("ok"))
        ask(provider, config)

    assert len(llm.requests) == 2
    for request in llm.requests:
        assert request.headers["authorization"] == f"Bearer {secret}"
        others = {k: v for k, v in request.headers.items() if k != "authorization"}
        assert secret not in repr(others)
        assert secret.encode() not in request.body
    assert secret not in repr(provider)
    assert secret not in repr(config)
    assert secret not in caplog.text


def test_custom_key_variable_is_read(
    llm: ScriptedLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_GATEWAY_KEY", "gw-secret-1")
    config = LLMConfig(
        "openai", "test-model", base_url=llm.openai_base_url, api_key_env="MY_GATEWAY_KEY"
    )
    llm.enqueue(Reply("ok"))

    ask(make_provider(config), config)

    assert llm.requests[-1].headers["authorization"] == "Bearer gw-secret-1"


@pytest.mark.parametrize("name", PROVIDERS)
def test_missing_key_for_the_public_api_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: Provider
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    variable = "OPENAI_API_KEY" if name == "openai" else "ANTHROPIC_API_KEY"

    with pytest.raises(LLMError, match=f"the environment variable {variable} is not set"):
        make_provider(LLMConfig(name, "test-model"))


@pytest.mark.parametrize("name", PROVIDERS)
def test_local_server_without_a_key_gets_no_authorization_header(
    llm: ScriptedLLMServer, monkeypatch: pytest.MonkeyPatch, name: Provider
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    provider, config = provider_for(llm, name)
    llm.enqueue(Reply("ok"))

    assert ask(provider, config) == "ok"
    assert "authorization" not in llm.requests[-1].headers


@pytest.mark.parametrize("name", PROVIDERS)
def test_unreachable_server_is_an_llm_error(
    monkeypatch: pytest.MonkeyPatch, name: Provider
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRETS["openai"])
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRETS["anthropic"])
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}" + ("/v1" if name == "openai" else "")
    config = LLMConfig(name, "test-model", base_url=base, max_retries=0, timeout_s=2.0)

    with pytest.raises(LLMError, match="cannot connect"):
        ask(make_provider(config), config)
