"""LLM specs and config: parsing, defaults, validation."""

from __future__ import annotations

import pytest

from codeclab.designers.llm.config import LLMConfig, parse_spec


def test_spec_with_provider_and_model_uses_the_public_api() -> None:
    config = parse_spec("openai:gpt-4o-mini")

    assert (config.provider, config.model, config.base_url) == ("openai", "gpt-4o-mini", None)
    assert config.key_env == "OPENAI_API_KEY"
    assert config.name == "openai:gpt-4o-mini"


def test_spec_with_base_url_keeps_colons_in_the_model_name() -> None:
    config = parse_spec("openai:qwen2.5-coder:7b@http://127.0.0.1:11434/v1")

    assert config.model == "qwen2.5-coder:7b"
    assert config.base_url == "http://127.0.0.1:11434/v1"


def test_anthropic_spec_reads_the_anthropic_key_variable() -> None:
    config = parse_spec("anthropic:claude-sonnet-4-5")

    assert config.provider == "anthropic"
    assert config.key_env == "ANTHROPIC_API_KEY"


def test_spec_overrides_set_other_fields() -> None:
    config = parse_spec("openai:m@http://127.0.0.1:8080/v1", api_key_env="MY_KEY", stream=True)

    assert config.key_env == "MY_KEY"
    assert config.stream is True


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("gpt-4o-mini", "expected 'provider:model'"),
        ("openai:", "expected 'provider:model'"),
        ("litellm:gpt-4o", "unknown LLM provider 'litellm'"),
    ],
)
def test_bad_specs_say_what_was_expected(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_spec(spec)


def test_config_rejects_settings_that_cannot_work() -> None:
    with pytest.raises(ValueError, match="timeout_s must be positive"):
        LLMConfig("openai", "m", timeout_s=0)
    with pytest.raises(ValueError, match="max_retries must be >= 0"):
        LLMConfig("openai", "m", max_retries=-1)
