"""Design jobs on a real local process pool and a real Dask cluster (LocalCluster, 2 workers)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeclab.codecs import reference_codec_source
from codeclab.config import Settings
from codeclab.designers.base import Design, Usage
from codeclab.executors import (
    CampaignExecutor,
    ClipSpec,
    DesignJob,
    JobResult,
    StagePlan,
    dask_address,
    evaluate_design_job,
    open_executor,
)
from codeclab.lab import Lab
from codeclab.pipeline.analysis import Target
from codeclab.sandbox.jobs import SandboxSettings

FRAMES = 3


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    data = tmp_path / "data"
    return Settings(data_dir=data, sandbox=SandboxSettings(scratch_root=data / "scratch"))


@pytest.fixture
def run_id(settings: Settings) -> str:
    with Lab.open(settings) as lab:
        return lab.records.create_run("test", {}, 0).id


@pytest.fixture
def clip(clips_dir: Path, settings: Settings) -> ClipSpec:
    unchecked = ClipSpec(str(clips_dir / "carphone_qcif.y4m"), 0, FRAMES)
    prepared = unchecked.prepare(settings.cache_dir / "clips", settings.cache_dir)
    return ClipSpec(unchecked.spec, 0, FRAMES, prepared.sha256)


def job(settings: Settings, run_id: str, clip: ClipSpec, codec: str, alias: str) -> DesignJob:
    stage = StagePlan("smoke", clip, (50,), Target(min_vmaf=None), (), False, "never")
    design = Design(
        reference_codec_source(codec),
        f"the {codec} reference codec",
        designer="test",
        usage=Usage(1, 10, 20, 0.5),
    )
    return DesignJob(settings, run_id, alias, codec, design, (stage, replace_stage(stage)))


def replace_stage(stage: StagePlan) -> StagePlan:
    """A second stage on the same clip at another quality."""
    return StagePlan("search", stage.clip, (30, 70), stage.target, (), False, "never")


def run_two(executor: CampaignExecutor, jobs: list[DesignJob]) -> list[JobResult]:
    futures = [executor.submit(j) for j in jobs]
    return [future.result(timeout=120) for future in futures]


def check_recorded(settings: Settings, results: list[JobResult]) -> None:
    with Lab.open(settings) as lab:
        for result in results:
            assert result.ok, result
            assert [s.stage for s in result.stages] == ["smoke", "search"]
            first, second = (lab.records.get_experiment(s.experiment_id) for s in result.stages)
            assert first.status.value == second.status.value == "completed"
            assert first.cost_usd == 0.5 and second.cost_usd == 0.0  # usage charged once
            assert [m["quality"] for m in second.metrics] == [30, 70]


@pytest.mark.slow
def test_local_pool_runs_design_jobs_in_its_worker_processes(
    settings: Settings, run_id: str, clip: ClipSpec
) -> None:
    jobs = [
        job(settings, run_id, clip, name, f"d{i}")
        for i, name in enumerate(("intra_dct", "inter_dct"), 1)
    ]
    with open_executor("local", 2) as executor:
        assert executor.slots == 2
        results = run_two(executor, jobs)
    check_recorded(settings, results)
    pids = {int(r.worker.rsplit(":", 1)[1]) for r in results}
    assert os.getpid() not in pids


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[str]:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        yield cluster.scheduler_address


@pytest.mark.slow
def test_dask_cluster_runs_design_jobs_on_its_workers(
    settings: Settings, run_id: str, clip: ClipSpec, dask_cluster: str
) -> None:
    url = dask_cluster.replace("tcp://", "dask://")
    jobs = [
        job(settings, run_id, clip, name, f"d{i}")
        for i, name in enumerate(("intra_dct", "inter_dct"), 1)
    ]
    with open_executor(url) as executor:
        assert executor.slots == 2  # one per worker thread
        results = run_two(executor, jobs)
    check_recorded(settings, results)
    pids = {int(r.worker.rsplit(":", 1)[1]) for r in results}
    assert os.getpid() not in pids


@pytest.mark.slow
def test_a_job_refuses_a_clip_whose_frames_changed(
    settings: Settings, run_id: str, clip: ClipSpec
) -> None:
    changed = ClipSpec(clip.spec, clip.start, clip.frames, "0" * 64)
    with pytest.raises(ValueError, match="has changed"):
        evaluate_design_job(job(settings, run_id, changed, "intra_dct", "d1"))


def test_unknown_executors_are_refused_with_the_forms_that_work() -> None:
    with pytest.raises(ValueError, match="dask://HOST:PORT"):
        open_executor("ray://127.0.0.1:1")
    with pytest.raises(ValueError, match="dask://HOST:PORT"):
        dask_address("dask://no-port")
    assert dask_address("dask://127.0.0.1:8786") == "tcp://127.0.0.1:8786"
