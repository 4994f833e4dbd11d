"""End to end through the sandboxes: rate from the real container, quality from
the decoder's own frames."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from codeclab.codec.bitstream import HEADER_SIZE, TRAILER_SIZE
from codeclab.codec.validate import CodecRejected
from codeclab.codecs import reference_codec_source
from codeclab.pipeline.evaluate import evaluate_codec
from codeclab.sandbox.jobs import SandboxSettings
from codeclab.video.clips import PreparedClip, prepare_clip


@pytest.fixture
def settings(tmp_path: Path) -> SandboxSettings:
    return SandboxSettings(scratch_root=tmp_path / "scratch")


def test_lossless_codec_measures_infinite_psnr_and_the_real_rate(
    tiny_prepared_clip: PreparedClip,
    lossless_source: str,
    settings: SandboxSettings,
    tmp_path: Path,
) -> None:
    evaluation = evaluate_codec(
        lossless_source, tiny_prepared_clip, [50], workdir=tmp_path, settings=settings
    )
    assert evaluation.ok
    (point,) = evaluation.points
    assert point.metrics is not None and point.rate is not None
    assert math.isinf(point.metrics.summary.psnr_y_mean)
    assert point.metrics.summary.ssim_y_mean == pytest.approx(1.0)
    # the rate counts the whole container: header, framing and trailer included
    noise_bytes = tiny_prepared_clip.raw.format.frame_bytes * tiny_prepared_clip.raw.frame_count
    assert point.rate.stream_bytes > noise_bytes  # zlib cannot shrink uniform noise
    assert point.rate.stream_bytes >= noise_bytes + HEADER_SIZE + TRAILER_SIZE
    duration = tiny_prepared_clip.raw.frame_count / 25
    assert point.rate.bits_per_second == pytest.approx(point.rate.stream_bytes * 8 / duration)


def test_decoder_returning_one_frame_too_few_fails_verification(
    tiny_prepared_clip: PreparedClip,
    lossless_source: str,
    settings: SandboxSettings,
    tmp_path: Path,
) -> None:
    source = lossless_source.replace(
        "    def decode(self, packet):\n",
        "    def decode(self, packet):\n"
        "        self.count = getattr(self, 'count', 0) + 1\n"
        "        if self.count == 4:\n"
        "            return []\n",
    ).replace("getattr(self, 'count', 0)", "self.count")
    source = source.replace(
        "        self.height = height\n", "        self.height = height\n        self.count = 0\n"
    )
    evaluation = evaluate_codec(
        source, tiny_prepared_clip, [50], workdir=tmp_path, settings=settings
    )
    (point,) = evaluation.points
    assert not point.ok
    assert point.failed_phase == "verification"
    assert point.error == "decoder returned 3 frames; the clip has 4"


def test_codec_breaking_a_rule_is_rejected_before_it_runs(
    tiny_prepared_clip: PreparedClip,
    lossless_source: str,
    settings: SandboxSettings,
    tmp_path: Path,
) -> None:
    source = "import os\n" + lossless_source
    with pytest.raises(CodecRejected, match="os"):
        evaluate_codec(source, tiny_prepared_clip, [50], workdir=tmp_path, settings=settings)
    assert not list(tmp_path.glob("decoded-*"))


def test_quality_outside_0_to_100_is_refused(
    tiny_prepared_clip: PreparedClip,
    lossless_source: str,
    settings: SandboxSettings,
    tmp_path: Path,
) -> None:
    with pytest.raises(ValueError, match=r"0\.\.100"):
        evaluate_codec(
            lossless_source, tiny_prepared_clip, [101], workdir=tmp_path, settings=settings
        )


@pytest.mark.slow
@pytest.mark.parametrize("codec", ["intra_dct", "inter_dct"])
@pytest.mark.parametrize("clip_name", ["carphone_qcif.y4m", "bikes.mp4"])
def test_reference_codecs_give_rising_curves_on_real_clips(
    codec: str, clip_name: str, clips_dir: Path, settings: SandboxSettings, tmp_path: Path
) -> None:
    clip = prepare_clip(str(clips_dir / clip_name), tmp_path / "work", frames=12)
    evaluation = evaluate_codec(
        reference_codec_source(codec),
        clip,
        [20, 50, 80],
        workdir=tmp_path,
        codec_name=codec,
        settings=settings,
    )
    assert evaluation.ok, [p.error for p in evaluation.points]
    rates = [p.rate.bits_per_second for p in evaluation.points if p.rate]
    psnrs = [p.metrics.summary.psnr_y_mean for p in evaluation.points if p.metrics]
    assert np.all(np.diff(rates) > 0), rates
    assert np.all(np.diff(psnrs) > 0), psnrs
    assert psnrs[-1] > 34.0
