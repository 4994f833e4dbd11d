"""The JSON API under ``/api`` (documented at ``/docs``).

Reading follows the dashboard's access rule (:mod:`codeclab.web.access`); starting and
stopping campaigns (:mod:`codeclab.web.campaigns`), deleting and publishing need the admin
token.  Unknown ids answer 404, bad parameters 422, and frames or
transcodes that cannot be made (an unpublished experiment, a clip missing on this machine)
409 with the reason.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from codeclab.storage.costs import monthly_cost
from codeclab.storage.objects import DEFAULT_LINK_LIFETIME
from codeclab.storage.publish import ARTIFACT_NAMES
from codeclab.storage.records import (
    ORDER_FIELDS,
    ExperimentRecord,
    ExperimentStatus,
    PublishStatus,
)
from codeclab.web import queries, schemas, views
from codeclab.web.access import check_admin
from codeclab.web.campaigns import (
    STOP_GRACE_SECONDS,
    CampaignOptions,
    Launch,
    Launcher,
    LaunchError,
    LaunchNotFoundError,
)
from codeclab.web.frames import FramesUnavailable
from codeclab.web.links import expiry, parse_lifetime
from codeclab.web.state import Dashboard, get_dashboard
from codeclab.web.stills import STILL_KINDS, StillKind
from codeclab.web.transcode import (
    TRANSCODE_FORMATS,
    TranscodeError,
    TranscodeFormat,
    transcode_key,
)

MAX_PAGE = 500
MAX_PROGRESS_POINTS = 1000
DOWNLOAD_LIFETIME = timedelta(hours=1)
_ORDER_PATTERN = "^-?(" + "|".join(ORDER_FIELDS) + ")$"

DashboardDep = Annotated[Dashboard, Depends(get_dashboard)]


def require_admin(request: Request, dashboard: DashboardDep) -> None:
    """401 unless the request carries the admin token (checked before the body's values)."""
    check_admin(dashboard.access, request)


ADMIN = [Depends(require_admin)]
ExperimentId = Annotated[str, PathParam(description="Experiment id", max_length=64)]
Grace = Annotated[
    float,
    Query(
        ge=0,
        le=600,
        description="Seconds the campaign has to stop after SIGTERM before it is killed",
    ),
]
LaunchId = Annotated[
    str, PathParam(description="Campaign launch id", max_length=64, pattern=r"^launch-[\w-]+$")
]


def _experiment(dashboard: Dashboard, exp_id: str) -> ExperimentRecord:
    return queries.experiment(dashboard.lab.records, exp_id)  # RecordNotFound: 404


def _published(record: ExperimentRecord) -> None:
    if not record.artifacts:
        raise HTTPException(
            409,
            f"experiment {record.id} is not published (publish status "
            f"{record.publish_status.value}); an admin can publish it",
        )


def _phases(record: ExperimentRecord) -> list[schemas.Phase]:
    return [schemas.Phase(**phase.to_json()) for phase in record.phases]


def detail(dashboard: Dashboard, record: ExperimentRecord) -> schemas.ExperimentDetail:
    links = {name: dashboard.links.for_api(key) for name, key in sorted(record.artifacts.items())}
    summary = schemas.ExperimentSummary.of(record)
    return schemas.ExperimentDetail(
        **summary.model_dump(),
        rationale=record.rationale,
        params=record.params,
        isolation=record.isolation,
        phases=_phases(record),
        metrics=record.metrics,
        comparison=record.comparison,
        target=record.target,
        publish_error=record.publish_error,
        artifacts=dict(record.artifacts),
        links=links,
        links_expire_at=expiry(DEFAULT_LINK_LIFETIME) if links else None,
        cost_usd=record.cost_usd,
        tokens_in=record.tokens_in,
        tokens_out=record.tokens_out,
    )


def overview(dashboard: Dashboard) -> schemas.Overview:
    totals = dashboard.totals.get()
    price = dashboard.lab.settings.price_per_gb_month
    return schemas.Overview(
        experiments=totals.experiments,
        by_status=totals.by_status,
        achieved=totals.achieved,
        runs=totals.runs,
        bytes_stored=totals.bytes_stored,
        experiments_storing=totals.experiments_storing,
        price_per_gb_month=price,
        monthly_cost_usd=monthly_cost(totals.bytes_stored, price),
    )


def run_progress(dashboard: Dashboard, run_id: str) -> schemas.RunProgress:
    records = dashboard.lab.records
    run = records.get_run(run_id)
    active = [
        *records.list_experiments(run_id=run_id, status="running", limit=20),
        *records.list_experiments(run_id=run_id, status="pending", limit=20),
    ]
    latest = records.list_experiments(run_id=run_id, limit=10)
    return schemas.RunProgress(
        run=schemas.Run.of(run),
        active=[schemas.ExperimentSummary.of(r) for r in active],
        latest=[schemas.ExperimentSummary.of(r) for r in latest],
        poll_seconds=dashboard.poll_seconds,
    )


def _launcher(dashboard: Dashboard) -> Launcher:
    assert dashboard.launcher is not None  # Dashboard makes one
    return dashboard.launcher


def _cli_error(stderr: str) -> str | None:
    """The message of a command's ``error: ...`` line (what it refused and why), if any."""
    for line in reversed(stderr.strip().splitlines()):
        if line.startswith("error: "):
            return line.removeprefix("error: ").strip()
    return None


def still_urls(exp_id: str, index: int) -> dict[str, str]:
    base = f"/api/experiments/{exp_id}/frames/{index}"
    return {kind: f"{base}/{kind}.png" for kind in STILL_KINDS}


def api_router() -> APIRouter:
    """Reads of records are coroutines (short, on the event loop); work that decodes video,
    runs ffmpeg or talks to the object store runs in threads."""
    router = APIRouter(prefix="/api")

    @router.get("/overview", response_model=schemas.Overview, tags=["overview"])
    async def get_overview(dashboard: DashboardDep) -> schemas.Overview:
        """Counts, storage used and its estimated monthly cost."""
        return overview(dashboard)

    @router.get("/progress", response_model=schemas.Progress, tags=["overview"])
    async def get_progress(
        dashboard: DashboardDep,
        limit: Annotated[int, Query(ge=10, le=5000)] = MAX_PROGRESS_POINTS,
    ) -> schemas.Progress:
        """The best rate and quality over iterations (completed experiments in order)."""
        return dashboard.progress_chart(limit)

    @router.get("/runs", response_model=schemas.RunList, tags=["runs"])
    async def list_runs(
        dashboard: DashboardDep,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> schemas.RunList:
        """Runs (campaigns), newest first, with their experiment counts."""
        runs = dashboard.lab.records.list_runs(limit=limit, offset=offset)
        return schemas.RunList(limit=limit, offset=offset, items=[schemas.Run.of(r) for r in runs])

    @router.get("/runs/{run_id}", response_model=schemas.Run, tags=["runs"])
    async def get_run(dashboard: DashboardDep, run_id: str) -> schemas.Run:
        return schemas.Run.of(dashboard.lab.records.get_run(run_id))

    @router.get("/runs/{run_id}/progress", response_model=schemas.RunProgress, tags=["runs"])
    async def get_run_progress(dashboard: DashboardDep, run_id: str) -> schemas.RunProgress:
        """A run's counts, its active experiments and its latest ones (polled by its page)."""
        return run_progress(dashboard, run_id)

    @router.get("/experiments", response_model=schemas.ExperimentList, tags=["experiments"])
    async def list_experiments(
        dashboard: DashboardDep,
        run: Annotated[str | None, Query(description="Only this run's experiments")] = None,
        achieved: Annotated[bool | None, Query(description="Target achieved or not")] = None,
        status: Annotated[ExperimentStatus | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
        order: Annotated[
            str, Query(pattern=_ORDER_PATTERN, description="A field; '-' for descending")
        ] = "-created_at",
    ) -> Response:
        """Experiments matching every filter, one page at a time."""
        records = dashboard.lab.records
        if run is not None:
            records.get_run(run)  # 404 for an unknown run
        state = None if status is None else status.value
        total = queries.count_matching(records, run_id=run, achieved=achieved, status=state)
        if order == "-created_at":  # the common case: the index, then rows kept per version
            pages = queries.page(
                records, limit=limit, offset=offset, run_id=run, achieved=achieved, status=state
            )
            items = dashboard.listed_json(pages)
        else:
            rows = queries.listed(
                records,
                limit=limit,
                offset=offset,
                run_id=run,
                achieved=achieved,
                status=state,
                order=order,
            )
            items = [schemas.ExperimentSummary.of_listed(row).model_dump_json() for row in rows]
        # assembled from each item's JSON (what ExperimentList.model_dump_json would give)
        head = json.dumps({"total": total, "limit": limit, "offset": offset}, separators=(",", ":"))
        body = f'{head[:-1]},"items":[{",".join(items)}]}}'
        return Response(body, media_type="application/json")

    @router.get(
        "/experiments/{exp_id}", response_model=schemas.ExperimentDetail, tags=["experiments"]
    )
    async def get_experiment(
        dashboard: DashboardDep, exp_id: ExperimentId
    ) -> schemas.ExperimentDetail:
        """Every field of an experiment, with signed links to its published objects."""
        return detail(dashboard, _experiment(dashboard, exp_id))

    @router.get(
        "/experiments/{exp_id}/status",
        response_model=schemas.ExperimentState,
        tags=["experiments"],
    )
    async def get_status(dashboard: DashboardDep, exp_id: ExperimentId) -> schemas.ExperimentState:
        """Status and phases only (polled by a running experiment's page)."""
        record = _experiment(dashboard, exp_id)
        return schemas.ExperimentState(
            id=record.id,
            status=record.status.value,
            current_phase=record.current_phase,
            updated_at=record.updated_at,
            phases=_phases(record),
        )

    @router.get(
        "/experiments/{exp_id}/frames", response_model=schemas.FrameMetrics, tags=["experiments"]
    )
    async def get_frame_metrics(
        dashboard: DashboardDep, exp_id: ExperimentId
    ) -> schemas.FrameMetrics:
        """Per-frame PSNR-Y, SSIM-Y and VMAF of every quality point."""
        record = _experiment(dashboard, exp_id)
        frames = dashboard.lab.records.get_frames(exp_id)
        return schemas.FrameMetrics(
            experiment_id=exp_id,
            operating_quality=views.operating_quality(record),
            qualities=views.frame_series(frames),
        )

    @router.get("/experiments/{exp_id}/rd", response_model=schemas.RD, tags=["experiments"])
    async def get_rd(dashboard: DashboardDep, exp_id: ExperimentId) -> schemas.RD:
        """The experiment's rate-quality points and the baselines' ladders on its clip."""
        record = _experiment(dashboard, exp_id)
        data = views.rd_chart_data(
            {record.id: views.candidate_points(record)},
            views.baseline_points(dashboard.baselines(record.clip_sha256)),
        )
        return schemas.RD(
            experiment_id=exp_id,
            series={name: schemas.RDSeries(**series) for name, series in data.items()},
        )

    @router.get(
        "/experiments/{exp_id}/lineage", response_model=schemas.Lineage, tags=["experiments"]
    )
    async def get_lineage(dashboard: DashboardDep, exp_id: ExperimentId) -> schemas.Lineage:
        """Parents, children, and the line of first parents (the decoder's version history)."""
        record = _experiment(dashboard, exp_id)
        family = queries.lineage(dashboard.lab.records, record, dashboard.lineage.get())
        return schemas.Lineage(
            experiment_id=exp_id,
            ancestors=[schemas.Brief.of(b) for b in family.line],
            parents=[schemas.Brief.of(b) for b in family.parents],
            children=[schemas.Brief.of(b) for b in family.children],
        )

    @router.post(
        "/experiments/{exp_id}/links", response_model=schemas.Links, tags=["published objects"]
    )
    def regenerate_links(
        dashboard: DashboardDep,
        exp_id: ExperimentId,
        expires: Annotated[
            str, Query(description="Lifetime: seconds, or 30m, 12h, 7d (at most 7 days)")
        ] = "7d",
    ) -> schemas.Links:
        """Fresh signed links to the reconstruction, source preview, decoder, stream and
        package (and any transcodes made so far)."""
        try:
            lifetime = parse_lifetime(expires)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        record = _experiment(dashboard, exp_id)
        _published(record)
        keys = dict(record.artifacts)
        for fmt in TRANSCODE_FORMATS:
            key = transcode_key(record.id, fmt)
            if dashboard.lab.store.exists(key):
                keys[f"reconstruction_{fmt}"] = key
        return schemas.Links(
            experiment_id=exp_id,
            expires_at=expiry(lifetime),
            expires_in_seconds=int(lifetime.total_seconds()),
            links={name: dashboard.links.for_api(key, lifetime) for name, key in keys.items()},
        )

    @router.get(
        "/experiments/{exp_id}/artifacts/{name}",
        status_code=307,
        response_class=RedirectResponse,
        tags=["published objects"],
    )
    def download_artifact(
        request: Request,
        dashboard: DashboardDep,
        exp_id: ExperimentId,
        name: Annotated[str, PathParam(pattern="^(" + "|".join(ARTIFACT_NAMES) + ")$")],
    ) -> RedirectResponse:
        """Redirect to a signed link (good for an hour) to one published object."""
        record = _experiment(dashboard, exp_id)
        _published(record)
        key = record.artifacts.get(name)
        if key is None:
            raise HTTPException(404, f"experiment {exp_id} has no artifact {name!r}")
        root = request.scope.get("root_path", "")
        return RedirectResponse(
            dashboard.links.for_page(key, DOWNLOAD_LIFETIME, root_path=root), status_code=307
        )

    @router.get(
        "/experiments/{exp_id}/package",
        status_code=307,
        response_class=RedirectResponse,
        tags=["published objects"],
    )
    def download_package(
        request: Request, dashboard: DashboardDep, exp_id: ExperimentId
    ) -> RedirectResponse:
        """Redirect to a signed link to the decode package (decoder.py, stream.bin, ...)."""
        return download_artifact(request, dashboard, exp_id, "package")

    @router.post(
        "/experiments/{exp_id}/transcode",
        response_model=schemas.Transcode,
        tags=["published objects"],
    )
    async def transcode(
        dashboard: DashboardDep,
        exp_id: ExperimentId,
        format: Annotated[TranscodeFormat, Query(description="webm (VP9) or mp4 (H.264)")],
    ) -> schemas.Transcode:
        """The reconstruction re-encoded from its exact decoded frames; made once, then kept."""
        record = _experiment(dashboard, exp_id)
        _published(record)
        try:
            made = await run_in_threadpool(dashboard.transcoder.transcode, record, format)
        except FramesUnavailable as exc:
            raise HTTPException(409, str(exc)) from None
        except TranscodeError as exc:
            raise HTTPException(500, str(exc)) from None
        return schemas.Transcode(
            experiment_id=exp_id,
            format=format,
            key=made.key,
            size=made.size,
            content_type=made.content_type,
            cached=made.cached,
            url=dashboard.links.for_api(made.key),
            expires_at=expiry(DEFAULT_LINK_LIFETIME),
        )

    @router.get(
        "/experiments/{exp_id}/frames/{index}",
        response_model=schemas.FrameStats,
        tags=["frames"],
    )
    def get_frame(
        dashboard: DashboardDep,
        exp_id: ExperimentId,
        index: Annotated[int, PathParam(ge=0)],
    ) -> schemas.FrameStats:
        """One frame's PSNR-Y and block errors, from the exact decoded frame (decoded from the
        stored stream by the stored decoder, in the sandbox, on first use)."""
        record = _experiment(dashboard, exp_id)
        try:
            stats = dashboard.stills.stats(record, index)
        except FramesUnavailable as exc:
            raise HTTPException(409, str(exc)) from None
        except IndexError as exc:
            raise HTTPException(404, str(exc)) from None
        return schemas.FrameStats(
            experiment_id=exp_id, images=still_urls(exp_id, index), **vars(stats)
        )

    @router.get(
        "/experiments/{exp_id}/frames/{index}/{kind}.png",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}},
        tags=["frames"],
    )
    def get_still(
        dashboard: DashboardDep,
        exp_id: ExperimentId,
        index: Annotated[int, PathParam(ge=0)],
        kind: StillKind,
    ) -> Response:
        """A frame as PNG: the original, the reconstruction, their luma difference
        (128 + 4 x (reconstructed - original)), or the per-8x8-block error heatmap."""
        record = _experiment(dashboard, exp_id)
        try:
            data = dashboard.stills.png(record, index, kind)
        except FramesUnavailable as exc:
            raise HTTPException(409, str(exc)) from None
        except IndexError as exc:
            raise HTTPException(404, str(exc)) from None
        return Response(
            data, media_type="image/png", headers={"Cache-Control": "private, max-age=86400"}
        )

    @router.delete("/experiments/{exp_id}", response_model=schemas.Deleted, tags=["admin"])
    def delete_experiment(
        request: Request, dashboard: DashboardDep, exp_id: ExperimentId
    ) -> schemas.Deleted:
        """Delete an experiment's record, its per-frame data and the objects only it uses
        (the clip's source preview and the content-addressed codec source are shared, so
        they stay).  Needs the admin token."""
        check_admin(dashboard.access, request)
        record = _experiment(dashboard, exp_id)
        store = dashboard.lab.store
        keys = [key for name, key in record.artifacts.items() if name != "source"]
        keys += [obj.key for obj in store.list(f"experiments/{exp_id}/")]
        for key in sorted(set(keys)):
            store.delete(key)
        dashboard.lab.records.delete_experiment(exp_id)
        dashboard.forget_aggregates()
        return schemas.Deleted(experiment_id=exp_id, deleted_objects=sorted(set(keys)))

    @router.post("/experiments/{exp_id}/publish", response_model=schemas.Published, tags=["admin"])
    async def publish(
        request: Request, dashboard: DashboardDep, exp_id: ExperimentId
    ) -> schemas.Published:
        """Publish a completed experiment (again): the codec is run again in the sandboxes and
        its stream must be byte-identical to the measured one.  Runs ``codeclab publish`` (the
        web layer does not run the pipeline itself).  Needs the admin token."""
        check_admin(dashboard.access, request)
        before = _experiment(dashboard, exp_id)
        done = await run_in_threadpool(_launcher(dashboard).run_to_end, ["publish", exp_id])
        after = _experiment(dashboard, exp_id)
        dashboard.forget_aggregates()
        if done.returncode == 0 or (
            after.updated_at != before.updated_at and after.publish_status is PublishStatus.FAILED
        ):  # published, or tried and recorded as failed
            return schemas.Published(
                experiment_id=exp_id,
                ok=after.publish_status is PublishStatus.PUBLISHED,
                error=after.publish_error,
                artifacts=dict(after.artifacts),
                bytes_stored=after.bytes_stored,
            )
        refused = _cli_error(done.stderr)
        if refused is not None:  # e.g. not completed, or the codec is not deterministic
            raise HTTPException(409, refused)
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise HTTPException(500, f"codeclab publish {exp_id} failed ({done.returncode}): {last}")

    # --- campaigns (admin) ----------------------------------------------------------------

    def _launch(dashboard: Dashboard, launch_id: str) -> Launch:
        try:
            return _launcher(dashboard).get(launch_id)
        except LaunchNotFoundError as exc:
            raise HTTPException(404, str(exc)) from None

    @router.post(
        "/campaigns",
        status_code=201,
        response_model=schemas.CampaignLaunch,
        tags=["admin"],
        dependencies=ADMIN,
    )
    def start_campaign(
        dashboard: DashboardDep, start: schemas.CampaignStart
    ) -> schemas.CampaignLaunch:
        """Start a campaign: ``codeclab run`` with these options, as a separate background
        process on this machine (it records its run as any ``codeclab run`` does).  Needs the
        admin token."""
        if start.resume is not None:
            run = dashboard.lab.records.get_run(start.resume)  # 404 for an unknown run
            if run.status.value == "running":
                owner = _launcher(dashboard).for_run(dashboard.lab.records, run.id)
                if owner is not None and _launcher(dashboard).state(owner).alive:
                    raise HTTPException(409, f"run {run.id} is running (launch {owner.id})")
        options = CampaignOptions(
            **{
                **start.model_dump(exclude={"clips", "quality", "baselines"}),
                "clips": tuple(start.clips),
                "quality": tuple(start.quality),
                "baselines": None if start.baselines is None else tuple(start.baselines),
            }
        )
        try:
            state = _launcher(dashboard).start(options)
        except LaunchError as exc:
            raise HTTPException(500, str(exc)) from None
        dashboard.forget_aggregates()
        return schemas.CampaignLaunch.of(state)

    @router.get(
        "/campaigns", response_model=schemas.CampaignLaunches, tags=["admin"], dependencies=ADMIN
    )
    def list_campaigns(dashboard: DashboardDep) -> schemas.CampaignLaunches:
        """Campaigns started from the dashboard, newest first, with their process's state and
        the run each recorded.  Needs the admin token."""
        launcher = _launcher(dashboard)
        launches = launcher.find_runs(dashboard.lab.records)
        return schemas.CampaignLaunches(
            items=[schemas.CampaignLaunch.of(launcher.state(launch)) for launch in launches]
        )

    @router.get(
        "/campaigns/{launch_id}",
        response_model=schemas.CampaignLaunch,
        tags=["admin"],
        dependencies=ADMIN,
    )
    def get_campaign(dashboard: DashboardDep, launch_id: LaunchId) -> schemas.CampaignLaunch:
        """One campaign started from the dashboard.  Needs the admin token."""
        launcher = _launcher(dashboard)
        _launch(dashboard, launch_id)
        launcher.find_runs(dashboard.lab.records)
        return schemas.CampaignLaunch.of(launcher.state(launcher.get(launch_id)))

    def _stop(dashboard: Dashboard, launch: Launch, grace: float) -> schemas.CampaignLaunch:
        try:
            state = _launcher(dashboard).stop(launch.id, grace_seconds=grace)
        except LaunchError as exc:
            raise HTTPException(409, str(exc)) from None
        dashboard.forget_aggregates()
        return schemas.CampaignLaunch.of(state)

    @router.post(
        "/campaigns/{launch_id}/stop",
        response_model=schemas.CampaignLaunch,
        tags=["admin"],
        dependencies=ADMIN,
    )
    def stop_campaign(
        dashboard: DashboardDep,
        launch_id: LaunchId,
        grace: Grace = STOP_GRACE_SECONDS,
    ) -> schemas.CampaignLaunch:
        """Stop a campaign started from the dashboard: SIGTERM (the campaign records its run as
        stopped, resumable), then SIGKILL after `grace` seconds.  Needs the admin token."""
        return _stop(dashboard, _launch(dashboard, launch_id), grace)

    @router.post(
        "/runs/{run_id}/stop",
        response_model=schemas.CampaignLaunch,
        tags=["admin"],
        dependencies=ADMIN,
    )
    def stop_run(
        dashboard: DashboardDep, run_id: str, grace: Grace = STOP_GRACE_SECONDS
    ) -> schemas.CampaignLaunch:
        """Stop the campaign recording run `run_id`, when the dashboard started it.  Needs the
        admin token."""
        records = dashboard.lab.records
        records.get_run(run_id)  # 404 for an unknown run
        launch = _launcher(dashboard).for_run(records, run_id)
        if launch is None:
            raise HTTPException(
                409,
                f"run {run_id} was not started from this dashboard: stop it where it runs "
                "(Ctrl-C), or `codeclab gc` if its process is gone",
            )
        return _stop(dashboard, launch, grace)

    return router
