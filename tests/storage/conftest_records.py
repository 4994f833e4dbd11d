"""Fixtures for the record-store tests: every test runs on SQLite and on a real PostgreSQL.

Import them into a test module with ``from tests.storage.conftest_records import *`` (they are
named apart from the object-store fixtures of this folder's conftest).

PostgreSQL is a throwaway server per test session (tests/storage/postgres.py) holding one
database, ``codeclab``, with a fresh schema per test (the URL's search path names it). Where
it cannot be started the PostgreSQL half is skipped, except under CI (``CI=true``), where that
is a failure: CI installs PostgreSQL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from codeclab.storage.records import RecordStore
from tests.storage import postgres

__all__ = ["database_url", "postgres_server", "record_clock", "record_store"]

BACKENDS = ["sqlite", "postgresql"]
DATABASE = "codeclab"


class StepClock:
    """A clock for the store that moves forward one millisecond per reading, or on demand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 25, 9, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required under CI but unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.PostgresServer]:
    reason = postgres.unavailable_reason()
    if reason is not None:
        _unavailable(reason)
    try:
        server = postgres.start()
    except postgres.PostgresError as error:
        _unavailable(f"could not start a throwaway PostgreSQL server: {error}")
        raise
    try:
        server.create_database(DATABASE)
        yield server
    finally:
        server.stop()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file in tmp_path, or a new schema on the test server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'records.db'}"
        return
    server: postgres.PostgresServer = request.getfixturevalue("postgres_server")
    schema = server.create_schema(DATABASE)
    try:
        yield server.url(DATABASE, schema)
    finally:
        server.drop_schema(DATABASE, schema)


@pytest.fixture
def record_clock() -> StepClock:
    return StepClock()


@pytest.fixture
def record_store(database_url: str, record_clock: StepClock) -> Iterator[RecordStore]:
    """A store on an empty database of each backend, with a stepping clock."""
    with RecordStore.open(database_url, clock=record_clock) as opened:
        yield opened
