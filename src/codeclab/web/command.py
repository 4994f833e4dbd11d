"""``codeclab serve``: the dashboard and JSON API over HTTP (uvicorn)."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from codeclab.config import ConfigError, Settings, load_settings
from codeclab.lab import Lab
from codeclab.web.access import Access, AccessError
from codeclab.web.app import create_app


def dashboard_settings(settings: Settings, host: str, port: int) -> Settings:
    """Links of a local store must point at this server: when ``public_url`` was left at its
    default, use the address being served."""
    if settings.public_url != Settings().public_url:
        return settings
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return replace(settings, public_url=f"http://{shown}:{port}")


def serve_command(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface)")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="Port to listen on", min=1, max=65535)] = 8000,
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML settings file (default: ./codeclab.toml)")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Where codeclab keeps its data and caches")
    ] = None,
    workers: Annotated[
        int, typer.Option(help="Worker processes (one per core serves most requests)", min=1)
    ] = 1,
) -> None:
    """Serve the dashboard: overview, blog, experiments with video and frames, JSON API (/docs).

    Reading is public unless a read token is set (read_token in codeclab.toml or
    CODECLAB_READ_TOKEN); starting or stopping a campaign, deleting or publishing again needs
    the admin token (admin_token or CODECLAB_ADMIN_TOKEN), sent as 'Authorization: Bearer ...'.
    """
    try:
        settings = dashboard_settings(
            load_settings(config_path=config, data_dir=data_dir), host, port
        )
        access = Access.from_settings(settings)
    except (ConfigError, AccessError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    typer.echo(
        f"codeclab dashboard on http://{shown}:{port} (data in {settings.data_dir}; "
        f"reading {'public' if access.public_read else 'needs a token'}; admin actions "
        f"{'enabled' if access.admin_token else 'disabled: set an admin token'})",
        err=True,
    )
    log_level = "info" if sys.stderr.isatty() else "warning"
    if workers == 1:
        app = create_app(settings, access=access, config_path=config)
        uvicorn.run(app, host=host, port=port, log_level=log_level)
        return
    # Create the database, its schema and the link secret once, before the workers race to.
    Lab.open(settings).close()
    # Each worker process builds its own app from the environment: hand the settings over.
    os.environ["CODECLAB_DATA_DIR"] = str(settings.data_dir)
    os.environ["CODECLAB_PUBLIC_URL"] = settings.public_url
    if config is not None:
        os.environ["CODECLAB_CONFIG"] = str(config.resolve())
    uvicorn.run(
        "codeclab.web.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
    )
