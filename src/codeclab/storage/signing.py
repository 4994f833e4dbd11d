"""Expiring links to objects of a local store, signed with a secret the lab keeps.

A link is ``{base_url}/objects/{quoted key}?expires=E&signature=S`` where ``E`` is the
expiry in unix seconds and ``S`` the hex HMAC-SHA256, under the lab's secret, of::

    codeclab-object-link-v1\\n{E}\\n{key}

Keys hold no newline (see :func:`codeclab.storage.objects.check_key`) and ``E`` only digits,
so the message names one (key, expiry) pair.  A link is good while ``now < E``.  The
dashboard checks a link with :func:`verify` before serving the object.

The secret is 32 random bytes in a file only its owner may read (see
:func:`load_or_create_secret`).  Replacing the file revokes every link made with the old one.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import stat
from pathlib import Path
from urllib.parse import quote, urlencode

SECRET_BYTES = 32
DEFAULT_PUBLIC_BASE_URL = "http://127.0.0.1:8000"

_DOMAIN = b"codeclab-object-link-v1"
_EXPIRES = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")


class LinkRefused(Exception):  # noqa: N818 (the name says what happened)
    """A link is malformed, was altered, or has expired; `reason` says which, briefly."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def sign(key: str, expires_at: int, secret: bytes) -> str:
    """The hex HMAC-SHA256 that makes a link to `key` good until `expires_at` (unix s)."""
    if expires_at < 0:
        raise ValueError(f"a link's expiry must be a unix time >= 0, got {expires_at}")
    if not secret:
        raise ValueError("cannot sign a link with an empty secret")
    return hmac.new(secret, _message(key, expires_at), hashlib.sha256).hexdigest()


def verify(key: str, expires: str, signature: str, secret: bytes, *, now: float) -> None:
    """Accept a link's query values for `key`, or raise :class:`LinkRefused`.

    `expires` and `signature` are the raw query strings.  The signature is checked (in
    constant time) before the expiry, so an altered link is reported as altered even when
    it has also expired.
    """
    if not _EXPIRES.fullmatch(expires):
        raise LinkRefused("malformed link: expires must be unix seconds")
    if not _SIGNATURE.fullmatch(signature):
        raise LinkRefused("malformed link: signature must be 64 hex digits")
    expected = sign(key, int(expires), secret)
    if not hmac.compare_digest(expected, signature):
        raise LinkRefused("invalid signature: the link was altered or signed with another secret")
    if now >= int(expires):
        raise LinkRefused("link expired")


def signed_url(base_url: str, key: str, expires_at: int, secret: bytes) -> str:
    """The full link to `key` under `base_url` (no trailing slash needed)."""
    query = urlencode({"expires": str(expires_at), "signature": sign(key, expires_at, secret)})
    return f"{base_url.rstrip('/')}/objects/{quote(key, safe='/')}?{query}"


def load_or_create_secret(path: Path) -> bytes:
    """The secret in `path`, creating it (32 random bytes, mode 0600) if it does not exist.

    Creation is atomic and happens once: the bytes are written and synced to a temporary
    file which is then hard-linked to `path`; if another process created `path` first, its
    secret wins and is returned.  An existing file must hold exactly 32 bytes and must not
    be readable by group or others.
    """
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(SECRET_BYTES))
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        else:
            _fsync_directory(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return _read_secret(path)


def _message(key: str, expires_at: int) -> bytes:
    return b"\n".join((_DOMAIN, str(expires_at).encode("ascii"), key.encode("utf-8")))


def _read_secret(path: Path) -> bytes:
    with path.open("rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        data = f.read(SECRET_BYTES + 1)
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PermissionError(
            f"{path}: the link-signing secret is open to group or others "
            f"(mode {stat.filemode(mode)}); run `chmod 600 {path}`, or delete it to make "
            "a new one (which revokes every link made with the old one)"
        )
    if len(data) != SECRET_BYTES:
        raise ValueError(
            f"{path}: a link-signing secret must hold exactly {SECRET_BYTES} bytes, "
            f"this one holds {len(data) if len(data) <= SECRET_BYTES else 'more'}; "
            "delete it to make a new one (which revokes every link made with the old one)"
        )
    return data


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
