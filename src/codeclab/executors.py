"""Where design evaluations run: a local process pool, or a Dask distributed cluster.

A job (`DesignJob`) evaluates one design through its stages (`StagePlan`s: a smoke test, then
the search clips), one experiment per stage, stopping at the first stage that fails. It carries
only small data: the settings, the design's source, and clip specs with the sha256 their frames
must hash to. The job opens its own `Lab` from the settings inside the worker, prepares the
clips there (once per worker process) and records every phase itself; it returns the ids and
outcomes of its experiments (`JobResult`), never frames or arrays.

* ``local``: a process pool (``spawn``) of `workers` processes on this machine. Each worker
  dies with the process that opened the pool (``PR_SET_PDEATHSIG``), so a killed campaign
  leaves no worker writing to its records; each job already supervises its own sandboxed
  encoder and decoder subprocesses.
* ``dask://HOST:PORT``: the Dask scheduler at ``tcp://HOST:PORT`` (``distributed.Client``);
  jobs run in its workers' threads. Every worker must reach the same records database and
  object store (PostgreSQL and S3 for several machines; SQLite and a file store only when they
  share this machine's disk) and read the clips by the same paths (``builtin:`` clips are
  generated anywhere). A job is submitted with ``pure=False``: a retried job runs again.
"""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any

from codeclab.config import Settings
from codeclab.designers.base import Design, Usage
from codeclab.lab import Lab
from codeclab.pipeline.analysis import Target
from codeclab.pipeline.experiment import ExperimentPlan, run_experiment
from codeclab.video.clips import PreparedClip, prepare_clip

LOCAL = "local"
DASK_SCHEME = "dask://"
_PR_SET_PDEATHSIG = 1


class ExecutorError(RuntimeError):
    """The executor cannot be opened or has failed; the message says what to do."""


# --- jobs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClipSpec:
    """Frames [start, start + frames) of a clip, and the sha256 they must hash to."""

    spec: str
    start: int
    frames: int | None
    sha256: str | None = None
    """None: whatever the frames hash to (the first time a campaign prepares them)."""

    def prepare(self, workdir: Path, cache_dir: Path) -> PreparedClip:
        clip = prepare_clip(
            self.spec, workdir, start=self.start, frames=self.frames, cache_dir=cache_dir
        )
        if self.sha256 is not None and clip.sha256 != self.sha256:
            raise ValueError(
                f"{self.spec} (frames {self.start}..+{self.frames}) on {socket.gethostname()} "
                f"hashes to {clip.sha256[:12]}, not {self.sha256[:12]} as when the campaign "
                "started: the clip has changed, or differs on this machine"
            )
        return clip


@dataclass(frozen=True)
class StagePlan:
    """One stage of a design's evaluation: how it is tested, on which frames."""

    stage: str
    clip: ClipSpec
    qualities: tuple[int, ...]
    target: Target
    baselines: tuple[str, ...]
    with_vmaf: bool
    publish: str


@dataclass(frozen=True)
class DesignJob:
    """Evaluate `design` through `stages` in order, stopping at the first that fails.

    The first stage's experiment carries the design's usage (LLM cost), the others none.
    """

    settings: Settings
    run_id: str
    alias: str
    codec_name: str
    design: Design
    stages: tuple[StagePlan, ...]


@dataclass(frozen=True)
class StageResult:
    stage: str
    clip_sha256: str
    experiment_id: str
    status: str
    failed_phase: str | None
    error: str | None


@dataclass(frozen=True)
class JobResult:
    alias: str
    stages: tuple[StageResult, ...]
    worker: str
    """``host:pid`` of the process that ran the job."""
    seconds: float

    @property
    def ok(self) -> bool:
        return bool(self.stages) and all(s.status == "completed" for s in self.stages)


_clips: dict[tuple[ClipSpec, Path], PreparedClip] = {}
_clips_lock = threading.Lock()


def _prepared(spec: ClipSpec, settings: Settings) -> PreparedClip:
    """The clip prepared in this process (once; again if its raw file has gone)."""
    key = (spec, settings.cache_dir)
    with _clips_lock:
        clip = _clips.get(key)
        if clip is None or not clip.raw.path.is_file():
            clip = spec.prepare(settings.cache_dir / "clips", settings.cache_dir)
            _clips[key] = clip
        return clip


def evaluate_design_job(job: DesignJob) -> JobResult:
    """Run a design's stages in this process, recording each experiment (see `DesignJob`)."""
    started = time.monotonic()
    results: list[StageResult] = []
    settings = job.settings
    with Lab.open(settings) as lab:
        for index, stage in enumerate(job.stages):
            clip = _prepared(stage.clip, settings)
            design = job.design if index == 0 else replace(job.design, usage=Usage())
            plan = ExperimentPlan(
                clip=clip,
                qualities=stage.qualities,
                target=stage.target,
                baselines=stage.baselines,
                with_vmaf=stage.with_vmaf,
                publish=stage.publish,
            )
            outcome = run_experiment(
                lab,
                design,
                plan,
                workdir=settings.scratch_dir / "campaign",
                run_id=job.run_id,
                codec_name=job.codec_name,
            )
            record = outcome.record
            results.append(
                StageResult(
                    stage.stage,
                    clip.sha256,
                    record.id,
                    record.status.value,
                    record.failed_phase,
                    record.error,
                )
            )
            if record.status.value != "completed":
                break
    worker = f"{socket.gethostname()}:{os.getpid()}"
    return JobResult(job.alias, tuple(results), worker, time.monotonic() - started)


# --- executors ------------------------------------------------------------------------------


class CampaignExecutor:
    """Runs `DesignJob`s, `slots` at a time, on a `concurrent.futures.Executor`."""

    def __init__(
        self,
        executor: cf.Executor,
        slots: int,
        url: str,
        description: str,
        on_close: Callable[[], None] | None = None,
        on_cancel: Callable[[], None] | None = None,
    ) -> None:
        if slots < 1:
            raise ValueError(f"an executor needs at least one slot, got {slots}")
        self.executor = executor
        self.slots = slots
        self.url = url
        self.description = description
        self.on_close = on_close
        self.on_cancel = on_cancel
        self.closed = False

    def __repr__(self) -> str:
        return f"CampaignExecutor({self.url!r}, slots={self.slots})"

    def submit(self, job: DesignJob) -> cf.Future[JobResult]:
        return self.executor.submit(evaluate_design_job, job)

    def close(self, *, cancel: bool = False) -> None:
        """Stop; with `cancel`, jobs not started are dropped and running ones are stopped (local
        workers are killed; a Dask job already running finishes its current experiment)."""
        if self.closed:
            return
        self.closed = True
        try:
            if cancel and self.on_cancel is not None:
                self.on_cancel()
            if isinstance(self.executor, cf.ProcessPoolExecutor):
                self.executor.shutdown(wait=not cancel, cancel_futures=cancel)
            else:  # Dask's ClientExecutor cancels its futures when not waiting
                self.executor.shutdown(wait=not cancel)
        finally:
            if self.on_close is not None:
                self.on_close()

    def __enter__(self) -> CampaignExecutor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(cancel=exc is not None)


def _die_with_parent(parent_pid: int) -> None:
    """Worker initializer: be killed when the process that started the pool dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: workers may outlive a killed campaign
        pass
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)


def open_local(workers: int) -> CampaignExecutor:
    """A pool of `workers` processes on this machine."""
    if workers < 1:
        raise ValueError(f"workers must be 1 or more, got {workers}")
    pool = cf.ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_die_with_parent,
        initargs=(os.getpid(),),
    )
    plural = "es" if workers != 1 else ""

    def kill_workers() -> None:
        # ProcessPoolExecutor (before 3.14) has no public way to stop running jobs; its
        # worker processes are in `_processes`. A killed job leaves its experiment `running`:
        # the campaign marks it interrupted.
        processes: dict[int, multiprocessing.process.BaseProcess] = (
            getattr(pool, "_processes", None) or {}
        )
        for process in list(processes.values()):
            process.kill()
        for process in list(processes.values()):
            process.join(timeout=10)

    return CampaignExecutor(
        pool, workers, LOCAL, f"local pool of {workers} process{plural}", on_cancel=kill_workers
    )


def dask_address(url: str) -> str:
    """``dask://host:port`` -> ``tcp://host:port``."""
    if not url.startswith(DASK_SCHEME):
        raise ValueError(f"unknown executor {url!r}: use 'local' or 'dask://HOST:PORT'")
    rest = url[len(DASK_SCHEME) :]
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit() or "/" in rest:
        raise ValueError(f"executor {url!r}: write the Dask scheduler as dask://HOST:PORT")
    return f"tcp://{rest}"


def open_dask(url: str, workers: int | None = None, timeout_s: float = 10.0) -> CampaignExecutor:
    """The Dask scheduler at `url`; `workers` jobs in flight (default: its worker threads)."""
    address = dask_address(url)
    try:
        from distributed import Client as DaskClient
    except ImportError:
        raise ExecutorError(
            f"executor {url}: Dask distributed is not installed; pip install 'dask[distributed]'"
        ) from None
    try:
        connect: Any = DaskClient  # distributed's annotations are partial
        client: Any = connect(address, timeout=f"{timeout_s}s")
    except OSError as exc:
        raise ExecutorError(
            f"executor {url}: cannot reach the Dask scheduler at {address}: {exc}"
        ) from None
    threads = sum(client.nthreads().values())
    slots = workers if workers is not None else max(threads, 1)
    if slots < 1:
        client.close()
        raise ValueError(f"workers must be 1 or more, got {slots}")
    executor = client.get_executor(pure=False)
    description = f"Dask scheduler {address} ({len(client.nthreads())} workers, {threads} threads)"
    return CampaignExecutor(executor, slots, url, description, on_close=client.close)


def open_executor(url: str = LOCAL, workers: int | None = None) -> CampaignExecutor:
    """``local`` (a process pool of `workers`, default 1) or ``dask://HOST:PORT``."""
    if url == LOCAL:
        return open_local(1 if workers is None else workers)
    if url.startswith(DASK_SCHEME):
        return open_dask(url, workers)
    raise ValueError(f"unknown executor {url!r}: use 'local' or 'dask://HOST:PORT'")
