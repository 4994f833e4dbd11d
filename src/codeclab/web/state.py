"""The dashboard's handles and caches, shared by pages and API through ``app.state``."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar, cast

from fastapi import Request
from markupsafe import Markup

from codeclab.lab import Lab
from codeclab.storage.records import BaselineRecord, ClipRecord, RecordNotFound, RunRecord
from codeclab.web import queries, schemas
from codeclab.web.access import Access
from codeclab.web.campaigns import Launcher
from codeclab.web.frames import FrameSource
from codeclab.web.highlight import diff_html, highlight_python
from codeclab.web.links import Links
from codeclab.web.progress import thin_progress
from codeclab.web.stills import Stills
from codeclab.web.transcode import Transcoder

T = TypeVar("T")
log = logging.getLogger(__name__)

COUNTS_SECONDS = 5.0
"""How old counts and storage totals may get before they are recomputed (in the
background: readers keep the previous value meanwhile)."""
LINEAGE_SECONDS = 15.0
"""The same for the parent/children index (a new child shows up on its parent's page
within this long)."""
CHARTS_SECONDS = 30.0
"""The same for the progress chart, the leaderboard, clips and baseline ladders."""
POST_SECONDS = 3600.0
"""A rendered blog post is reused for this long while its record is unchanged (its signed
links, made when it was rendered, then still have 7 days less this to live)."""
POSTS_CACHED = 2000
LIST_ROWS_CACHED = 5000


class Expiring(Generic[T]):
    """A value recomputed at most once per `seconds`, without making readers wait.

    The first reader computes it; later, a stale value is still returned while one
    background thread computes the next (stale-while-revalidate), so a slow aggregate over
    every experiment never sits in a request's path once it has been computed.
    """

    def __init__(self, compute: Callable[[], T], seconds: float) -> None:
        self._compute = compute
        self._seconds = seconds
        self._lock = threading.Lock()
        self._computing = threading.Lock()
        self._value: T | None = None
        self._at = -float("inf")
        self._refreshing = False

    def get(self) -> T:
        with self._lock:
            value = self._value
            if value is not None:
                if time.monotonic() - self._at > self._seconds and not self._refreshing:
                    self._refreshing = True
                    threading.Thread(target=self._refresh, daemon=True).start()
                return value
        with self._computing:  # nothing yet: compute it once, others wait for it
            with self._lock:
                if self._value is not None:
                    return self._value
            return self._store(self._compute())

    def _store(self, value: T) -> T:
        with self._lock:
            self._value = value
            self._at = time.monotonic()
            self._refreshing = False
        return value

    def _refresh(self) -> None:
        try:
            with self._computing:
                self._store(self._compute())
        except Exception:  # keep serving the stale value; the next reader retries
            log.exception("refreshing a dashboard aggregate failed")
            with self._lock:
                self._refreshing = False

    def clear(self) -> None:
        """Forget the value: the next reader computes a fresh one."""
        with self._lock:
            self._value = None


class LRU(Generic[T]):
    """A small thread-safe least-recently-used map; entries older than `max_age` seconds
    are computed again (None: they never expire)."""

    def __init__(self, size: int, max_age: float | None = None) -> None:
        self._size = size
        self._max_age = max_age
        self._items: OrderedDict[str, tuple[float, T]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, compute: Callable[[], T]) -> T:
        now = time.monotonic()
        with self._lock:
            item = self._items.get(key)
            if item is not None and (self._max_age is None or now - item[0] <= self._max_age):
                self._items.move_to_end(key)
                return item[1]
        value = compute()
        self.put(key, value)
        return value

    def peek(self, key: str) -> T | None:
        """The live entry under `key`, or None."""
        with self._lock:
            item = self._items.get(key)
        if item is None or (
            self._max_age is not None and time.monotonic() - item[0] > self._max_age
        ):
            return None
        return item[1]

    def put(self, key: str, value: T) -> None:
        with self._lock:
            self._items[key] = (time.monotonic(), value)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


@dataclass
class Dashboard:
    lab: Lab
    access: Access
    poll_seconds: float = 3.0
    launcher: Launcher | None = None  # default: launches kept in the lab's data dir
    links: Links = field(init=False)
    frames: FrameSource = field(init=False)
    stills: Stills = field(init=False)
    transcoder: Transcoder = field(init=False)
    progress: Expiring[list[queries.ProgressPoint]] = field(init=False)
    boards: Expiring[list[queries.TargetBoard]] = field(init=False)
    totals: Expiring[queries.Totals] = field(init=False)
    lineage: Expiring[queries.LineageIndex] = field(init=False)
    recent_runs: Expiring[list[RunRecord]] = field(init=False)
    posts: LRU[Markup] = field(init=False)
    list_rows: LRU[str] = field(init=False)
    _rendered: dict[str, Expiring[str]] = field(init=False)
    _progress_charts: LRU[schemas.Progress] = field(init=False)
    _sources: LRU[str] = field(init=False)
    _highlighted: LRU[str] = field(init=False)
    _diffs: LRU[tuple[str, int, int]] = field(init=False)
    _clips: LRU[ClipRecord | None] = field(init=False)
    _baselines: LRU[list[BaselineRecord]] = field(init=False)

    def __post_init__(self) -> None:
        if self.launcher is None:
            self.launcher = Launcher(self.lab.settings)
        self.links = Links(self.lab.store)
        self.frames = FrameSource(self.lab)
        self.stills = Stills(self.lab.store, self.frames)
        self.transcoder = Transcoder(self.lab.store, self.frames)
        records = self.lab.records
        self.progress = Expiring(lambda: queries.progress(records), CHARTS_SECONDS)
        self.boards = Expiring(lambda: queries.best_by_target(records), CHARTS_SECONDS)
        self.totals = Expiring(lambda: queries.totals(records), COUNTS_SECONDS)
        self.lineage = Expiring(lambda: queries.lineage_index(records), LINEAGE_SECONDS)
        self.recent_runs = Expiring(lambda: records.list_runs(limit=10), COUNTS_SECONDS)
        self.posts = LRU(POSTS_CACHED, POST_SECONDS)
        self.list_rows = LRU(LIST_ROWS_CACHED)
        self._rendered = {}
        self._progress_charts = LRU(8, CHARTS_SECONDS)
        self._sources = LRU(256)
        self._highlighted = LRU(256)
        self._diffs = LRU(64)
        self._clips = LRU(256, CHARTS_SECONDS)
        self._baselines = LRU(64, CHARTS_SECONDS)

    def aggregates(self) -> tuple[Expiring[Any], ...]:
        return (self.progress, self.boards, self.totals, self.lineage, self.recent_runs)

    def rendered(self, name: str, render: Callable[[], str]) -> str:
        """A page made only of aggregates, rendered at most once per COUNTS_SECONDS (in the
        background once it exists, like the aggregates themselves)."""
        page = self._rendered.get(name)
        if page is None:
            page = self._rendered.setdefault(name, Expiring(render, COUNTS_SECONDS))
        return page.get()

    def listed_json(self, pages: Sequence[tuple[str, datetime]]) -> list[str]:
        """The API list's JSON of each (id, updated_at), in order: kept per version of each
        record (``updated_at`` changes with every change), read in one query when missing."""
        keys = {exp_id: f"{exp_id}@{updated.isoformat()}" for exp_id, updated in pages}
        found = {exp_id: self.list_rows.peek(key) for exp_id, key in keys.items()}
        missing = [exp_id for exp_id, text in found.items() if text is None]
        for exp_id, row in queries.listed_by_id(self.lab.records, missing).items():
            text = schemas.ExperimentSummary.of_listed(row).model_dump_json()
            self.list_rows.put(f"{exp_id}@{row.updated_at.isoformat()}", text)
            found[exp_id] = text
        return [text for text in found.values() if text is not None]

    def forget_aggregates(self) -> None:
        """Drop cached aggregates, pages and posts (after an admin changed records)."""
        for aggregate in (*self.aggregates(), *self._rendered.values()):
            aggregate.clear()
        self.posts.clear()
        self._progress_charts.clear()

    def clip(self, sha256: str | None) -> ClipRecord | None:
        """A clip's record (cached), None if there is none."""
        if sha256 is None:
            return None

        def load() -> ClipRecord | None:
            try:
                return self.lab.records.get_clip(sha256)
            except RecordNotFound:
                return None

        return self._clips.get(sha256, load)

    def baselines(self, clip_sha256: str | None) -> list[BaselineRecord]:
        """The baseline results recorded for a clip (cached for a while)."""
        if clip_sha256 is None:
            return []
        return self._baselines.get(
            clip_sha256, lambda: self.lab.records.list_baselines(clip_sha256)
        )

    def warm_up(self) -> None:
        """Compute every aggregate once, so no reader waits for the first computation."""
        for aggregate in self.aggregates():
            aggregate.get()

    def codec_source(self, sha256: str) -> str:
        """A deployed codec's source (content-addressed, so cached)."""

        def load() -> str:
            codec = self.lab.records.get_codec(sha256)
            return self.lab.store.get_bytes(codec.source_key).decode("utf-8", "replace")

        return self._sources.get(sha256, load)

    def progress_chart(self, limit: int) -> schemas.Progress:
        """The progress series thinned to `limit` points (cached like the points)."""
        return self._progress_charts.get(
            str(limit), lambda: thin_progress(self.progress.get(), limit)
        )

    def cached_highlight(self, sha256: str) -> str | None:
        return self._highlighted.peek(sha256)

    def highlighted_source(self, sha256: str) -> str:
        return self._highlighted.get(sha256, lambda: highlight_python(self.codec_source(sha256)))

    def codec_diff(self, old: str, new: str) -> tuple[str, int, int]:
        """The diff between two codecs' sources: HTML, lines added, lines removed."""

        def make() -> tuple[str, int, int]:
            return diff_html(
                self.codec_source(old), self.codec_source(new), "parent/codec.py", "codec.py"
            )

        return self._diffs.get(f"{old}:{new}", make)


def get_dashboard(request: Request) -> Dashboard:
    return cast(Dashboard, request.app.state.dashboard)
