"""Who may read the dashboard and who may change things.

Reading is public unless a read token is set; then every page and API route (not the static
files, and not ``/objects``, whose links carry their own signature) needs that token or the
admin token, as ``Authorization: Bearer <token>`` or in the ``codeclab_token`` cookie that
``POST /login`` sets for a browser.

Admin actions (deleting an experiment, publishing it again) need the admin token, and only in
the ``Authorization: Bearer`` header: a cookie is never enough, so another site cannot make a
logged-in browser delete anything.  Without an admin token configured, admin actions are
refused (401) with a message saying how to enable them.

Tokens are settings (:mod:`codeclab.config`): ``admin_token`` and ``read_token`` in the TOML
file, or ``CODECLAB_ADMIN_TOKEN`` and ``CODECLAB_READ_TOKEN`` in the environment (or the
`access` argument of :func:`codeclab.web.app.create_app`).  They are never logged or shown.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from fastapi import HTTPException, Request

from codeclab.config import MIN_TOKEN_CHARS, TOKEN_ENV, Settings

TOKEN_COOKIE = "codeclab_token"
ADMIN_TOKEN_ENV = TOKEN_ENV["admin_token"]


class AccessError(ValueError):
    """A configured token is unusable; the message names the variable."""


def _check_token(value: str | None, where: str) -> str | None:
    if value is None or value == "":
        return None
    if len(value) < MIN_TOKEN_CHARS or value.strip() != value:
        raise AccessError(
            f"{where} must be at least {MIN_TOKEN_CHARS} characters without surrounding "
            "spaces (make one with `python -c 'import secrets; print(secrets.token_urlsafe())'`)"
        )
    return value


@dataclass(frozen=True)
class Access:
    """The tokens the dashboard accepts; None means "not configured"."""

    admin_token: str | None = field(default=None, repr=False)
    read_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        _check_token(self.admin_token, "the admin token")
        _check_token(self.read_token, "the read token")

    @classmethod
    def from_settings(cls, settings: Settings) -> Access:
        """The tokens of the settings (checked when the settings were loaded)."""
        return cls(admin_token=settings.admin_token, read_token=settings.read_token)

    @property
    def public_read(self) -> bool:
        return self.read_token is None

    def is_admin(self, presented: str | None) -> bool:
        return _matches(presented, self.admin_token)

    def may_read(self, presented: str | None) -> bool:
        return (
            self.public_read
            or _matches(presented, self.read_token)
            or _matches(presented, self.admin_token)
        )


def _matches(presented: str | None, expected: str | None) -> bool:
    if presented is None or expected is None:
        return False
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if any."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def reader_token(request: Request) -> str | None:
    """The token a reader presents: the Bearer header, else the login cookie."""
    return bearer_token(request) or request.cookies.get(TOKEN_COOKIE) or None


def check_admin(access: Access, request: Request) -> None:
    """Raise 401 unless the request carries the admin token as a Bearer header."""
    if access.admin_token is None:
        raise HTTPException(
            status_code=401,
            detail=(
                f"admin actions are disabled: start the dashboard with {ADMIN_TOKEN_ENV} "
                "(or admin_token in codeclab.toml) set"
            ),
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not access.is_admin(bearer_token(request)):
        raise HTTPException(
            status_code=401,
            detail="this action needs the admin token as 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
