"""The record store, run whole on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from codeclab.storage.models import Base
from codeclab.storage.records import (
    UPDATABLE_FIELDS,
    ClipRecord,
    CodecRecord,
    ExperimentRecord,
    ExperimentStatus,
    PhaseStatus,
    PublishStatus,
    RecordNotFound,
    RecordStore,
    RunStatus,
    alembic_config,
    create_records_engine,
    upgrade_schema,
)
from tests.storage.conftest_records import *  # noqa: F403 (the fixtures)
from tests.storage.conftest_records import StepClock

CLIP = ClipRecord(
    sha256="c" * 64,
    name="carphone_qcif",
    source="/clips/carphone_qcif.y4m",
    width=176,
    height=144,
    fps_num=30000,
    fps_den=1001,
    frame_count=120,
    start=0,
)
CODEC = CodecRecord(sha256="d" * 64, name="intra_dct", source_key="codecs/dd/source.py", size=4096)


@pytest.fixture
def clip(record_store: RecordStore) -> ClipRecord:
    return record_store.upsert_clip(CLIP)


@pytest.fixture
def codec(record_store: RecordStore) -> CodecRecord:
    return record_store.upsert_codec(CODEC)


@contextmanager
def _statements(engine: sa.Engine) -> Iterator[list[str]]:
    """The SQL statements run on ``engine`` inside the block."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


# --- runs ---------------------------------------------------------------------------------


def test_run_round_trips_with_its_config(record_store: RecordStore) -> None:
    config = {"clips": ["carphone"], "ladder": [10, 50, 90], "budget": {"usd": 2.5, "max": None}}
    run = record_store.create_run("offline", config, seed=2**40 + 3, notes="première")

    assert run.id.startswith("run-20261125-0930-")
    assert run.status is RunStatus.RUNNING
    assert run.created_at.tzinfo is UTC
    assert record_store.get_run(run.id) == run
    assert record_store.get_run(run.id).config == config


def test_runs_list_newest_first_with_counts_derived_from_experiments(
    record_store: RecordStore,
) -> None:
    older = record_store.create_run("offline", {}, seed=1)
    newer = record_store.create_run("llm", {}, seed=2)
    done = record_store.create_experiment(designer="offline", run_id=older.id)
    record_store.update_experiment(done.id, status="completed", target_achieved=True)
    failed = record_store.create_experiment(designer="offline", run_id=older.id)
    record_store.update_experiment(failed.id, status="failed")
    record_store.create_experiment(designer="offline", run_id=older.id)
    record_store.create_experiment(designer="offline")  # no run

    runs = record_store.list_runs()

    assert [r.id for r in runs] == [newer.id, older.id]
    assert (runs[1].experiments, runs[1].completed, runs[1].failed, runs[1].achieved) == (
        3,
        1,
        1,
        1,
    )
    assert (runs[0].experiments, runs[0].completed) == (0, 0)
    assert record_store.list_runs(limit=1, offset=1) == [runs[1]]


def test_finish_run_records_status_and_time(record_store: RecordStore) -> None:
    run = record_store.create_run("offline", {}, seed=1)

    finished = record_store.finish_run(run.id, "stopped")

    assert finished.status is RunStatus.STOPPED
    assert finished.finished_at is not None and finished.finished_at > run.created_at
    assert record_store.get_run(run.id) == finished


def test_a_reopened_run_is_running_again_until_it_finishes(record_store: RecordStore) -> None:
    run = record_store.create_run("offline", {}, seed=1)
    record_store.finish_run(run.id, "stopped")

    reopened = record_store.reopen_run(run.id)

    assert reopened.status is RunStatus.RUNNING and reopened.finished_at is None
    assert record_store.finish_run(run.id, "finished").status is RunStatus.FINISHED
    with pytest.raises(RecordNotFound):
        record_store.reopen_run("run-nope")


def test_finish_run_refuses_a_non_final_status(record_store: RecordStore) -> None:
    run = record_store.create_run("offline", {}, seed=1)
    with pytest.raises(ValueError, match="running"):
        record_store.finish_run(run.id, "running")


def test_run_ids_stay_unique_when_their_random_part_collides(record_store: RecordStore) -> None:
    # 1000 runs in one minute share the time part; their 16-bit random parts collide
    # (about 7 times on average), which the store must absorb by drawing again.
    ids = {record_store.create_run("offline", {}, seed=i).id for i in range(1000)}
    assert len(ids) == 1000


# --- clips, codecs, baselines -----------------------------------------------------------------


def test_clip_upsert_inserts_then_updates(record_store: RecordStore) -> None:
    assert record_store.upsert_clip(CLIP) == CLIP
    renamed = replace(CLIP, name="carphone", start=10)

    assert record_store.upsert_clip(renamed) == renamed
    assert record_store.get_clip(CLIP.sha256) == renamed


def test_codec_upsert_keeps_the_first_creation_time(
    record_store: RecordStore, record_clock: StepClock
) -> None:
    first = record_store.upsert_codec(CODEC)
    record_clock.advance(timedelta(hours=1))

    again = record_store.upsert_codec(replace(CODEC, source_key="codecs/dd/v2.py"))

    assert first.created_at is not None and first.created_at.tzinfo is UTC
    assert again.created_at == first.created_at
    assert again.source_key == "codecs/dd/v2.py"
    assert record_store.get_codec(CODEC.sha256) == again


def test_baseline_saves_reads_and_replaces_by_cache_key(
    record_store: RecordStore, clip: ClipRecord
) -> None:
    points = [{"crf": 23, "bitrate_bps": 181234.5, "psnr_y": 38.25, "vmaf": None}]
    saved = record_store.save_baseline(
        clip_sha256=clip.sha256,
        encoder="x264",
        cache_key="x264-medium-abc",
        version="ffmpeg 7.1",
        settings={"preset": "medium", "crf": [23, 28]},
        points=points,
    )
    assert record_store.get_baseline("x264-medium-abc") == saved
    assert saved.points == points and saved.created_at.tzinfo is UTC

    replaced = record_store.save_baseline(
        clip_sha256=clip.sha256,
        encoder="x264",
        cache_key="x264-medium-abc",
        version="ffmpeg 7.2",
        settings={"preset": "medium"},
        points=[],
    )

    assert replaced.id == saved.id and replaced.version == "ffmpeg 7.2"
    assert record_store.list_baselines(clip.sha256) == [replaced]
    assert record_store.get_baseline("missing") is None


def test_baseline_of_an_unknown_clip_names_the_clip(record_store: RecordStore) -> None:
    with pytest.raises(RecordNotFound, match=r"e{64}"):
        record_store.save_baseline(
            clip_sha256="e" * 64,
            encoder="x265",
            cache_key="k",
            version="v",
            settings={},
            points=[],
        )


# --- experiments ----------------------------------------------------------------------------


def test_experiment_round_trips_its_creation_fields(
    record_store: RecordStore, clip: ClipRecord, codec: CodecRecord
) -> None:
    run = record_store.create_run("llm", {}, seed=1)
    exp = record_store.create_experiment(
        designer="llm:claude",
        run_id=run.id,
        codec_sha256=codec.sha256,
        clip_sha256=clip.sha256,
        params={"quality": [10, 50, 90], "block": 8},
        rationale="Try 8x8 DCT with a dead zone.\nSecond line — ünïcødé",
        parent_ids=("exp-a", "exp-b"),
        isolation="bwrap",
        target={"bd_rate_vs": "x264", "max_pct": -5.0},
    )

    assert exp.id.startswith("exp-20261125-0930")
    assert exp.status is ExperimentStatus.PENDING
    assert exp.publish_status is PublishStatus.NONE
    assert exp.created_at == exp.updated_at and exp.created_at.tzinfo is UTC
    assert exp.parent_ids == ["exp-a", "exp-b"]
    assert (exp.cost_usd, exp.tokens_in, exp.bytes_stored, exp.artifacts) == (0.0, 0, 0, {})
    assert record_store.get_experiment(exp.id) == exp


@pytest.mark.parametrize(
    ("reference", "kind"),
    [("run_id", "run"), ("codec_sha256", "codec"), ("clip_sha256", "clip")],
)
def test_experiment_referring_to_a_missing_record_names_it(
    record_store: RecordStore, reference: str, kind: str
) -> None:
    with pytest.raises(RecordNotFound, match=f"{kind} 'nope'"):
        record_store.create_experiment(designer="offline", **{reference: "nope"})
    assert record_store.count_experiments() == 0


def _every_updatable_field(clip: ClipRecord, codec: CodecRecord) -> dict[str, Any]:
    return {
        "status": "completed",
        "current_phase": "publish",
        "error": "none really",
        "failed_phase": "analysis",
        "designer": "offline:evolve",
        "parent_ids": ["exp-1"],
        "rationale": "smaller blocks",
        "params": {"quality": [25, 75]},
        "codec_sha256": codec.sha256,
        "clip_sha256": clip.sha256,
        "isolation": "namespaces",
        "metrics": {"50": {"bitrate_bps": 123456.789, "psnr_y": 36.5, "ssim_y": 0.951}},
        "comparison": {"x264": {"bd_rate_pct": -3.25, "points": [[1.0, 2.0]]}},
        "target": {"max_bd_rate_pct": 0.0},
        "target_achieved": True,
        "tier": 2,
        "bitrate_bps": 123456.789,
        "psnr_y": 36.5,
        "ssim_y": 0.951,
        "vmaf": 88.125,
        "publish_status": "published",
        "publish_error": "first upload retried",
        "artifacts": {"preview": "previews/e.mp4", "decoder": "decoders/e.py"},
        "bytes_stored": 5 * 2**30,
        "cost_usd": 0.0425,
        "tokens_in": 12000,
        "tokens_out": 3400,
    }


def test_update_round_trips_every_updatable_field(
    record_store: RecordStore, clip: ClipRecord, codec: CodecRecord
) -> None:
    exp = record_store.create_experiment(designer="offline")
    changes = _every_updatable_field(clip, codec)
    assert set(changes) == UPDATABLE_FIELDS  # a new field must be added here too

    updated = record_store.update_experiment(exp.id, **changes)

    assert record_store.get_experiment(exp.id) == updated
    assert {name: getattr(updated, name) for name in changes} == changes
    assert updated.updated_at > exp.updated_at
    assert updated.created_at == exp.created_at


def test_json_fields_keep_nesting_floats_none_and_unicode(record_store: RecordStore) -> None:
    metrics = {
        "10": {"psnr_y": 29.123456789012345, "tiny": 5e-324, "huge": 1.7976931348623157e308},
        "big": [1e16, -2.5e20, 1e-7, 10**20, "1e+16"],
        "90": {"psnr_y": None, "frames": [1, 2.5, None, True, "ok"], "deep": {"a": {"b": {}}}},
        "名前": "🎞 clip — ütf8",
        "empty": [],
    }
    exp = record_store.create_experiment(designer="offline", params={"neg": -0.0, "n": -7})
    record_store.update_experiment(exp.id, metrics=metrics, comparison=None)

    got = record_store.get_experiment(exp.id)

    assert got.metrics == metrics
    assert [type(v) for v in got.metrics["big"]] == [float, float, float, int, str]
    assert got.comparison is None
    assert got.params == {"neg": -0.0, "n": -7}


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        ({"50": {"psnr_y": float("inf")}}, r"metrics\['50'\]\['psnr_y'\] is inf"),
        ({"50": [float("nan")]}, r"metrics\['50'\]\[0\] is nan"),
        ({50: {"psnr_y": 30.0}}, "keys must be strings"),
        ({"50": object()}, "not JSON"),
        ({"50": "a\x00b"}, "NUL"),
        ({"a\x00b": 1.0}, "NUL"),
    ],
)
def test_json_fields_refuse_values_that_would_not_round_trip(
    record_store: RecordStore, metrics: dict[Any, Any], message: str
) -> None:
    exp = record_store.create_experiment(designer="offline")
    with pytest.raises(ValueError, match=message):
        record_store.update_experiment(exp.id, metrics=metrics)
    assert record_store.get_experiment(exp.id).metrics is None


def test_float_columns_hold_infinite_psnr_of_identical_frames(record_store: RecordStore) -> None:
    exp = record_store.create_experiment(designer="offline")
    record_store.update_experiment(exp.id, psnr_y=float("inf"))
    assert record_store.get_experiment(exp.id).psnr_y == float("inf")


def test_update_of_an_unknown_field_names_it(record_store: RecordStore) -> None:
    exp = record_store.create_experiment(designer="offline")
    with pytest.raises(ValueError, match="unknown experiment field 'psnr'"):
        record_store.update_experiment(exp.id, psnr=30.0)


@pytest.mark.parametrize("name", ["id", "created_at", "updated_at", "phases", "run_id"])
def test_update_of_a_store_managed_field_is_refused(record_store: RecordStore, name: str) -> None:
    exp = record_store.create_experiment(designer="offline")
    with pytest.raises(ValueError, match=f"'{name}' cannot be updated"):
        record_store.update_experiment(exp.id, **{name: None})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"tier": "2"}, "tier must be an int"),
        ({"tier": True}, "tier must be an int"),
        ({"tier": 2**31}, "does not fit in a 32-bit integer"),
        ({"bytes_stored": 2**63}, "does not fit in a 64-bit integer"),
        ({"psnr_y": "36"}, "psnr_y must be a number"),
        ({"target_achieved": 1}, "target_achieved must be a bool"),
        ({"status": "done"}, "status must be one of"),
        ({"publish_status": "uploaded"}, "publish_status must be one of"),
        ({"designer": "x" * 201}, "designer is 201 characters long; the limit is 200"),
        ({"designer": None}, "designer cannot be None"),
        ({"parent_ids": "exp-1"}, "parent_ids must be a list"),
        ({"artifacts": {"preview": 3}}, "artifacts must map"),
    ],
)
def test_update_checks_values_the_same_on_every_backend(
    record_store: RecordStore, changes: dict[str, Any], message: str
) -> None:
    exp = record_store.create_experiment(designer="offline")
    with pytest.raises(ValueError, match=message):
        record_store.update_experiment(exp.id, **changes)
    assert record_store.get_experiment(exp.id) == exp


def test_nul_characters_in_free_text_are_kept_visible(record_store: RecordStore) -> None:
    exp = record_store.create_experiment(designer="offline")
    record_store.update_experiment(exp.id, error="decoder wrote \x00\x01 to stderr")
    assert record_store.get_experiment(exp.id).error == "decoder wrote \\x00\x01 to stderr"


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.get_experiment("exp-missing"),
        lambda s: s.update_experiment("exp-missing", tier=1),
        lambda s: s.start_phase("exp-missing", "design"),
        lambda s: s.finish_phase("exp-missing", "design"),
        lambda s: s.set_frames("exp-missing", 50, [1.0]),
        lambda s: s.get_frames("exp-missing"),
        lambda s: s.delete_experiment("exp-missing"),
        lambda s: s.get_run("exp-missing"),
        lambda s: s.finish_run("exp-missing", "finished"),
        lambda s: s.get_clip("exp-missing"),
        lambda s: s.get_codec("exp-missing"),
    ],
    ids=[
        "get",
        "update",
        "start_phase",
        "finish_phase",
        "set_frames",
        "get_frames",
        "delete",
        "get_run",
        "finish_run",
        "get_clip",
        "get_codec",
    ],
)
def test_unknown_ids_raise_record_not_found_naming_the_id(
    record_store: RecordStore, call: Any
) -> None:
    with pytest.raises(RecordNotFound, match="'exp-missing' not found") as raised:
        call(record_store)
    assert isinstance(raised.value, LookupError)
    assert raised.value.key == "exp-missing"


# --- phases ---------------------------------------------------------------------------------


def test_phases_record_their_timing(record_store: RecordStore, record_clock: StepClock) -> None:
    exp = record_store.create_experiment(designer="offline")

    started = record_store.start_phase(exp.id, "design")
    running = record_store.get_experiment(exp.id)
    record_clock.advance(timedelta(seconds=2.5))
    finished = record_store.finish_phase(exp.id, "design")
    record_store.start_phase(exp.id, "validation")

    assert started.status is PhaseStatus.RUNNING and started.started_at.tzinfo is UTC
    assert running.status is ExperimentStatus.RUNNING and running.current_phase == "design"
    assert finished.status is PhaseStatus.COMPLETED
    assert finished.seconds == pytest.approx(2.501)
    assert finished.finished_at == started.started_at + timedelta(seconds=2.501)
    got = record_store.get_experiment(exp.id)
    assert got.phases[0] == finished
    assert [(p.phase, p.status) for p in got.phases] == [
        ("design", PhaseStatus.COMPLETED),
        ("validation", PhaseStatus.RUNNING),
    ]
    assert got.current_phase == "validation"


def test_a_failed_phase_fails_the_experiment_with_its_reason(record_store: RecordStore) -> None:
    exp = record_store.create_experiment(designer="offline")
    record_store.start_phase(exp.id, "execution")

    phase = record_store.finish_phase(exp.id, "execution", error="decoder timed out after 60 s")

    got = record_store.get_experiment(exp.id)
    assert phase.status is PhaseStatus.FAILED and phase.error == "decoder timed out after 60 s"
    assert got.status is ExperimentStatus.FAILED
    assert (got.failed_phase, got.error) == ("execution", "decoder timed out after 60 s")
    assert got.current_phase is None
    assert got.phases == (phase,)
    with pytest.raises(ValueError, match="is failed"):
        record_store.start_phase(exp.id, "verification")


def test_finishing_a_phase_that_is_not_running_is_refused(record_store: RecordStore) -> None:
    exp = record_store.create_experiment(designer="offline")
    with pytest.raises(ValueError, match=r"'analysis' .* is not running; call start_phase"):
        record_store.finish_phase(exp.id, "analysis")
    record_store.start_phase(exp.id, "analysis")
    with pytest.raises(ValueError, match="already running"):
        record_store.start_phase(exp.id, "analysis")


# --- frames ---------------------------------------------------------------------------------


def test_frames_round_trip_by_quality_and_replace(record_store: RecordStore) -> None:
    exp = record_store.create_experiment(designer="offline")
    frames_90 = {"psnr_y": [40.5, 41.25, None], "ssim_y": [0.99, 0.991, 0.5]}
    record_store.set_frames(exp.id, 90, frames_90)
    record_store.set_frames(exp.id, 10, [30.0])
    record_store.set_frames(exp.id, 10, [31.0, 32.0])

    frames = record_store.get_frames(exp.id)

    assert frames == {10: [31.0, 32.0], 90: frames_90}
    assert list(frames) == [10, 90]
    assert record_store.get_frames(record_store.create_experiment(designer="x").id) == {}


def test_listing_and_reading_experiments_never_touch_frames(record_store: RecordStore) -> None:
    exp = record_store.create_experiment(designer="offline")
    record_store.set_frames(exp.id, 50, [1.0] * 1000)

    with _statements(record_store.engine) as seen:
        record_store.list_experiments()
        record_store.get_experiment(exp.id)
        record_store.count_experiments()
        record_store.stuck_experiments(timedelta(0))
        assert seen and not any("experiment_frames" in s for s in seen)
        record_store.get_frames(exp.id)
        assert any("experiment_frames" in s for s in seen)


# --- listing --------------------------------------------------------------------------------


@pytest.fixture
def listed(record_store: RecordStore) -> dict[str, ExperimentRecord]:
    """Six experiments over two runs and none, with mixed outcomes and operating points."""
    run_a = record_store.create_run("offline", {}, seed=1)
    run_b = record_store.create_run("offline", {}, seed=2)
    spec = {
        "a1": (run_a.id, "completed", True, 36.0),
        "a2": (run_a.id, "completed", False, 31.0),
        "a3": (run_a.id, "failed", None, None),
        "b1": (run_b.id, "completed", True, 38.5),
        "b2": (run_b.id, "running", None, None),
        "solo": (None, "completed", False, 33.0),
    }
    made = {}
    for name, (run_id, status, achieved, psnr) in spec.items():
        exp = record_store.create_experiment(designer="offline", run_id=run_id, rationale=name)
        made[name] = record_store.update_experiment(
            exp.id, status=status, target_achieved=achieved, psnr_y=psnr
        )
    return made


def _names(records: list[ExperimentRecord]) -> list[str]:
    return [r.rationale for r in records]


def test_list_filters_by_run_outcome_and_status(
    record_store: RecordStore, listed: dict[str, ExperimentRecord]
) -> None:
    run_a = listed["a1"].run_id
    assert _names(record_store.list_experiments(run_id=run_a)) == ["a3", "a2", "a1"]
    assert _names(record_store.list_experiments(achieved=True)) == ["b1", "a1"]
    assert _names(record_store.list_experiments(achieved=False)) == ["solo", "a2"]
    assert _names(record_store.list_experiments(status="failed")) == ["a3"]
    assert _names(
        record_store.list_experiments(run_id=run_a, status=ExperimentStatus.COMPLETED)
    ) == ["a2", "a1"]
    assert record_store.count_experiments() == 6
    assert record_store.count_experiments(run_id=run_a, achieved=False) == 1
    assert record_store.count_experiments(status="pending") == 0


def test_list_orders_by_operating_point_with_missing_values_last(
    record_store: RecordStore, listed: dict[str, ExperimentRecord]
) -> None:
    best_first = _names(record_store.list_experiments(order="-psnr_y"))
    worst_first = _names(record_store.list_experiments(order="psnr_y"))
    assert best_first[:4] == ["b1", "a1", "solo", "a2"]
    assert worst_first[:4] == ["a2", "solo", "a1", "b1"]
    assert set(best_first[4:]) == set(worst_first[4:]) == {"a3", "b2"}
    assert _names(record_store.list_experiments(order="created_at")) == list(listed)


def test_pages_cover_the_list_once(
    record_store: RecordStore, listed: dict[str, ExperimentRecord]
) -> None:
    pages = [record_store.list_experiments(limit=4, offset=offset) for offset in (0, 4, 8)]
    assert [len(page) for page in pages] == [4, 2, 0]
    assert _names(pages[0] + pages[1]) == list(reversed(listed))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"order": "-rationale"}, "cannot order experiments by '-rationale'"),
        ({"limit": -1}, "limit and offset must be >= 0"),
        ({"status": "stuck"}, "status must be one of"),
    ],
)
def test_list_refuses_bad_arguments(
    record_store: RecordStore, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        record_store.list_experiments(**kwargs)


# --- stuck, delete, totals ------------------------------------------------------------------


def test_stuck_experiments_are_running_ones_not_updated_for_a_while(
    record_store: RecordStore, record_clock: StepClock
) -> None:
    stale = record_store.create_experiment(designer="offline")
    record_store.start_phase(stale.id, "execution")
    pending = record_store.create_experiment(designer="offline")
    done = record_store.create_experiment(designer="offline")
    record_store.update_experiment(done.id, status="completed")
    record_clock.advance(timedelta(minutes=45))
    fresh = record_store.create_experiment(designer="offline")
    record_store.start_phase(fresh.id, "execution")

    stuck = record_store.stuck_experiments(timedelta(minutes=30))

    assert [e.id for e in stuck] == [stale.id]
    assert stuck[0].current_phase == "execution"
    assert pending.id not in [e.id for e in record_store.stuck_experiments(timedelta(0))]
    record_store.update_experiment(stale.id, current_phase="execution")
    assert record_store.stuck_experiments(timedelta(minutes=30)) == []


def test_delete_removes_the_experiment_and_its_frames(record_store: RecordStore) -> None:
    kept = record_store.create_experiment(designer="offline")
    gone = record_store.create_experiment(designer="offline")
    for exp in (kept, gone):
        record_store.set_frames(exp.id, 50, [1.0])

    record_store.delete_experiment(gone.id)

    with pytest.raises(RecordNotFound):
        record_store.get_experiment(gone.id)
    with record_store.engine.connect() as connection:
        owners = connection.execute(sa.text("SELECT experiment_id FROM experiment_frames"))
        assert [row[0] for row in owners] == [kept.id]


def test_storage_totals_sum_stored_bytes_overall_and_per_run(record_store: RecordStore) -> None:
    run = record_store.create_run("offline", {}, seed=1)
    for run_id, stored in ((run.id, 1000), (run.id, 0), (run.id, 2**33), (None, 7)):
        exp = record_store.create_experiment(designer="offline", run_id=run_id)
        record_store.update_experiment(exp.id, bytes_stored=stored)

    assert record_store.storage_totals(run.id) == (1000 + 2**33, 2)
    assert record_store.storage_totals() == (1007 + 2**33, 3)
    assert record_store.storage_totals("run-none") == (0, 0)


# --- timestamps -----------------------------------------------------------------------------


def test_timestamps_come_back_as_utc_whatever_the_clock_zone(database_url: str) -> None:
    paris = timezone(timedelta(hours=1))
    with RecordStore.open(
        database_url, clock=lambda: datetime(2026, 11, 25, 10, 30, tzinfo=paris)
    ) as store:
        exp = store.create_experiment(designer="offline")
        got = store.get_experiment(exp.id)
    assert got.created_at == datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
    assert got.created_at.tzinfo is UTC


def test_a_naive_clock_is_refused(database_url: str) -> None:
    naive = RecordStore.open(database_url, clock=lambda: datetime(2026, 11, 25))
    with naive, pytest.raises(ValueError, match="naive datetime"):
        naive.create_run("offline", {}, seed=1)


# --- concurrency ----------------------------------------------------------------------------


@pytest.mark.parametrize("sharing", ["one store", "a store per thread"])
def test_concurrent_writers_all_land(database_url: str, sharing: str) -> None:
    threads, per_thread = 4, 25
    first = RecordStore.open(database_url)
    stores = [first] + [
        first if sharing == "one store" else RecordStore.open(database_url)
        for _ in range(threads - 1)
    ]
    run = first.create_run("offline", {}, seed=0)
    start = threading.Barrier(threads)
    errors: list[BaseException] = []
    made: list[str] = []

    def work(store: RecordStore, worker: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                exp = store.create_experiment(designer=f"worker-{worker}", run_id=run.id)
                store.start_phase(exp.id, "execution")
                store.set_frames(exp.id, 50, [float(i)] * 50)
                store.finish_phase(exp.id, "execution")
                store.update_experiment(exp.id, status="completed", psnr_y=30.0 + i)
                made.append(exp.id)
        except BaseException as error:
            errors.append(error)

    workers = [threading.Thread(target=work, args=(store, n)) for n, store in enumerate(stores)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    try:
        assert errors == []
        assert len(set(made)) == threads * per_thread
        assert first.count_experiments(run_id=run.id, status="completed") == threads * per_thread
        assert first.get_run(run.id).completed == threads * per_thread
        sample = first.get_experiment(made[-1])
        assert [p.status for p in sample.phases] == [PhaseStatus.COMPLETED]
    finally:
        for store in set(stores):
            store.close()


# --- schema and migrations ------------------------------------------------------------------

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


def _revision(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    made = create_records_engine(database_url)
    yield made
    made.dispose()


def test_upgrade_creates_every_table_on_an_empty_database(engine: sa.Engine) -> None:
    upgrade_schema(engine)

    tables = set(sa.inspect(engine).get_table_names())
    assert tables == set(Base.metadata.tables) | {"alembic_version"}
    assert _revision(engine) == HEAD == "0003"


def test_migrated_schema_matches_the_models(engine: sa.Engine) -> None:
    upgrade_schema(engine, "0001")
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) != []  # the comparison can see gaps

    upgrade_schema(engine)

    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def _fill_revision_0001(engine: sa.Engine, per_frame: Any) -> None:
    """Rows as codeclab wrote them at revision 0001 (per-frame data inside experiments)."""
    tables = sa.MetaData()
    tables.reflect(engine)
    with engine.begin() as connection:
        connection.execute(
            tables.tables["runs"].insert(),
            [
                {
                    "id": "run-1",
                    "created_at": T0,
                    "status": "finished",
                    "designer": "offline",
                    "config": {"ladder": [10, 90]},
                    "seed": 5,
                    "notes": None,
                }
            ],
        )
        connection.execute(
            tables.tables["clips"].insert(),
            [
                {
                    "sha256": CLIP.sha256,
                    "name": CLIP.name,
                    "source": CLIP.source,
                    "width": 176,
                    "height": 144,
                    "fps_num": 30000,
                    "fps_den": 1001,
                    "frame_count": 120,
                    "start": 0,
                }
            ],
        )
        connection.execute(
            tables.tables["experiments"].insert(),
            [
                {
                    "id": "exp-old",
                    "run_id": "run-1",
                    "created_at": T0,
                    "updated_at": T0,
                    "status": "completed",
                    "current_phase": None,
                    "phases": [
                        {
                            "phase": "design",
                            "status": "completed",
                            "started_at": T0.isoformat(),
                            "finished_at": T0.isoformat(),
                            "seconds": 0.0,
                            "error": None,
                        }
                    ],
                    "error": None,
                    "failed_phase": None,
                    "designer": "offline",
                    "parent_ids": [],
                    "rationale": "ancien — ok",
                    "params": {"q": 1.5},
                    "codec_sha256": None,
                    "clip_sha256": CLIP.sha256,
                    "isolation": "bwrap",
                    "metrics": {"10": {"psnr_y": 30.25}},
                    "per_frame": per_frame,
                    "comparison": None,
                    "target": None,
                    "target_achieved": True,
                    "tier": 1,
                    "bitrate_bps": 1e5,
                    "psnr_y": 30.25,
                    "ssim_y": None,
                    "vmaf": None,
                    "publish_status": "none",
                    "publish_error": None,
                    "artifacts": {},
                    "bytes_stored": 42,
                }
            ],
        )


PER_FRAME_0001 = {
    "10": {"psnr_y": [30.0, 30.5], "ssim_y": [0.9, 0.91]},
    "90": [1, 2.5, None, "é"],
    "50": 7.25,
    "70": True,
}


def test_upgrade_from_revision_0001_keeps_the_data(engine: sa.Engine) -> None:
    upgrade_schema(engine, "0001")
    _fill_revision_0001(engine, PER_FRAME_0001)

    upgrade_schema(engine)
    store = RecordStore(engine)

    exp = store.get_experiment("exp-old")
    assert _revision(engine) == HEAD
    assert (exp.created_at, exp.rationale, exp.params, exp.metrics) == (
        T0,
        "ancien — ok",
        {"q": 1.5},
        {"10": {"psnr_y": 30.25}},
    )
    assert exp.phases[0].phase == "design" and exp.phases[0].started_at == T0
    assert (exp.bytes_stored, exp.target_achieved, exp.cost_usd, exp.tokens_out) == (
        42,
        True,
        0.0,
        0,
    )
    assert store.get_frames("exp-old") == {int(q): v for q, v in PER_FRAME_0001.items()}
    assert store.get_run("run-1").completed == 1
    assert store.get_clip(CLIP.sha256) == CLIP


def test_downgrade_to_0001_puts_frames_back_into_experiments(engine: sa.Engine) -> None:
    upgrade_schema(engine, "0001")
    _fill_revision_0001(engine, PER_FRAME_0001)
    upgrade_schema(engine)

    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0001")

    with engine.connect() as connection:
        table = sa.Table("experiments", sa.MetaData(), autoload_with=connection)
        per_frame = connection.execute(sa.select(table.c.per_frame)).scalar_one()
    assert per_frame == PER_FRAME_0001
    assert "experiment_frames" not in sa.inspect(engine).get_table_names()


def test_upgrade_refuses_frames_not_keyed_by_quality(engine: sa.Engine) -> None:
    upgrade_schema(engine, "0001")
    _fill_revision_0001(engine, {"10": [1.0], "best": [2.0]})

    with pytest.raises(RuntimeError, match="exp-old"):
        upgrade_schema(engine)
    assert _revision(engine) == "0001"


def test_open_refuses_a_database_from_a_newer_codeclab(
    engine: sa.Engine, database_url: str
) -> None:
    upgrade_schema(engine)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '0099'"))

    with pytest.raises(RuntimeError, match=r"'0099'.*upgrade codeclab"):
        RecordStore.open(database_url)


def test_opening_twice_leaves_the_schema_and_data_alone(database_url: str) -> None:
    with RecordStore.open(database_url) as first:
        run = first.create_run("offline", {}, seed=1)
    with RecordStore.open(database_url) as second:
        assert second.get_run(run.id) == run


# --- URLs -----------------------------------------------------------------------------------


def test_sqlite_database_folder_is_created(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "records.db"
    with RecordStore.open(f"sqlite:///{path}") as store:
        store.create_run("offline", {}, seed=1)
        with store.engine.connect() as connection:
            mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
            foreign_keys = connection.exec_driver_sql("PRAGMA foreign_keys").scalar()
    assert path.is_file()
    assert (mode, foreign_keys) == ("wal", 1)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://", "not a file"),
        ("sqlite:///:memory:", "not a file"),
        ("mysql://u:secret@host/db", "unsupported record database 'mysql://u:\\*\\*\\*@host/db'"),
    ],
)
def test_unusable_urls_are_refused_without_showing_passwords(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_records_engine(url)
