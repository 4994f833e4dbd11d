"""Initial record schema: runs, clips, codecs, experiments, baseline results.

Per-frame metrics lived in the ``experiments.per_frame`` column at this revision.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON(none_as_null=True).with_variant(
        postgresql.JSONB(none_as_null=True), "postgresql"
    )


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("finished_at", _timestamp(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("designer", sa.String(200), nullable=False),
        sa.Column("config", _json(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'finished', 'stopped', 'failed')",
            name=op.f("ck_runs_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    op.create_index(op.f("ix_runs_created_at"), "runs", ["created_at"])

    op.create_table(
        "clips",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("fps_num", sa.Integer(), nullable=False),
        sa.Column("fps_den", sa.Integer(), nullable=False),
        sa.Column("frame_count", sa.Integer(), nullable=False),
        sa.Column("start", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_clips")),
    )

    op.create_table(
        "codecs",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("source_key", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_codecs")),
    )

    op.create_table(
        "experiments",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("current_phase", sa.String(32), nullable=True),
        sa.Column("phases", _json(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("failed_phase", sa.String(32), nullable=True),
        sa.Column("designer", sa.String(200), nullable=False),
        sa.Column("parent_ids", _json(), nullable=False),
        sa.Column("rationale", sa.Text(), nullable=False),
        sa.Column("params", _json(), nullable=False),
        sa.Column("codec_sha256", sa.String(64), nullable=True),
        sa.Column("clip_sha256", sa.String(64), nullable=True),
        sa.Column("isolation", sa.String(32), nullable=True),
        sa.Column("metrics", _json(), nullable=True),
        sa.Column("per_frame", _json(), nullable=True),
        sa.Column("comparison", _json(), nullable=True),
        sa.Column("target", _json(), nullable=True),
        sa.Column("target_achieved", sa.Boolean(), nullable=True),
        sa.Column("tier", sa.Integer(), nullable=True),
        sa.Column("bitrate_bps", sa.Double(), nullable=True),
        sa.Column("psnr_y", sa.Double(), nullable=True),
        sa.Column("ssim_y", sa.Double(), nullable=True),
        sa.Column("vmaf", sa.Double(), nullable=True),
        sa.Column("publish_status", sa.String(16), nullable=False),
        sa.Column("publish_error", sa.Text(), nullable=True),
        sa.Column("artifacts", _json(), nullable=False),
        sa.Column("bytes_stored", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'completed', 'failed')",
            name=op.f("ck_experiments_status"),
        ),
        sa.CheckConstraint(
            "publish_status IN ('none', 'pending', 'published', 'failed')",
            name=op.f("ck_experiments_publish_status"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_experiments_run_id_runs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["codec_sha256"], ["codecs.sha256"], name=op.f("fk_experiments_codec_sha256_codecs")
        ),
        sa.ForeignKeyConstraint(
            ["clip_sha256"], ["clips.sha256"], name=op.f("fk_experiments_clip_sha256_clips")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiments")),
    )
    op.create_index(op.f("ix_experiments_created_at"), "experiments", ["created_at"])
    op.create_index(op.f("ix_experiments_status"), "experiments", ["status"])
    op.create_index(op.f("ix_experiments_target_achieved"), "experiments", ["target_achieved"])
    op.create_index("ix_experiments_run_id_created_at", "experiments", ["run_id", "created_at"])

    op.create_table(
        "baseline_results",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("clip_sha256", sa.String(64), nullable=False),
        sa.Column("encoder", sa.String(32), nullable=False),
        sa.Column("cache_key", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("settings", _json(), nullable=False),
        sa.Column("points", _json(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.ForeignKeyConstraint(
            ["clip_sha256"], ["clips.sha256"], name=op.f("fk_baseline_results_clip_sha256_clips")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_baseline_results")),
        sa.UniqueConstraint("cache_key", name=op.f("uq_baseline_results_cache_key")),
    )
    op.create_index(op.f("ix_baseline_results_clip_sha256"), "baseline_results", ["clip_sha256"])


def downgrade() -> None:
    op.drop_table("baseline_results")
    op.drop_table("experiments")
    op.drop_table("codecs")
    op.drop_table("clips")
    op.drop_table("runs")
