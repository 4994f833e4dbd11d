"""Every hostile codec of the corpus gets the outcome it must: the validator rejects it with
its rule, and, run around the validator, the sandbox stops it, at the strongest isolation
this machine has and again at the level a machine without bubblewrap falls back to. None
escapes, outlives its job, hangs the lab, touches the lab's files or corrupts a record."""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from codeclab.config import Settings
from codeclab.designers.base import Design
from codeclab.lab import Lab
from codeclab.maintenance import dangling_references
from codeclab.pipeline.analysis import Target
from codeclab.pipeline.experiment import ExperimentPlan, run_experiment
from codeclab.sandbox.isolation import (
    HARNESS_FILES,
    IsolationLevel,
    fallback_level,
    probe_isolation,
)
from codeclab.sandbox.jobs import SandboxSettings
from codeclab.storage.objects import LocalStore
from codeclab.storage.records import ExperimentStatus

from .corpus import (
    CORPUS_LIMITS,
    SECRET_TEXT,
    Case,
    Listener,
    Targets,
    load_cases,
    make_clip,
    outside_leftovers,
    run_case,
    scratch_leftovers,
    sha256_of,
    static_rules,
)

CASES = load_cases()
BEST = probe_isolation().level
FALLBACK = fallback_level()
LEVELS = [
    pytest.param(BEST, id=f"best:{BEST.value}"),
    pytest.param(
        FALLBACK,
        id=f"fallback:{FALLBACK.value if FALLBACK else 'none'}",
        marks=pytest.mark.skipif(
            FALLBACK is None or FALLBACK is BEST,
            reason="no non-bubblewrap level with file isolation works here",
        ),
    ),
]


def test_the_corpus_is_large_and_every_case_declares_its_outcome() -> None:
    assert len(CASES) >= 25
    names = [case.name for case in CASES]
    assert len(set(names)) == len(names)
    stages = {case.runtime.stage for case in CASES}
    assert {"encoder", "decoder", "verification"} <= stages


@pytest.fixture(scope="module")
def lab_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("adversarial-lab")


@pytest.fixture(scope="module")
def lab(lab_dir: Path) -> Iterator[Lab]:
    """A real lab (records database, object store) that the hostile codecs aim at."""
    settings = Settings(
        data_dir=lab_dir / "data",
        sandbox=SandboxSettings(limits=CORPUS_LIMITS, scratch_root=lab_dir / "data" / "scratch"),
    )
    with Lab.open(settings) as opened:
        opened.store.put_bytes("experiments/exp-canary/stream.bin", SECRET_TEXT.encode())
        yield opened


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


@pytest.fixture(scope="module")
def base_targets(lab: Lab, lab_dir: Path, listener: Listener) -> Targets:
    store = lab.store
    assert isinstance(store, LocalStore)
    secret = lab_dir / "secret.txt"
    secret.write_text(SECRET_TEXT)
    outside = lab_dir / "outside"
    outside.mkdir()
    return Targets(
        clip=make_clip(lab_dir / "clip"),
        records_db=lab.settings.data_dir / "codeclab.db",
        object_file=store.local_path("experiments/exp-canary/stream.bin"),
        store_dir=store.root,
        secret=secret,
        outside=outside,
        scratch=lab_dir / "scratch-unused",
        harness=HARNESS_FILES["harness.py"],
        listener_port=listener.port,
        token=uuid.uuid4().hex[:8],
    )


@pytest.fixture
def targets(base_targets: Targets, tmp_path: Path) -> Targets:
    """The lab's targets with a scratch directory and a token of this test's own."""
    return replace(base_targets, scratch=tmp_path / "scratch", token=uuid.uuid4().hex[:8])


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_validator_rejects_the_case_with_its_rule(case: Case, targets: Targets) -> None:
    rules = static_rules(targets.render(case))
    if case.static is None:
        assert rules == set(), f"{case.name}: {case.title}"
    else:
        assert case.static in rules, f"{case.name}: {case.title}"


@pytest.mark.timeout(90)
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_sandbox_contains_the_case(
    case: Case, level: IsolationLevel, targets: Targets, listener: Listener, tmp_path: Path
) -> None:
    harness_before = {name: sha256_of(path) for name, path in HARNESS_FILES.items()}
    accepted_before = listener.accepted
    observed = run_case(case, targets, level, tmp_path / "work")
    expected = case.expected(level)
    assert observed.escaped == [], f"{case.name} at {level.value}: {observed.describe()}"
    assert observed.matches(expected), (
        f"{case.name} at {level.value}: expected {expected.describe()}, "
        f"observed {observed.describe()}"
    )
    assert listener.accepted == accepted_before, "a connection reached the lab's listener"
    assert scratch_leftovers(targets) == [], "a scratch directory outlived its job"
    assert outside_leftovers(targets) == [], "the codec wrote into the lab's directory"
    assert targets.secret.read_text() == SECRET_TEXT
    assert {n: sha256_of(p) for n, p in HARNESS_FILES.items()} == harness_before
    for process in observed.processes:  # what the lab keeps of the codec's output is capped
        assert len(process.stdout) + len(process.stderr) <= 2 * CORPUS_LIMITS.output_bytes + 400


THROUGH_THE_PIPELINE = {
    "memory_bomb": "execution",
    "cpu_spin": "execution",
    "huge_packets": "execution",
    "decoder_nan_floats": "execution",
    "decoder_missing_frames": "verification",
    "read_etc_passwd": "validation",
}


@pytest.mark.timeout(120)
def test_hostile_codecs_through_the_pipeline_leave_consistent_records(
    lab: Lab, base_targets: Targets, tmp_path: Path
) -> None:
    """The pipeline records each hostile codec as failed at the phase that stopped it, with
    the reason, and the database stays sound (records, integrity, objects)."""
    by_name = {case.name: case for case in CASES}
    clip = base_targets.clip
    plan = ExperimentPlan(
        clip=clip, qualities=(50,), target=Target(), baselines=(), with_vmaf=False, publish="never"
    )
    sandbox = SandboxSettings(
        limits=replace(CORPUS_LIMITS, wall_seconds=3), scratch_root=tmp_path / "scratch"
    )
    hostile_lab = Lab(replace(lab.settings, sandbox=sandbox), lab.records, lab.store)
    targets = replace(base_targets, scratch=tmp_path / "scratch")
    for name, phase in THROUGH_THE_PIPELINE.items():
        design = Design(targets.render(by_name[name]), rationale=name, designer="adversarial")
        outcome = run_experiment(hostile_lab, design, plan, workdir=tmp_path / "work")
        record = outcome.record
        assert record.status is ExperimentStatus.FAILED, name
        assert record.failed_phase == phase, f"{name}: {record.error}"
        assert record.error, name
        assert record.current_phase is None, name
        if phase != "validation":
            assert record.isolation == BEST.value, name
    with sqlite3.connect(lab.settings.data_dir / "codeclab.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert dangling_references(lab) == []
    assert hashlib.sha256(lab.store.get_bytes("experiments/exp-canary/stream.bin")).hexdigest() == (
        hashlib.sha256(SECRET_TEXT.encode()).hexdigest()
    )
