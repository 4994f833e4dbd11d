"""Widen ``baseline_results.version`` from 64 to 512 characters.

A baseline's version is the first line of ``ffmpeg -version`` and the encoder library's own
version (``ffmpeg version n9.0.2-17-g2a571b6068-20260930; x264 core 165 r3222 b35605a``),
which is often longer than 64 characters.  Downgrading refuses when a stored version would
no longer fit, instead of cutting it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

OLD_LENGTH = 64
NEW_LENGTH = 512


def _alter(old: int, new: int) -> None:
    # SQLite cannot change a column's type in place: batch mode copies the table (its
    # constraints and index are reflected and made again); PostgreSQL alters the column.
    with op.batch_alter_table("baseline_results") as batch:
        batch.alter_column(
            "version",
            existing_type=sa.String(old),
            type_=sa.String(new),
            existing_nullable=False,
        )


def upgrade() -> None:
    _alter(OLD_LENGTH, NEW_LENGTH)


def downgrade() -> None:
    if not op.get_context().as_sql:
        too_long = op.get_bind().execute(
            sa.text(
                "SELECT cache_key FROM baseline_results WHERE length(version) > :limit "
                "ORDER BY cache_key"
            ),
            {"limit": OLD_LENGTH},
        )
        keys = [row[0] for row in too_long]
        if keys:
            raise RuntimeError(
                f"cannot downgrade baseline_results.version to {OLD_LENGTH} characters: "
                f"these baselines have longer versions (delete them first): {', '.join(keys[:20])}"
            )
    _alter(NEW_LENGTH, OLD_LENGTH)
