"""Read-only queries the dashboard needs beyond :class:`RecordStore`'s.

* Narrow projections over many experiments (the progress chart, the leaderboard, lineage,
  counts) select a few columns instead of whole records, so they stay fast with tens of
  thousands of experiments.
* Pages of experiments are found by walking the ``created_at`` index first (ids only), and
  only that page's whole records are then read, in one statement (:func:`experiments`), so
  a deep page costs no more than the first.

They run with SQLAlchemy Core on the record store's engine, on SQLite and PostgreSQL alike,
and only read.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, bindparam, func, select

from codeclab.storage.models import Experiment, ExperimentStatus, PublishStatus, Run
from codeclab.storage.records import (
    ORDER_FIELDS,
    ExperimentRecord,
    PhaseRecord,
    RecordNotFound,
    RecordStore,
)
from codeclab.web import views

MAX_GENERATIONS = 20
MAX_CHILDREN = 100


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
    with records.engine.connect() as connection:
        rows = connection.execute(query).all()
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
        select(Experiment.id, Experiment.target, Experiment.codec_sha256)
        .where(Experiment.target_achieved.is_(True))
        .order_by(Experiment.psnr_y.desc().nulls_last(), Experiment.bitrate_bps, Experiment.id)
    )
    targets: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    best: dict[str, list[str]] = {}
    codecs: dict[str, set[str | None]] = {}
    with records.engine.connect() as connection:
        for exp_id, target, codec in connection.execute(query):
            name = json.dumps(target, sort_keys=True)
            if name not in targets:
                targets[name] = target if isinstance(target, dict) else {}
                counts[name], best[name], codecs[name] = 0, [], set()
            counts[name] += 1
            if len(best[name]) < per_target and codec not in codecs[name]:
                best[name].append(exp_id)
                codecs[name].add(codec)
    found = briefs(records, [exp_id for ids in best.values() for exp_id in ids])
    boards = [
        TargetBoard(targets[name], counts[name], [found[i] for i in best[name] if i in found])
        for name in targets
    ]
    return sorted(boards, key=lambda board: -board.achieved)


# Statements used on every page view are built once (building and hashing a statement
# costs more than running it on SQLite).
_BRIEFS = select(*_BRIEF_COLUMNS).where(Experiment.id.in_(bindparam("ids", expanding=True)))


def briefs(records: RecordStore, ids: Sequence[str]) -> dict[str, Brief]:
    if not ids:
        return {}
    with records.engine.connect() as connection:
        return {row[0]: _brief(row) for row in connection.execute(_BRIEFS, {"ids": list(ids)})}


@dataclass(frozen=True)
class LineageIndex:
    """Who descends from whom, over every experiment (one narrow scan)."""

    first_parent: dict[str, str | None]  # every experiment; None for a first design
    children: dict[str, list[str]]  # oldest first


def lineage_index(records: RecordStore) -> LineageIndex:
    query = select(Experiment.id, Experiment.parent_ids).order_by(
        Experiment.created_at, Experiment.id
    )
    first_parent: dict[str, str | None] = {}
    kids: dict[str, list[str]] = {}
    with records.engine.connect() as connection:
        for exp_id, parent_ids in connection.execute(query):
            first_parent[exp_id] = parent_ids[0] if parent_ids else None
            for parent in parent_ids or []:
                kids.setdefault(parent, []).append(exp_id)
    return LineageIndex(first_parent, kids)


@dataclass(frozen=True)
class Lineage:
    parents: list[Brief]
    missing_parents: list[str]  # named as parents but deleted since
    line: list[Brief]  # first parents, oldest first, at most MAX_GENERATIONS
    this: Brief
    children: list[Brief]  # oldest first, at most MAX_CHILDREN


def lineage(records: RecordStore, record: ExperimentRecord, index: LineageIndex) -> Lineage:
    """Parents, the line of first parents and children of `record`, in one query.

    The line and the children come from `index` (which may be a few seconds old); a parent
    the index does not know yet is looked up in the records."""
    line: list[str] = []
    seen = {record.id}
    parent = record.parent_ids[0] if record.parent_ids else None
    while parent is not None and parent not in seen and len(line) < MAX_GENERATIONS:
        line.append(parent)
        seen.add(parent)
        if parent in index.first_parent:
            parent = index.first_parent[parent]
        else:
            looked_up = briefs(records, [parent]).get(parent)
            parent = looked_up.parent_ids[0] if looked_up and looked_up.parent_ids else None
    kids = index.children.get(record.id, [])[:MAX_CHILDREN]
    found = briefs(records, list({record.id, *record.parent_ids, *line, *kids}))
    return Lineage(
        parents=[found[p] for p in record.parent_ids if p in found],
        missing_parents=[p for p in record.parent_ids if p not in found],
        line=[found[i] for i in reversed(line) if i in found],
        this=found[record.id],
        children=[found[i] for i in kids if i in found],
    )


_RECORD_FIELDS = tuple(f.name for f in fields(ExperimentRecord))
_EXPERIMENTS = Experiment.__table__
_WHOLE_RECORDS = select(*(_EXPERIMENTS.c[name] for name in _RECORD_FIELDS)).where(
    _EXPERIMENTS.c.id.in_(bindparam("ids", expanding=True))
)


def experiments(records: RecordStore, ids: Sequence[str]) -> list[ExperimentRecord]:
    """Whole records of `ids` in one query, in the order of `ids` (missing ones left out).

    The same records ``RecordStore.get_experiment`` gives, read in one round trip."""
    if not ids:
        return []
    found: dict[str, ExperimentRecord] = {}
    with records.engine.connect() as connection:
        for row in connection.execute(_WHOLE_RECORDS, {"ids": list(ids)}):
            values = row._asdict()
            values["phases"] = tuple(PhaseRecord.from_json(p) for p in values["phases"] or ())
            values["status"] = ExperimentStatus(values["status"])
            values["publish_status"] = PublishStatus(values["publish_status"])
            values["parent_ids"] = list(values["parent_ids"] or [])
            values["params"] = dict(values["params"] or {})
            values["artifacts"] = dict(values["artifacts"] or {})
            found[values["id"]] = ExperimentRecord(**values)
    return [found[exp_id] for exp_id in ids if exp_id in found]


def experiment(records: RecordStore, exp_id: str) -> ExperimentRecord:
    """One whole record (as ``RecordStore.get_experiment``, with less overhead)."""
    found = experiments(records, [exp_id])
    if not found:
        raise RecordNotFound("experiment", exp_id)
    return found[0]


@dataclass(frozen=True)
class Summary:
    """What a table row of an experiment shows."""

    id: str
    created_at: datetime
    status: str
    current_phase: str | None
    failed_phase: str | None
    designer: str
    rationale: str
    bitrate_bps: float | None
    psnr_y: float | None
    vmaf: float | None
    target_achieved: bool | None

    @property
    def title(self) -> str:
        return views.post_title(self.rationale, self.designer, self.id)

    @property
    def status_label(self) -> str:
        return views.status_text(self.status, self.failed_phase, self.current_phase)


_LATEST = (
    select(
        Experiment.id,
        Experiment.created_at,
        Experiment.status,
        Experiment.current_phase,
        Experiment.failed_phase,
        Experiment.designer,
        Experiment.rationale,
        Experiment.bitrate_bps,
        Experiment.psnr_y,
        Experiment.vmaf,
        Experiment.target_achieved,
    )
    .order_by(Experiment.created_at.desc())
    .limit(bindparam("limit"))
)


def latest(records: RecordStore, limit: int) -> list[Summary]:
    """The newest experiments, for a table."""
    with records.engine.connect() as connection:
        return [Summary(*row) for row in connection.execute(_LATEST, {"limit": limit})]


SelectT = TypeVar("SelectT", bound="Select[*tuple[Any, ...]]")


def _filtered(query: SelectT, by_run: bool, achieved: bool | None, by_status: bool) -> SelectT:
    if by_run:
        query = query.where(Experiment.run_id == bindparam("run_id"))
    if achieved is not None:
        query = query.where(Experiment.target_achieved.is_(achieved))
    if by_status:
        query = query.where(Experiment.status == bindparam("status"))
    return query


def _filter_values(run_id: str | None, status: str | None, **values: Any) -> dict[str, Any]:
    if run_id is not None:
        values["run_id"] = run_id
    if status is not None:
        values["status"] = status
    return values


@functools.lru_cache(maxsize=16)
def _page_statement(by_run: bool, achieved: bool | None, by_status: bool) -> Select[str, datetime]:
    query = _filtered(select(Experiment.id, Experiment.updated_at), by_run, achieved, by_status)
    query = query.order_by(Experiment.created_at.desc())
    return query.limit(bindparam("limit")).offset(bindparam("offset"))


def page(
    records: RecordStore,
    *,
    limit: int,
    offset: int,
    run_id: str | None = None,
    achieved: bool | None = None,
    status: str | None = None,
) -> list[tuple[str, datetime]]:
    """(id, updated_at) of one page of experiments matching the filters, newest first, read
    by walking the ``created_at`` index (experiments created in the same microsecond keep the
    index's order), so a deep page costs no full rows."""
    query = _page_statement(run_id is not None, achieved, status is not None)
    values = _filter_values(run_id, status, limit=limit, offset=offset)
    with records.engine.connect() as connection:
        return [(exp_id, updated) for exp_id, updated in connection.execute(query, values)]


@functools.lru_cache(maxsize=16)
def _count_statement(by_run: bool, achieved: bool | None, by_status: bool) -> Select[int]:
    return _filtered(select(func.count()).select_from(Experiment), by_run, achieved, by_status)


def count_matching(
    records: RecordStore,
    *,
    run_id: str | None = None,
    achieved: bool | None = None,
    status: str | None = None,
) -> int:
    """How many experiments match the filters (as ``RecordStore.count_experiments``)."""
    query = _count_statement(run_id is not None, achieved, status is not None)
    with records.engine.connect() as connection:
        return int(connection.execute(query, _filter_values(run_id, status)).scalar_one())


_COUNT = select(func.count()).select_from(Experiment)


def count(records: RecordStore) -> int:
    with records.engine.connect() as connection:
        return int(connection.execute(_COUNT).scalar_one())


@dataclass(frozen=True)
class Totals:
    experiments: int
    by_status: dict[str, int]
    achieved: int
    runs: int
    bytes_stored: int
    experiments_storing: int


def totals(records: RecordStore) -> Totals:
    """Experiments by status, how many achieved their target, runs, storage used."""
    by_status = {status.value: 0 for status in ExperimentStatus}
    with records.engine.connect() as connection:
        for status, number in connection.execute(
            select(Experiment.status, func.count()).group_by(Experiment.status)
        ):
            by_status[str(status)] = int(number)
        achieved = connection.execute(
            select(func.count()).where(Experiment.target_achieved.is_(True))
        ).scalar_one()
        runs = connection.execute(select(func.count()).select_from(Run)).scalar_one()
    stored, storing = records.storage_totals()
    return Totals(
        experiments=sum(by_status.values()),
        by_status=by_status,
        achieved=int(achieved),
        runs=int(runs),
        bytes_stored=stored,
        experiments_storing=storing,
    )


@dataclass(frozen=True)
class ListedExperiment:
    """What the experiment list shows of one experiment: its headline columns and, from the
    comparison, only the saving against the reference encoder (read by the database)."""

    id: str
    run_id: str | None
    created_at: datetime
    updated_at: datetime
    status: str
    current_phase: str | None
    failed_phase: str | None
    error: str | None
    designer: str
    rationale: str
    parent_ids: list[str]
    codec_sha256: str | None
    clip_sha256: str | None
    target_achieved: bool | None
    tier: int | None
    bitrate_bps: float | None
    psnr_y: float | None
    ssim_y: float | None
    vmaf: float | None
    saving_vs_reference_percent: float | None
    publish_status: str
    bytes_stored: int

    @property
    def title(self) -> str:
        return views.post_title(self.rationale, self.designer, self.id)


# The part of the comparison JSON a list row needs: the comparison with the reference encoder,
# extracted by the database (SQLite's json_extract, PostgreSQL's #>), so a page of fifty never
# decodes fifty whole comparisons.  (The object, not the number inside it: SQLite would print a
# number extracted alone with 15 significant digits.)
_REFERENCE_COMPARISON = Experiment.comparison[("comparisons", views.REFERENCE_ENCODER)]

_LISTED = (
    Experiment.id,
    Experiment.run_id,
    Experiment.created_at,
    Experiment.updated_at,
    Experiment.status,
    Experiment.current_phase,
    Experiment.failed_phase,
    Experiment.error,
    Experiment.designer,
    Experiment.rationale,
    Experiment.parent_ids,
    Experiment.codec_sha256,
    Experiment.clip_sha256,
    Experiment.target_achieved,
    Experiment.tier,
    Experiment.bitrate_bps,
    Experiment.psnr_y,
    Experiment.ssim_y,
    Experiment.vmaf,
    _REFERENCE_COMPARISON,
    Experiment.publish_status,
    Experiment.bytes_stored,
)


def listed_record(record: ExperimentRecord) -> ListedExperiment:
    """The list row of a whole record (the same values :func:`listed` reads)."""
    saving = views.reference_saving(record)
    return ListedExperiment(
        id=record.id,
        run_id=record.run_id,
        created_at=record.created_at,
        updated_at=record.updated_at,
        status=record.status.value,
        current_phase=record.current_phase,
        failed_phase=record.failed_phase,
        error=record.error,
        designer=record.designer,
        rationale=record.rationale,
        parent_ids=list(record.parent_ids),
        codec_sha256=record.codec_sha256,
        clip_sha256=record.clip_sha256,
        target_achieved=record.target_achieved,
        tier=record.tier,
        bitrate_bps=record.bitrate_bps,
        psnr_y=record.psnr_y,
        ssim_y=record.ssim_y,
        vmaf=record.vmaf,
        saving_vs_reference_percent=None if saving is None else saving.percent,
        publish_status=record.publish_status.value,
        bytes_stored=record.bytes_stored,
    )


def _listed(row: Sequence[Any]) -> ListedExperiment:
    values = list(row)
    values[10] = list(values[10] or [])
    reference = values[19]
    values[19] = (
        views.finite_number(reference.get("saving_percent_at_equal_psnr_y"))
        if isinstance(reference, dict)
        else None
    )
    return ListedExperiment(*values)


_LISTED_BY_IDS = select(*_LISTED).where(Experiment.id.in_(bindparam("ids", expanding=True)))


def listed_by_id(records: RecordStore, ids: Sequence[str]) -> dict[str, ListedExperiment]:
    """The list rows of `ids` (missing ones left out), in one narrow query."""
    if not ids:
        return {}
    with records.engine.connect() as connection:
        rows = connection.execute(_LISTED_BY_IDS, {"ids": list(ids)})
        return {row[0]: _listed(row) for row in rows}


@functools.lru_cache(maxsize=64)
def _listing(order: str, by_run: bool, achieved: bool | None, by_status: bool) -> Select[Any]:
    """The list statement for one combination of filters and order, built once (values are
    bound at execution)."""
    name = order.removeprefix("-")
    if name not in ORDER_FIELDS:
        raise ValueError(f"cannot order experiments by {order!r}; use one of {ORDER_FIELDS}")
    query = _filtered(select(*_LISTED), by_run, achieved, by_status)
    if order == "-created_at":
        query = query.order_by(Experiment.created_at.desc())
    else:
        column = _EXPERIMENTS.c[name]
        if order.startswith("-"):
            query = query.order_by(column.desc().nulls_last(), Experiment.id.desc())
        else:
            query = query.order_by(column.asc().nulls_last(), Experiment.id.asc())
    return query.limit(bindparam("limit")).offset(bindparam("offset"))


def listed(
    records: RecordStore,
    *,
    limit: int,
    offset: int,
    run_id: str | None = None,
    achieved: bool | None = None,
    status: str | None = None,
    order: str = "-created_at",
) -> list[ListedExperiment]:
    """One page of experiments matching the filters, as list rows, in one narrow query.

    ``order`` is a field of ``ORDER_FIELDS``, with a leading '-' for descending; missing
    values come last and ties go by id, as in ``RecordStore.list_experiments``.  The default,
    newest first, walks the ``created_at`` index alone (as :func:`page` does)."""
    query = _listing(order, run_id is not None, achieved, status is not None)
    values = _filter_values(run_id, status, limit=limit, offset=offset)
    with records.engine.connect() as connection:
        return [_listed(row) for row in connection.execute(query, values)]
