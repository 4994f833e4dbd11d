"""The `codeclab` command: thin Typer commands over the library; no logic lives here."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from codeclab import __version__
from codeclab.codec.validate import CodecRejected, validate_source
from codeclab.codecs import REFERENCE_CODECS, reference_codec_source
from codeclab.config import ConfigError, Settings, load_settings
from codeclab.pipeline.evaluate import DEFAULT_QUALITIES, Evaluation, evaluate_codec
from codeclab.video.clips import list_builtin_clips, prepare_clip

app = typer.Typer(
    help="codeclab: an autonomous lab that designs video codecs and tests them honestly.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
errors = Console(stderr=True)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="TOML settings file (default: ./codeclab.toml)")
]
DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Where codeclab keeps its data and caches")
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
    return typer.Exit(code)


def _settings(config: Path | None, data_dir: Path | None) -> Settings:
    try:
        return load_settings(config_path=config, data_dir=data_dir)
    except ConfigError as exc:
        raise _fail(str(exc), 2) from None


def load_codec(spec: str) -> tuple[str, str]:
    """(name, source) of `builtin:NAME` or a codec file path."""
    if spec.startswith("builtin:"):
        name = spec.removeprefix("builtin:")
        return name, reference_codec_source(name)
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"{spec}: no such codec file (or use builtin:{'|'.join(REFERENCE_CODECS)})")
    try:
        return path.name, path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{spec}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _parse_qualities(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise _fail(f"--quality takes integers like 20,40,60,80, got {text!r}", 2) from None


def _db(value: float) -> str:
    return "inf (lossless)" if math.isinf(value) else f"{value:.2f}"


def _print_evaluation(evaluation: Evaluation) -> None:
    clip = evaluation.clip
    console.print(
        f"[bold]{evaluation.codec_name}[/] ({evaluation.codec_sha256[:12]}) on "
        f"[bold]{clip.name}[/] {clip.raw.format.describe()}, {clip.raw.frame_count} frames "
        f"from {clip.start}, clip sha256 {clip.sha256[:12]}"
    )
    table = Table(show_lines=False)
    for column in (
        "quality",
        "bytes",
        "kbit/s",
        "bpp",
        "PSNR-Y dB",
        "PSNR-YUV dB",
        "SSIM-Y",
        "encode s",
        "decode s",
        "isolation",
    ):
        table.add_column(column, justify="right")
    for point in evaluation.points:
        if not point.ok or point.rate is None or point.metrics is None:
            table.add_row(
                str(point.quality),
                f"[red]failed in {point.failed_phase}[/]",
                *[""] * 5,
                f"{point.encode_seconds:.2f}",
                f"{point.decode_seconds:.2f}",
                point.isolation,
            )
            continue
        summary = point.metrics.summary
        table.add_row(
            str(point.quality),
            f"{point.rate.stream_bytes:,}",
            f"{point.rate.kbps:.1f}",
            f"{point.rate.bits_per_pixel:.4f}",
            _db(summary.psnr_y_mean),
            _db(summary.psnr_yuv_mean),
            f"{summary.ssim_y_mean:.4f}",
            f"{point.encode_seconds:.2f}",
            f"{point.decode_seconds:.2f}",
            point.isolation,
        )
    console.print(table)
    console.print(
        "PSNR columns are the mean of per-frame PSNR; PSNR-YUV weights Y:U:V as 6:1:1. "
        "kbit/s counts every byte of the container.",
        style="dim",
    )
    for point in evaluation.points:
        if not point.ok:
            errors.print(f"quality {point.quality}: {point.error}", highlight=False, markup=False)


@app.command("eval")
def eval_command(
    codec: Annotated[str, typer.Argument(help="Codec module path, or builtin:NAME")],
    clip: Annotated[str, typer.Option(help="Clip path (Y4M, MP4, MKV, ...) or builtin:NAME")],
    quality: Annotated[
        str, typer.Option(help="Comma-separated quality values 0-100")
    ] = ",".join(map(str, DEFAULT_QUALITIES)),
    frames: Annotated[int | None, typer.Option(help="Take at most N frames", min=1)] = None,
    start: Annotated[int, typer.Option(help="Skip the first S frames", min=0)] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results here")] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Validate a codec, run it sandboxed on a clip at each quality, and measure it."""
    settings = _settings(config, data_dir)
    qualities = _parse_qualities(quality)
    try:
        name, source = load_codec(codec)
        validate_source(source, filename=name).raise_for_violations(codec)
    except CodecRejected as exc:
        raise _fail(str(exc), 2) from None
    except ValueError as exc:
        raise _fail(str(exc), 2) from None
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="codeclab-eval-") as tmp:
        workdir = Path(tmp)
        try:
            prepared = prepare_clip(
                clip, workdir, start=start, frames=frames, cache_dir=settings.cache_dir
            )
        except ValueError as exc:
            raise _fail(str(exc), 2) from None
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=errors,
            transient=True,
        ) as bar:
            tasks: dict[str, TaskID] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total)
                bar.update(tasks[stage], completed=done, total=total)

            evaluation = evaluate_codec(
                source,
                prepared,
                qualities,
                workdir=workdir,
                codec_name=name,
                settings=settings.sandbox,
                progress=progress,
            )
        _print_evaluation(evaluation)
        if json_out is not None:
            json_out.write_text(json.dumps(evaluation.to_dict(), indent=2) + "\n")
            console.print(f"results written to {json_out}")
    if not evaluation.ok:
        raise typer.Exit(1)


@app.command("validate")
def validate_command(
    codec: Annotated[str, typer.Argument(help="Codec module path, or builtin:NAME")],
) -> None:
    """Check a codec statically (never runs it): contract, imports, names, sizes."""
    try:
        name, source = load_codec(codec)
    except ValueError as exc:
        raise _fail(str(exc), 2) from None
    report = validate_source(source, filename=name)
    if not report.ok:
        errors.print(f"{codec}: rejected", highlight=False)
        for violation in report.violations:
            errors.print(f"  {violation}", highlight=False, markup=False)
        raise typer.Exit(2)
    console.print(f"{codec}: valid ({report.size:,} bytes, sha256 {report.sha256[:12]})")


@app.command("clips")
def clips_command() -> None:
    """List the built-in clips (generated by codeclab, deterministic)."""
    table = Table()
    for column in ("name", "size", "fps", "frames", "description"):
        table.add_column(column)
    for info in list_builtin_clips():
        table.add_row(
            f"builtin:{info.name}",
            f"{info.width}x{info.height}",
            f"{float(info.fps):g}",
            str(info.frame_count),
            info.description,
        )
    console.print(table)


@app.command("doctor")
def doctor_command(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Report what this machine gives the lab: ffmpeg, sandbox isolation, versions."""
    from codeclab.doctor import collect_report

    settings = _settings(config, data_dir)
    table = Table(show_header=False)
    table.add_column("check")
    table.add_column("result")
    table.add_row("codeclab", __version__)
    for check, result in collect_report(settings):
        table.add_row(check, result)
    console.print(table)
