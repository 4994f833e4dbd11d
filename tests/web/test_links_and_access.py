"""Link lifetimes and the access tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest

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


def test_short_tokens_are_refused_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODECLAB_ADMIN_TOKEN", "short")
    with pytest.raises(AccessError, match="CODECLAB_ADMIN_TOKEN"):
        Access.from_env()
    monkeypatch.setenv("CODECLAB_ADMIN_TOKEN", "long-enough-admin-token")
    monkeypatch.delenv("CODECLAB_READ_TOKEN", raising=False)
    assert Access.from_env() == Access(admin_token="long-enough-admin-token")
