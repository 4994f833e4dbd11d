"""Keeping the lab consistent after crashes, and explaining its sandbox.

``fail_stuck``
    experiments left ``running`` by a process that died (killed, out of memory, machine
    lost) are closed: failed at the phase they were in, with the reason. One that was
    publishing keeps its results and is recorded as a failed upload, which
    ``codeclab publish`` retries, as the pipeline records any failed upload.
``close_abandoned_runs``
    runs still ``running`` whose campaign process (recorded in the run) is gone from this
    host are closed as ``stopped``, so no dashboard shows a dead campaign as running;
    ``codeclab run --resume RUN`` goes on with them.
``gc``
    objects under ``experiments/``, ``decoders/`` and ``codecs/`` that no record refers
    to (a crash between storing an object and recording it leaves one) are removed, and
    so are the local store's interrupted writes and the scratch directories of sandbox
    jobs that outlived their lab. Objects an experiment still in progress may claim are
    left alone (reported as deferred): run ``fail_stuck`` first.
``isolation_report``
    rows for ``codeclab doctor``: which isolation levels work here, what each layer gives.

``gc_command`` is the ``codeclab gc`` command (register it with ``app.command("gc")``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from sqlalchemy import text

from codeclab.config import ConfigError, load_settings
from codeclab.lab import Lab
from codeclab.liveness import OWNER_KEY, ProcessRef
from codeclab.pipeline.experiment import PHASES
from codeclab.sandbox import landlock
from codeclab.sandbox.isolation import (
    LEVEL_SUMMARY,
    STRONGEST_FIRST,
    detect_layers,
    level_problem,
    probe_isolation,
)
from codeclab.sandbox.jobs import SandboxSettings
from codeclab.storage.objects import LocalStore, ObjectStore
from codeclab.storage.records import (
    ExperimentRecord,
    ExperimentStatus,
    PhaseStatus,
    PublishStatus,
    RecordNotFound,
    RecordStore,
    RunStatus,
    utcnow,
)

GC_PREFIXES = ("experiments/", "decoders/", "codecs/")
"""Object key prefixes whose objects exist only for a record."""
DEFAULT_MIN_AGE = timedelta(hours=1)
SCRATCH_NAME = re.compile(r"codeclab-(enc|dec|script)-\w+")
_PAGE = 500
_ACTIVE = (ExperimentStatus.PENDING, ExperimentStatus.RUNNING)


# --- stuck experiments ------------------------------------------------------------------------


def _interrupted(older_than: timedelta) -> str:
    minutes = older_than.total_seconds() / 60
    return (
        f"interrupted: no progress recorded for {minutes:g} min, so the process running it "
        "stopped (killed, crashed or lost); evaluate the codec again"
    )


def fail_stuck(lab: Lab, older_than: timedelta) -> list[str]:
    """Close the experiments a dead worker left behind; returns the ids of those changed.

    An experiment is stuck when it is running and its record has not changed for
    `older_than` (pick more than the slowest phase takes: baselines of a long clip can run
    for many minutes without a record update). It fails at its current phase with the
    reason. Exceptions, so that no finished work is thrown away: stuck while publishing, or
    after its last phase, it is completed (its measurements are all recorded) and an
    unfinished upload is recorded as failed, to retry with ``codeclab publish``. A completed
    experiment whose re-publish stopped half-way (``publish_status`` pending, no change
    for `older_than`) gets ``publish_status`` failed too.
    """
    records = lab.records
    reason = _interrupted(older_than)
    changed: list[str] = []
    for record in records.stuck_experiments(older_than):
        try:
            _close(records, record, reason)
        except (ValueError, RecordNotFound):  # it moved on (or went) meanwhile: leave it
            continue
        changed.append(record.id)
    cutoff = utcnow() - older_than
    for record in _all_experiments(records, status=ExperimentStatus.COMPLETED):
        if record.publish_status is PublishStatus.PENDING and record.updated_at < cutoff:
            records.update_experiment(
                record.id, publish_status=PublishStatus.FAILED, publish_error=reason
            )
            changed.append(record.id)
    return changed


def close_abandoned_runs(lab: Lab, *, dry_run: bool = False) -> list[str]:
    """Close, as ``stopped``, the running runs whose campaign process has ended; their ids.

    Only a process of this host can be checked: a run started on another machine (or one
    that names no process) is left alone. Experiments the dead campaign left in flight are
    closed by `fail_stuck`, or at once by resuming the run.
    """
    closed: list[str] = []
    offset = 0
    while page := lab.records.list_runs(limit=_PAGE, offset=offset):
        offset += len(page)
        for run in page:
            if run.status is not RunStatus.RUNNING:
                continue
            owner = ProcessRef.from_dict(run.config.get(OWNER_KEY) or {})
            if owner is None or owner.alive() is not False:
                continue
            if not dry_run:
                lab.records.finish_run(run.id, RunStatus.STOPPED)
            closed.append(run.id)
    return closed


def _close(records: RecordStore, record: ExperimentRecord, reason: str) -> None:
    exp_id, phase = record.id, record.current_phase
    done = [p.phase for p in record.phases if p.status is PhaseStatus.COMPLETED]
    if phase == "publish" or (phase is None and done and done[-1] in ("analysis", "publish")):
        if record.publish_status is not PublishStatus.PUBLISHED:
            upload = reason.replace("evaluate the codec again", "retry with codeclab publish")
            records.update_experiment(
                exp_id, publish_status=PublishStatus.FAILED, publish_error=upload
            )
        if phase is not None:
            records.finish_phase(exp_id, phase)
        records.update_experiment(exp_id, status=ExperimentStatus.COMPLETED, current_phase=None)
    elif phase is not None:
        records.finish_phase(exp_id, phase, error=reason)
    else:  # between two phases: charge the next one
        following = PHASES[PHASES.index(done[-1]) + 1] if done else PHASES[0]
        records.start_phase(exp_id, following)
        records.finish_phase(exp_id, following, error=reason)


def _all_experiments(
    records: RecordStore, status: ExperimentStatus | None = None
) -> Iterator[ExperimentRecord]:
    offset = 0
    while True:
        page = records.list_experiments(
            status=status, limit=_PAGE, offset=offset, order="created_at"
        )
        yield from page
        if len(page) < _PAGE:
            return
        offset += _PAGE


# --- garbage collection -----------------------------------------------------------------------


@dataclass(frozen=True)
class GcReport:
    """What `gc` removed (or, in a dry run, would remove), and what it left and why."""

    dry_run: bool
    orphans: tuple[str, ...] = ()
    """Object keys no record refers to."""
    deferred: tuple[str, ...] = ()
    """Unreferenced keys an experiment still in progress may claim: kept."""
    temp_files: tuple[str, ...] = ()
    """Interrupted writes of the local store and stale sandbox scratch directories."""
    dangling: tuple[str, ...] = ()
    """Records that refer to a missing object ("experiment EXP: artifact NAME -> KEY")."""
    bytes_freed: int = 0
    errors: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _References:
    keys: set[str] = field(default_factory=set)
    active: set[str] = field(default_factory=set)  # experiments whose objects may be in flight
    deploying: bool = False  # an experiment may be storing a codec it has not recorded yet
    dangling: list[str] = field(default_factory=list)


def _references(lab: Lab) -> _References:
    refs = _References()
    with lab.records.engine.connect() as connection:
        codecs = connection.execute(text("SELECT sha256, source_key FROM codecs")).all()
    for sha256, key in codecs:
        refs.keys.add(key)
        if not lab.store.exists(key):
            refs.dangling.append(f"codec {sha256[:12]}: source -> {key}")
    for record in _all_experiments(lab.records):
        refs.keys.update(record.artifacts.values())
        if record.status in _ACTIVE or record.publish_status is PublishStatus.PENDING:
            refs.active.add(record.id)
            if record.codec_sha256 is None:
                refs.deploying = True
        for name, key in sorted(record.artifacts.items()):
            if not lab.store.exists(key):
                refs.dangling.append(f"experiment {record.id}: {name} -> {key}")
    return refs


def _owner(key: str) -> str | None:
    """The experiment an object under experiments/ or decoders/ belongs to."""
    if key.startswith("experiments/"):
        return key.split("/")[1]
    if key.startswith("decoders/") and key.endswith("_decoder.py"):
        return key[len("decoders/") : -len("_decoder.py")]
    return None


def dangling_references(lab: Lab) -> list[str]:
    """Records that refer to an object the store does not have (should be none)."""
    return _references(lab).dangling


def gc(lab: Lab, *, dry_run: bool, min_age: timedelta = DEFAULT_MIN_AGE) -> GcReport:
    """Remove orphaned objects and stale temporary files (nothing at all when `dry_run`).

    Temporary files count as stale after `min_age` (scratch directories after at least
    twice the sandbox's wall-clock limit, the longest a job's directory can be in use).
    """
    refs = _references(lab)
    orphans: list[str] = []
    deferred: list[str] = []
    freed = 0
    errors: list[str] = []
    for prefix in GC_PREFIXES:
        for stored in lab.store.list(prefix):
            key = stored.key
            if key in refs.keys:
                continue
            owner = _owner(key)
            if (owner is not None and owner in refs.active) or (
                key.startswith("codecs/") and refs.deploying
            ):
                deferred.append(key)
                continue
            orphans.append(key)
            freed += stored.size
            if not dry_run:
                try:
                    lab.store.delete(key)
                except Exception as exc:  # one failure must not stop the rest
                    errors.append(f"{key}: {type(exc).__name__}: {exc}")
    temps, temp_bytes = _stale_temp_files(lab, min_age, dry_run=dry_run)
    return GcReport(
        dry_run=dry_run,
        orphans=tuple(orphans),
        deferred=tuple(deferred),
        temp_files=tuple(str(p) for p in temps),
        dangling=tuple(refs.dangling),
        bytes_freed=freed + temp_bytes,
        errors=tuple(errors),
    )


def _stale_temp_files(lab: Lab, min_age: timedelta, *, dry_run: bool) -> tuple[list[Path], int]:
    now = time.time()
    stale: list[tuple[Path, int]] = []
    store: ObjectStore = lab.store
    if isinstance(store, LocalStore):
        stale += _old_entries(store.root / "tmp", now - min_age.total_seconds())
        stale += _stale_sidecars(store, now - min_age.total_seconds())
    scratch = lab.settings.scratch_dir
    wall = lab.settings.sandbox.limits.wall_seconds
    cutoff = now - max(min_age.total_seconds(), 2 * wall + 60)
    if scratch.is_dir():
        for entry in scratch.iterdir():
            if SCRATCH_NAME.fullmatch(entry.name) and _newest_mtime(entry) < cutoff:
                stale.append((entry, _size(entry)))
    if not dry_run:
        for path, _ in stale:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    return [p for p, _ in stale], sum(size for _, size in stale)


def _old_entries(directory: Path, cutoff: float) -> list[tuple[Path, int]]:
    if not directory.is_dir():
        return []
    found = []
    for entry in directory.iterdir():
        info = entry.lstat()
        if info.st_mtime < cutoff:
            found.append((entry, info.st_size))
    return found


def _stale_sidecars(store: LocalStore, cutoff: float) -> list[tuple[Path, int]]:
    """Sidecars (see `LocalStore`) whose object is gone: a delete or a put was interrupted."""
    found = []
    for path in (store.root / "meta").glob("*/*.json"):
        try:
            info = path.stat()
            key = json.loads(path.read_text(encoding="utf-8")).get("key")
        except (OSError, ValueError, AttributeError):
            continue
        if info.st_mtime >= cutoff:
            continue
        if not isinstance(key, str) or not (store.root / "objects" / key).is_file():
            found.append((path, info.st_size))
    return found


def _newest_mtime(directory: Path) -> float:
    newest = directory.lstat().st_mtime
    for inner, _, files in os.walk(directory):
        for name in [*files, "."]:
            try:
                newest = max(newest, os.lstat(os.path.join(inner, name)).st_mtime)
            except OSError:
                continue
    return newest


def _size(path: Path) -> int:
    if not path.is_dir():
        return path.lstat().st_size
    total = 0
    for inner, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(inner, name)).st_size
            except OSError:
                continue
    return total


# --- doctor -----------------------------------------------------------------------------------


def isolation_report(settings: SandboxSettings | None = None) -> list[tuple[str, str]]:
    """Rows for ``codeclab doctor``: each isolation level and layer, and the one used."""
    settings = settings or SandboxSettings()
    layers = detect_layers()
    rows: list[tuple[str, str]] = []
    for level in STRONGEST_FIRST:
        problem = level_problem(level)
        state = "works" if problem is None else f"unavailable: {problem}"
        rows.append((f"isolation {level.value}", f"{state} ({LEVEL_SUMMARY[level]})"))
    rows.append(("layer bubblewrap", layers.bwrap_path or "not installed"))
    if layers.bwrap_error:
        rows[-1] = ("layer bubblewrap", f"{layers.bwrap_path or '-'}: {layers.bwrap_error}")
    if layers.seccomp is not None:
        program = layers.seccomp
        text_ = (
            f"{program.library}: {program.rules} rules, {program.instructions} BPF "
            "instructions; denies sockets, new processes, exec, IPC, signals to others, "
            "ptrace, namespaces, mounts, bpf, io_uring, kernel modules, file metadata"
        )
        if program.unknown:
            text_ += f" (unknown to this libseccomp: {', '.join(program.unknown)})"
        rows.append(("layer seccomp", text_))
    else:
        rows.append(("layer seccomp", f"unavailable: {layers.seccomp_error}"))
    if layers.landlock_error is None:
        rows.append(("layer landlock", landlock.describe(layers.landlock_abi)))
    else:
        rows.append(("layer landlock", f"unavailable: {layers.landlock_error}"))
    best = probe_isolation().level
    chosen = settings.level()
    used = f"{chosen.value}" + (" (configured)" if settings.isolation else " (strongest here)")
    if chosen.weak:
        used += (
            ": WEAK, allowed by allow_weak_isolation"
            if settings.allow_weak
            else ": WEAK, codecs are REFUSED (set [sandbox] allow_weak_isolation = true "
            "to accept the risk)"
        )
    elif chosen is not best:
        used += f" (stronger available: {best.value})"
    rows.append(("isolation used", used))
    rows.append(
        (
            "weak isolation",
            "allowed (allow_weak_isolation = true)"
            if settings.allow_weak
            else "refused: codec code never runs without file isolation",
        )
    )
    return rows


# --- commands ---------------------------------------------------------------------------------

_console = Console(width=160)
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="TOML settings file (default: ./codeclab.toml)")
]
DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Where codeclab keeps its data and caches")
]


def gc_command(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list what would be removed")
    ] = False,
    stuck_after: Annotated[
        int,
        typer.Option(
            help="First close experiments with no progress for N minutes (0: skip this)", min=0
        ),
    ] = 60,
    min_age: Annotated[
        int, typer.Option(help="Keep temporary files younger than N minutes", min=0)
    ] = 60,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Close runs whose campaign process died and experiments whose worker died, then
    remove objects no record refers to and stale temporary files."""
    try:
        settings = load_settings(config_path=config, data_dir=data_dir)
    except ConfigError as exc:
        _console.print(f"error: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    with Lab.open(settings) as lab:
        runs = close_abandoned_runs(lab, dry_run=dry_run)
        stuck: list[str] = []
        if stuck_after > 0:
            older = timedelta(minutes=stuck_after)
            if dry_run:
                stuck = [r.id for r in lab.records.stuck_experiments(older)]
            else:
                stuck = fail_stuck(lab, older)
        report = gc(lab, dry_run=dry_run, min_age=timedelta(minutes=min_age))
    if json_out:
        print(json.dumps({"abandoned_runs": runs, "stuck": stuck, **report.to_dict()}, indent=2))
    else:
        _print_gc(runs, stuck, report)
    if report.errors:
        raise typer.Exit(1)


def _print_gc(runs: list[str], stuck: list[str], report: GcReport) -> None:
    removed = "would be removed (dry run)" if report.dry_run else "removed"
    say = _console.print
    runs_closed = "abandoned runs (dry run, not closed)" if report.dry_run else "runs closed"
    say(f"{runs_closed}: {', '.join(runs) or 'none'}", highlight=False)
    closed = "stuck (dry run, not closed)" if report.dry_run else "stuck experiments closed"
    say(f"{closed}: {', '.join(stuck) or 'none'}", highlight=False)
    for title, items in (
        (f"orphaned objects {removed}", report.orphans),
        ("unreferenced objects kept for experiments in progress", report.deferred),
        (f"temporary files {removed}", report.temp_files),
        ("records pointing at missing objects", report.dangling),
        ("errors", report.errors),
    ):
        say(f"{title}: {len(items)}", highlight=False)
        for item in items:
            say(f"  {item}", markup=False, highlight=False)
    say(f"space freed: {report.bytes_freed:,} bytes", highlight=False)
