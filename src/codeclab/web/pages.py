"""The server-rendered pages: overview, blog, experiment, compare, run, login.

Pages read a bounded amount of data whatever the number of experiments: lists are paginated
(ids from the index, then that page's rows), aggregates over every experiment are narrow
queries refreshed in the background (:class:`codeclab.web.state.Dashboard`) and the overview,
made only of them, is rendered at most every few seconds; a blog post is rendered once per
change of its record; per-frame data is fetched by the experiment page's chart from the API,
never embedded in a list.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from codeclab.storage.objects import DEFAULT_LINK_LIFETIME
from codeclab.storage.records import ExperimentRecord, RecordNotFound
from codeclab.web import queries, views
from codeclab.web.access import TOKEN_COOKIE
from codeclab.web.api import overview, run_progress
from codeclab.web.heatmap import BEST_DB, BLOCK, WORST_DB
from codeclab.web.images import DIFFERENCE_GAIN
from codeclab.web.state import Dashboard, get_dashboard

POSTS_PER_PAGE = 10
MAX_COMPARE = 8
_MAX_FORM_BYTES = 4096

DashboardDep = Annotated[Dashboard, Depends(get_dashboard)]


@dataclass(frozen=True)
class Post:
    """One experiment as a blog post / page header."""

    record: ExperimentRecord
    title: str
    body: str  # the rationale after its title line
    status: str
    mbps: float | None
    reference: views.Saving | None
    savings: list[views.Saving]
    phases: list[views.PhaseRow]
    links: dict[str, str]
    link_days: int


def _links(dashboard: Dashboard, request: Request, record: ExperimentRecord) -> dict[str, str]:
    root = request.scope.get("root_path", "")
    return {
        name: dashboard.links.for_page(key, root_path=root)
        for name, key in record.artifacts.items()
    }


def make_post(dashboard: Dashboard, request: Request, record: ExperimentRecord) -> Post:
    all_savings = views.savings(record)
    return Post(
        record=record,
        title=views.title(record),
        body=views.post_body(record.rationale),
        status=views.status_label(record),
        mbps=views.mbps(record),
        reference=all_savings.get(views.REFERENCE_ENCODER),
        savings=[s for name, s in all_savings.items() if name != views.REFERENCE_ENCODER],
        phases=views.phase_rows(record),
        links=_links(dashboard, request, record),
        link_days=DEFAULT_LINK_LIFETIME.days,
    )


def pages_router(templates: Jinja2Templates) -> APIRouter:
    """The pages.  They run on the event loop: each does a few short reads of the records
    (milliseconds), and serving them one after another beats many threads contending for
    the interpreter; anything that may be slow (a remote store) is sent to a thread."""
    router = APIRouter(default_response_class=HTMLResponse, include_in_schema=False)

    def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    @router.get("/")
    async def overview_page(dashboard: DashboardDep) -> Response:
        def make() -> str:
            return templates.get_template("overview.html").render(
                overview=overview(dashboard),
                runs=dashboard.recent_runs.get(),
                boards=dashboard.boards.get(),
                recent=queries.latest(dashboard.lab.records, 8),
            )

        # the page shows only aggregates, which are themselves a few seconds old
        return HTMLResponse(dashboard.rendered("overview", make))

    @router.get("/blog")
    async def blog_page(
        request: Request,
        dashboard: DashboardDep,
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    ) -> Response:
        records = dashboard.lab.records
        total = queries.count(records)
        pages = max(1, math.ceil(total / POSTS_PER_PAGE))
        if page > pages:
            raise HTTPException(404, f"the blog has {pages} page(s), not {page}")
        listed = queries.page(records, limit=POSTS_PER_PAGE, offset=(page - 1) * POSTS_PER_PAGE)
        keys = {exp_id: f"{exp_id}@{updated.isoformat()}" for exp_id, updated in listed}
        posts = {exp_id: dashboard.posts.peek(key) for exp_id, key in keys.items()}
        missing = [exp_id for exp_id, html in posts.items() if html is None]
        post_template = templates.get_template("post.html")
        for record in queries.experiments(records, missing):
            html = Markup(post_template.render(post=make_post(dashboard, request, record)))
            dashboard.posts.put(keys[record.id], html)
            posts[record.id] = html
        return render(
            request,
            "blog.html",
            posts=[html for html in posts.values() if html is not None],
            page=page,
            pages=pages,
            total=total,
        )

    @router.get("/experiments/{exp_id}")
    async def experiment_page(request: Request, dashboard: DashboardDep, exp_id: str) -> Response:
        records = dashboard.lab.records
        record = queries.experiment(records, exp_id)
        post = make_post(dashboard, request, record)
        clip = dashboard.clip(record.clip_sha256)
        candidates = views.candidate_points(record)
        rd = views.rd_chart_data(
            {"this codec": candidates},
            views.baseline_points(dashboard.baselines(record.clip_sha256)),
        )
        family = queries.lineage(records, record, dashboard.lineage.get())
        history = [*family.line, family.this]
        codec_html, codec_error = None, None
        if record.codec_sha256:
            codec_html = dashboard.cached_highlight(record.codec_sha256)
            try:  # in a thread: the first read of a codec may go to a remote store
                codec_html = codec_html or await run_in_threadpool(
                    dashboard.highlighted_source, record.codec_sha256
                )
            except (RecordNotFound, OSError, LookupError) as exc:
                codec_error = str(exc)
        diff_parent = _diff_parent(record, family.parents)
        root = request.scope.get("root_path", "")
        codec_link = (
            dashboard.links.for_page(f"codecs/{record.codec_sha256}.py", root_path=root)
            if record.codec_sha256
            else None
        )
        return render(
            request,
            "experiment.html",
            post=post,
            clip=clip,
            candidates=candidates,
            comparison=views.comparison_of(record),
            operating_quality=views.operating_quality(record),
            rd=rd,
            parents=family.parents,
            missing_parents=family.missing_parents,
            children=family.children,
            history=history,
            max_generations=queries.MAX_GENERATIONS,
            codec_html=codec_html,
            codec_error=codec_error,
            codec_link=codec_link,
            diff_parent=diff_parent,
            heatmap_scale={"block": BLOCK, "worst": WORST_DB, "best": BEST_DB},
            difference_gain=DIFFERENCE_GAIN,
            poll_seconds=dashboard.poll_seconds,
            live=record.status.value in ("pending", "running"),
        )

    @router.get("/experiments/{exp_id}/changes")
    async def changes_page(request: Request, dashboard: DashboardDep, exp_id: str) -> Response:
        records = dashboard.lab.records
        record = queries.experiment(records, exp_id)
        family = queries.lineage(records, record, dashboard.lineage.get())
        parent = _diff_parent(record, family.parents)
        if parent is None or parent.codec_sha256 is None or record.codec_sha256 is None:
            raise HTTPException(404, f"experiment {exp_id} has no parent codec to compare with")
        html, added, removed = await run_in_threadpool(
            dashboard.codec_diff, parent.codec_sha256, record.codec_sha256
        )
        diff = ParentDiff(parent.id, parent.codec_sha256, record.codec_sha256, html, added, removed)
        return render(request, "changes.html", record=record, diff=diff)

    @router.get("/compare")
    async def compare_page(
        request: Request,
        dashboard: DashboardDep,
        ids: Annotated[list[str] | None, Query(description="Experiment ids")] = None,
    ) -> Response:
        parts = (part.strip() for value in ids or [] for part in value.split(","))
        wanted = list(dict.fromkeys(part for part in parts if part))
        if len(wanted) > MAX_COMPARE:
            raise HTTPException(422, f"compare at most {MAX_COMPARE} experiments at once")
        records = dashboard.lab.records
        found: list[ExperimentRecord] = []
        missing: list[str] = []
        for exp_id in wanted:
            try:
                found.append(records.get_experiment(exp_id))
            except RecordNotFound:
                missing.append(exp_id)
        if missing:
            raise HTTPException(404, f"no experiment {', '.join(missing)}")
        clips = sorted({r.clip_sha256 for r in found if r.clip_sha256})
        baselines = views.baseline_points([b for sha in clips for b in records.list_baselines(sha)])
        candidates = {r.id: views.candidate_points(r) for r in found}
        return render(
            request,
            "compare.html",
            posts=[make_post(dashboard, request, r) for r in found],
            candidates=candidates,
            rd=views.rd_chart_data(candidates, baselines if len(clips) == 1 else {}),
            clip_count=len(clips),
            ids=",".join(wanted),
            recent=records.list_experiments(limit=20) if not found else [],
        )

    @router.get("/runs/{run_id}")
    async def run_page(request: Request, dashboard: DashboardDep, run_id: str) -> Response:
        progress = run_progress(dashboard, run_id)
        return render(
            request,
            "run.html",
            progress=progress,
            live=progress.run.status == "running",
            poll_seconds=dashboard.poll_seconds,
        )

    @router.get("/login")
    async def login_page(request: Request, next: str = "/") -> Response:
        return render(request, "login.html", next=_local_path(next), failed=False)

    @router.post("/login")
    async def login(request: Request, dashboard: DashboardDep) -> Response:
        # a urlencoded form read by hand: FastAPI's Form() needs python-multipart
        body = (await request.body())[:_MAX_FORM_BYTES].decode("utf-8", "replace")
        form = dict(parse_qsl(body, keep_blank_values=True))
        target = _local_path(form.get("next", "/"))
        if dashboard.access.public_read:
            return RedirectResponse(target, status_code=303)
        token = form.get("token", "")
        if not dashboard.access.may_read(token):
            return render(request, "login.html", 401, next=target, failed=True)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            TOKEN_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            max_age=7 * 86400,
        )
        return response

    return router


def _local_path(target: str) -> str:
    """Only redirect within the dashboard (an absolute or protocol-relative URL goes home)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@dataclass(frozen=True)
class ParentDiff:
    parent_id: str
    old_sha: str
    new_sha: str
    html: str
    added: int
    removed: int


def _diff_parent(record: ExperimentRecord, parents: list[queries.Brief]) -> queries.Brief | None:
    """The first parent, when both it and `record` have a codec and they differ."""
    if not record.parent_ids or not record.codec_sha256 or not parents:
        return None
    parent = parents[0]
    if parent.id != record.parent_ids[0] or parent.codec_sha256 in (None, record.codec_sha256):
        return None
    return parent
