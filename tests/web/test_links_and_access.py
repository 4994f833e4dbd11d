"""Link lifetimes and the access tokens."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from codeclab.config import load_settings
from codeclab.web.access import Access, AccessError
from codeclab.web.links import parse_lifetime


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("3600", 3600), ("90s", 90), ("30m", 1800), ("12h", 43200), ("7d", 604800)],
)
def test_link_lifetimes_are_read_in_their_units(text: str, seconds: int) -> None:
    assert parse_lifetime(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "59", "8d", "1w", "-1h", "1.5h", "7 d"])
def test_link_lifetimes_outside_a_minute_to_a_week_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="lifetime"):
        parse_lifetime(text)


def test_reading_is_public_without_a_read_token() -> None:
    access = Access(admin_token="a" * 20)
    assert access.public_read and access.may_read(None)
    assert not access.is_admin(None) and not access.is_admin("b" * 20)
    assert access.is_admin("a" * 20)


def test_with_a_read_token_either_token_reads() -> None:
    access = Access(admin_token="a" * 20, read_token="r" * 20)
    assert not access.may_read(None) and not access.may_read("x" * 20)
    assert access.may_read("r" * 20) and access.may_read("a" * 20)
    assert not access.is_admin("r" * 20)


def test_access_takes_the_tokens_of_the_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CODECLAB_CONFIG", raising=False)
    monkeypatch.setenv("CODECLAB_ADMIN_TOKEN", "long-enough-admin-token")
    monkeypatch.delenv("CODECLAB_READ_TOKEN", raising=False)
    assert Access.from_settings(load_settings()) == Access(admin_token="long-enough-admin-token")


def test_tokens_never_show_in_the_access_repr() -> None:
    access = Access(admin_token="admin-" + "s" * 20, read_token="read-" + "t" * 20)
    assert "sss" not in repr(access) and "ttt" not in repr(access)


def test_short_tokens_are_refused() -> None:
    with pytest.raises(AccessError, match="admin token"):
        Access(admin_token="short")
