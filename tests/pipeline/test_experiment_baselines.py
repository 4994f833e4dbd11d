"""An experiment keeps the real baseline ladders its analysis used in the records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from codeclab.codecs import reference_codec_source
from codeclab.config import Settings
from codeclab.designers.base import Design
from codeclab.lab import Lab
from codeclab.pipeline.analysis import Target
from codeclab.pipeline.experiment import ExperimentPlan, run_experiment
from codeclab.sandbox.jobs import SandboxSettings
from codeclab.video.clips import prepare_clip

FRAMES = 8


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    data = tmp_path / "data"
    settings = Settings(data_dir=data, sandbox=SandboxSettings(scratch_root=data / "scratch"))
    with Lab.open(settings) as opened:
        yield opened


def test_each_ladder_is_recorded_once_per_cache_key(
    lab: Lab, clips_dir: Path, tmp_path: Path
) -> None:
    clip = prepare_clip(str(clips_dir / "carphone_qcif.y4m"), tmp_path / "clip", frames=FRAMES)
    plan = ExperimentPlan(
        clip=clip,
        qualities=(40,),
        target=Target(min_vmaf=None),
        baselines=("x264",),
        with_vmaf=False,
        publish="never",
    )
    design = Design(reference_codec_source("intra_dct"), "intra", designer="test")

    first = run_experiment(lab, design, plan, workdir=tmp_path / "w1")
    second = run_experiment(lab, design, plan, workdir=tmp_path / "w2")

    assert first.record.status == second.record.status == "completed"
    ladder = first.ladders["x264"]
    assert second.ladders["x264"].cache_key == ladder.cache_key
    (recorded,) = lab.records.list_baselines(clip.sha256)
    assert recorded.cache_key == ladder.cache_key
    assert recorded.encoder == "x264"
    assert recorded.version == ladder.version  # whole, however long the ffmpeg build line is
    assert recorded.settings == ladder.settings
    assert recorded.points == [point.to_dict() for point in ladder.points]
    assert [p["bits_per_second"] for p in recorded.points] == [
        p.bits_per_second for p in ladder.points
    ]
    assert lab.records.get_baseline(ladder.cache_key) == recorded


def test_an_experiment_without_baselines_records_none(
    lab: Lab, clips_dir: Path, tmp_path: Path
) -> None:
    clip = prepare_clip(str(clips_dir / "carphone_qcif.y4m"), tmp_path / "clip", frames=4)
    plan = ExperimentPlan(
        clip=clip,
        qualities=(40,),
        target=Target(min_vmaf=None),
        baselines=(),
        with_vmaf=False,
        publish="never",
    )
    design = Design(reference_codec_source("intra_dct"), "intra", designer="test")

    outcome = run_experiment(lab, design, plan, workdir=tmp_path / "w")

    assert outcome.record.status == "completed"
    assert lab.records.list_baselines(clip.sha256) == []
