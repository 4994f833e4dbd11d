"""`codeclab run`: start or resume a campaign, show its progress, print its leaderboard.

Registered in `codeclab.cli` as ``app.command("run")(run_command)``. The campaign itself is
`codeclab.pipeline.campaign`; this module only turns options into a `CampaignConfig` and
renders what the campaign reports.
"""

from __future__ import annotations

import json
import re
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from codeclab.config import PUBLISH_POLICIES, ConfigError, Settings, load_settings
from codeclab.executors import ExecutorError
from codeclab.lab import Lab
from codeclab.pipeline.analysis import Target
from codeclab.pipeline.campaign import (
    DEFAULT_CLIP,
    DEFAULT_FRAMES,
    DEFAULT_ITERATIONS,
    DEFAULT_LLM_BUDGET_USD,
    CampaignConfig,
    CampaignError,
    CampaignResult,
    CampaignStatus,
    run_campaign,
    stored_config,
)
from codeclab.pipeline.evaluate import DEFAULT_QUALITIES
from codeclab.pipeline.history import Standing
from codeclab.storage.records import RecordNotFound
from codeclab.video.source import VideoInputError

console = Console() if sys.stdout.isatty() else Console(width=160)
errors = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, width=160)

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _fail(message: str, code: int = 2) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
    return typer.Exit(code)


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``30m``, ``1.5h`` or ``2d``."""
    match = _DURATION.match(text.strip())
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"--time-budget takes a duration like 90s, 30m or 2h, got {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _ints(text: str, option: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise _fail(f"{option} takes integers like 20,40,60,80, got {text!r}") from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Treat SIGTERM (``kill``, a service manager, the dashboard's stop button) like Ctrl-C:
    the campaign stops its workers, marks what was in flight interrupted and ends the run as
    stopped, resumable with ``--resume``."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --- progress -----------------------------------------------------------------------------------


def _mbps(bps: float | None) -> str:
    return "-" if bps is None else f"{bps / 1e6:.3f}"


def _num(value: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if value is None else fmt.format(value)


def render_status(status: CampaignStatus) -> Group:
    """The live progress panel: what the campaign does, what is in flight, the best so far."""
    total = "" if status.iterations is None else f"/{status.iterations}"
    minutes, seconds = divmod(int(status.elapsed_s), 60)
    head = Text.assemble(
        (f"{status.run_id}  ", "bold"),
        f"designs {status.designs}{total}  ",
        f"{minutes}:{seconds:02d}  ",
        f"${status.spent_usd:.4f}  " if status.spent_usd else "",
        (status.activity, "cyan"),
    )
    lines: list[Text] = [head]
    for flight in status.in_flight:
        lines.append(
            Text(f"  {flight.alias} {flight.stage} on {flight.clip}: {flight.phase or 'starting'}")
        )
    if status.best is not None:
        best = status.best
        lines.append(
            Text(
                f"  best so far: {best.alias}  PSNR-Y at the rate limit {_num(best.score_db)} dB, "
                f"BD-rate vs x264 {_num(best.bd_rate_x264, '{:+.1f}')} %"
                + ("  (target reached)" if best.target_achieved else ""),
                style="green",
            )
        )
    if status.message:
        lines.append(Text(f"  {status.message}", style="dim"))
    return Group(*lines)


# --- the result ---------------------------------------------------------------------------------


def leaderboard_table(board: tuple[Standing, ...], limit: int = 10) -> Table:
    table = Table(title="leaderboard (best first)")
    columns = (
        "#",
        "design",
        "experiment",
        "target",
        "PSNR-Y @limit",
        "BD x264 PSNR",
        "BD x264 VMAF",
        "BD x265",
        "Mbps",
        "PSNR-Y",
        "VMAF",
        "tier",
    )
    for column in columns:
        table.add_column(
            column, justify="right" if column not in ("design", "experiment") else "left"
        )
    for row in board[:limit]:
        table.add_row(
            str(row.rank),
            row.alias,
            row.experiment.id,
            "[green]yes[/]" if row.target_achieved else "no",
            _num(row.score_db),
            _num(row.bd_rate_x264, "{:+.1f} %"),
            _num(row.bd_rate_x264_vmaf, "{:+.1f} %"),
            _num(row.bd_rate_x265, "{:+.1f} %"),
            _mbps(row.bitrate_bps),
            _num(row.psnr_y),
            _num(row.vmaf),
            "-" if row.tier is None else str(row.tier),
        )
    return table


def result_to_dict(result: CampaignResult) -> dict[str, Any]:
    def standing(row: Standing) -> dict[str, Any]:
        return {
            "rank": row.rank,
            "design": row.alias,
            "experiment_id": row.experiment.id,
            "codec_sha256": row.experiment.codec_sha256,
            "target_achieved": row.target_achieved,
            "psnr_y_at_rate_limit": row.score_db,
            "bd_rate_vs_x264_psnr_y": row.bd_rate_x264,
            "bd_rate_vs_x264_vmaf": row.bd_rate_x264_vmaf,
            "bd_rate_vs_x265_psnr_y": row.bd_rate_x265,
            "bitrate_bps": row.bitrate_bps,
            "psnr_y": row.psnr_y,
            "vmaf": row.vmaf,
            "tier": row.tier,
        }

    return {
        "run_id": result.run.id,
        "status": result.run.status.value,
        "stop_reason": result.stop_reason,
        "designs": len(result.trials),
        "completed": sum(1 for t in result.trials if t.state().completed),
        "seconds": result.seconds,
        "spent_usd": result.spent_usd,
        "leaderboard": [standing(row) for row in result.leaderboard],
        "published": [{"experiment_id": e.id, "artifacts": e.artifacts} for e in result.published],
    }


def print_result(result: CampaignResult, settings: Settings) -> None:
    run = result.run
    completed = sum(1 for t in result.trials if t.state().completed)
    console.print(
        f"[bold]{run.id}[/] {run.status.value}: {result.stop_reason}. {len(result.trials)} "
        f"designs, {completed} completed, {result.seconds / 60:.1f} min"
        + (f", LLM spend ${result.spent_usd:.4f}" if result.spent_usd else ""),
        highlight=False,
    )
    if result.leaderboard:
        console.print(leaderboard_table(result.leaderboard))
        best = result.leaderboard[0]
        console.print(
            f"best: {best.alias} = experiment {best.experiment.id} "
            f"(codec sha256 {(best.experiment.codec_sha256 or '')[:12]}); "
            f"details: codeclab show {best.experiment.id}",
            highlight=False,
        )
    else:
        console.print("no design completed its evaluation")
    if result.published:
        console.print(f"published ({len(result.published)}):")
        for record in result.published:
            console.print(
                f"  {record.id}: {', '.join(sorted(record.artifacts))}; links: codeclab url "
                f"{record.id}",
                highlight=False,
            )
    else:
        console.print("published: nothing (an experiment is published when it reaches the target)")
    console.print(
        f"dashboard: run `codeclab serve`, then open {settings.public_url}\n"
        f"more designs: codeclab run --resume {run.id} --iterations N",
        highlight=False,
    )


# --- the command --------------------------------------------------------------------------------

_WHAT_OPTIONS = (
    "designer",
    "clip",
    "frames",
    "target_mbps",
    "min_psnr",
    "min_vmaf",
    "seed",
    "quality",
    "baselines",
    "vmaf",
    "publish",
    "smoke_frames",
    "debug_rounds",
)


def _config(
    options: dict[str, Any], iterations: int | None, time_budget_s: float | None
) -> CampaignConfig:
    vmaf = options["vmaf"] if options["vmaf"] is not None else True
    min_vmaf = options["min_vmaf"] if options["min_vmaf"] is not None else 60.0
    config = CampaignConfig(
        designer=options["designer"] or "offline",
        clips=tuple(options["clip"] or (DEFAULT_CLIP,)),
        frames=options["frames"] or DEFAULT_FRAMES,
        iterations=iterations,
        time_budget_s=time_budget_s,
        seed=options["seed"] or 0,
        workers=options["workers"],
        executor=options["executor"] or "local",
        qualities=_ints(options["quality"], "--quality")
        if options["quality"]
        else DEFAULT_QUALITIES,
        target=Target(
            max_mbps=options["target_mbps"] or 1.0,
            min_psnr_y=options["min_psnr"] if options["min_psnr"] is not None else 28.0,
            min_vmaf=min_vmaf if vmaf and min_vmaf > 0 else None,
        ),
        baselines=_names(options["baselines"])
        if options["baselines"] is not None
        else ("x264", "x265"),
        with_vmaf=vmaf,
        publish=options["publish"] or "success",
        smoke_frames=options["smoke_frames"] if options["smoke_frames"] is not None else 3,
        debug_rounds=options["debug_rounds"] if options["debug_rounds"] is not None else 2,
        budget_usd=options["budget_usd"],
    )
    return config


def run_command(
    designer: Annotated[
        str | None,
        typer.Option(
            help="offline (default), openai:MODEL or anthropic:MODEL, each optionally @BASE_URL"
        ),
    ] = None,
    clip: Annotated[
        list[str] | None,
        typer.Option(
            help=f"Search clip (path or builtin:NAME); repeatable (default: {DEFAULT_CLIP})"
        ),
    ] = None,
    frames: Annotated[
        int | None, typer.Option(help=f"Frames of each clip (default: {DEFAULT_FRAMES})", min=1)
    ] = None,
    iterations: Annotated[
        int | None,
        typer.Option(
            help=f"Designs in the run (default: {DEFAULT_ITERATIONS}; on --resume: a new total)",
            min=1,
        ),
    ] = None,
    time_budget: Annotated[
        str | None, typer.Option(help="Start no design after this long: 90s, 30m, 2h")
    ] = None,
    forever: Annotated[bool, typer.Option(help="Run until Ctrl-C (resumable)")] = False,
    target_mbps: Annotated[
        float | None, typer.Option(help="Target: rate limit in Mbps (default: 1.0)")
    ] = None,
    min_psnr: Annotated[
        float | None, typer.Option(help="Target: PSNR-Y floor in dB (default: 28)")
    ] = None,
    min_vmaf: Annotated[
        float | None, typer.Option(help="Target: VMAF floor, 0 for none (default: 60)")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the offline designer (default: 0)")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Designs evaluated at once (default: 1 locally, all Dask threads)", min=1
        ),
    ] = None,
    executor: Annotated[
        str | None, typer.Option(help="local (default) or dask://HOST:PORT")
    ] = None,
    resume: Annotated[
        str | None, typer.Option(help="Continue this campaign run (see codeclab list)")
    ] = None,
    budget_usd: Annotated[
        float | None,
        typer.Option(help=f"LLM spend limit in USD (default: {DEFAULT_LLM_BUDGET_USD})", min=0),
    ] = None,
    quality: Annotated[
        str | None,
        typer.Option(help=f"Quality ladder (default: {','.join(map(str, DEFAULT_QUALITIES))})"),
    ] = None,
    baselines: Annotated[
        str | None, typer.Option(help="Baseline encoders (default: x264,x265); empty for none")
    ] = None,
    vmaf: Annotated[bool | None, typer.Option(help="Measure VMAF (default: yes)")] = None,
    publish: Annotated[
        str | None, typer.Option(help="Publish: success (default), always or never")
    ] = None,
    smoke_frames: Annotated[
        int | None, typer.Option(help="Frames of the smoke test, 0 for none (default: 3)", min=0)
    ] = None,
    debug_rounds: Annotated[
        int | None,
        typer.Option(help="Times a failing design goes back to the designer (default: 2)", min=0),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the result (leaderboard...) here")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML settings file (default: ./codeclab.toml)")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Where codeclab keeps its data and caches")
    ] = None,
) -> None:
    """Run the autonomous lab: a designer proposes codecs, each is smoke-tested on a few frames,
    then evaluated on the search clips against real baselines; every result is recorded and
    codecs that reach the target are published. Resumable with --resume RUN_ID."""
    options = dict(locals())
    try:
        settings = load_settings(config_path=config, data_dir=data_dir)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    if publish is not None and publish not in PUBLISH_POLICIES:
        raise _fail(f"--publish must be one of {', '.join(PUBLISH_POLICIES)}")
    if forever and (iterations is not None or time_budget is not None):
        raise _fail("--forever runs until Ctrl-C: drop --iterations and --time-budget")
    try:
        budget_s = parse_duration(time_budget) if time_budget is not None else None
    except ValueError as exc:
        raise _fail(str(exc)) from None
    try:
        lab = Lab.open(settings)
    except (ValueError, OSError) as exc:
        raise _fail(f"cannot open the lab's storage: {exc}") from None
    with lab:
        try:
            if resume is not None:
                given = [
                    f"--{name.replace('_', '-')}"
                    for name in _WHAT_OPTIONS
                    if options[name] is not None
                ]
                if given:
                    raise _fail(
                        f"a resumed campaign keeps what it searches: drop {', '.join(given)} "
                        "(only --iterations, --time-budget, --forever, --workers, --executor and "
                        "--budget-usd may change)"
                    )
                campaign = stored_config(lab, resume)
                changes: dict[str, Any] = {}
                if forever or iterations is not None or budget_s is not None:
                    changes.update(iterations=iterations, time_budget_s=budget_s)
                for name, value in (
                    ("workers", workers),
                    ("executor", executor),
                    ("budget_usd", budget_usd),
                ):
                    if value is not None:
                        changes[name] = value
                campaign = replace(campaign, **changes)
            else:
                if iterations is None and budget_s is None and not forever:
                    iterations = DEFAULT_ITERATIONS
                campaign = _config(options, iterations, budget_s)
        except (ValueError, RecordNotFound, CampaignError) as exc:
            raise _fail(str(exc)) from None
        if campaign.designer != "offline" and campaign.budget_usd is None:
            errors.print(
                f"LLM budget: ${DEFAULT_LLM_BUDGET_USD:.2f} (--budget-usd to change)",
                highlight=False,
            )
        live = Live(console=errors, transient=True, refresh_per_second=4)
        with live, stop_on_sigterm():
            try:
                result = run_campaign(
                    lab,
                    campaign,
                    resume=resume,
                    progress=lambda status: live.update(render_status(status)),
                )
            except (CampaignError, ExecutorError, VideoInputError, RecordNotFound) as exc:
                raise _fail(str(exc), 1) from None
        print_result(result, settings)
        if json_out is not None:
            json_out.write_text(json.dumps(result_to_dict(result), indent=2) + "\n")
            console.print(f"result written to {json_out}")
