"""After a crash the lab stays consistent and resumable: stuck experiments are closed with
the reason, orphaned objects and stale temporary files are collected, and no record ever
points at a missing object. The crash tests SIGKILL a real ``codeclab eval`` at every phase
boundary (and inside a sandbox job, and half-way through storing objects)."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from codeclab.config import Settings, load_settings
from codeclab.lab import Lab
from codeclab.maintenance import dangling_references, fail_stuck, gc, isolation_report
from codeclab.sandbox.isolation import IsolationLevel, fallback_level, probe_isolation
from codeclab.sandbox.jobs import SandboxSettings
from codeclab.storage.objects import LocalStore
from codeclab.storage.records import (
    ClipRecord,
    CodecRecord,
    ExperimentStatus,
    PublishStatus,
)
from codeclab.video.clips import ensure_builtin

# --- fail_stuck and gc on hand-made states ------------------------------------------------------


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    settings = Settings(
        data_dir=tmp_path / "data",
        sandbox=SandboxSettings(scratch_root=tmp_path / "data" / "scratch"),
    )
    with Lab.open(settings) as opened:
        opened.records.upsert_clip(ClipRecord("c" * 64, "clip", "builtin:x", 8, 8, 25, 1, 2))
        yield opened


def _experiment(lab: Lab, *phases: str) -> str:
    """A running experiment that has completed `phases[:-1]` and is in `phases[-1]`."""
    exp = lab.records.create_experiment(designer="test", clip_sha256="c" * 64)
    lab.records.update_experiment(exp.id, status="running")
    for phase in phases:
        lab.records.start_phase(exp.id, phase)
        if phase != phases[-1]:
            lab.records.finish_phase(exp.id, phase)
    return exp.id


def test_stuck_experiment_fails_at_its_phase_with_the_reason(lab: Lab) -> None:
    exp_id = _experiment(lab, "design", "validation", "deployment", "execution")
    assert fail_stuck(lab, timedelta(0)) == [exp_id]
    record = lab.records.get_experiment(exp_id)
    assert record.status is ExperimentStatus.FAILED
    assert record.failed_phase == "execution"
    assert record.current_phase is None
    assert record.error is not None and "interrupted" in record.error


def test_recent_running_experiment_is_left_alone(lab: Lab) -> None:
    exp_id = _experiment(lab, "design", "validation")
    assert fail_stuck(lab, timedelta(hours=1)) == []
    assert lab.records.get_experiment(exp_id).status is ExperimentStatus.RUNNING


def test_experiment_stuck_between_phases_fails_at_the_next_phase(lab: Lab) -> None:
    exp_id = _experiment(lab, "design", "validation")
    lab.records.finish_phase(exp_id, "validation")
    fail_stuck(lab, timedelta(0))
    record = lab.records.get_experiment(exp_id)
    assert record.status is ExperimentStatus.FAILED
    assert record.failed_phase == "deployment"


def test_experiment_stuck_while_publishing_keeps_its_results_as_a_failed_upload(
    lab: Lab,
) -> None:
    phases = ("design", "validation", "deployment", "execution", "verification", "analysis")
    exp_id = _experiment(lab, *phases, "publish")
    lab.records.update_experiment(exp_id, publish_status=PublishStatus.PENDING)
    fail_stuck(lab, timedelta(0))
    record = lab.records.get_experiment(exp_id)
    assert record.status is ExperimentStatus.COMPLETED
    assert record.publish_status is PublishStatus.FAILED
    assert record.publish_error is not None and "codeclab publish" in record.publish_error


def test_interrupted_republish_of_a_completed_experiment_is_marked_failed(lab: Lab) -> None:
    exp_id = _experiment(lab, "design")
    lab.records.finish_phase(exp_id, "design")
    lab.records.update_experiment(exp_id, status="completed", publish_status=PublishStatus.PENDING)
    assert fail_stuck(lab, timedelta(0)) == [exp_id]
    assert lab.records.get_experiment(exp_id).publish_status is PublishStatus.FAILED


def _put(lab: Lab, key: str) -> None:
    lab.store.put_bytes(key, b"x" * 10)


def test_gc_removes_only_unreferenced_objects_and_dry_run_removes_nothing(lab: Lab) -> None:
    done = _experiment(lab, "design")
    lab.records.finish_phase(done, "design")
    lab.records.update_experiment(done, status="completed")
    lab.records.upsert_codec(CodecRecord("a" * 64, "codec", f"codecs/{'a' * 64}.py", 10))
    kept = [f"codecs/{'a' * 64}.py", f"experiments/{done}/stream.bin", "clips/x/source.mp4"]
    orphans = [
        f"codecs/{'b' * 64}.py",
        f"experiments/{done}/old.mp4",
        "decoders/exp-gone_decoder.py",
    ]
    for key in kept + orphans:
        _put(lab, key)
    lab.records.update_experiment(done, artifacts={"stream": kept[1]})

    dry = gc(lab, dry_run=True)
    assert sorted(dry.orphans) == sorted(orphans)
    assert all(lab.store.exists(key) for key in orphans)

    report = gc(lab, dry_run=False)
    assert sorted(report.orphans) == sorted(orphans)
    assert report.bytes_freed >= 30
    assert not any(lab.store.exists(key) for key in orphans)
    assert all(lab.store.exists(key) for key in kept)
    assert gc(lab, dry_run=True).orphans == ()


def test_gc_defers_objects_an_experiment_in_progress_may_still_claim(lab: Lab) -> None:
    running = _experiment(lab, "design", "validation", "deployment")
    codec_key = f"codecs/{'d' * 64}.py"
    mine = f"experiments/{running}/reconstruction.mp4"
    for key in (codec_key, mine):
        _put(lab, key)
    report = gc(lab, dry_run=False)
    assert sorted(report.deferred) == sorted([codec_key, mine])
    assert lab.store.exists(codec_key) and lab.store.exists(mine)
    fail_stuck(lab, timedelta(0))
    assert sorted(gc(lab, dry_run=False).orphans) == sorted([codec_key, mine])


def test_gc_removes_stale_temporary_files_and_scratch_directories(lab: Lab) -> None:
    store = lab.store
    assert isinstance(store, LocalStore)
    stale_tmp = store.root / "tmp" / "object-abandoned"
    fresh_tmp = store.root / "tmp" / "object-in-flight"
    scratch = lab.settings.scratch_dir
    stale_job = scratch / "codeclab-enc-abandoned"
    fresh_job = scratch / "codeclab-dec-running"
    other = scratch / "not-ours"
    for directory in (stale_job, fresh_job, other):
        directory.mkdir(parents=True)
        (directory / "packets.bin").write_bytes(b"p" * 100)
    stale_tmp.write_bytes(b"t" * 100)
    fresh_tmp.write_bytes(b"t")
    long_ago = time.time() - 3 * 86400
    for path in (stale_tmp, stale_job / "packets.bin", stale_job, other / "packets.bin", other):
        os.utime(path, (long_ago, long_ago))
    report = gc(lab, dry_run=False)
    assert sorted(report.temp_files) == sorted([str(stale_tmp), str(stale_job)])
    assert not stale_tmp.exists() and not stale_job.exists()
    assert fresh_tmp.exists() and fresh_job.exists() and other.exists()


def test_doctor_rows_explain_every_level_and_the_one_used() -> None:
    rows = dict(isolation_report(SandboxSettings()))
    assert rows["isolation used"].startswith(probe_isolation().level.value)
    for name in ("isolation bwrap+seccomp", "isolation rlimits", "layer seccomp"):
        assert name in rows
    assert "refused" in rows["weak isolation"]
    weak = dict(isolation_report(SandboxSettings(isolation=IsolationLevel.RLIMITS)))
    assert "REFUSED" in weak["isolation used"]


# --- SIGKILL of a real `codeclab eval` ------------------------------------------------------------

PAUSE_HOOK = r"""
# Test-only wrapper around the real `codeclab` command: it pauses the lab at one point
# (CODECLAB_TEST_PAUSE) and says so in a marker file, for the test to SIGKILL it there.
# Nothing of it exists outside this test module.
import os, sys, time
from pathlib import Path

point = os.environ["CODECLAB_TEST_PAUSE"]
marker = Path(os.environ["CODECLAB_TEST_MARKER"])

def pause(where):
    marker.write_text(where)
    while True:
        time.sleep(60)

from codeclab.storage.records import RecordStore
start_phase = RecordStore.start_phase
def paused_start_phase(self, exp_id, phase):
    result = start_phase(self, exp_id, phase)
    if point == "phase:" + phase:
        pause(point)
    return result
RecordStore.start_phase = paused_start_phase

from codeclab.storage.objects import LocalStore
def paused_put(original):
    def put(self, key, *args, **kwargs):
        stored = original(self, key, *args, **kwargs)
        if point == "put:" + key.split("/")[0]:
            pause(point)
        return stored
    return put
LocalStore.put_bytes = paused_put(LocalStore.put_bytes)
LocalStore.put_file = paused_put(LocalStore.put_file)

from codeclab.sandbox.process import LimitedProcess
limited_init = LimitedProcess.__init__
started = []
def paused_init(self, *args, **kwargs):
    limited_init(self, *args, **kwargs)
    started.append(self)
    if point == "sandbox" and len(started) == 2:  # the decoder waits, the encoder runs
        time.sleep(1.0)  # let the encoder get into the codec
        pause(point)
LimitedProcess.__init__ = paused_init

from codeclab.cli import app
sys.argv[0] = "codeclab"
app()
"""

SPINNING_CODEC = """
import zlib


class Encoder:
    def __init__(self, width, height, fps, params):
        spins = 0
        while spins >= 0:  # never ends, prints nothing: only a kill stops it
            spins += 1

    def encode(self, y, u, v):
        return zlib.compress(y.tobytes())


class Decoder:
    def __init__(self, width, height, fps):
        self.width = width

    def decode(self, packet):
        return []
"""

EVAL_ARGS = [
    "eval",
    "builtin:intra_dct",
    "--clip",
    "builtin:lab-cif",
    "--frames",
    "2",
    "--quality",
    "50",
    "--baselines",
    "",
    "--no-vmaf",
    "--publish",
    "always",
]

KILL_POINTS = {
    # point: (status after fail_stuck, failed phase)
    "phase:design": ("failed", "design"),
    "phase:validation": ("failed", "validation"),
    "phase:deployment": ("failed", "deployment"),
    "put:codecs": ("failed", "deployment"),
    "phase:execution": ("failed", "execution"),
    "sandbox": ("failed", "execution"),  # with a codec that spins until killed
    "phase:verification": ("failed", "verification"),
    "phase:analysis": ("failed", "analysis"),
    "phase:publish": ("completed", None),
    "put:experiments": ("completed", None),
}


@pytest.fixture(scope="module")
def clip_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.mktemp("clip-cache")
    ensure_builtin("lab-cif", cache)
    return cache


@pytest.fixture
def data_dir(tmp_path: Path, clip_cache: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(clip_cache, data / "cache")
    return data


def _codeclab(data: Path, args: list[str]) -> list[str]:
    return [sys.executable, "-c", PAUSE_HOOK, *args, "--data-dir", str(data)]


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def _kill_at(data: Path, point: str, tmp_path: Path, isolation: str | None = None) -> set[int]:
    """Run `codeclab eval` until it pauses at `point`, SIGKILL it; returns its sandboxes'
    processes that were alive then."""
    marker = tmp_path / "paused"
    env = {**os.environ, "CODECLAB_TEST_PAUSE": point, "CODECLAB_TEST_MARKER": str(marker)}
    env.pop("CODECLAB_CONFIG", None)
    if isolation is not None:
        env["CODECLAB_ISOLATION"] = isolation
    args = EVAL_ARGS
    if point == "sandbox":  # a codec that runs until killed: nothing else would stop it
        spinning = tmp_path / "spinning.py"
        spinning.write_text(SPINNING_CODEC)
        args = [EVAL_ARGS[0], str(spinning), *EVAL_ARGS[2:]]
    lab_process = subprocess.Popen(
        _codeclab(data, args),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 90
    while not marker.exists():
        if lab_process.poll() is not None:
            stderr = lab_process.stderr.read().decode() if lab_process.stderr else ""
            pytest.fail(f"codeclab eval ended before {point}: {stderr[-2000:]}")
        if time.monotonic() > deadline:
            lab_process.kill()
            pytest.fail(f"codeclab eval never reached {point}")
        time.sleep(0.05)
    sandboxes = _descendants(lab_process.pid)
    lab_process.send_signal(signal.SIGKILL)
    lab_process.wait()
    if lab_process.stderr is not None:
        lab_process.stderr.close()
    return sandboxes


def _wait_until_gone(pids: set[int], seconds: float = 5.0) -> set[int]:
    deadline = time.monotonic() + seconds
    while _alive(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return _alive(pids)


def _integrity(data: Path) -> str:
    with sqlite3.connect(data / "codeclab.db") as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_sigkill_at_a_phase_boundary_leaves_a_consistent_collectable_lab(
    point: str, data_dir: Path, tmp_path: Path
) -> None:
    sandboxes = _kill_at(data_dir, point, tmp_path)
    if point == "sandbox":
        assert sandboxes, "the lab had no sandbox process running when it was killed"
    assert _wait_until_gone(sandboxes) == set(), "sandbox processes outlived the lab"
    assert _integrity(data_dir) == "ok"
    with Lab.open(load_settings(data_dir=data_dir)) as lab:
        assert dangling_references(lab) == []
        stuck = lab.records.stuck_experiments(timedelta(0))
        assert len(stuck) == 1
        exp_id = stuck[0].id
        before = gc(lab, dry_run=True)
        if point == "put:codecs":  # stored, not yet recorded: kept while it may be claimed
            assert [k for k in before.deferred if k.startswith("codecs/")]
        assert fail_stuck(lab, timedelta(0)) == [exp_id]
        record = lab.records.get_experiment(exp_id)
        status, phase = KILL_POINTS[point]
        assert record.status.value == status
        assert record.failed_phase == phase
        assert record.current_phase is None
        if status == "completed":
            assert record.publish_status is PublishStatus.FAILED
            assert record.artifacts == {}
        report = gc(lab, dry_run=False)
        if point in ("put:codecs", "put:experiments"):
            assert report.orphans, "the object stored before the kill was not collected"
        after = gc(lab, dry_run=True)
        assert (after.orphans, after.deferred, after.dangling) == ((), (), ())
        assert dangling_references(lab) == []
    assert _integrity(data_dir) == "ok"


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_sandbox_at_the_fallback_level_dies_with_a_killed_lab(
    data_dir: Path, tmp_path: Path
) -> None:
    level = fallback_level()
    if level is None:
        pytest.skip("no isolation level without bubblewrap works here")
    sandboxes = _kill_at(data_dir, "sandbox", tmp_path, isolation=level.value)
    assert sandboxes
    assert _wait_until_gone(sandboxes) == set(), "sandbox processes outlived the lab"


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_work_resumes_after_a_crash_while_publishing(data_dir: Path, tmp_path: Path) -> None:
    """Killed half-way through publishing: the experiment keeps its results, `codeclab
    publish` completes the upload, and a new evaluation runs to the end."""
    _kill_at(data_dir, "put:experiments", tmp_path)
    with Lab.open(load_settings(data_dir=data_dir)) as lab:
        (exp_id,) = fail_stuck(lab, timedelta(0))
        gc(lab, dry_run=False)
    env = {k: v for k, v in os.environ.items() if k != "CODECLAB_CONFIG"}
    env["CODECLAB_TEST_PAUSE"] = "never"
    env["CODECLAB_TEST_MARKER"] = str(tmp_path / "unused")
    for args in (["publish", exp_id], EVAL_ARGS):
        done = subprocess.run(
            _codeclab(data_dir, args), env=env, capture_output=True, text=True, cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr[-2000:]
    with Lab.open(load_settings(data_dir=data_dir)) as lab:
        record = lab.records.get_experiment(exp_id)
        assert record.publish_status is PublishStatus.PUBLISHED
        assert all(lab.store.exists(key) for key in record.artifacts.values())
        completed = lab.records.list_experiments(status=ExperimentStatus.COMPLETED)
        assert len(completed) == 2
        assert dangling_references(lab) == []
        assert gc(lab, dry_run=True).orphans == ()
    assert _integrity(data_dir) == "ok"
