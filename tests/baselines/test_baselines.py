"""Baseline ladders: real x264 / x265 / SVT-AV1 encodes through ffmpeg, measured by the lab."""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from codeclab.baselines import (
    BASELINE_ENCODERS,
    BaselineEncoder,
    BaselineError,
    BaselineLadder,
    run_baseline,
    run_baselines,
    stream_path,
)
from codeclab.baselines import encoders as encoders_module
from codeclab.baselines.cache import ResultCache
from codeclab.metrics.bjontegaard import bd_rate
from codeclab.video.clips import PreparedClip, prepare_clip
from codeclab.video.frames import Frame, VideoFormat
from codeclab.video.rawfile import write_raw

CLIPS = Path(__file__).resolve().parents[2] / ".." / "shared" / "clips"
CARPHONE = "carphone_qcif.y4m"
ENCODER_NAMES = ("x264", "x265", "svtav1")
X264 = BASELINE_ENCODERS["x264"]

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Computed:
    """Ladders of every default encoder on one clip, and where they were written."""

    clip: PreparedClip
    ladders: dict[str, BaselineLadder]
    workdir: Path


@pytest.fixture(scope="module")
def clips() -> Path:
    if not (CLIPS / CARPHONE).is_file():
        pytest.skip(f"real test clips not found in {CLIPS.resolve()}")
    return CLIPS


@pytest.fixture(scope="module")
def carphone30(clips: Path, tmp_path_factory: pytest.TempPathFactory) -> Computed:
    """All three default ladders on the first 30 frames of carphone, without VMAF."""
    root = tmp_path_factory.mktemp("carphone30")
    clip = prepare_clip(str(clips / CARPHONE), root / "clip", frames=30)
    ladders = run_baselines(
        clip, ENCODER_NAMES, cache_dir=root / "cache", workdir=root / "work", with_vmaf=False
    )
    return Computed(clip, ladders, root / "work")


@pytest.fixture
def carphone10(clips: Path, tmp_path: Path) -> PreparedClip:
    return prepare_clip(str(clips / CARPHONE), tmp_path / "clip", frames=10)


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path / "work"


@pytest.fixture
def ffmpeg_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every ffmpeg command the baselines run from now on (they still run for real)."""
    calls: list[list[str]] = []
    real = encoders_module.run_ffmpeg

    def counting(command: Sequence[str], *, what: str, stdin: bytes | None = None) -> object:
        calls.append(list(command))
        return real(command, what=what, stdin=stdin)

    monkeypatch.setattr(encoders_module, "run_ffmpeg", counting)
    return calls


def x264_small(
    clip: PreparedClip, cache_dir: Path, workdir: Path, **changes: Any
) -> BaselineLadder:
    encoder = replace(X264, **changes) if changes else X264
    return run_baseline(clip, encoder, cache_dir=cache_dir, workdir=workdir, with_vmaf=False)


def measured(ladder: BaselineLadder) -> list[tuple[int, int, float, float]]:
    """What a recomputation must reproduce exactly (timings differ from run to run)."""
    return [(p.crf, p.stream_bytes, p.psnr_y, p.ssim_y) for p in ladder.points]


def cache_file(cache_dir: Path, ladder: BaselineLadder) -> Path:
    return ResultCache(cache_dir).path(ladder.encoder, ladder.cache_key)


# --- the ladders --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ENCODER_NAMES)
def test_default_ladder_has_four_points_or_more_with_rate_and_psnr_falling_as_crf_rises(
    carphone30: Computed, name: str
) -> None:
    points = carphone30.ladders[name].points
    assert len(points) >= 4
    crfs = [p.crf for p in points]
    assert crfs == sorted(crfs)
    for lower, higher in itertools.pairwise(points):
        assert higher.bits_per_second < lower.bits_per_second
        assert higher.psnr_y < lower.psnr_y
        assert higher.ssim_y < lower.ssim_y


@pytest.mark.parametrize("name", ENCODER_NAMES)
def test_rate_is_the_elementary_stream_size_over_the_clip_duration(
    carphone30: Computed, name: str
) -> None:
    ladder = carphone30.ladders[name]
    clip = carphone30.clip
    for point in ladder.points:
        size = stream_path(carphone30.workdir, ladder, point.crf).stat().st_size
        assert point.stream_bytes == size
        expected = Fraction(size * 8) * clip.format.fps / clip.frame_count
        assert point.bits_per_second == pytest.approx(float(expected), rel=1e-12)
        pixels = clip.format.width * clip.format.height * clip.frame_count
        assert point.bits_per_pixel == pytest.approx(size * 8 / pixels, rel=1e-12)


def test_streams_are_bare_elementary_streams_without_encoder_banners(carphone30: Computed) -> None:
    heads = {}
    for name, ladder in carphone30.ladders.items():
        data = stream_path(carphone30.workdir, ladder, ladder.points[0].crf).read_bytes()
        assert b"x264 - core" not in data
        assert b"x265 (build" not in data
        heads[name] = data[:4]
    assert heads["x264"] == b"\x00\x00\x00\x01"  # Annex B start code
    assert heads["x265"] == b"\x00\x00\x00\x01"
    assert heads["svtav1"][:2] == b"\x12\x00"  # OBU stream: a temporal delimiter first


@pytest.mark.parametrize("name", ENCODER_NAMES)
def test_every_frame_of_the_clip_is_decoded_and_measured(carphone30: Computed, name: str) -> None:
    for point in carphone30.ladders[name].points:
        assert point.metrics["quality"]["frame_count"] == carphone30.clip.frame_count
        assert point.per_frame is not None
        assert len(point.per_frame["psnr_y"]) == carphone30.clip.frame_count
        assert len(point.per_frame["ssim_y"]) == carphone30.clip.frame_count
        assert point.vmaf is None
        assert point.metrics["vmaf"] is None


def test_x265_and_svtav1_need_fewer_bits_than_x264_at_equal_psnr(carphone30: Computed) -> None:
    reference = carphone30.ladders["x264"].curve("psnr_y")
    for name in ("x265", "svtav1"):
        result = bd_rate(reference, carphone30.ladders[name].curve("psnr_y"))
        assert result.ok, result.reason
        assert result.value is not None and result.value < 0


def test_ladder_records_versions_and_exact_command_lines(carphone30: Computed) -> None:
    banners = {"x264": "x264 core", "x265": "x265 ", "svtav1": "SVT-AV1 v"}
    for name, ladder in carphone30.ladders.items():
        assert ladder.version.startswith("ffmpeg version ")
        assert banners[name] in ladder.version
        assert ladder.clip_sha256 == carphone30.clip.sha256
        for point in ladder.points:
            command = ladder.settings["encode_commands"][str(point.crf)]
            assert command[command.index("-crf") + 1] == str(point.crf)
            assert command[command.index("-preset") + 1] == ladder.preset


def test_ladder_round_trips_through_json(carphone30: Computed) -> None:
    for ladder in carphone30.ladders.values():
        text = json.dumps(ladder.to_dict(), allow_nan=False)
        assert BaselineLadder.from_dict(json.loads(text)) == ladder


def test_curve_is_rate_sorted_and_refuses_vmaf_measured_without_it(carphone30: Computed) -> None:
    ladder = carphone30.ladders["x264"]
    curve = ladder.curve("psnr_y")
    assert [rate for rate, _ in curve] == sorted(p.bits_per_second for p in ladder.points)
    with pytest.raises(ValueError, match="with_vmaf=False"):
        ladder.curve("vmaf")
    with pytest.raises(ValueError, match="unknown quality metric"):
        ladder.curve("psnr_x")


# --- VMAF ---------------------------------------------------------------------------------


def test_with_vmaf_adds_vmaf_and_is_part_of_the_cache_key(
    carphone10: PreparedClip, cache_dir: Path, workdir: Path
) -> None:
    encoder = replace(X264, crf_ladder=(22, 32, 42))
    plain = run_baseline(carphone10, encoder, cache_dir=cache_dir, workdir=workdir, with_vmaf=False)
    scored = run_baseline(carphone10, encoder, cache_dir=cache_dir, workdir=workdir)
    assert not scored.cached
    assert scored.cache_key != plain.cache_key
    for point in scored.points:
        assert point.vmaf is not None and 0 <= point.vmaf <= 100
        assert point.ms_ssim is None  # 176x144 is below MS-SSIM's minimum size
        assert point.per_frame is not None
        assert len(point.per_frame["vmaf"]) == carphone10.frame_count
        assert point.metrics["vmaf"]["model"] == "vmaf_v0.6.1"
    vmafs = [vmaf for _, vmaf in scored.curve("vmaf")]
    assert vmafs == sorted(vmafs)  # more bits, higher VMAF
    with pytest.raises(ValueError, match="MS-SSIM needs at least"):
        scored.curve("ms_ssim")


# --- the cache ----------------------------------------------------------------------------


def test_second_run_comes_from_the_cache_without_running_ffmpeg(
    carphone10: PreparedClip, cache_dir: Path, workdir: Path, ffmpeg_calls: list[list[str]]
) -> None:
    first = x264_small(carphone10, cache_dir, workdir)
    entry = cache_file(cache_dir, first)
    written = entry.stat().st_mtime_ns
    before = len(ffmpeg_calls)
    second = x264_small(carphone10, cache_dir, workdir)
    assert before >= 2 * len(first.points)  # the first run encoded and decoded every point
    assert not first.cached
    assert second.cached
    assert len(ffmpeg_calls) == before
    assert entry.stat().st_mtime_ns == written
    assert second == first


@pytest.mark.parametrize(
    "changes",
    [
        {"crf_ladder": (20, 27, 32, 37, 42)},
        {"preset": "fast"},
        {"extra_args": ("-threads", "1", "-bsf:v", "filter_units=remove_types=6")},
    ],
    ids=["crf_ladder", "preset", "extra_args"],
)
def test_a_changed_setting_is_recomputed(
    carphone10: PreparedClip,
    cache_dir: Path,
    workdir: Path,
    ffmpeg_calls: list[list[str]],
    changes: dict[str, Any],
) -> None:
    first = x264_small(carphone10, cache_dir, workdir)
    before = len(ffmpeg_calls)
    changed = x264_small(carphone10, cache_dir, workdir, **changes)
    assert not changed.cached
    assert len(ffmpeg_calls) - before == 2 * len(changed.points)  # encode + decode per point
    assert changed.cache_key != first.cache_key
    assert cache_file(cache_dir, first).is_file() and cache_file(cache_dir, changed).is_file()
    setting, value = next(iter(changes.items()))
    expected = list(value) if isinstance(value, tuple) else value
    assert changed.settings["encoder"][setting] == expected


def test_a_different_clip_is_recomputed(
    clips: Path, carphone10: PreparedClip, cache_dir: Path, workdir: Path, tmp_path: Path
) -> None:
    shifted = prepare_clip(str(clips / CARPHONE), tmp_path / "shifted", start=1, frames=10)
    first = x264_small(carphone10, cache_dir, workdir)
    second = x264_small(shifted, cache_dir, workdir)
    assert shifted.sha256 != carphone10.sha256
    assert not second.cached
    assert second.clip_sha256 == shifted.sha256
    assert [p.stream_bytes for p in second.points] != [p.stream_bytes for p in first.points]


@pytest.mark.parametrize(
    "garbage",
    ['{"cache_format": 1, "key": "trunc', "{}", "null"],
    ids=["truncated", "empty-object", "not-an-object"],
)
def test_a_corrupt_cache_file_is_recomputed_with_a_warning(
    carphone10: PreparedClip,
    cache_dir: Path,
    workdir: Path,
    caplog: pytest.LogCaptureFixture,
    garbage: str,
) -> None:
    first = x264_small(carphone10, cache_dir, workdir)
    entry = cache_file(cache_dir, first)
    entry.write_text(garbage)
    with caplog.at_level(logging.WARNING, logger="codeclab.baselines"):
        again = x264_small(carphone10, cache_dir, workdir)
    assert not again.cached
    assert measured(again) == measured(first)
    assert str(entry) in caplog.text
    assert json.loads(entry.read_text())["payload"]["encoder"] == "x264"
    assert x264_small(carphone10, cache_dir, workdir).cached


def test_a_cache_entry_with_an_unreadable_ladder_is_recomputed(
    carphone10: PreparedClip, cache_dir: Path, workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = x264_small(carphone10, cache_dir, workdir)
    entry = cache_file(cache_dir, first)
    stored = json.loads(entry.read_text())
    del stored["payload"]["points"][0]["psnr_y"]
    entry.write_text(json.dumps(stored))
    with caplog.at_level(logging.WARNING, logger="codeclab.baselines"):
        again = x264_small(carphone10, cache_dir, workdir)
    assert not again.cached
    assert "unreadable ladder" in caplog.text


# --- errors -------------------------------------------------------------------------------


def test_an_encode_that_drops_frames_is_refused(
    carphone10: PreparedClip, cache_dir: Path, workdir: Path
) -> None:
    dropping = replace(X264, crf_ladder=(30,), extra_args=(*X264.extra_args, "-frames:v", "5"))
    with pytest.raises(BaselineError, match=r"decodes to 5 frames .* has 10"):
        run_baseline(carphone10, dropping, cache_dir=cache_dir, workdir=workdir, with_vmaf=False)
    assert list(workdir.rglob("*.yuv")) == []
    assert not cache_dir.exists() or list(cache_dir.iterdir()) == []


def test_an_ffmpeg_failure_names_the_encode_and_the_command(
    carphone10: PreparedClip, cache_dir: Path, workdir: Path
) -> None:
    broken = replace(X264, crf_ladder=(30,), preset="no-such-preset")
    with pytest.raises(BaselineError, match=r"encoding x264 crf 30 of carphone_qcif\.y4m") as err:
        run_baseline(carphone10, broken, cache_dir=cache_dir, workdir=workdir, with_vmaf=False)
    assert "-preset no-such-preset -crf 30" in str(err.value)


@pytest.mark.parametrize("name", ["x264", "x265"])
def test_odd_frame_sizes_are_refused_before_running_ffmpeg_for_x264_and_x265(
    name: str, cache_dir: Path, workdir: Path, ffmpeg_calls: list[list[str]], tmp_path: Path
) -> None:
    fmt = VideoFormat(33, 24, Fraction(25))
    raw = write_raw(tmp_path / "odd.yuv", fmt, [Frame.blank(fmt)] * 2)
    clip = PreparedClip("odd.yuv", str(raw.path), raw, 0, "0" * 64, "raw")
    with pytest.raises(BaselineError, match=r"odd\.yuv: .* even width and height .* 33x24"):
        run_baseline(clip, name, cache_dir=cache_dir, workdir=workdir, with_vmaf=False)
    assert ffmpeg_calls == []


def test_an_unknown_encoder_name_is_refused(
    carphone10: PreparedClip, cache_dir: Path, workdir: Path
) -> None:
    with pytest.raises(BaselineError, match="unknown baseline encoder 'vp9'"):
        run_baseline(carphone10, "vp9", cache_dir=cache_dir, workdir=workdir)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"crf_ladder": ()}, "ladder is empty"),
        ({"crf_ladder": (22, 52)}, r"CRF 52 is not an integer in 0\.\.51"),
        ({"crf_ladder": (22, 22)}, "repeats"),
        ({"library": "libvpx"}, "unknown encoder library"),
        ({"preset": ""}, "preset is empty"),
    ],
)
def test_an_invalid_encoder_is_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace(X264, **changes)


def test_svtav1_accepts_crf_up_to_63_and_encoders_round_trip() -> None:
    encoder = replace(BASELINE_ENCODERS["svtav1"], crf_ladder=(10, 63))
    assert BaselineEncoder.from_dict(json.loads(json.dumps(encoder.to_dict()))) == encoder
    for default in BASELINE_ENCODERS.values():
        assert BaselineEncoder.from_dict(default.to_dict()) == default
