"""A codec rejected by static validation is shown with its source, marked as never run."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from codeclab.codecs import reference_codec_source
from codeclab.config import Settings
from codeclab.designers.base import Design
from codeclab.lab import Lab
from codeclab.pipeline.experiment import ExperimentPlan, run_experiment
from codeclab.sandbox.jobs import SandboxSettings
from codeclab.video.clips import PreparedClip
from codeclab.web.access import Access
from codeclab.web.app import create_app
from tests.web.conftest import ADMIN_TOKEN, TEST_BASE


def test_experiment_page_shows_the_rejected_source_and_the_rule(
    tmp_path: Path, tiny_prepared_clip: PreparedClip
) -> None:
    data = tmp_path / "data"
    settings = Settings(
        data_dir=data, sandbox=SandboxSettings(scratch_root=data / "scratch"), public_url=TEST_BASE
    )
    source = "import os\n" + reference_codec_source("intra_dct")
    with Lab.open(settings) as lab:
        outcome = run_experiment(
            lab,
            Design(source, "Reads a file it should not", designer="test"),
            ExperimentPlan(clip=tiny_prepared_clip, baselines=(), with_vmaf=False),
            workdir=tmp_path / "work",
        )
    app = create_app(settings, access=Access(admin_token=ADMIN_TOKEN))
    with TestClient(app, base_url=TEST_BASE) as client:
        page = client.get(f"/experiments/{outcome.record.id}")
    assert page.status_code == 200
    assert "Rejected by static validation: this source was never run." in page.text
    assert "[import]" in page.text  # the rule, in the phase log
    assert "intra_dct" in page.text  # the source itself, highlighted
