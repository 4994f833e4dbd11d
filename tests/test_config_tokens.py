"""The dashboard's tokens as settings: TOML file, then environment; never shown or pickled."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import pytest

from codeclab.config import ConfigError, Settings, load_settings

ADMIN = "admin-token-from-toml-0123456789"
READ = "read-token-from-toml-0123456789"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no ./codeclab.toml but the tests' own
    for name in ("CODECLAB_CONFIG", "CODECLAB_ADMIN_TOKEN", "CODECLAB_READ_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lab.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_no_token_is_configured_by_default() -> None:
    settings = load_settings()
    assert settings.admin_token is None and settings.read_token is None


def test_tokens_come_from_the_toml_file(tmp_path: Path) -> None:
    path = _toml(tmp_path, f'admin_token = "{ADMIN}"\nread_token = "{READ}"\n')
    settings = load_settings(config_path=path)
    assert (settings.admin_token, settings.read_token) == (ADMIN, READ)


def test_the_environment_overrides_the_toml_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _toml(tmp_path, f'admin_token = "{ADMIN}"\nread_token = "{READ}"\n')
    monkeypatch.setenv("CODECLAB_ADMIN_TOKEN", "admin-token-from-the-env-42")
    monkeypatch.setenv("CODECLAB_READ_TOKEN", "")  # empty: not set
    settings = load_settings(config_path=path)
    assert (settings.admin_token, settings.read_token) == ("admin-token-from-the-env-42", READ)


def test_the_environment_alone_works(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODECLAB_READ_TOKEN", "read-token-from-the-env-42")
    settings = load_settings()
    assert (settings.admin_token, settings.read_token) == (None, "read-token-from-the-env-42")


@pytest.mark.parametrize("value", ['"short"', '" padded-token-0123456789 "', "1234567890123456789"])
def test_unusable_tokens_are_refused_without_echoing_them(tmp_path: Path, value: str) -> None:
    path = _toml(tmp_path, f"admin_token = {value}\n")
    with pytest.raises(ConfigError, match=r"lab\.toml: admin_token must be a string") as caught:
        load_settings(config_path=path)
    assert value.strip('" ') not in str(caught.value)


def test_an_unusable_token_in_the_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CODECLAB_ADMIN_TOKEN", "short-secret")
    with pytest.raises(ConfigError, match="CODECLAB_ADMIN_TOKEN") as caught:
        load_settings()
    assert "short-secret" not in str(caught.value)


def test_tokens_never_show_in_the_settings_repr_or_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(
        config_path=_toml(tmp_path, f'admin_token = "{ADMIN}"\nread_token = "{READ}"\n')
    )
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("codeclab.test").info("settings: %s %r", settings, settings)
    for shown in (repr(settings), str(settings), caplog.text):
        assert ADMIN not in shown and READ not in shown


def test_tokens_stay_behind_when_settings_are_pickled_for_workers(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, admin_token=ADMIN, read_token=READ)
    data = pickle.dumps(settings)
    assert ADMIN.encode() not in data and READ.encode() not in data
    copy = pickle.loads(data)
    assert (copy.admin_token, copy.read_token) == (None, None)
    assert copy.data_dir == tmp_path and copy.database == settings.database
