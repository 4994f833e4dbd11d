"""The dashboard application: pages, JSON API, static files and the store's signed links.

``create_app(settings)`` opens the lab (records and objects) and closes it on shutdown.
``uvicorn --factory codeclab.web.app:app_from_env`` builds it from the environment and
``./codeclab.toml``, as ``codeclab serve`` does from its options.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException
from starlette.middleware.gzip import GZipMiddleware

from codeclab import __version__
from codeclab.config import Settings, load_settings
from codeclab.lab import Lab
from codeclab.storage.objects import LocalStore
from codeclab.storage.records import RecordNotFound
from codeclab.web.access import Access, reader_token
from codeclab.web.api import api_router
from codeclab.web.campaigns import Launcher
from codeclab.web.database import tune_for_reading
from codeclab.web.objects import objects_router
from codeclab.web.pages import pages_router
from codeclab.web.state import Dashboard
from codeclab.web.templating import STATIC_DIR, make_templates

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Paths anyone may fetch even when reading needs a token: static files, the store's signed
# links (they carry their own signature) and the login form.
_OPEN_PREFIXES = ("/static/", "/objects/", "/login", "/favicon.ico")


def _content_security_policy(media_origin: str) -> str:
    media = f"'self' blob: {media_origin}".strip()
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        f"media-src {media}; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'self'"
    )


class _Guard:
    """Security headers on every answer, and the read-token check (pure ASGI: cheap)."""

    def __init__(self, app: ASGIApp, access: Access, csp: str) -> None:
        self.app = app
        self.access = access
        self.csp = csp.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if not self.access.public_read and not path.startswith(_OPEN_PREFIXES):
            request = Request(scope)
            if not self.access.may_read(reader_token(request)):
                await self._refuse(scope, receive, send, path)
                return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                if b"x-content-type-options" not in names:
                    headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"same-origin"))
                content_type = dict(headers).get(b"content-type", b"")
                if content_type.startswith(b"text/html"):
                    headers.append((b"content-security-policy", self.csp))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, path: str) -> None:
        response: Response
        if path.startswith("/api/") or path in ("/docs", "/openapi.json"):
            response = JSONResponse(
                {"detail": "reading this dashboard needs a token: 'Authorization: Bearer ...'"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        else:
            response = RedirectResponse(f"/login?next={quote(path)}", status_code=303)
        await response(scope, receive, send)


class _Compress:
    """gzip pages and JSON for clients that accept it; objects go out byte for byte."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=1024, compresslevel=5)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/objects/"):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _media_origin(lab: Lab) -> str:
    """Where the store's links point, for the page's Content-Security-Policy."""
    if isinstance(lab.store, LocalStore):
        return ""
    parts = urlsplit(lab.store.url("codeclab-csp-probe"))
    return f"{parts.scheme}://{parts.netloc}"


def _wants_html(request: Request) -> bool:
    path = request.url.path
    return not (path.startswith("/api/") or path.startswith("/objects/"))


def _install_error_pages(app: FastAPI, templates: Jinja2Templates) -> None:
    def error(request: Request, status: int, detail: str) -> Response:
        if _wants_html(request):
            return templates.TemplateResponse(
                request, "error.html", {"status": status, "detail": detail}, status_code=status
            )
        return JSONResponse({"detail": detail}, status_code=status)

    @app.exception_handler(RecordNotFound)
    async def not_found(request: Request, exc: RecordNotFound) -> Response:
        return error(request, 404, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if _wants_html(request):
            response = error(request, exc.status_code, str(exc.detail))
        else:
            response = JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        if _wants_html(request):
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
                for e in exc.errors()
            )
            return error(request, 422, problems)
        # a model validator's error carries the exception object itself in its context
        return JSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)


def create_app(
    settings: Settings,
    *,
    access: Access | None = None,
    poll_seconds: float = 3.0,
    lab: Lab | None = None,
    config_path: Path | None = None,
) -> FastAPI:
    """The dashboard for the lab `settings` name.

    `access` defaults to the tokens of `settings` (``admin_token``, ``read_token``: from
    ``codeclab.toml``, ``CODECLAB_ADMIN_TOKEN`` or ``CODECLAB_READ_TOKEN``); `poll_seconds` is
    how often live pages refresh; a `lab` given is used (and closed on shutdown) instead of
    opening one; `config_path` is the settings file campaigns started from the dashboard are
    given (default: theirs is found as the dashboard's was, from ``CODECLAB_CONFIG`` or
    ``./codeclab.toml``).
    """
    opened = lab or Lab.open(settings)
    tune_for_reading(opened.records)
    dashboard = Dashboard(
        opened,
        access or Access.from_settings(settings),
        poll_seconds=poll_seconds,
        launcher=Launcher(settings, config_path=config_path),
    )
    templates = make_templates()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        threading.Thread(target=dashboard.warm_up, name="dashboard-warm-up", daemon=True).start()
        try:
            yield
        finally:
            opened.close()

    app = FastAPI(
        title="codeclab",
        version=__version__,
        description=(
            "Results of the codeclab lab: experiments, per-frame metrics, signed links to "
            "published videos, decoders and packages, on-demand transcodes and frame pictures."
        ),
        lifespan=lifespan,
        docs_url=None,  # served below from vendored files: no CDN
        redoc_url=None,
    )
    app.state.dashboard = dashboard
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    if isinstance(opened.store, LocalStore) and opened.store.signing_secret is not None:
        app.include_router(
            objects_router(opened.store, opened.store.signing_secret), include_in_schema=False
        )
    app.include_router(api_router())
    app.include_router(pages_router(templates))

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> Response:
        return templates.TemplateResponse(
            request, "docs.html", {"openapi_url": app.openapi_url or "/openapi.json"}
        )

    _install_error_pages(app, templates)
    csp = _content_security_policy(_media_origin(opened))
    app.add_middleware(_Compress)
    app.add_middleware(_Guard, access=dashboard.access, csp=csp)
    return app


def app_from_env() -> FastAPI:
    """The app for ``uvicorn --factory``: settings from the environment and codeclab.toml."""
    return create_app(load_settings())
