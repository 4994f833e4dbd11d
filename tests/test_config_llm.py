"""The ``[llm]`` table: how LLM designers call their model, and the price table."""

from __future__ import annotations

from pathlib import Path

import pytest

from codeclab.config import ConfigError, LLMSettings, load_settings
from codeclab.designers.llm import LLMDesigner
from codeclab.pipeline.campaign import CampaignConfig, make_designer


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "codeclab.toml"
    path.write_text(text)
    return path


def test_llm_table_sets_the_client_and_extends_the_price_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path,
        """
[llm]
temperature = 0.4
max_tokens = 8000
timeout_s = 45
max_retries = 0
stream = true
api_key_env = "LAB_LLM_KEY"

[llm.prices]
"qwen2.5-coder" = { input = 0.1, output = 0.3 }
""",
    )
    settings = load_settings(config_path=path)
    assert settings.llm.client_options() == {
        "temperature": 0.4,
        "max_tokens": 8000,
        "timeout_s": 45.0,
        "max_retries": 0,
        "stream": True,
        "api_key_env": "LAB_LLM_KEY",
    }
    monkeypatch.setenv("LAB_LLM_KEY", "sk-from-the-named-variable")
    config = CampaignConfig(designer="openai:qwen2.5-coder@http://127.0.0.1:9/v1")
    designer = make_designer(config, llm=settings.llm)
    assert isinstance(designer, LLMDesigner)
    assert designer.config.temperature == 0.4 and designer.config.stream
    assert designer.config.timeout_s == 45.0 and designer.config.key_env == "LAB_LLM_KEY"
    assert designer.config.base_url == "http://127.0.0.1:9/v1"
    price = designer.prices.lookup("qwen2.5-coder")
    assert price is not None and (price.input_per_mtok, price.output_per_mtok) == (0.1, 0.3)
    assert designer.prices.lookup("gpt-4o-mini") is not None  # the built-in table is kept


def test_without_an_llm_table_the_client_defaults_apply() -> None:
    assert LLMSettings().client_options() == {}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("temperature = 3", "temperature must be a number from 0 to 2"),
        ("max_tokens = 0", "max_tokens must be an integer >= 1"),
        ("timeout_s = -1", "timeout_s must be a positive number"),
        ('api_key_env = "sk-abc 123"', "names an environment variable"),
        ("colour = 1", "unknown setting(s) colour"),
        ("prices = { m = { input = 1 } }", "the price of 'm' must be"),
    ],
)
def test_bad_llm_settings_name_the_file_and_the_key(
    tmp_path: Path, table: str, message: str
) -> None:
    path = write(tmp_path, f"[llm]\n{table}\n")
    with pytest.raises(ConfigError) as error:
        load_settings(config_path=path)
    assert str(path) in str(error.value) and "[llm]" in str(error.value)
    assert message in str(error.value)
