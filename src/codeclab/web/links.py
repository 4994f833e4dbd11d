"""Expiring links to stored objects, for pages and for the API.

With a local store, links in pages are relative (``/objects/<key>?expires=&signature=``) so
they work at whatever address the browser reached the dashboard, and the API returns the
store's absolute links (``public_url``), as ``codeclab url`` does.  With S3 both are the
store's presigned URLs.  Either way a link stops working when it expires.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

from codeclab.storage.objects import (
    DEFAULT_LINK_LIFETIME,
    S3_MAX_LINK_LIFETIME,
    LocalStore,
    ObjectStore,
)
from codeclab.storage.signing import signed_url

MIN_LINK_LIFETIME = timedelta(seconds=60)
MAX_LINK_LIFETIME = S3_MAX_LINK_LIFETIME
_LIFETIME = re.compile(r"([0-9]{1,9})([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_lifetime(text: str) -> timedelta:
    """``30m``, ``12h``, ``7d`` or plain seconds; between 1 minute and 7 days (S3's limit)."""
    match = _LIFETIME.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"a link lifetime is like 3600, 30m, 12h or 7d, not {text!r}")
    lifetime = timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    if not MIN_LINK_LIFETIME <= lifetime <= MAX_LINK_LIFETIME:
        raise ValueError(
            f"a link lifetime must be between {MIN_LINK_LIFETIME} and {MAX_LINK_LIFETIME} "
            f"(the S3 limit), not {lifetime}"
        )
    return lifetime


class Links:
    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    @property
    def local(self) -> bool:
        return isinstance(self.store, LocalStore)

    def for_page(
        self, key: str, lifetime: timedelta = DEFAULT_LINK_LIFETIME, *, root_path: str = ""
    ) -> str:
        """A link for a page served by this dashboard (relative for a local store)."""
        store = self.store
        if isinstance(store, LocalStore) and store.signing_secret is not None:
            expires = int(time.time() + lifetime.total_seconds())
            return signed_url(root_path, key, expires, store.signing_secret)
        return store.url(key, lifetime)

    def for_api(self, key: str, lifetime: timedelta = DEFAULT_LINK_LIFETIME) -> str:
        """An absolute link to hand out (the store's own)."""
        return self.store.url(key, lifetime)


def expiry(lifetime: timedelta) -> datetime:
    """When a link made now with `lifetime` expires (to the second, as links are signed)."""
    return datetime.fromtimestamp(int(time.time() + lifetime.total_seconds()), UTC)
