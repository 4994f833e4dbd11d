"""Campaigns started and stopped from the dashboard.

Data flows one way (designers -> pipeline -> storage -> web), so the dashboard never runs a
campaign itself: starting one spawns ``codeclab run`` with the chosen options as a separate
background process (its own session, its output in ``<data_dir>/campaigns/<id>.log``), and
the campaign records its run in the database as any ``codeclab run`` does.  What the dashboard
keeps is a *launch*: ``<data_dir>/campaigns/<id>.json`` with the process id, the process's
start time (so a recycled pid is never signalled), the command line and, once the campaign has
recorded it, the run's id.  Launches are files, so every worker process of ``codeclab serve``
sees the same ones.

Stopping sends SIGTERM to the ``codeclab run`` process, which takes it as its Ctrl-C: the
campaign stops its workers, marks the experiments in flight as interrupted and records the run
as ``stopped`` (resumable with ``codeclab run --resume RUN``); a SIGTERM before the campaign has
started (while the command opens the lab) just ends the process.  The process is then waited for;
if it is still there after the grace period its whole process group gets SIGKILL (``codeclab
gc`` then records the run as ``stopped`` and closes its experiments left in flight, and
``codeclab run --resume RUN`` goes on with it).

The child gets the dashboard's database, object store, data directory and configuration file,
but not the token variables of its environment (``CODECLAB_ADMIN_TOKEN``,
``CODECLAB_READ_TOKEN``).  Publishing an experiment again runs ``codeclab publish EXP`` the
same way, to its end (:meth:`Launcher.run_to_end`).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from codeclab.config import TOKEN_ENV, Settings
from codeclab.liveness import pid_alive, process_start
from codeclab.storage.records import RecordStore, RunRecord

LAUNCH_DIR = "campaigns"
STOP_GRACE_SECONDS = 30.0
KILL_WAIT_SECONDS = 10.0
LOG_TAIL_BYTES = 4096
_RUN_CLOCK_SKEW = timedelta(seconds=2)

# `codeclab` (codeclab.cli:app, what the console script runs) in the dashboard's own
# interpreter, so the campaign runs the very codeclab that serves the dashboard.
CLI_BOOT = "from codeclab.cli import app; app(prog_name='codeclab')"


class LaunchError(RuntimeError):
    """A campaign cannot be started or stopped; the message says why."""


class LaunchNotFoundError(LookupError):
    def __init__(self, launch_id: str) -> None:
        super().__init__(f"no campaign launch {launch_id!r}")


@dataclass(frozen=True)
class CampaignOptions:
    """The options of ``codeclab run`` an admin may set (None: the command's default)."""

    designer: str | None = None
    clips: tuple[str, ...] = ()
    frames: int | None = None
    iterations: int | None = None
    time_budget: str | None = None
    forever: bool = False
    target_mbps: float | None = None
    min_psnr: float | None = None
    min_vmaf: float | None = None
    seed: int | None = None
    workers: int | None = None
    executor: str | None = None
    quality: tuple[int, ...] = ()
    baselines: tuple[str, ...] | None = None  # () for none
    vmaf: bool | None = None
    publish: str | None = None
    smoke_frames: int | None = None
    debug_rounds: int | None = None
    budget_usd: float | None = None
    resume: str | None = None

    def arguments(self) -> list[str]:
        """The command-line arguments after ``codeclab run`` (``--name=value``, so no value is
        ever read as an option)."""
        out: list[str] = []

        def add(name: str, value: object) -> None:
            if value is not None:
                out.append(f"--{name}={value}")

        add("designer", self.designer)
        for clip in self.clips:
            add("clip", clip)
        add("frames", self.frames)
        add("iterations", self.iterations)
        add("time-budget", self.time_budget)
        if self.forever:
            out.append("--forever")
        add("target-mbps", self.target_mbps)
        add("min-psnr", self.min_psnr)
        add("min-vmaf", self.min_vmaf)
        add("seed", self.seed)
        add("workers", self.workers)
        add("executor", self.executor)
        if self.quality:
            add("quality", ",".join(str(q) for q in self.quality))
        if self.baselines is not None:
            add("baselines", ",".join(self.baselines))
        if self.vmaf is not None:
            out.append("--vmaf" if self.vmaf else "--no-vmaf")
        add("publish", self.publish)
        add("smoke-frames", self.smoke_frames)
        add("debug-rounds", self.debug_rounds)
        add("budget-usd", self.budget_usd)
        add("resume", self.resume)
        return out


@dataclass(frozen=True)
class Launch:
    """A ``codeclab run`` process started by the dashboard (kept as JSON beside its log)."""

    id: str
    pid: int
    process_start: int | None  # the kernel's start time of `pid` (clock ticks after boot)
    started_at: datetime
    arguments: list[str]
    options: dict[str, Any]
    log_path: str
    run_id: str | None = None
    stop_requested_at: datetime | None = None
    stopped_by: str | None = None  # "SIGTERM" or "SIGKILL"
    exit_code: int | None = None  # known when this dashboard process reaped it

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("started_at", "stop_requested_at"):
            value = data[name]
            data[name] = None if value is None else value.isoformat()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Launch:
        values = dict(data)
        for name in ("started_at", "stop_requested_at"):
            value = values.get(name)
            values[name] = None if value is None else datetime.fromisoformat(value)
        return cls(**values)


@dataclass(frozen=True)
class LaunchState:
    """A launch and what its process is doing now."""

    launch: Launch
    state: str  # "running", "stopping", "stopped", "killed" or "exited"
    alive: bool
    log_tail: str = field(repr=False, default="")


def _new_id(now: datetime) -> str:
    return f"launch-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


class Launcher:
    """Starts, lists and stops the dashboard's ``codeclab run`` processes."""

    def __init__(self, settings: Settings, *, config_path: Path | None = None) -> None:
        self.settings = settings
        self.config_path = config_path
        self.directory = settings.data_dir / LAUNCH_DIR
        self._lock = threading.Lock()
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    # --- files ----------------------------------------------------------------------------

    def _path(self, launch_id: str) -> Path:
        if not launch_id.startswith("launch-") or "/" in launch_id or "." in launch_id:
            raise LaunchNotFoundError(launch_id)
        return self.directory / f"{launch_id}.json"

    def _save(self, launch: Launch) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(launch.id)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        temporary.write_text(json.dumps(launch.to_json(), indent=1), encoding="utf-8")
        os.replace(temporary, path)

    def _load(self, launch_id: str) -> Launch:
        try:
            data = json.loads(self._path(launch_id).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise LaunchNotFoundError(launch_id) from None
        return Launch.from_json(data)

    def _update(self, launch_id: str, **changes: Any) -> Launch:
        with self._lock:
            launch = replace(self._load(launch_id), **changes)
            self._save(launch)
            return launch

    # --- starting -------------------------------------------------------------------------

    def command(self, options: CampaignOptions) -> list[str]:
        return [sys.executable, "-c", CLI_BOOT, "run", *options.arguments()]

    def environment(self) -> dict[str, str]:
        """The dashboard's environment, pointed at its lab, without its token variables."""
        settings = self.settings
        env = {k: v for k, v in os.environ.items() if k not in TOKEN_ENV.values()}
        env["CODECLAB_DATA_DIR"] = str(settings.data_dir)
        env["CODECLAB_DATABASE_URL"] = settings.database
        env["CODECLAB_STORE_URL"] = settings.store
        env["CODECLAB_PUBLIC_URL"] = settings.public_url
        if settings.sandbox.isolation is not None:
            env["CODECLAB_ISOLATION"] = settings.sandbox.isolation.value
        if self.config_path is not None:
            env["CODECLAB_CONFIG"] = str(self.config_path.resolve())
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def run_to_end(self, arguments: Sequence[str]) -> subprocess.CompletedProcess[str]:
        """Run ``codeclab ARGUMENTS`` (a short admin command: ``publish EXP``) to its end, in
        the environment a campaign gets; what it printed comes back."""
        env = self.environment()
        env["COLUMNS"] = "100000"  # a message on one line, however long
        env["NO_COLOR"] = "1"
        return subprocess.run(
            [sys.executable, "-c", CLI_BOOT, *arguments],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )

    def start(self, options: CampaignOptions) -> LaunchState:
        """Spawn ``codeclab run`` with `options` in the background and record the launch."""
        now = datetime.now(UTC)
        launch_id = _new_id(now)
        self.directory.mkdir(parents=True, exist_ok=True)
        log_path = self.directory / f"{launch_id}.log"
        command = self.command(options)
        with open(log_path, "wb") as log:
            try:
                process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.environment(),
                    start_new_session=True,  # its own process group; Ctrl-C on serve spares it
                    close_fds=True,
                )
            except OSError as exc:
                raise LaunchError(f"cannot start codeclab run: {exc}") from None
        launch = Launch(
            id=launch_id,
            pid=process.pid,
            process_start=process_start(process.pid),
            started_at=now,
            arguments=command[3:],
            options=asdict(options),
            log_path=str(log_path),
            run_id=options.resume,
        )
        with self._lock:
            self._save(launch)
            self._children[launch_id] = process
        threading.Thread(
            target=self._reap, args=(launch_id, process), name=f"reap-{launch_id}", daemon=True
        ).start()
        return self.state(launch)

    def _reap(self, launch_id: str, process: subprocess.Popen[bytes]) -> None:
        """Wait for a child of this process (no zombie is left) and keep its exit code."""
        code = process.wait()
        with contextlib.suppress(LaunchNotFoundError, OSError):
            self._update(launch_id, exit_code=code)
        with self._lock:
            self._children.pop(launch_id, None)

    # --- reading --------------------------------------------------------------------------

    def state(self, launch: Launch) -> LaunchState:
        alive = pid_alive(launch.pid, launch.process_start)
        if alive:
            state = "stopping" if launch.stop_requested_at is not None else "running"
        elif launch.stopped_by == "SIGKILL":
            state = "killed"
        elif launch.stop_requested_at is not None:
            state = "stopped"
        else:
            state = "exited"
        return LaunchState(launch, state, alive, self._log_tail(launch))

    @staticmethod
    def _log_tail(launch: Launch) -> str:
        try:
            with open(launch.log_path, "rb") as log:
                log.seek(0, os.SEEK_END)
                size = log.tell()
                log.seek(max(0, size - LOG_TAIL_BYTES))
                return log.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def launches(self) -> list[Launch]:
        """Every launch, newest first."""
        if not self.directory.is_dir():
            return []
        found: list[Launch] = []
        for path in self.directory.glob("launch-*.json"):
            try:
                found.append(self._load(path.stem))
            except (LaunchNotFoundError, ValueError, TypeError, OSError):
                continue
        return sorted(found, key=lambda launch: (launch.started_at, launch.id), reverse=True)

    def get(self, launch_id: str) -> Launch:
        return self._load(launch_id)

    def find_runs(self, records: RecordStore) -> list[Launch]:
        """Every launch, newest first, with the run each one's campaign recorded (matched by
        designer and seed among the runs created after it started; the oldest launch takes
        the oldest run).  A run found is kept in the launch's file."""
        launches = self.launches()
        unknown = [launch for launch in reversed(launches) if launch.run_id is None]
        if not unknown:
            return launches
        since = min(launch.started_at for launch in unknown) - _RUN_CLOCK_SKEW
        runs: list[RunRecord] = [
            run
            for run in records.list_runs(limit=200)
            if run.created_at >= since and run.created_at <= datetime.now(UTC) + _RUN_CLOCK_SKEW
        ]
        claimed = {launch.run_id for launch in launches if launch.run_id is not None}
        found: dict[str, str] = {}
        for launch in unknown:  # oldest first
            designer = launch.options.get("designer") or "offline"
            seed = launch.options.get("seed") or 0
            for run in sorted(runs, key=lambda r: (r.created_at, r.id)):
                if (
                    run.id not in claimed
                    and run.created_at >= launch.started_at - _RUN_CLOCK_SKEW
                    and run.designer == designer
                    and run.seed == seed
                ):
                    claimed.add(run.id)
                    found[launch.id] = run.id
                    break
        for launch_id, run_id in found.items():
            self._update(launch_id, run_id=run_id)
        return [
            replace(launch, run_id=found[launch.id]) if launch.id in found else launch
            for launch in launches
        ]

    def for_run(self, records: RecordStore, run_id: str) -> Launch | None:
        """The newest launch whose campaign is run `run_id` (None: not started here)."""
        for launch in self.find_runs(records):
            if launch.run_id == run_id:
                return launch
        return None

    # --- stopping -------------------------------------------------------------------------

    def stop(self, launch_id: str, *, grace_seconds: float = STOP_GRACE_SECONDS) -> LaunchState:
        """SIGTERM the launch's ``codeclab run`` (its clean stop), wait up to `grace_seconds`
        for it to end, then SIGKILL its process group."""
        launch = self._load(launch_id)
        if not pid_alive(launch.pid, launch.process_start):
            raise LaunchError(f"campaign launch {launch_id} has already ended")
        launch = self._update(launch_id, stop_requested_at=datetime.now(UTC), stopped_by="SIGTERM")
        try:
            os.kill(launch.pid, signal.SIGTERM)
        except ProcessLookupError:
            return self.state(self._load(launch_id))
        if not self._wait(launch, grace_seconds):
            launch = self._update(launch_id, stopped_by="SIGKILL")
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(launch.pid, signal.SIGKILL)
            self._wait(launch, KILL_WAIT_SECONDS)
        return self.state(self._load(launch_id))

    def _wait(self, launch: Launch, seconds: float) -> bool:
        """Wait up to `seconds` for the launch's process to end; True if it did."""
        with self._lock:
            child = self._children.get(launch.id)
        if child is not None:  # our own child: wait for it (the reaper records its code)
            try:
                child.wait(timeout=seconds)
            except subprocess.TimeoutExpired:
                return False
            return True
        deadline = time.monotonic() + seconds
        while pid_alive(launch.pid, launch.process_start):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True
