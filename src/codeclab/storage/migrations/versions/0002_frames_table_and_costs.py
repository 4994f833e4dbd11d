"""Move per-frame metrics to their own table; record designer cost and tokens.

``experiments.per_frame`` ({quality: data}) becomes one ``experiment_frames`` row per quality,
so listing experiments no longer reads per-frame lists. Experiments gain ``cost_usd``,
``tokens_in`` and ``tokens_out`` (0 for existing rows).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

# Rows of experiments.per_frame whose keys are not quality integers cannot become frame rows.
_BAD_KEYS = {
    "sqlite": (
        "SELECT DISTINCT e.id FROM experiments AS e, json_each(e.per_frame) AS j "
        "WHERE json_type(e.per_frame) = 'object' "
        "AND (j.key = '' OR j.key GLOB '*[^0-9]*') ORDER BY e.id"
    ),
    "postgresql": (
        "SELECT DISTINCT e.id FROM experiments AS e "
        "CROSS JOIN LATERAL jsonb_each(e.per_frame) AS j "
        "WHERE jsonb_typeof(e.per_frame) = 'object' AND j.key !~ '^[0-9]+$' ORDER BY e.id"
    ),
}

_COPY_FRAMES = {
    # json_each gives arrays and objects as JSON text but scalars as SQL values: re-encode those.
    "sqlite": (
        "INSERT INTO experiment_frames (experiment_id, quality, data) "
        "SELECT e.id, CAST(j.key AS INTEGER), "
        "CASE j.type WHEN 'object' THEN j.value WHEN 'array' THEN j.value "
        "WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'null' THEN 'null' "
        "ELSE json_quote(j.value) END "
        "FROM experiments AS e, json_each(e.per_frame) AS j "
        "WHERE json_type(e.per_frame) = 'object'"
    ),
    "postgresql": (
        "INSERT INTO experiment_frames (experiment_id, quality, data) "
        "SELECT e.id, CAST(j.key AS INTEGER), j.value "
        "FROM experiments AS e CROSS JOIN LATERAL jsonb_each(e.per_frame) AS j "
        "WHERE jsonb_typeof(e.per_frame) = 'object'"
    ),
}

_RESTORE_PER_FRAME = {
    "sqlite": (
        "UPDATE experiments SET per_frame = ("
        "SELECT json_group_object(CAST(f.quality AS TEXT), json(f.data)) "
        "FROM experiment_frames AS f WHERE f.experiment_id = experiments.id) "
        "WHERE EXISTS (SELECT 1 FROM experiment_frames AS f "
        "WHERE f.experiment_id = experiments.id)"
    ),
    "postgresql": (
        "UPDATE experiments SET per_frame = ("
        "SELECT jsonb_object_agg(CAST(f.quality AS TEXT), f.data) "
        "FROM experiment_frames AS f WHERE f.experiment_id = experiments.id) "
        "WHERE EXISTS (SELECT 1 FROM experiment_frames AS f "
        "WHERE f.experiment_id = experiments.id)"
    ),
}


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON(none_as_null=True).with_variant(
        postgresql.JSONB(none_as_null=True), "postgresql"
    )


def _dialect() -> str:
    name = op.get_context().dialect.name
    if name not in _COPY_FRAMES:
        raise NotImplementedError(f"migration 0002 supports sqlite and postgresql, not {name}")
    return name


def upgrade() -> None:
    dialect = _dialect()
    if not op.get_context().as_sql:
        bad = [row[0] for row in op.get_bind().execute(sa.text(_BAD_KEYS[dialect]))]
        if bad:
            raise RuntimeError(
                "cannot migrate experiments.per_frame to experiment_frames: keys must be "
                f"quality integers, but these experiments have others: {', '.join(bad[:20])}"
            )
    op.create_table(
        "experiment_frames",
        sa.Column("experiment_id", sa.String(64), nullable=False),
        sa.Column("quality", sa.Integer(), nullable=False),
        sa.Column("data", _json(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_experiment_frames_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "quality", name=op.f("pk_experiment_frames")),
    )
    op.execute(_COPY_FRAMES[dialect])
    op.drop_column("experiments", "per_frame")
    zero = sa.text("0")
    op.add_column(
        "experiments", sa.Column("cost_usd", sa.Double(), server_default=zero, nullable=False)
    )
    op.add_column(
        "experiments", sa.Column("tokens_in", sa.BigInteger(), server_default=zero, nullable=False)
    )
    op.add_column(
        "experiments",
        sa.Column("tokens_out", sa.BigInteger(), server_default=zero, nullable=False),
    )


def downgrade() -> None:
    dialect = _dialect()
    op.drop_column("experiments", "tokens_out")
    op.drop_column("experiments", "tokens_in")
    op.drop_column("experiments", "cost_usd")
    op.add_column("experiments", sa.Column("per_frame", _json(), nullable=True))
    op.execute(_RESTORE_PER_FRAME[dialect])
    op.drop_table("experiment_frames")
