"""An experiment through every phase into real storage: records, objects, publish."""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from codeclab.codec.contract import MAX_SOURCE_BYTES
from codeclab.codecs import reference_codec_source
from codeclab.config import Settings
from codeclab.designers.base import Design
from codeclab.designers.offline.render import render
from codeclab.designers.offline.space import default_genome
from codeclab.lab import Lab
from codeclab.metrics.quality import compare_frames
from codeclab.pipeline.analysis import Target
from codeclab.pipeline.experiment import ExperimentPlan, republish, run_experiment
from codeclab.sandbox.jobs import SandboxSettings
from codeclab.storage.objects import LocalStore
from codeclab.storage.records import PublishStatus
from codeclab.video.clips import PreparedClip, prepare_clip
from codeclab.video.y4m import Y4MReader
from tests.storage.test_package import NumpyOnlyPython, numpy_only  # noqa: F401

FRAMES = 8


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    data = tmp_path / "data"
    settings = Settings(data_dir=data, sandbox=SandboxSettings(scratch_root=data / "scratch"))
    with Lab.open(settings) as opened:
        yield opened


@pytest.fixture
def carphone(clips_dir: Path, tmp_path: Path) -> PreparedClip:
    return prepare_clip(str(clips_dir / "carphone_qcif.y4m"), tmp_path / "clip", frames=FRAMES)


def _plan(clip: PreparedClip, **changes: object) -> ExperimentPlan:
    plan = ExperimentPlan(
        clip=clip,
        qualities=(30, 70),
        target=Target(min_vmaf=None),
        baselines=(),
        with_vmaf=False,
        publish="always",
    )
    return replace(plan, **changes)  # type: ignore[arg-type]


def _design() -> Design:
    return Design(reference_codec_source("inter_dct"), "reference inter codec", designer="test")


def _default_offline_design() -> Design:
    """The offline designer's default: CABAC, 6-tap quarter-pel, B-frames (packets that decode
    to no frame and packets that decode to several)."""
    return Design(render(default_genome()), "offline default", designer="offline")


@pytest.mark.slow
@pytest.mark.parametrize("design", [_design, _default_offline_design], ids=["inter_dct", "offline"])
def test_published_package_decodes_bit_exactly_with_only_numpy(
    lab: Lab,
    carphone: PreparedClip,
    tmp_path: Path,
    numpy_only: NumpyOnlyPython,  # noqa: F811
    design: Callable[[], Design],
) -> None:
    outcome = run_experiment(lab, design(), _plan(carphone), workdir=tmp_path / "work")
    record = outcome.record
    assert record.status == "completed", record.error
    assert record.publish_status is PublishStatus.PUBLISHED
    assert [p.phase for p in record.phases] == [
        "design", "validation", "deployment", "execution", "verification", "analysis", "publish",
    ]  # fmt: skip
    package = tmp_path / "package.zip"
    package.write_bytes(lab.store.get_bytes(record.artifacts["package"]))
    unzipped = tmp_path / "unzipped"
    with zipfile.ZipFile(package) as archive:
        archive.extractall(unzipped)
    run = numpy_only.run(["decoder.py", "stream.bin", "-o", "out.y4m"], cwd=unzipped)
    assert run.returncode == 0, run.stderr
    with Y4MReader(unzipped / "out.y4m") as reader:
        frames = list(reader)
    assert len(frames) == FRAMES
    # the same PSNR, frame by frame, as the lab measured from its own sandboxed decode
    quality = record.comparison["operating_point"]["quality_param"]
    measured = lab.records.get_frames(record.id)[quality]["quality"]
    for index, frame in enumerate(frames):
        again = compare_frames(carphone.raw.frame(index), frame, index)
        assert again.psnr_y == pytest.approx(measured[index]["psnr_y"], abs=1e-9)
        assert again.mse_u == pytest.approx(measured[index]["mse_u"], abs=1e-9)
    # decompress_video_frame(data, 5) gives frame 5
    script = (
        "import decoder, numpy\n"
        "data = open('stream.bin', 'rb').read()\n"
        "y, u, v = decoder.decompress_video_frame(data, 5)\n"
        "numpy.save('f5.npy', y)\n"
    )
    run = numpy_only.run(["-c", script], cwd=unzipped)
    assert run.returncode == 0, run.stderr
    np.testing.assert_array_equal(np.load(unzipped / "f5.npy"), frames[5].y)


class FailingStore(LocalStore):
    """A real local store whose package uploads fail, as a full disk or a network error would."""

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None):  # type: ignore[no-untyped-def]
        if key.endswith("package.zip"):
            raise OSError("simulated upload failure")
        return super().put_bytes(key, data, content_type)


@pytest.mark.slow
def test_failed_upload_is_recorded_and_retried_without_dangling_keys(
    lab: Lab, carphone: PreparedClip, tmp_path: Path
) -> None:
    good_store = lab.store
    assert isinstance(good_store, LocalStore)
    lab.store = FailingStore(good_store.root, signing_secret=b"s" * 32)
    outcome = run_experiment(lab, _design(), _plan(carphone), workdir=tmp_path / "work")
    record = outcome.record
    assert record.status == "completed"  # the experiment stands; only publishing failed
    assert record.publish_status is PublishStatus.FAILED
    assert "simulated upload failure" in (record.publish_error or "")
    assert record.artifacts == {}  # never a record pointing at a missing object
    lab.store = good_store
    result = republish(lab, record.id, workdir=tmp_path / "retry")
    assert result.ok, result.error
    again = lab.records.get_experiment(record.id)
    assert again.publish_status is PublishStatus.PUBLISHED
    assert all(lab.store.exists(key) for key in again.artifacts.values())
    first = lab.store.get_bytes(again.artifacts["package"])
    republish(lab, record.id, workdir=tmp_path / "retry2")  # idempotent
    assert lab.store.get_bytes(again.artifacts["package"]) == first


def test_rejected_codec_is_recorded_with_the_rule(
    lab: Lab, tiny_prepared_clip: PreparedClip, tmp_path: Path
) -> None:
    design = Design("import os\n" + reference_codec_source("intra_dct"), "bad", designer="test")
    outcome = run_experiment(lab, design, _plan(tiny_prepared_clip), workdir=tmp_path / "w")
    record = outcome.record
    assert record.status == "failed"
    assert record.failed_phase == "validation"
    assert "[import]" in (record.error or "") and "'os'" in (record.error or "")
    # kept as text, never run: the record shows what was rejected
    assert record.codec_sha256 == hashlib.sha256(design.source.encode()).hexdigest()
    stored = lab.store.get_bytes(lab.records.get_codec(record.codec_sha256).source_key)
    assert stored.decode() == design.source
    assert [p.phase for p in record.phases] == ["design", "validation"]


def test_oversized_rejected_source_is_not_kept(
    lab: Lab, tiny_prepared_clip: PreparedClip, tmp_path: Path
) -> None:
    padding = "#" + "x" * 99 + "\n"
    source = reference_codec_source("intra_dct") + padding * (MAX_SOURCE_BYTES // 100)
    design = Design(source, "too big", designer="test")
    outcome = run_experiment(lab, design, _plan(tiny_prepared_clip), workdir=tmp_path / "w")
    assert outcome.record.failed_phase == "validation"
    assert outcome.record.codec_sha256 is None
    assert list(lab.store.list("codecs/")) == []


GREY_CODEC = """
import numpy as np


class Encoder:
    def __init__(self, width, height, fps, params):
        pass

    def encode(self, y, u, v):
        return b""


class Decoder:
    def __init__(self, width, height, fps):
        self.width = width
        self.height = height

    def decode(self, packet):
        h, w = self.height, self.width
        return [
            (
                np.full((h, w), 128, np.uint8),
                np.full(((h + 1) // 2, (w + 1) // 2), 128, np.uint8),
                np.full(((h + 1) // 2, (w + 1) // 2), 128, np.uint8),
            )
        ]
"""


def test_regenerating_instead_of_compressing_cannot_succeed(
    lab: Lab, tiny_prepared_clip: PreparedClip, tmp_path: Path
) -> None:
    """The upstream's 'compression' regenerated content: a tiny rate and a made-up picture.
    Measured against the real source, it fails the quality floor and publishes nothing."""
    plan = _plan(tiny_prepared_clip, publish="success")
    design = Design(GREY_CODEC, "regenerate a grey picture", designer="test")
    outcome = run_experiment(lab, design, plan, workdir=tmp_path / "w")
    record = outcome.record
    assert record.status == "completed"
    assert record.bitrate_bps is not None and record.bitrate_bps < 0.1e6
    assert record.psnr_y is not None and record.psnr_y < 15
    assert record.target_achieved is False
    assert record.publish_status is PublishStatus.NONE
