"""The `codeclab` command: thin Typer commands over the library; no logic lives here."""

from __future__ import annotations

import json
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from codeclab import __version__
from codeclab.baselines.encoders import BASELINE_ENCODERS, BaselineError
from codeclab.baselines.ladder import BaselineLadder, run_baselines
from codeclab.codec.validate import validate_source
from codeclab.codecs import REFERENCE_CODECS, reference_codec_source
from codeclab.config import PUBLISH_POLICIES, ConfigError, Settings, load_settings
from codeclab.designers.base import Design
from codeclab.lab import Lab
from codeclab.maintenance import gc_command
from codeclab.metrics.bjontegaard import bd_rate
from codeclab.metrics.vmaf import vmaf_available
from codeclab.pipeline.analysis import Target, candidate_curve
from codeclab.pipeline.evaluate import DEFAULT_QUALITIES
from codeclab.pipeline.experiment import (
    ExperimentPlan,
    RepublishError,
    republish,
    run_experiment,
)
from codeclab.pipeline.run_command import run_command
from codeclab.plots import plot_rd
from codeclab.report import (
    print_analysis,
    print_evaluation,
    print_experiment,
    print_experiment_list,
    print_ladders,
    print_record_summary,
    record_to_dict,
)
from codeclab.sandbox.jobs import run_script
from codeclab.storage.costs import human_bytes
from codeclab.storage.package import verify_package
from codeclab.storage.publish import ARTIFACT_NAMES
from codeclab.storage.records import ExperimentRecord, RecordNotFound
from codeclab.video.clips import PreparedClip, list_builtin_clips, prepare_clip
from codeclab.web.command import serve_command

app = typer.Typer(
    help="codeclab: an autonomous lab that designs video codecs and tests them honestly.",
    no_args_is_help=True,
    add_completion=False,
)
# Tables stay readable when output goes to a file or a pipe (rich would assume 80 columns).
console = Console() if sys.stdout.isatty() else Console(width=160)
errors = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, width=160)

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
        raise ValueError(
            f"{spec}: no such codec file (or use builtin:{'|'.join(REFERENCE_CODECS)})"
        )
    try:
        return path.name, path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{spec}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _parse_qualities(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise _fail(f"--quality takes integers like 20,40,60,80, got {text!r}", 2) from None


def _progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
    )


def _stage_updater(bar: Progress) -> Callable[[str, int, int], None]:
    tasks: dict[str, TaskID] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    return update


@contextmanager
def _open_lab(settings: Settings) -> Iterator[Lab]:
    try:
        lab = Lab.open(settings)
    except (ValueError, OSError) as exc:
        raise _fail(f"cannot open the lab's storage: {exc}", 2) from None
    with lab:
        yield lab


def _parse_encoders(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [n for n in names if n not in BASELINE_ENCODERS]
    if unknown:
        known = ", ".join(BASELINE_ENCODERS)
        raise _fail(f"unknown baseline encoder(s) {', '.join(unknown)}; known: {known}", 2)
    return names


def _prepare(clip: str, workdir: Path, start: int, frames: int | None, settings: Settings) -> Any:
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    try:
        return prepare_clip(clip, workdir, start=start, frames=frames, cache_dir=settings.cache_dir)
    except ValueError as exc:
        raise _fail(str(exc), 2) from None


def _ladders(
    prepared: PreparedClip, encoders: list[str], settings: Settings, workdir: Path, vmaf: bool
) -> dict[str, BaselineLadder]:
    with _progress_bar() as bar:
        task = bar.add_task("baselines", total=None)
        try:
            return run_baselines(
                prepared,
                encoders,
                cache_dir=settings.cache_dir / "baselines",
                workdir=workdir / "baselines",
                with_vmaf=vmaf,
                progress=lambda text: bar.update(task, description=text),
            )
        except (BaselineError, ValueError) as exc:
            raise _fail(str(exc), 1) from None


@app.command("eval")
def eval_command(
    codec: Annotated[str, typer.Argument(help="Codec module path, or builtin:NAME")],
    clip: Annotated[str, typer.Option(help="Clip path (Y4M, MP4, MKV, ...) or builtin:NAME")],
    quality: Annotated[str, typer.Option(help="Comma-separated quality values 0-100")] = ",".join(
        map(str, DEFAULT_QUALITIES)
    ),
    frames: Annotated[int | None, typer.Option(help="Take at most N frames", min=1)] = None,
    start: Annotated[int, typer.Option(help="Skip the first S frames", min=0)] = 0,
    baselines: Annotated[
        str, typer.Option(help="Baseline encoders to compare with; empty for none")
    ] = "x264,x265,svtav1",
    vmaf: Annotated[bool, typer.Option(help="Measure VMAF (ffmpeg libvmaf)")] = True,
    target_mbps: Annotated[float, typer.Option(help="Target: rate limit in Mbps")] = 1.0,
    target_bpp: Annotated[
        float | None, typer.Option(help="Target: rate limit in bits per pixel instead")
    ] = None,
    min_psnr: Annotated[float, typer.Option(help="Target: PSNR-Y floor in dB")] = 28.0,
    min_vmaf: Annotated[float, typer.Option(help="Target: VMAF floor (0 for none)")] = 60.0,
    plot: Annotated[
        list[Path] | None, typer.Option(help="Save the RD plot (.png or .svg); repeatable")
    ] = None,
    publish: Annotated[
        str | None, typer.Option(help="Publish: success (default), always or never")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results here")] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Validate a codec, run it sandboxed at each quality, measure it, compare it with
    real x264/x265/SVT-AV1 encodes of the same frames, record it and (if it reaches the
    target) publish it."""
    settings = _settings(config, data_dir)
    qualities = _parse_qualities(quality)
    encoders = _parse_encoders(baselines)
    if publish is not None and publish not in PUBLISH_POLICIES:
        raise _fail(f"--publish must be one of {', '.join(PUBLISH_POLICIES)}", 2)
    try:
        target = Target(
            max_mbps=target_mbps,
            max_bpp=target_bpp,
            min_psnr_y=min_psnr,
            min_vmaf=min_vmaf if vmaf and min_vmaf > 0 else None,
        )
        name, source = load_codec(codec)
        validate_source(source, filename=name).raise_for_violations(codec)
    except ValueError as exc:  # CodecRejected is a ValueError too
        raise _fail(str(exc), 2) from None
    if vmaf and not vmaf_available():
        raise _fail("this ffmpeg has no libvmaf filter; run with --no-vmaf", 2)
    with tempfile.TemporaryDirectory(prefix="codeclab-eval-") as tmp, _open_lab(settings) as lab:
        workdir = Path(tmp)
        prepared = _prepare(clip, workdir, start, frames, settings)
        plan = ExperimentPlan(
            clip=prepared,
            qualities=tuple(qualities),
            target=target,
            baselines=tuple(encoders),
            with_vmaf=vmaf,
            publish=publish or settings.publish,
        )
        design = Design(source, rationale=f"evaluation of {codec}", designer="manual")
        with _progress_bar() as bar:
            outcome = run_experiment(
                lab,
                design,
                plan,
                workdir=workdir,
                codec_name=name,
                progress=_stage_updater(bar),
            )
        record = outcome.record
        if outcome.evaluation is not None:
            print_evaluation(console, outcome.evaluation)
        if outcome.ladders:
            print_ladders(console, outcome.ladders)
        if outcome.analysis is not None:
            print_analysis(console, outcome.analysis)
        print_record_summary(console, lab, record)
        if outcome.evaluation is not None and outcome.analysis is not None:
            for path in plot or []:
                curves = {name: candidate_curve(outcome.evaluation.points, "psnr_y")}
                curves.update({k: v.curve("psnr_y") for k, v in outcome.ladders.items()})
                try:
                    plot_rd(path, curves, title=f"{prepared.name}: PSNR-Y vs rate", highlight=name)
                except ValueError as exc:
                    raise _fail(str(exc), 2) from None
                console.print(f"RD plot written to {path}")
        if json_out is not None:
            document = {
                "codeclab": __version__,
                "experiment": record_to_dict(record),
                "evaluation": outcome.evaluation.to_dict() if outcome.evaluation else None,
                "baselines": {k: v.to_dict() for k, v in outcome.ladders.items()},
                "analysis": outcome.analysis.to_dict() if outcome.analysis else None,
            }
            json_out.write_text(json.dumps(document, indent=2) + "\n")
            console.print(f"results written to {json_out}")
    if record.status != "completed":
        errors.print(
            f"{record.id} failed in {record.failed_phase}: {record.error}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)


@app.command("baseline")
def baseline_command(
    clip: Annotated[str, typer.Option(help="Clip path (Y4M, MP4, MKV, ...) or builtin:NAME")],
    frames: Annotated[int | None, typer.Option(help="Take at most N frames", min=1)] = None,
    start: Annotated[int, typer.Option(help="Skip the first S frames", min=0)] = 0,
    encoders: Annotated[str, typer.Option(help="Encoders to run")] = "x264,x265,svtav1",
    vmaf: Annotated[bool, typer.Option(help="Measure VMAF (ffmpeg libvmaf)")] = True,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results here")] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Encode a clip with the real baseline encoders and print their RD ladders."""
    settings = _settings(config, data_dir)
    names = _parse_encoders(encoders)
    if vmaf and not vmaf_available():
        raise _fail("this ffmpeg has no libvmaf filter; run with --no-vmaf", 2)
    with tempfile.TemporaryDirectory(prefix="codeclab-baseline-") as tmp:
        workdir = Path(tmp)
        prepared = _prepare(clip, workdir, start, frames, settings)
        ladders = _ladders(prepared, names, settings, workdir, vmaf)
    console.print(
        f"[bold]{prepared.name}[/] {prepared.raw.format.describe()}, "
        f"{prepared.raw.frame_count} frames, clip sha256 {prepared.sha256[:12]}"
    )
    print_ladders(console, ladders)
    reference = ladders.get("x264")
    if reference is not None:
        for name, ladder in ladders.items():
            if name != "x264":
                result = bd_rate(reference.curve("psnr_y"), ladder.curve("psnr_y"))
                text = f"{result.value:+.2f} %" if result.value is not None else result.reason
                console.print(f"BD-rate (PSNR-Y) of {name} vs x264: {text}", highlight=False)
    if json_out is not None:
        document = {
            "codeclab": __version__,
            "clip": prepared.to_dict(),
            "baselines": {k: v.to_dict() for k, v in ladders.items()},
        }
        json_out.write_text(json.dumps(document, indent=2) + "\n")
        console.print(f"results written to {json_out}")


ExperimentArgument = Annotated[str, typer.Argument(help="Experiment id (see codeclab list)")]


def _experiment(lab: Lab, exp_id: str) -> ExperimentRecord:
    try:
        return lab.records.get_experiment(exp_id)
    except RecordNotFound as exc:
        raise _fail(str(exc), 2) from None


def _parse_duration(text: str) -> timedelta:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit() or int(number) <= 0:
        raise _fail(f"--expires takes a duration like 30m, 12h or 7d, got {text!r}", 2)
    return timedelta(seconds=int(number) * units[unit])


@app.command("list")
def list_command(
    achieved: Annotated[
        bool, typer.Option(help="Only experiments that reached the target")
    ] = False,
    run: Annotated[str | None, typer.Option(help="Only this run's experiments")] = None,
    limit: Annotated[int, typer.Option(help="At most N experiments", min=1)] = 50,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """List recorded experiments, newest first, with storage used and its monthly cost."""
    settings = _settings(config, data_dir)
    with _open_lab(settings) as lab:
        records = lab.records.list_experiments(
            run_id=run, achieved=True if achieved else None, limit=limit
        )
        print_experiment_list(console, records, price_per_gb_month=settings.price_per_gb_month)


@app.command("show")
def show_command(
    experiment: ExperimentArgument, config: ConfigOption = None, data_dir: DataDirOption = None
) -> None:
    """Every field of an experiment, its phase timeline, and whether each object exists."""
    with _open_lab(_settings(config, data_dir)) as lab:
        print_experiment(console, lab, _experiment(lab, experiment))


@app.command("url")
def url_command(
    experiment: ExperimentArgument,
    expires: Annotated[str, typer.Option(help="Link lifetime: 30m, 12h, 7d")] = "7d",
    artifact: Annotated[
        str | None, typer.Option(help=f"Only this artifact: {', '.join(ARTIFACT_NAMES)}")
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Make fresh signed links to a published experiment's objects."""
    lifetime = _parse_duration(expires)
    with _open_lab(_settings(config, data_dir)) as lab:
        record = _experiment(lab, experiment)
        if not record.artifacts:
            raise _fail(f"{record.id} is not published (publish status: {record.publish_status})")
        names = [artifact] if artifact else sorted(record.artifacts)
        for name in names:
            if name not in record.artifacts:
                raise _fail(f"{record.id} has no artifact {name!r}", 2)
            try:
                link = lab.store.url(record.artifacts[name], expires_in=lifetime)
            except ValueError as exc:
                raise _fail(str(exc), 2) from None
            console.print(f"{name}: {link}", highlight=False, soft_wrap=True)


@app.command("download")
def download_command(
    experiment: ExperimentArgument,
    out: Annotated[Path, typer.Option("-o", "--out", help="Directory to write into")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Download a published experiment's objects into a directory."""
    with _open_lab(_settings(config, data_dir)) as lab:
        record = _experiment(lab, experiment)
        if not record.artifacts:
            raise _fail(f"{record.id} is not published (publish status: {record.publish_status})")
        out.mkdir(parents=True, exist_ok=True)
        for name, key in sorted(record.artifacts.items()):
            target = out / key.rsplit("/", 1)[-1]
            target.write_bytes(lab.store.get_bytes(key))
            console.print(f"{name}: {target} ({human_bytes(target.stat().st_size)})")


@app.command("decode")
def decode_command(
    package: Annotated[Path, typer.Argument(help="A decode package (package.zip)")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output .y4m (or raw .yuv)")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Verify a decode package and run its decoder.py, sandboxed, to get the video."""
    settings = _settings(config, data_dir)
    try:
        manifest = verify_package(package)
        with zipfile.ZipFile(package) as archive:
            files = {name: archive.read(name) for name in ("decoder.py", "stream.bin")}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise _fail(f"{package}: {exc}", 2) from None
    result, produced = run_script(
        files,
        "decoder.py",
        ["stream.bin", "-o", "out" + out.suffix],
        outputs=["out" + out.suffix],
        dest=out.parent / f".{out.name}.partial",
        settings=settings.sandbox,
    )
    if result.returncode != 0 or not produced:
        tail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:]
        raise _fail(f"{package}: decoder.py failed: {' '.join(tail) or result.describe_failure()}")
    produced[0].replace(out)
    produced[0].parent.rmdir()
    console.print(
        f"decoded {manifest.get('clip', {}).get('frames', '?')} frames of experiment "
        f"{manifest.get('experiment_id', '?')} to {out}"
    )


@app.command("publish")
def publish_command(
    experiment: ExperimentArgument, config: ConfigOption = None, data_dir: DataDirOption = None
) -> None:
    """Publish (again) a completed experiment; safe to repeat."""
    settings = _settings(config, data_dir)
    with _open_lab(settings) as lab, tempfile.TemporaryDirectory(prefix="codeclab-pub-") as tmp:
        _experiment(lab, experiment)
        try:
            result = republish(lab, experiment, workdir=Path(tmp))
        except RepublishError as exc:
            raise _fail(str(exc)) from None
        if not result.ok:
            raise _fail(f"{experiment}: publishing failed: {result.error}")
        print_record_summary(console, lab, lab.records.get_experiment(experiment))


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


# Commands whose code lives beside what they drive.
app.command("run")(run_command)
app.command("serve")(serve_command)
app.command("gc")(gc_command)
