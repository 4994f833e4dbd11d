"""The Jinja2 environment of the pages: templates, number formats, static file URLs."""

from __future__ import annotations

import hashlib
import math
from datetime import datetime
from pathlib import Path

from fastapi.templating import Jinja2Templates

from codeclab import __version__
from codeclab.storage.costs import human_bytes, monthly_cost

WEB_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"


def _fixed(value: float | int | None, digits: int = 2, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    text = f"{value:,.{digits}f}"
    return f"{text} {unit}" if unit else text


def _mbps(bps: float | None) -> str:
    return "–" if bps is None else f"{bps / 1e6:.3f}"


def _when(value: datetime | None) -> str:
    return "–" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{abs(value):.1f}%"


def _usd(value: float) -> str:
    """Dollars with two significant digits, never in scientific notation."""
    if value <= 0:
        return "$0"
    if value >= 1:
        return f"${value:,.2f}"
    digits = 1 - math.floor(math.log10(value))
    return f"${value:.{digits}f}"


def _short(value: str | None, length: int = 12) -> str:
    return "–" if not value else value[:length]


def static_version() -> str:
    """A hash of the static files, appended to their URLs so browsers fetch new versions."""
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(STATIC_DIR).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=TEMPLATES_DIR)
    env = templates.env
    env.auto_reload = False
    env.trim_blocks = True
    env.lstrip_blocks = True
    env.filters.update(
        fixed=_fixed,
        mbps=_mbps,
        when=_when,
        percent=_percent,
        short=_short,
        usd=_usd,
        bytes=human_bytes,
    )
    version = static_version()
    env.globals.update(
        static=lambda path: f"/static/{path}?v={version}",
        monthly_cost=monthly_cost,
        version=__version__,
    )
    return templates
