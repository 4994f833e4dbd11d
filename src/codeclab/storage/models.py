"""The experiment-record schema: SQLAlchemy 2 declarative models shared by SQLite and PostgreSQL.

The tables are created and changed only by the Alembic migrations shipped beside this module
(``storage/migrations``); a test checks that these models and the migrated schema agree.
Nothing outside ``storage.records`` should import these classes: the record store hands out
plain dataclasses instead.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine


class RunStatus(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"


class ExperimentStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class PhaseStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class PublishStatus(StrEnum):
    NONE = "none"
    PENDING = "pending"
    PUBLISHED = "published"
    FAILED = "failed"


# Deterministic constraint names, so migrations can name what they alter on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID_LENGTH = 64
SHA256_LENGTH = 64
VERSION_LENGTH = 512  # a baseline's encoder versions (ffmpeg build line + library version)


def json_type() -> TypeEngine[Any]:
    """JSON on SQLite, JSONB on PostgreSQL; Python ``None`` is stored as SQL NULL."""
    return JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so the value is stored as naive
    UTC and the zone is put back on read. Naive datetimes are refused on write: their zone is a
    guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} given to a UTC timestamp column; "
                "pass a timezone-aware datetime (e.g. datetime.now(UTC))"
            )
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _one_of(column: str, values: type[StrEnum]) -> str:
    allowed = ", ".join(f"'{member.value}'" for member in values)
    return f"{column} IN ({allowed})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Run(Base):
    """One campaign: a designer proposing experiments until it is finished or stopped."""

    __tablename__ = "runs"
    __table_args__ = (CheckConstraint(_one_of("status", RunStatus), name="status"),)

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))
    designer: Mapped[str] = mapped_column(String(200))
    config: Mapped[Any] = mapped_column(json_type())
    seed: Mapped[int] = mapped_column(BigInteger)
    notes: Mapped[str | None] = mapped_column(Text)


class Clip(Base):
    """A source clip, identified by the sha256 of its frames."""

    __tablename__ = "clips"

    sha256: Mapped[str] = mapped_column(String(SHA256_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(Text)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    fps_num: Mapped[int] = mapped_column(Integer)
    fps_den: Mapped[int] = mapped_column(Integer)
    frame_count: Mapped[int] = mapped_column(Integer)
    start: Mapped[int] = mapped_column(Integer)


class Codec(Base):
    """A deployed codec module, content-addressed by the sha256 of its source."""

    __tablename__ = "codecs"

    sha256: Mapped[str] = mapped_column(String(SHA256_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    source_key: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Experiment(Base):
    """One codec evaluated on one clip at a ladder of quality values, with its analysis."""

    __tablename__ = "experiments"
    __table_args__ = (
        CheckConstraint(_one_of("status", ExperimentStatus), name="status"),
        CheckConstraint(_one_of("publish_status", PublishStatus), name="publish_status"),
        Index("ix_experiments_run_id_created_at", "run_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    run_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("runs.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), index=True)
    current_phase: Mapped[str | None] = mapped_column(String(32))
    phases: Mapped[Any] = mapped_column(json_type())
    error: Mapped[str | None] = mapped_column(Text)
    failed_phase: Mapped[str | None] = mapped_column(String(32))
    designer: Mapped[str] = mapped_column(String(200))
    parent_ids: Mapped[Any] = mapped_column(json_type())
    rationale: Mapped[str] = mapped_column(Text)
    params: Mapped[Any] = mapped_column(json_type())
    codec_sha256: Mapped[str | None] = mapped_column(
        String(SHA256_LENGTH), ForeignKey("codecs.sha256")
    )
    clip_sha256: Mapped[str | None] = mapped_column(
        String(SHA256_LENGTH), ForeignKey("clips.sha256")
    )
    isolation: Mapped[str | None] = mapped_column(String(32))
    metrics: Mapped[Any] = mapped_column(json_type(), nullable=True)
    comparison: Mapped[Any] = mapped_column(json_type(), nullable=True)
    target: Mapped[Any] = mapped_column(json_type(), nullable=True)
    target_achieved: Mapped[bool | None] = mapped_column(Boolean, index=True)
    tier: Mapped[int | None] = mapped_column(Integer)
    bitrate_bps: Mapped[float | None] = mapped_column(Double)
    psnr_y: Mapped[float | None] = mapped_column(Double)
    ssim_y: Mapped[float | None] = mapped_column(Double)
    vmaf: Mapped[float | None] = mapped_column(Double)
    publish_status: Mapped[str] = mapped_column(String(16))
    publish_error: Mapped[str | None] = mapped_column(Text)
    artifacts: Mapped[Any] = mapped_column(json_type())
    bytes_stored: Mapped[int] = mapped_column(BigInteger)
    cost_usd: Mapped[float] = mapped_column(Double, server_default=text("0"))
    tokens_in: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    tokens_out: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))


class ExperimentFrames(Base):
    """Per-frame metrics of one quality point, kept apart so listings never load them."""

    __tablename__ = "experiment_frames"

    experiment_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    quality: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[Any] = mapped_column(json_type())


class BaselineResult(Base):
    """A real encoder's rate-quality points on a clip, cached under a key of its inputs."""

    __tablename__ = "baseline_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    clip_sha256: Mapped[str] = mapped_column(
        String(SHA256_LENGTH), ForeignKey("clips.sha256"), index=True
    )
    encoder: Mapped[str] = mapped_column(String(32))
    cache_key: Mapped[str] = mapped_column(String(128), unique=True)
    # "<ffmpeg -version's first line>; <encoder library version>": often over 64 characters
    version: Mapped[str] = mapped_column(String(VERSION_LENGTH))
    settings: Mapped[Any] = mapped_column(json_type())
    points: Mapped[Any] = mapped_column(json_type())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
