"""The experiment records: runs, clips, codecs, experiments and baseline results in a database.

The database is chosen by URL: ``sqlite:///path.db`` (the default; WAL journal, foreign keys
on, a 30 s busy timeout and ``BEGIN IMMEDIATE`` for writes, so concurrent writers wait instead
of failing with "database is locked") or ``postgresql+psycopg://user@host/db``.
``RecordStore.open`` upgrades the schema to the newest Alembic revision shipped in
``storage/migrations``. Every method is one short transaction, and the store may be shared
between threads. Records cross this module's boundary as frozen dataclasses; timestamps are
always timezone-aware UTC.

JSON fields (config, params, metrics, ...) come back equal to what was stored on both backends;
values that would not (NaN, infinities, non-string keys, numpy scalars) are refused with an
error naming the field. PostgreSQL's JSONB does not keep the order of object keys.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ColumnElement,
    Double,
    Integer,
    Select,
    String,
    Table,
    Text,
    UnaryExpression,
    create_engine,
    delete,
    event,
    func,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.pool import ConnectionPoolEntry

from codeclab.storage.models import (
    Base,
    BaselineResult,
    Clip,
    Codec,
    Experiment,
    ExperimentFrames,
    ExperimentStatus,
    PhaseStatus,
    PublishStatus,
    Run,
    RunStatus,
    UTCDateTime,
)

__all__ = [
    "BaselineRecord",
    "ClipRecord",
    "CodecRecord",
    "ExperimentRecord",
    "ExperimentStatus",
    "PhaseRecord",
    "PhaseStatus",
    "PublishStatus",
    "RecordNotFound",
    "RecordStore",
    "RunRecord",
    "RunStatus",
    "alembic_config",
    "create_records_engine",
    "upgrade_schema",
    "utcnow",
]

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_S: Final = 30.0

Clock = Callable[[], datetime]

# Connections that will write carry this execution option; on SQLite they begin with
# BEGIN IMMEDIATE, which takes the write lock up front (waiting up to the busy timeout), so a
# transaction never has to upgrade a read lock mid-way and fail with "database is locked".
_WRITE_OPTION: Final = "codeclab_write"
# Serialises schema upgrades of one PostgreSQL database between processes.
_PG_MIGRATION_LOCK: Final = 0x636F6465636C6162  # "codeclab"
_ID_ATTEMPTS: Final = 8

_RUNS: Final = Base.metadata.tables["runs"]
_CLIPS: Final = Base.metadata.tables["clips"]
_CODECS: Final = Base.metadata.tables["codecs"]
_EXPERIMENTS: Final = Base.metadata.tables["experiments"]
_FRAMES: Final = Base.metadata.tables["experiment_frames"]
_BASELINES: Final = Base.metadata.tables["baseline_results"]


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class RecordNotFound(LookupError):  # noqa: N818 (the name callers catch)
    """No record of this kind has this id."""

    def __init__(self, kind: str, key: str, hint: str = "") -> None:
        self.kind = kind
        self.key = key
        message = f"{kind} {key!r} not found in the record store"
        super().__init__(f"{message}; {hint}" if hint else message)


# --- records ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhaseRecord:
    """One phase of an experiment: when it ran, how long, and why it failed if it did."""

    phase: str
    status: PhaseStatus
    started_at: datetime
    finished_at: datetime | None = None
    seconds: float | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "status": self.status.value,
            "started_at": self.started_at.isoformat(),
            "finished_at": None if self.finished_at is None else self.finished_at.isoformat(),
            "seconds": self.seconds,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PhaseRecord:
        finished = data.get("finished_at")
        return cls(
            phase=str(data["phase"]),
            status=PhaseStatus(data["status"]),
            started_at=datetime.fromisoformat(data["started_at"]).astimezone(UTC),
            finished_at=None
            if finished is None
            else datetime.fromisoformat(finished).astimezone(UTC),
            seconds=data.get("seconds"),
            error=data.get("error"),
        )


@dataclass(frozen=True)
class RunRecord:
    """A campaign, with counts derived from its experiments."""

    id: str
    created_at: datetime
    status: RunStatus
    designer: str
    config: dict[str, Any]
    seed: int
    notes: str | None
    finished_at: datetime | None = None
    experiments: int = 0
    completed: int = 0
    failed: int = 0
    achieved: int = 0


@dataclass(frozen=True)
class ClipRecord:
    sha256: str
    name: str
    source: str
    width: int
    height: int
    fps_num: int
    fps_den: int
    frame_count: int
    start: int = 0


@dataclass(frozen=True)
class CodecRecord:
    """A deployed codec; ``created_at`` is set by the store when the codec is first seen."""

    sha256: str
    name: str
    source_key: str
    size: int
    created_at: datetime | None = None


@dataclass(frozen=True)
class BaselineRecord:
    id: int
    clip_sha256: str
    encoder: str
    cache_key: str
    version: str
    settings: dict[str, Any]
    points: list[Any]
    created_at: datetime


@dataclass(frozen=True)
class ExperimentRecord:
    """An experiment without its per-frame data (``RecordStore.get_frames`` has that)."""

    id: str
    run_id: str | None
    created_at: datetime
    updated_at: datetime
    status: ExperimentStatus
    designer: str
    current_phase: str | None = None
    phases: tuple[PhaseRecord, ...] = ()
    error: str | None = None
    failed_phase: str | None = None
    parent_ids: list[str] = field(default_factory=list)
    rationale: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    codec_sha256: str | None = None
    clip_sha256: str | None = None
    isolation: str | None = None
    metrics: Any = None
    comparison: Any = None
    target: Any = None
    target_achieved: bool | None = None
    tier: int | None = None
    bitrate_bps: float | None = None
    psnr_y: float | None = None
    ssim_y: float | None = None
    vmaf: float | None = None
    publish_status: PublishStatus = PublishStatus.NONE
    publish_error: str | None = None
    artifacts: dict[str, str] = field(default_factory=dict)
    bytes_stored: int = 0
    cost_usd: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0


# Fields that only the store sets, or that have their own method.
_MANAGED_FIELDS: Final = {
    "id": "it is generated by create_experiment",
    "run_id": "it is set by create_experiment",
    "created_at": "it is set by create_experiment",
    "updated_at": "the store sets it on every change",
    "phases": "use start_phase and finish_phase",
}
UPDATABLE_FIELDS: Final = frozenset(
    f.name for f in fields(ExperimentRecord) if f.name not in _MANAGED_FIELDS
)
ORDER_FIELDS: Final = (
    "created_at",
    "updated_at",
    "bitrate_bps",
    "psnr_y",
    "ssim_y",
    "vmaf",
    "tier",
    "cost_usd",
    "bytes_stored",
)


# --- value checks ---------------------------------------------------------------------------


def _check_json(value: Any, where: str) -> None:
    """Refuse what would not round-trip identically through JSON on both backends."""
    if value is None or isinstance(value, bool | int | str):
        if isinstance(value, str) and "\x00" in value:
            raise ValueError(f"{where} contains a NUL character, which PostgreSQL cannot store")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(
                f"{where} is {value}; JSON fields hold finite numbers only "
                "(store None, or a capped value such as 100 dB for identical frames)"
            )
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(
                    f"{where} has the key {key!r} ({type(key).__name__}); JSON object keys must "
                    "be strings (they would come back as strings)"
                )
            if "\x00" in key:
                raise ValueError(f"{where} has a key with a NUL character: {key!r}")
            _check_json(item, f"{where}[{key!r}]")
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_json(item, f"{where}[{index}]")
        return
    raise ValueError(
        f"{where} holds a {type(value).__module__}.{type(value).__name__}, which is not JSON "
        "(convert numpy scalars with float() or int())"
    )


def _check_values(table: Table, values: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``values`` against the column types of ``table``, the same way on both backends.

    SQLite would store a string in an integer column or an over-long name; PostgreSQL would
    refuse them. Checking here gives one behaviour and an error naming the field. Returns the
    values with NUL characters in free text replaced (PostgreSQL cannot store them, and an
    error message from a crashed codec must not be lost for that).
    """
    checked: dict[str, Any] = {}
    for name, value in values.items():
        column = table.c[name]
        where = f"{table.name}.{name}"
        kind = column.type
        if value is None:
            if not column.nullable:
                raise ValueError(f"{where} cannot be None")
        elif isinstance(kind, JSON):
            _check_json(value, where)
        elif isinstance(kind, Boolean):
            if not isinstance(value, bool):
                raise ValueError(f"{where} must be a bool, not {type(value).__name__}")
        elif isinstance(kind, Double):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{where} must be a number, not {type(value).__name__}")
            value = float(value)
        elif isinstance(kind, Integer):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{where} must be an int, not {type(value).__name__}")
            bits = 63 if isinstance(kind, BigInteger) else 31
            if not -(2**bits) <= value < 2**bits:
                raise ValueError(f"{where} = {value} does not fit in a {bits + 1}-bit integer")
        elif isinstance(kind, String):
            if not isinstance(value, str):
                raise ValueError(f"{where} must be a str, not {type(value).__name__}")
            if isinstance(kind, Text):
                value = value.replace("\x00", "\\x00")
            elif "\x00" in value:
                raise ValueError(f"{where} contains a NUL character")
            elif kind.length is not None and len(value) > kind.length:
                raise ValueError(
                    f"{where} is {len(value)} characters long; the limit is {kind.length}"
                )
        elif isinstance(kind, UTCDateTime) and (
            not isinstance(value, datetime) or value.utcoffset() is None
        ):
            raise ValueError(f"{where} must be a timezone-aware datetime")
        checked[name] = value
    return checked


def _check_experiment_fields(values: Mapping[str, Any]) -> None:
    """The shape rules of experiment fields that their column types cannot express."""
    for name, enum in (("status", ExperimentStatus), ("publish_status", PublishStatus)):
        if name in values:
            allowed = [member.value for member in enum]
            if values[name] not in allowed:
                raise ValueError(
                    f"experiments.{name} must be one of {allowed}, not {values[name]!r}"
                )
    parent_ids = values.get("parent_ids")
    if parent_ids is not None and (
        isinstance(parent_ids, str)
        or not isinstance(parent_ids, list | tuple)
        or not all(isinstance(item, str) for item in parent_ids)
    ):
        raise ValueError(
            f"experiments.parent_ids must be a list of experiment ids, not {parent_ids!r}"
        )
    artifacts = values.get("artifacts")
    if artifacts is not None and (
        not isinstance(artifacts, Mapping)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in artifacts.items())
    ):
        raise ValueError(
            f"experiments.artifacts must map artifact names to object keys, not {artifacts!r}"
        )
    if "params" in values and not isinstance(values["params"], Mapping):
        raise ValueError(f"experiments.params must be a dict, not {values['params']!r}")


def _check_page(limit: int, offset: int) -> None:
    if limit < 0 or offset < 0:
        raise ValueError(f"limit and offset must be >= 0, got limit={limit}, offset={offset}")


# --- engine and schema ----------------------------------------------------------------------


def _sqlite_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # Let SQLAlchemy emit BEGIN itself (see _sqlite_on_begin) instead of the sqlite3 module's
    # legacy implicit transactions, which skip BEGIN for SELECT and DDL.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    if connection.get_execution_options().get(_WRITE_OPTION):
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        connection.exec_driver_sql("BEGIN")


def _json_dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _positional_json(value: Any) -> str:
    if isinstance(value, float):
        if abs(value) < 1e16:
            return _json_dumps(value)
        digits = format(Decimal(repr(value)), "f")
        return digits if "." in digits else f"{digits}.0"
    if isinstance(value, Mapping):
        items = (f"{_json_dumps(str(k))}:{_positional_json(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_positional_json(item) for item in value) + "]"
    return _json_dumps(value)


def _jsonb_dumps(value: Any) -> str:
    """JSON text whose floats stay floats after a trip through PostgreSQL's JSONB.

    JSONB keeps numbers as ``numeric`` and prints them without an exponent, so ``1e+16`` comes
    back as ``10000000000000000``, which ``json.loads`` reads as an int. Such floats are written
    positionally with a decimal point instead (``10000000000000000.0``).
    """
    text = _json_dumps(value)
    return text if "e+" not in text else _positional_json(value)


def _describe(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def create_records_engine(url: str | URL) -> Engine:
    """An engine for a record database: ``sqlite:///path.db`` or ``postgresql+psycopg://...``.

    For SQLite the parent folder is created. A bare ``postgresql://`` URL uses psycopg 3.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            raise ValueError(
                f"record database {_describe(parsed)!r} is not a file: give a path, "
                "e.g. sqlite:///data/codeclab.db (an in-memory database vanishes on close "
                "and cannot be shared between threads)"
            )
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            parsed,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
            json_serializer=_json_dumps,
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_pre_ping=True, json_serializer=_jsonb_dumps)
    raise ValueError(
        f"unsupported record database {_describe(parsed)!r}: use sqlite:///path.db or "
        "postgresql+psycopg://user@host/dbname"
    )


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for the shipped migrations, optionally bound to an open connection."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade_schema(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (default: the newest), in one transaction.

    Raises RuntimeError if the database carries a revision this code does not know (it was
    upgraded by a newer codeclab).
    """
    script = ScriptDirectory.from_config(alembic_config())
    with engine.execution_options(**{_WRITE_OPTION: True}).begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
            )
        current = MigrationContext.configure(connection).get_current_revision()
        known = {rev.revision for rev in script.walk_revisions()}
        if current is not None and current not in known:
            raise RuntimeError(
                f"record database {_describe(engine.url)!r} is at schema revision {current!r}, "
                f"which this codeclab does not know (its newest is {script.get_current_head()!r}); "
                "upgrade codeclab, or point it at another database"
            )
        command.upgrade(alembic_config(connection), revision)


# --- conversions ----------------------------------------------------------------------------


def _run_record(row: Run, counts: Sequence[int | None] = (0, 0, 0, 0)) -> RunRecord:
    experiments, completed, failed, achieved = (int(n or 0) for n in counts)
    return RunRecord(
        id=row.id,
        created_at=row.created_at,
        status=RunStatus(row.status),
        designer=row.designer,
        config=row.config,
        seed=row.seed,
        notes=row.notes,
        finished_at=row.finished_at,
        experiments=experiments,
        completed=completed,
        failed=failed,
        achieved=achieved,
    )


def _experiment_record(row: Experiment) -> ExperimentRecord:
    values = {
        f.name: getattr(row, f.name)
        for f in fields(ExperimentRecord)
        if f.name not in ("phases", "status", "publish_status")
    }
    return ExperimentRecord(
        phases=tuple(PhaseRecord.from_json(item) for item in row.phases),
        status=ExperimentStatus(row.status),
        publish_status=PublishStatus(row.publish_status),
        **values,
    )


def _clip_record(row: Clip) -> ClipRecord:
    return ClipRecord(**{f.name: getattr(row, f.name) for f in fields(ClipRecord)})


def _codec_record(row: Codec) -> CodecRecord:
    return CodecRecord(**{f.name: getattr(row, f.name) for f in fields(CodecRecord)})


def _baseline_record(row: BaselineResult) -> BaselineRecord:
    return BaselineRecord(**{f.name: getattr(row, f.name) for f in fields(BaselineRecord)})


def _upsert(
    session: Session,
    table: Table,
    values: Mapping[str, Any],
    keys: Sequence[str],
    keep: Sequence[str] = (),
) -> None:
    """INSERT, or UPDATE the row with the same ``keys`` (except the ``keep`` columns)."""
    changed = [name for name in values if name not in keys and name not in keep]
    if session.get_bind().dialect.name == "postgresql":
        pg_insert = postgresql.insert(table).values(dict(values))
        pg_updates = {name: pg_insert.excluded[name] for name in changed}
        session.execute(pg_insert.on_conflict_do_update(index_elements=keys, set_=pg_updates))
    else:
        lite_insert = sqlite.insert(table).values(dict(values))
        lite_updates = {name: lite_insert.excluded[name] for name in changed}
        session.execute(lite_insert.on_conflict_do_update(index_elements=keys, set_=lite_updates))


def _new_run_id(now: datetime) -> str:
    return f"run-{now:%Y%m%d-%H%M}-{secrets.token_hex(2)}"


def _new_experiment_id(now: datetime) -> str:
    return f"exp-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(4)}"


# --- the store ------------------------------------------------------------------------------


class RecordStore:
    """Experiment records in a SQLite or PostgreSQL database. Thread-safe; one transaction per call.

    Use ``RecordStore.open(url)``; the constructor takes an engine whose schema is already at
    head. ``clock`` supplies "now" (timezone-aware) for every timestamp the store sets.
    """

    def __init__(self, engine: Engine, *, clock: Clock = utcnow) -> None:
        self._engine = engine
        self._write_engine = engine.execution_options(**{_WRITE_OPTION: True})
        self._clock = clock

    @classmethod
    def open(cls, url: str | URL, *, clock: Clock = utcnow) -> Self:
        """Connect to the database at ``url`` and upgrade its schema to the newest revision."""
        engine = create_records_engine(url)
        try:
            upgrade_schema(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, clock=clock)

    @property
    def engine(self) -> Engine:
        return self._engine

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # transactions

    @contextmanager
    def _writing(self) -> Iterator[Session]:
        with Session(self._write_engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def _reading(self) -> Iterator[Session]:
        with Session(self._engine) as session, session.begin():
            yield session

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError(
                f"the record store's clock returned the naive datetime {now.isoformat()}; "
                "it must return timezone-aware datetimes"
            )
        return now.astimezone(UTC)

    # runs

    def create_run(
        self, designer: str, config: Mapping[str, Any], seed: int, notes: str | None = None
    ) -> RunRecord:
        last_error: IntegrityError | None = None
        for _ in range(_ID_ATTEMPTS):
            now = self._now()
            values = _check_values(
                _RUNS,
                {
                    "id": _new_run_id(now),
                    "created_at": now,
                    "status": RunStatus.RUNNING.value,
                    "designer": designer,
                    "config": dict(config),
                    "seed": seed,
                    "notes": notes,
                },
            )
            try:
                with self._writing() as session:
                    row = Run(**values)
                    session.add(row)
                return _run_record(row)
            except IntegrityError as error:  # the random part of the id collided: draw again
                last_error = error
        raise RuntimeError(f"could not draw a free run id in {_ID_ATTEMPTS} tries") from last_error

    @staticmethod
    def _run_select() -> Select[Any]:
        e = Experiment
        counts = (
            select(
                e.run_id.label("run_id"),
                func.count().label("experiments"),
                func.count()
                .filter(e.status == ExperimentStatus.COMPLETED.value)
                .label("completed"),
                func.count().filter(e.status == ExperimentStatus.FAILED.value).label("failed"),
                func.count().filter(e.target_achieved.is_(True)).label("achieved"),
            )
            .where(e.run_id.is_not(None))
            .group_by(e.run_id)
            .subquery()
        )
        return select(
            Run, counts.c.experiments, counts.c.completed, counts.c.failed, counts.c.achieved
        ).outerjoin(counts, counts.c.run_id == Run.id)

    def get_run(self, run_id: str) -> RunRecord:
        with self._reading() as session:
            result = session.execute(self._run_select().where(Run.id == run_id)).first()
            if result is None:
                raise RecordNotFound("run", run_id)
            return _run_record(result[0], result[1:])

    def list_runs(self, *, limit: int = 100, offset: int = 0) -> list[RunRecord]:
        """Runs, newest first."""
        _check_page(limit, offset)
        query = (
            self._run_select()
            .order_by(Run.created_at.desc(), Run.id.desc())
            .limit(limit)
            .offset(offset)
        )
        with self._reading() as session:
            return [_run_record(row[0], row[1:]) for row in session.execute(query)]

    def finish_run(self, run_id: str, status: RunStatus | str) -> RunRecord:
        """Close a run as finished, stopped or failed."""
        ends = [RunStatus.FINISHED, RunStatus.STOPPED, RunStatus.FAILED]
        if status not in ends:
            raise ValueError(f"a run ends as one of {[s.value for s in ends]}, not {status!r}")
        with self._writing() as session:
            row = session.get(Run, run_id, with_for_update=True)
            if row is None:
                raise RecordNotFound("run", run_id)
            row.status = RunStatus(status).value
            row.finished_at = self._now()
        return self.get_run(run_id)

    def reopen_run(self, run_id: str, config: Mapping[str, Any] | None = None) -> RunRecord:
        """Mark a run running again (a campaign resumed with ``--resume``); the keys of
        `config` replace those of the run's config."""
        with self._writing() as session:
            row = session.get(Run, run_id, with_for_update=True)
            if row is None:
                raise RecordNotFound("run", run_id)
            row.status = RunStatus.RUNNING.value
            row.finished_at = None
            if config:
                row.config = {**row.config, **config}
        return self.get_run(run_id)

    # clips, codecs, baselines

    def upsert_clip(self, clip: ClipRecord) -> ClipRecord:
        values = _check_values(_CLIPS, {f.name: getattr(clip, f.name) for f in fields(ClipRecord)})
        with self._writing() as session:
            _upsert(session, _CLIPS, values, ["sha256"])
        return self.get_clip(clip.sha256)

    def get_clip(self, sha256: str) -> ClipRecord:
        with self._reading() as session:
            row = session.get(Clip, sha256)
            if row is None:
                raise RecordNotFound("clip", sha256)
            return _clip_record(row)

    def upsert_codec(self, codec: CodecRecord) -> CodecRecord:
        """Store a codec; a codec seen before keeps its first ``created_at``."""
        values = {f.name: getattr(codec, f.name) for f in fields(CodecRecord)}
        values["created_at"] = codec.created_at or self._now()
        values = _check_values(_CODECS, values)
        with self._writing() as session:
            _upsert(session, _CODECS, values, ["sha256"], keep=["created_at"])
        return self.get_codec(codec.sha256)

    def get_codec(self, sha256: str) -> CodecRecord:
        with self._reading() as session:
            row = session.get(Codec, sha256)
            if row is None:
                raise RecordNotFound("codec", sha256)
            return _codec_record(row)

    def save_baseline(
        self,
        *,
        clip_sha256: str,
        encoder: str,
        cache_key: str,
        version: str,
        settings: Mapping[str, Any],
        points: Sequence[Any],
    ) -> BaselineRecord:
        """Store a baseline encoder's result; a result with the same ``cache_key`` is replaced."""
        values = _check_values(
            _BASELINES,
            {
                "clip_sha256": clip_sha256,
                "encoder": encoder,
                "cache_key": cache_key,
                "version": version,
                "settings": dict(settings),
                "points": list(points),
                "created_at": self._now(),
            },
        )
        with self._writing() as session:
            if session.get(Clip, clip_sha256) is None:
                raise RecordNotFound("clip", clip_sha256, "upsert_clip it before its baselines")
            _upsert(session, _BASELINES, values, ["cache_key"])
        found = self.get_baseline(cache_key)
        assert found is not None
        return found

    def get_baseline(self, cache_key: str) -> BaselineRecord | None:
        """The cached baseline result under ``cache_key``, or None (a cache miss)."""
        with self._reading() as session:
            row = session.scalars(
                select(BaselineResult).where(BaselineResult.cache_key == cache_key)
            ).first()
            return None if row is None else _baseline_record(row)

    def list_baselines(self, clip_sha256: str) -> list[BaselineRecord]:
        """A clip's baseline results, by encoder then age."""
        query = (
            select(BaselineResult)
            .where(BaselineResult.clip_sha256 == clip_sha256)
            .order_by(BaselineResult.encoder, BaselineResult.created_at, BaselineResult.id)
        )
        with self._reading() as session:
            return [_baseline_record(row) for row in session.scalars(query)]

    # experiments

    def create_experiment(
        self,
        *,
        designer: str,
        run_id: str | None = None,
        codec_sha256: str | None = None,
        clip_sha256: str | None = None,
        params: Mapping[str, Any] | None = None,
        rationale: str = "",
        parent_ids: Sequence[str] = (),
        isolation: str | None = None,
        target: Mapping[str, Any] | None = None,
    ) -> ExperimentRecord:
        """A new pending experiment; the referenced run, codec and clip must exist."""
        fields_given = {
            "designer": designer,
            "run_id": run_id,
            "codec_sha256": codec_sha256,
            "clip_sha256": clip_sha256,
            "params": dict(params or {}),
            "rationale": rationale,
            "parent_ids": list(parent_ids),
            "isolation": isolation,
            "target": None if target is None else dict(target),
        }
        _check_experiment_fields(fields_given)
        last_error: IntegrityError | None = None
        for _ in range(_ID_ATTEMPTS):
            now = self._now()
            values = _check_values(
                _EXPERIMENTS,
                {
                    **fields_given,
                    "id": _new_experiment_id(now),
                    "created_at": now,
                    "updated_at": now,
                    "status": ExperimentStatus.PENDING.value,
                    "phases": [],
                    "publish_status": PublishStatus.NONE.value,
                    "artifacts": {},
                    "bytes_stored": 0,
                    "cost_usd": 0.0,
                    "tokens_in": 0,
                    "tokens_out": 0,
                },
            )
            try:
                with self._writing() as session:
                    self._check_references(session, values)
                    row = Experiment(**values)
                    session.add(row)
                return _experiment_record(row)
            except IntegrityError as error:  # the random part of the id collided: draw again
                last_error = error
        raise RuntimeError(
            f"could not draw a free experiment id in {_ID_ATTEMPTS} tries"
        ) from last_error

    @staticmethod
    def _check_references(session: Session, values: Mapping[str, Any]) -> None:
        run_id = values.get("run_id")
        if run_id is not None and session.get(Run, run_id) is None:
            raise RecordNotFound("run", run_id, "create_run first, or pass run_id=None")
        codec = values.get("codec_sha256")
        if codec is not None and session.get(Codec, codec) is None:
            raise RecordNotFound("codec", codec, "upsert_codec it before referring to it")
        clip = values.get("clip_sha256")
        if clip is not None and session.get(Clip, clip) is None:
            raise RecordNotFound("clip", clip, "upsert_clip it before referring to it")

    def _locked_experiment(self, session: Session, exp_id: str) -> Experiment:
        row = session.get(Experiment, exp_id, with_for_update=True)
        if row is None:
            raise RecordNotFound("experiment", exp_id)
        return row

    def get_experiment(self, exp_id: str) -> ExperimentRecord:
        with self._reading() as session:
            row = session.get(Experiment, exp_id)
            if row is None:
                raise RecordNotFound("experiment", exp_id)
            return _experiment_record(row)

    def update_experiment(self, exp_id: str, **changes: Any) -> ExperimentRecord:
        """Set fields of an experiment; names not in ``UPDATABLE_FIELDS`` raise ValueError."""
        for name in changes:
            if name in _MANAGED_FIELDS:
                raise ValueError(
                    f"experiment field {name!r} cannot be updated: {_MANAGED_FIELDS[name]}"
                )
            if name not in UPDATABLE_FIELDS:
                raise ValueError(
                    f"unknown experiment field {name!r}; updatable fields: "
                    f"{', '.join(sorted(UPDATABLE_FIELDS))}"
                )
        values = dict(changes)
        if isinstance(values.get("parent_ids"), tuple):
            values["parent_ids"] = list(values["parent_ids"])
        _check_experiment_fields(values)
        values = _check_values(_EXPERIMENTS, values)
        with self._writing() as session:
            row = self._locked_experiment(session, exp_id)
            self._check_references(session, values)
            for name, value in values.items():
                setattr(row, name, value)
            row.updated_at = self._now()
            return _experiment_record(row)

    def start_phase(self, exp_id: str, phase: str) -> PhaseRecord:
        """Mark ``phase`` as running; a pending experiment becomes running."""
        _check_values(_EXPERIMENTS, {"current_phase": phase})
        if not phase:
            raise ValueError("a phase needs a name")
        with self._writing() as session:
            row = self._locked_experiment(session, exp_id)
            if row.status not in (ExperimentStatus.PENDING, ExperimentStatus.RUNNING):
                raise ValueError(
                    f"experiment {exp_id!r} is {row.status}; phases start only while it is "
                    "pending or running"
                )
            phases = [PhaseRecord.from_json(item) for item in row.phases]
            if any(p.phase == phase and p.status is PhaseStatus.RUNNING for p in phases):
                raise ValueError(f"phase {phase!r} of experiment {exp_id!r} is already running")
            now = self._now()
            record = PhaseRecord(phase=phase, status=PhaseStatus.RUNNING, started_at=now)
            row.phases = [*row.phases, record.to_json()]
            row.current_phase = phase
            row.status = ExperimentStatus.RUNNING.value
            row.updated_at = now
            return record

    def finish_phase(self, exp_id: str, phase: str, *, error: str | None = None) -> PhaseRecord:
        """Record the end of a running phase; an ``error`` fails the experiment at this phase."""
        with self._writing() as session:
            row = self._locked_experiment(session, exp_id)
            phases = [PhaseRecord.from_json(item) for item in row.phases]
            running = [
                index
                for index, p in enumerate(phases)
                if p.phase == phase and p.status is PhaseStatus.RUNNING
            ]
            if not running:
                raise ValueError(
                    f"phase {phase!r} of experiment {exp_id!r} is not running; "
                    "call start_phase first"
                )
            now = self._now()
            started = phases[running[-1]]
            reason = None if error is None else error.replace("\x00", "\\x00")
            record = PhaseRecord(
                phase=phase,
                status=PhaseStatus.COMPLETED if reason is None else PhaseStatus.FAILED,
                started_at=started.started_at,
                finished_at=now,
                seconds=max((now - started.started_at).total_seconds(), 0.0),
                error=reason,
            )
            updated = [item.to_json() for item in phases]
            updated[running[-1]] = record.to_json()
            row.phases = updated
            if row.current_phase == phase:
                row.current_phase = None
            if reason is not None:
                row.status = ExperimentStatus.FAILED.value
                row.failed_phase = phase
                row.error = reason
            row.updated_at = now
            return record

    def set_frames(self, exp_id: str, quality: int, data: Any) -> None:
        """Store the per-frame data of one quality point (replacing what was there)."""
        values = _check_values(
            _FRAMES,
            {"experiment_id": exp_id, "quality": quality, "data": data},
        )
        if data is None:
            raise ValueError("experiment_frames.data cannot be None")
        with self._writing() as session:
            row = self._locked_experiment(session, exp_id)
            _upsert(session, _FRAMES, values, ["experiment_id", "quality"])
            row.updated_at = self._now()

    def get_frames(self, exp_id: str) -> dict[int, Any]:
        """Per-frame data of an experiment, by quality, in increasing quality."""
        with self._reading() as session:
            if session.get(Experiment, exp_id) is None:
                raise RecordNotFound("experiment", exp_id)
            rows = session.execute(
                select(ExperimentFrames.quality, ExperimentFrames.data)
                .where(ExperimentFrames.experiment_id == exp_id)
                .order_by(ExperimentFrames.quality)
            )
            return {quality: data for quality, data in rows}

    @staticmethod
    def _filters(
        run_id: str | None, achieved: bool | None, status: ExperimentStatus | str | None
    ) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if run_id is not None:
            conditions.append(Experiment.run_id == run_id)
        if achieved is not None:
            conditions.append(Experiment.target_achieved.is_(achieved))
        if status is not None:
            _check_experiment_fields({"status": status})
            conditions.append(Experiment.status == ExperimentStatus(status).value)
        return conditions

    @staticmethod
    def _order(order: str) -> list[UnaryExpression[Any]]:
        name = order.removeprefix("-")
        if name not in ORDER_FIELDS:
            raise ValueError(
                f"cannot order experiments by {order!r}; use one of {', '.join(ORDER_FIELDS)}, "
                "with a leading '-' for descending"
            )
        column = _EXPERIMENTS.c[name]
        if order.startswith("-"):
            return [column.desc().nulls_last(), Experiment.id.desc()]
        return [column.asc().nulls_last(), Experiment.id.asc()]

    def list_experiments(
        self,
        *,
        run_id: str | None = None,
        achieved: bool | None = None,
        status: ExperimentStatus | str | None = None,
        limit: int = 100,
        offset: int = 0,
        order: str = "-created_at",
    ) -> list[ExperimentRecord]:
        """Experiments matching every filter given, ordered by ``order`` (missing values last)."""
        _check_page(limit, offset)
        query = (
            select(Experiment)
            .where(*self._filters(run_id, achieved, status))
            .order_by(*self._order(order))
            .limit(limit)
            .offset(offset)
        )
        with self._reading() as session:
            return [_experiment_record(row) for row in session.scalars(query)]

    def count_experiments(
        self,
        *,
        run_id: str | None = None,
        achieved: bool | None = None,
        status: ExperimentStatus | str | None = None,
    ) -> int:
        query = (
            select(func.count())
            .select_from(Experiment)
            .where(*self._filters(run_id, achieved, status))
        )
        with self._reading() as session:
            return int(session.execute(query).scalar_one())

    def stuck_experiments(self, older_than: timedelta) -> list[ExperimentRecord]:
        """Running experiments not updated for ``older_than``: their worker probably died."""
        if older_than < timedelta(0):
            raise ValueError(f"older_than must not be negative, got {older_than}")
        cutoff = self._now() - older_than
        query = (
            select(Experiment)
            .where(
                Experiment.status == ExperimentStatus.RUNNING.value,
                Experiment.updated_at < cutoff,
            )
            .order_by(Experiment.updated_at, Experiment.id)
        )
        with self._reading() as session:
            return [_experiment_record(row) for row in session.scalars(query)]

    def delete_experiment(self, exp_id: str) -> None:
        """Delete an experiment and its per-frame data."""
        with self._writing() as session:
            self._locked_experiment(session, exp_id)
            session.execute(
                delete(ExperimentFrames).where(ExperimentFrames.experiment_id == exp_id)
            )
            session.execute(delete(Experiment).where(Experiment.id == exp_id))

    def storage_totals(self, run_id: str | None = None) -> tuple[int, int]:
        """(bytes stored, experiments that stored any) over all experiments, or one run's."""
        query = select(
            func.coalesce(func.sum(Experiment.bytes_stored), 0),
            func.count().filter(Experiment.bytes_stored > 0),
        )
        if run_id is not None:
            query = query.where(Experiment.run_id == run_id)
        with self._reading() as session:
            total, count = session.execute(query).one()
            return int(total), int(count)
