"""Migration 0003: baseline versions longer than 64 characters, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.runtime.migration import MigrationContext

from codeclab.storage.records import (
    ClipRecord,
    RecordStore,
    alembic_config,
    create_records_engine,
    upgrade_schema,
)
from tests.storage.conftest_records import *  # noqa: F403 (the fixtures)

T0 = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
CLIP = ClipRecord(
    sha256="e" * 64,
    name="foreman_cif",
    source="/clips/foreman_cif.y4m",
    width=352,
    height=288,
    fps_num=30,
    fps_den=1,
    frame_count=30,
    start=0,
)
SHORT_VERSION = "ffmpeg version 6.1; x264 core 164"
# what a real ffmpeg build and x264 print: longer than the 64 characters of revision 0002
LONG_VERSION = "ffmpeg version n9.0.2-17-g2a571b6068-20260930; x264 core 165 r3222 b35605a"
POINTS = [{"crf": 23, "bits_per_second": 123456.5, "psnr_y": 38.25, "vmaf": None}]


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    made = create_records_engine(database_url)
    yield made
    made.dispose()


def _revision(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _fill_revision_0002(engine: sa.Engine) -> None:
    tables = sa.MetaData()
    tables.reflect(engine)
    with engine.begin() as connection:
        connection.execute(
            tables.tables["clips"].insert(),
            [{field: getattr(CLIP, field) for field in CLIP.__dataclass_fields__}],
        )
        connection.execute(
            tables.tables["baseline_results"].insert(),
            [
                {
                    "clip_sha256": CLIP.sha256,
                    "encoder": "x264",
                    "cache_key": "k" * 64,
                    "version": SHORT_VERSION,
                    "settings": {"preset": "medium", "crfs": [23]},
                    "points": POINTS,
                    "created_at": T0,
                }
            ],
        )


def _version_length(engine: sa.Engine) -> int | None:
    columns = sa.inspect(engine).get_columns("baseline_results")
    kind = next(c["type"] for c in columns if c["name"] == "version")
    return getattr(kind, "length", None)


def test_upgrade_to_0003_keeps_baselines_and_takes_long_versions(engine: sa.Engine) -> None:
    upgrade_schema(engine, "0002")
    _fill_revision_0002(engine)
    assert _version_length(engine) == 64

    upgrade_schema(engine)

    assert _revision(engine) == "0003"
    assert _version_length(engine) == 512
    store = RecordStore(engine)
    kept = store.get_baseline("k" * 64)
    assert kept is not None
    assert (kept.version, kept.points, kept.created_at) == (SHORT_VERSION, POINTS, T0)
    longer = store.save_baseline(
        clip_sha256=CLIP.sha256,
        encoder="x264",
        cache_key="l" * 64,
        version=LONG_VERSION,
        settings={"preset": "medium"},
        points=POINTS,
    )
    assert longer.version == LONG_VERSION and len(LONG_VERSION) > 64
    assert [b.cache_key for b in store.list_baselines(CLIP.sha256)] == ["k" * 64, "l" * 64]
    # the unique cache key and the clip's foreign key survive the table copy (SQLite)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO baseline_results "
                "(clip_sha256, encoder, cache_key, version, settings, points, created_at) "
                "VALUES (:clip, 'x264', :key, 'v', '{}', '[]', :at)"
            ),
            {"clip": CLIP.sha256, "key": "k" * 64, "at": T0},
        )
    indexes = {i["name"] for i in sa.inspect(engine).get_indexes("baseline_results")}
    assert "ix_baseline_results_clip_sha256" in indexes


def test_downgrade_to_0002_refuses_to_cut_long_versions(engine: sa.Engine) -> None:
    upgrade_schema(engine)
    with RecordStore(engine) as store:
        store.upsert_clip(CLIP)
        store.save_baseline(
            clip_sha256=CLIP.sha256,
            encoder="x264",
            cache_key="l" * 64,
            version=LONG_VERSION,
            settings={},
            points=POINTS,
        )

    with pytest.raises(RuntimeError, match="l" * 64), engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0002")
    assert _revision(engine) == "0003"


def test_downgrade_to_0002_keeps_short_versions(engine: sa.Engine) -> None:
    upgrade_schema(engine, "0002")
    _fill_revision_0002(engine)
    upgrade_schema(engine)

    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0002")

    assert _revision(engine) == "0002"
    assert _version_length(engine) == 64
    with engine.connect() as connection:
        versions = connection.execute(sa.text("SELECT version FROM baseline_results")).all()
    assert [v for (v,) in versions] == [SHORT_VERSION]
