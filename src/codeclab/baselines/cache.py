"""A directory of JSON results keyed by everything that produced them.

The key is the sha256 of the canonical JSON (sorted keys, no whitespace) of a mapping the
caller builds from every input of a result: for a baseline ladder, the clip's pixels and
format, the encoder and its version, every argument, and the metrics.  Change any of them
and the key changes, so a stale entry is never read; old entries are simply not looked up
again.

An entry is ``<cache_dir>/<label>-<key>.json`` holding ``{"cache_format", "key", "parts",
"payload"}``.  It is written to a temporary file in the same directory and renamed over the
entry (``os.replace``), so a reader sees either the old file or the new one, never half a
file.  A file that cannot be read, is not JSON, or does not hold the key it is named for is
reported with a warning and treated as missing: the caller recomputes and overwrites it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CACHE_FORMAT = 1


def cache_key(parts: Mapping[str, Any]) -> str:
    """sha256 (hex) of the canonical JSON of `parts` (which must be JSON-serialisable)."""
    return hashlib.sha256(_canonical(parts).encode("utf-8")).hexdigest()


def _canonical(parts: Mapping[str, Any]) -> str:
    return json.dumps(parts, sort_keys=True, separators=(",", ":"), allow_nan=False)


class ResultCache:
    """JSON results in `directory`, one file per key."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, label: str, key: str) -> Path:
        """The file of entry `key`; `label` (e.g. the encoder name) only helps a reader."""
        return self.directory / f"{label}-{key}.json"

    def load(self, label: str, parts: Mapping[str, Any]) -> dict[str, Any] | None:
        """The payload stored for `parts`, or None when there is none or it is unusable."""
        key = cache_key(parts)
        path = self.path(label, key)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("ignoring cache file %s: cannot read it (%s)", path, exc)
            return None
        try:
            entry = json.loads(text)
        except ValueError as exc:
            log.warning("ignoring corrupt cache file %s: not JSON (%s); recomputing", path, exc)
            return None
        if not isinstance(entry, dict) or entry.get("key") != key:
            log.warning("ignoring cache file %s: it does not hold key %s; recomputing", path, key)
            return None
        if entry.get("cache_format") != CACHE_FORMAT:
            log.warning(
                "ignoring cache file %s: cache format %r, expected %d; recomputing",
                path,
                entry.get("cache_format"),
                CACHE_FORMAT,
            )
            return None
        payload = entry.get("payload")
        if not isinstance(payload, dict):
            log.warning("ignoring cache file %s: no payload object; recomputing", path)
            return None
        return payload

    def store(self, label: str, parts: Mapping[str, Any], payload: Mapping[str, Any]) -> Path:
        """Write `payload` for `parts` atomically; returns the entry's path."""
        key = cache_key(parts)
        path = self.path(label, key)
        entry = {"cache_format": CACHE_FORMAT, "key": key, "parts": parts, "payload": payload}
        text = json.dumps(entry, sort_keys=True, indent=1, allow_nan=False)
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=self.directory, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return path
