"""A lab filled by real experiments, shared by the dashboard's tests.

The session's lab holds:

* ``published``: the reference inter codec on 30 frames of carphone (QCIF), at three
  qualities, with the x264 baseline (recorded by the experiment itself) and VMAF, published
  (video, decoder, stream, package);
* ``child``: the reference intra codec designed from ``published`` (its parent), not
  published;
* ``to_publish``: the intra codec again, unpublished, for the admin "publish again" test;
* ``run`` with one experiment stuck in its execution phase (a campaign in progress).

Every test that changes records or objects makes its own experiment to change.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from codeclab.baselines.ladder import BaselineLadder
from codeclab.codecs import reference_codec_source
from codeclab.config import Settings
from codeclab.designers.base import Design
from codeclab.lab import Lab
from codeclab.pipeline.analysis import Target
from codeclab.pipeline.experiment import ExperimentPlan, run_experiment
from codeclab.sandbox.jobs import SandboxSettings
from codeclab.storage.records import ExperimentRecord, PublishStatus, RunRecord
from codeclab.video.clips import prepare_clip
from codeclab.web.access import Access
from codeclab.web.app import create_app

ADMIN_TOKEN = "admin-token-for-tests-0123456789"
FRAMES = 30
TEST_BASE = "http://testserver"


@dataclass(frozen=True)
class LabData:
    settings: Settings
    published: ExperimentRecord
    child: ExperimentRecord
    to_publish: ExperimentRecord
    run: RunRecord
    running: ExperimentRecord
    ladders: dict[str, BaselineLadder]  # the baselines `published` was compared with


@pytest.fixture(scope="session")
def shared_clips() -> Path:
    clips = Path(__file__).resolve().parents[2] / ".." / "shared" / "clips"
    if not (clips / "carphone_qcif.y4m").is_file():
        pytest.skip(f"the real test clip carphone_qcif.y4m is not in {clips.resolve()}")
    return clips


@pytest.fixture(scope="session")
def lab_data(tmp_path_factory: pytest.TempPathFactory, shared_clips: Path) -> LabData:
    root = tmp_path_factory.mktemp("dashboard-lab")
    data = root / "data"
    settings = Settings(
        data_dir=data,
        sandbox=SandboxSettings(scratch_root=data / "scratch"),
        public_url=TEST_BASE,
    )
    clip = prepare_clip(str(shared_clips / "carphone_qcif.y4m"), root / "clip", frames=FRAMES)
    plan = ExperimentPlan(
        clip=clip,
        qualities=(30, 60, 90),
        target=Target(),
        baselines=("x264",),
        publish="always",
    )
    with Lab.open(settings) as lab:
        first = run_experiment(
            lab,
            Design(
                reference_codec_source("inter_dct"),
                "Inter DCT with motion compensation\nA reference codec: I and P frames.",
                designer="test",
            ),
            plan,
            workdir=root / "work",
            codec_name="inter_dct",
        )
        assert first.record.publish_status is PublishStatus.PUBLISHED, first.record
        quick = replace(plan, baselines=(), with_vmaf=False, publish="never", qualities=(40, 80))
        child = run_experiment(
            lab,
            Design(
                reference_codec_source("intra_dct"),
                "Intra only: drop motion compensation",
                parent_ids=(first.record.id,),
                designer="test",
            ),
            quick,
            workdir=root / "work",
            codec_name="intra_dct",
        )
        assert child.record.status == "completed", child.record.error
        to_publish = run_experiment(
            lab,
            Design(reference_codec_source("intra_dct"), "To publish later", designer="test"),
            quick,
            workdir=root / "work",
            codec_name="intra_dct",
        )
        run = lab.records.create_run("test", {"budget": 3}, seed=1, notes="a live campaign")
        running = lab.records.create_experiment(
            designer="test",
            run_id=run.id,
            clip_sha256=clip.sha256,
            rationale="Still running",
        )
        lab.records.start_phase(running.id, "design")
        lab.records.finish_phase(running.id, "design")
        lab.records.start_phase(running.id, "execution")
        return LabData(
            settings=settings,
            published=lab.records.get_experiment(first.record.id),
            child=lab.records.get_experiment(child.record.id),
            to_publish=lab.records.get_experiment(to_publish.record.id),
            run=lab.records.get_run(run.id),
            running=lab.records.get_experiment(running.id),
            ladders=dict(first.ladders),
        )


@pytest.fixture
def app(lab_data: LabData) -> FastAPI:
    return create_app(lab_data.settings, access=Access(admin_token=ADMIN_TOKEN), poll_seconds=0.5)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url=TEST_BASE) as client:
        yield client


@pytest.fixture
def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass(frozen=True)
class Served:
    url: str
    app: FastAPI


@contextmanager
def serving(settings: Settings) -> Iterator[Served]:
    """The dashboard of `settings` (its public_url set to where it listens) over real HTTP:
    uvicorn on 127.0.0.1, a free port, in a thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = replace(settings, public_url=url)
    app = create_app(settings, access=Access(admin_token=ADMIN_TOKEN), poll_seconds=0.5)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on {url}")
        time.sleep(0.02)
    try:
        yield Served(url, app)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="module")
def served(lab_data: LabData) -> Iterator[Served]:
    """The session lab's dashboard over real HTTP."""
    with serving(lab_data.settings) as served:
        yield served
