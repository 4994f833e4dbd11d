"""The dashboard's handles and caches, shared by pages and API through ``app.state``."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar, cast

from fastapi import Request

from codeclab.lab import Lab
from codeclab.web import queries
from codeclab.web.access import Access
from codeclab.web.frames import FrameSource
from codeclab.web.highlight import highlight_python
from codeclab.web.links import Links
from codeclab.web.stills import Stills
from codeclab.web.transcode import Transcoder

T = TypeVar("T")

AGGREGATE_SECONDS = 5.0
"""How long the overview's aggregates over every experiment are reused."""


class Expiring(Generic[T]):
    """A value computed at most once per `seconds` (callers during a refresh wait for it)."""

    def __init__(self, compute: Callable[[], T], seconds: float) -> None:
        self._compute = compute
        self._seconds = seconds
        self._lock = threading.Lock()
        self._value: T | None = None
        self._at = -float("inf")

    def get(self) -> T:
        with self._lock:
            now = time.monotonic()
            if self._value is None or now - self._at > self._seconds:
                self._value = self._compute()
                self._at = now
            return self._value

    def clear(self) -> None:
        with self._lock:
            self._value = None


class LRU(Generic[T]):
    """A small thread-safe least-recently-used map for immutable, content-addressed values."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, T] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, compute: Callable[[], T]) -> T:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value


@dataclass
class Dashboard:
    lab: Lab
    access: Access
    poll_seconds: float = 3.0
    links: Links = field(init=False)
    frames: FrameSource = field(init=False)
    stills: Stills = field(init=False)
    transcoder: Transcoder = field(init=False)
    progress: Expiring[list[queries.ProgressPoint]] = field(init=False)
    boards: Expiring[list[queries.TargetBoard]] = field(init=False)
    _sources: LRU[str] = field(init=False)
    _highlighted: LRU[str] = field(init=False)

    def __post_init__(self) -> None:
        self.links = Links(self.lab.store)
        self.frames = FrameSource(self.lab)
        self.stills = Stills(self.lab.store, self.frames)
        self.transcoder = Transcoder(self.lab.store, self.frames)
        records = self.lab.records
        self.progress = Expiring(lambda: queries.progress(records), AGGREGATE_SECONDS)
        self.boards = Expiring(lambda: queries.best_by_target(records), AGGREGATE_SECONDS)
        self._sources = LRU(64)
        self._highlighted = LRU(64)

    def forget_aggregates(self) -> None:
        """Drop cached aggregates (after an admin changed records)."""
        self.progress.clear()
        self.boards.clear()

    def codec_source(self, sha256: str) -> str:
        """A deployed codec's source (content-addressed, so cached)."""

        def load() -> str:
            codec = self.lab.records.get_codec(sha256)
            return self.lab.store.get_bytes(codec.source_key).decode("utf-8", "replace")

        return self._sources.get(sha256, load)

    def highlighted_source(self, sha256: str) -> str:
        return self._highlighted.get(sha256, lambda: highlight_python(self.codec_source(sha256)))


def get_dashboard(request: Request) -> Dashboard:
    return cast(Dashboard, request.app.state.dashboard)

