"""Read-only queries the dashboard needs beyond :class:`RecordStore`'s: narrow projections
over many experiments (the progress chart, the leaderboard, lineage) that must stay fast with
tens of thousands of records, so they select a few columns instead of whole records.

They run on the record store's engine, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Text, cast, func, select
from sqlalchemy.orm import Session

from codeclab.storage.models import Experiment, ExperimentStatus, Run
from codeclab.storage.records import RecordStore

MAX_GENERATIONS = 50


@dataclass(frozen=True)
class ProgressPoint:
    """One completed experiment, in the order experiments were made."""

    iteration: int  # 1-based position among completed experiments
    id: str
    mbps: float | None
    psnr_y: float | None
    vmaf: float | None
    achieved: bool


@dataclass(frozen=True)
class Brief:
    """The handful of fields lists, lineage and leaderboards show."""

    id: str
    created_at: datetime
    status: str
    designer: str
    parent_ids: list[str]
    codec_sha256: str | None
    clip_sha256: str | None
    bitrate_bps: float | None
    psnr_y: float | None
    ssim_y: float | None
    vmaf: float | None
    target_achieved: bool | None
    publish_status: str
    artifacts: dict[str, str]

    @property
    def mbps(self) -> float | None:
        return None if self.bitrate_bps is None else self.bitrate_bps / 1e6


_BRIEF_COLUMNS = (
    Experiment.id,
    Experiment.created_at,
    Experiment.status,
    Experiment.designer,
    Experiment.parent_ids,
    Experiment.codec_sha256,
    Experiment.clip_sha256,
    Experiment.bitrate_bps,
    Experiment.psnr_y,
    Experiment.ssim_y,
    Experiment.vmaf,
    Experiment.target_achieved,
    Experiment.publish_status,
    Experiment.artifacts,
)


def _brief(row: Sequence[Any]) -> Brief:
    values = list(row)
    values[4] = list(values[4] or [])
    values[13] = dict(values[13] or {})
    return Brief(*values)


def progress(records: RecordStore) -> list[ProgressPoint]:
    """Every completed experiment's operating point, oldest first."""
    query = (
        select(
            Experiment.id,
            Experiment.bitrate_bps,
            Experiment.psnr_y,
            Experiment.vmaf,
            Experiment.target_achieved,
        )
        .where(Experiment.status == ExperimentStatus.COMPLETED.value)
        .order_by(Experiment.created_at, Experiment.id)
    )
    with Session(records.engine) as session:
        rows = session.execute(query).all()
    return [
        ProgressPoint(
            iteration=index,
            id=exp_id,
            mbps=None if rate is None else rate / 1e6,
            psnr_y=psnr,
            vmaf=vmaf,
            achieved=bool(achieved),
        )
        for index, (exp_id, rate, psnr, vmaf, achieved) in enumerate(rows, start=1)
    ]


@dataclass(frozen=True)
class TargetBoard:
    """The best experiments that achieved one target."""

    target: dict[str, Any]
    achieved: int
    best: list[Brief]


def best_by_target(records: RecordStore, *, per_target: int = 5) -> list[TargetBoard]:
    """Per target, the achieving experiments with the highest PSNR-Y at their operating point
    (within the target's rate limit), one per codec; targets with most successes first."""
    query = (
        select(Experiment.target, *_BRIEF_COLUMNS)
        .where(Experiment.target_achieved.is_(True))
        .order_by(Experiment.psnr_y.desc().nulls_last(), Experiment.bitrate_bps, Experiment.id)
    )
    boards: dict[str, tuple[dict[str, Any], list[Brief], set[str | None], list[int]]] = {}
    with Session(records.engine) as session:
        for row in session.execute(query):
            target = row[0] if isinstance(row[0], dict) else {}
            name = json.dumps(target, sort_keys=True)
            board = boards.setdefault(name, (target, [], set(), [0]))
            board[3][0] += 1
            brief = _brief(row[1:])
            if len(board[1]) < per_target and brief.codec_sha256 not in board[2]:
                board[1].append(brief)
                board[2].add(brief.codec_sha256)
    ordered = sorted(boards.values(), key=lambda b: -b[3][0])
    return [TargetBoard(target, count[0], best) for target, best, _, count in ordered]


def briefs(records: RecordStore, ids: Sequence[str]) -> dict[str, Brief]:
    if not ids:
        return {}
    query = select(*_BRIEF_COLUMNS).where(Experiment.id.in_(list(ids)))
    with Session(records.engine) as session:
        return {row[0]: _brief(row) for row in session.execute(query)}


def children(records: RecordStore, exp_id: str, *, limit: int = 100) -> list[Brief]:
    """Experiments that name `exp_id` among their parents, oldest first."""
    escaped = exp_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    query = (
        select(*_BRIEF_COLUMNS)
        .where(cast(Experiment.parent_ids, Text).like(f'%"{escaped}"%', escape="\\"))
        .order_by(Experiment.created_at, Experiment.id)
        .limit(limit * 2)
    )
    with Session(records.engine) as session:
        found = [_brief(row) for row in session.execute(query)]
    return [b for b in found if exp_id in b.parent_ids][:limit]


def ancestors(records: RecordStore, start: Brief) -> list[Brief]:
    """The line of first parents of `start`, oldest first, at most MAX_GENERATIONS."""
    line: list[Brief] = []
    seen = {start.id}
    current = start
    while current.parent_ids and len(line) < MAX_GENERATIONS:
        parent_id = current.parent_ids[0]
        if parent_id in seen:
            break
        found = briefs(records, [parent_id]).get(parent_id)
        if found is None:
            break
        line.append(found)
        seen.add(parent_id)
        current = found
    return list(reversed(line))


@dataclass(frozen=True)
class Counts:
    experiments: int
    by_status: dict[str, int]
    achieved: int


def counts(records: RecordStore) -> Counts:
    """Experiments by status, and how many achieved their target, in one query."""
    query = select(
        Experiment.status,
        func.count(),
        func.count().filter(Experiment.target_achieved.is_(True)),
    ).group_by(Experiment.status)
    by_status = {status.value: 0 for status in ExperimentStatus}
    achieved = 0
    with Session(records.engine) as session:
        for status, count, count_achieved in session.execute(query):
            by_status[str(status)] = int(count)
            achieved += int(count_achieved)
    return Counts(sum(by_status.values()), by_status, achieved)


def run_count(records: RecordStore) -> int:
    with Session(records.engine) as session:
        return int(session.execute(select(func.count()).select_from(Run)).scalar_one())
