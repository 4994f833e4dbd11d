"""The `codeclab` command end to end (real sandboxes, real ffmpeg)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from codeclab.cli import app

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_eval_prints_a_row_per_quality_and_writes_json(
    tiny_y4m: Path, data_dir: Path, tmp_path: Path
) -> None:
    codec = Path(__file__).parent / "fixtures" / "codecs" / "lossless_zlib.py"
    out = tmp_path / "result.json"
    result = runner.invoke(
        app,
        [
            "eval",
            str(codec),
            "--clip",
            str(tiny_y4m),
            "--quality",
            "10,90",
            "--baselines",
            "",
            "--no-vmaf",
            "--data-dir",
            str(data_dir),
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "inf (lossless)" in result.output
    document = json.loads(out.read_text())
    points = document["evaluation"]["points"]
    assert [p["quality"] for p in points] == [10, 90]
    assert points[0]["metrics"]["summary"]["psnr_y_mean"] == "inf"
    assert len(points[0]["metrics"]["frames"]) == 4
    assert document["analysis"]["target_achieved"] is True


def test_eval_rejects_a_codec_that_breaks_a_rule(
    tiny_y4m: Path, data_dir: Path, tmp_path: Path
) -> None:
    codec = tmp_path / "evil.py"
    codec.write_text(
        (Path(__file__).parent / "fixtures" / "codecs" / "lossless_zlib.py")
        .read_text()
        .replace("import zlib\n", "import zlib\nimport os\n")
    )
    result = runner.invoke(
        app, ["eval", str(codec), "--clip", str(tiny_y4m), "--data-dir", str(data_dir)]
    )
    assert result.exit_code == 2
    assert "evil.py" in result.output
    assert "import" in result.output and "'os'" in result.output


def test_eval_names_a_missing_clip(data_dir: Path) -> None:
    result = runner.invoke(
        app, ["eval", "builtin:intra_dct", "--clip", "nope.y4m", "--data-dir", str(data_dir)]
    )
    assert result.exit_code == 2
    assert "nope.y4m" in result.output


def test_eval_fails_with_the_reason_when_the_decoder_breaks(
    tiny_y4m: Path, data_dir: Path, tmp_path: Path
) -> None:
    codec = tmp_path / "short.py"
    codec.write_text(
        (Path(__file__).parent / "fixtures" / "codecs" / "lossless_zlib.py")
        .read_text()
        .replace("return [(y, u, v)]", "return [(y[:-1], u, v)]")
    )
    result = runner.invoke(
        app,
        [
            "eval",
            str(codec),
            "--clip",
            str(tiny_y4m),
            "--quality",
            "50",
            "--baselines",
            "",
            "--no-vmaf",
            "--data-dir",
            str(data_dir),
        ],
    )
    assert result.exit_code == 1
    assert "plane y has shape (23, 32), expected (24, 32)" in result.output


def test_validate_accepts_the_reference_codecs() -> None:
    for name in ("intra_dct", "inter_dct"):
        result = runner.invoke(app, ["validate", f"builtin:{name}"])
        assert result.exit_code == 0, result.output
        assert "valid" in result.output


def test_clips_lists_the_builtins() -> None:
    result = runner.invoke(app, ["clips"])
    assert result.exit_code == 0
    assert "builtin:lab-cif" in result.output and "1280x720" in result.output


def test_doctor_reports_ffmpeg_and_isolation(data_dir: Path) -> None:
    result = runner.invoke(app, ["doctor", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    assert "ffmpeg version" in result.output
    assert "isolation used" in result.output


@pytest.mark.slow
def test_eval_compares_with_real_baselines_and_plots(
    clips_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "carphone.json"
    png, svg = tmp_path / "rd.png", tmp_path / "rd.svg"
    result = runner.invoke(
        app,
        [
            "eval",
            "builtin:inter_dct",
            "--clip",
            str(clips_dir / "carphone_qcif.y4m"),
            "--frames",
            "8",
            "--quality",
            "30,60,90",
            "--baselines",
            "x264",
            "--data-dir",
            str(data_dir),
            "--plot",
            str(png),
            "--plot",
            str(svg),
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    x264 = document["baselines"]["x264"]
    assert len(x264["points"]) >= 4
    assert "x264" in document["analysis"]["comparisons"]
    assert document["evaluation"]["points"][0]["vmaf"]["model"] == "vmaf_v0.6.1"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in svg.read_bytes()[:500]


@pytest.mark.slow
def test_eval_without_vmaf_compares_with_real_baselines_on_psnr(
    clips_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "carphone.json"
    result = runner.invoke(
        app,
        [
            "eval",
            "builtin:inter_dct",
            "--clip",
            str(clips_dir / "carphone_qcif.y4m"),
            "--frames",
            "6",
            "--quality",
            "30,60,90",
            "--baselines",
            "x264",
            "--no-vmaf",
            "--data-dir",
            str(data_dir),
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    comparison = json.loads(out.read_text())["analysis"]["comparisons"]["x264"]
    assert comparison["bd_rate_vmaf"] is None
    assert comparison["bd_rate_psnr_y"] is not None
