"""The JSON API's response shapes (they document themselves in ``/docs``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from codeclab.storage.records import ExperimentRecord, RunRecord
from codeclab.web import campaigns, queries


class ExperimentSummary(BaseModel):
    """An experiment's headline numbers, without its per-quality and per-frame data."""

    id: str
    run_id: str | None
    created_at: datetime
    updated_at: datetime
    status: str
    current_phase: str | None
    failed_phase: str | None
    error: str | None
    designer: str
    title: str
    parent_ids: list[str]
    codec_sha256: str | None
    clip_sha256: str | None
    target_achieved: bool | None
    tier: int | None
    bitrate_bps: float | None
    mbps: float | None
    psnr_y: float | None
    ssim_y: float | None
    vmaf: float | None
    saving_vs_x265_percent: float | None = Field(
        description="Bits saved against x265 at equal PSNR-Y (negative: more bits needed)"
    )
    publish_status: str
    bytes_stored: int
    page: str
    api: str

    @classmethod
    def of(cls, record: ExperimentRecord) -> ExperimentSummary:
        return cls.of_listed(queries.listed_record(record))

    @classmethod
    def of_listed(cls, row: queries.ListedExperiment) -> ExperimentSummary:
        return cls(
            id=row.id,
            run_id=row.run_id,
            created_at=row.created_at,
            updated_at=row.updated_at,
            status=row.status,
            current_phase=row.current_phase,
            failed_phase=row.failed_phase,
            error=row.error,
            designer=row.designer,
            title=row.title,
            parent_ids=row.parent_ids,
            codec_sha256=row.codec_sha256,
            clip_sha256=row.clip_sha256,
            target_achieved=row.target_achieved,
            tier=row.tier,
            bitrate_bps=row.bitrate_bps,
            mbps=None if row.bitrate_bps is None else row.bitrate_bps / 1e6,
            psnr_y=row.psnr_y,
            ssim_y=row.ssim_y,
            vmaf=row.vmaf,
            saving_vs_x265_percent=row.saving_vs_reference_percent,
            publish_status=row.publish_status,
            bytes_stored=row.bytes_stored,
            page=f"/experiments/{row.id}",
            api=f"/api/experiments/{row.id}",
        )


class ExperimentList(BaseModel):
    total: int = Field(description="Experiments matching the filters (all pages)")
    limit: int
    offset: int
    items: list[ExperimentSummary]


class Phase(BaseModel):
    phase: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    seconds: float | None
    error: str | None


class ExperimentDetail(ExperimentSummary):
    """Every recorded field, and links to the published objects."""

    rationale: str
    params: dict[str, Any]
    isolation: str | None
    phases: list[Phase]
    metrics: Any = Field(description="Per quality point: rate, quality summary, VMAF")
    comparison: Any = Field(description="Operating point, target, comparisons with baselines")
    target: Any
    publish_error: str | None
    artifacts: dict[str, str] = Field(description="Artifact name -> object key")
    links: dict[str, str] = Field(description="Artifact name -> signed link")
    links_expire_at: datetime | None
    cost_usd: float
    tokens_in: int
    tokens_out: int


class FrameMetrics(BaseModel):
    """Per-frame PSNR-Y, SSIM-Y and VMAF of each quality point."""

    experiment_id: str
    operating_quality: int | None
    qualities: dict[str, dict[str, list[float | None]]] = Field(
        description="quality -> {frame, psnr_y, ssim_y, vmaf}: equal-length lists"
    )


class Links(BaseModel):
    experiment_id: str
    expires_at: datetime
    expires_in_seconds: int
    links: dict[str, str]


class Transcode(BaseModel):
    experiment_id: str
    format: str
    key: str
    size: int
    content_type: str
    cached: bool = Field(description="True when it had been made before")
    url: str
    expires_at: datetime


class FrameStats(BaseModel):
    experiment_id: str
    index: int
    frame_count: int
    width: int
    height: int
    psnr_y: float | None = Field(description="None: the frame is identical to the source")
    mse_y: float
    block_size: int
    block_psnr_min: float
    block_psnr_mean: float
    worst_block_x: int
    worst_block_y: int
    scale_worst_db: float = Field(description="Heatmap: this PSNR and below is brightest")
    scale_best_db: float = Field(description="Heatmap: this PSNR and above is darkest")
    difference_gain: int
    images: dict[str, str]


class RDSeries(BaseModel):
    kind: str
    kbps: list[float]
    psnr_y: list[float | None]
    vmaf: list[float | None]
    labels: list[str]


class RD(BaseModel):
    experiment_id: str
    series: dict[str, RDSeries]


class Brief(BaseModel):
    id: str
    created_at: datetime
    status: str
    codec_sha256: str | None
    mbps: float | None
    psnr_y: float | None
    vmaf: float | None
    target_achieved: bool | None
    published: bool

    @classmethod
    def of(cls, brief: queries.Brief) -> Brief:
        return cls(
            id=brief.id,
            created_at=brief.created_at,
            status=brief.status,
            codec_sha256=brief.codec_sha256,
            mbps=brief.mbps,
            psnr_y=brief.psnr_y,
            vmaf=brief.vmaf,
            target_achieved=brief.target_achieved,
            published=brief.publish_status == "published",
        )


class Lineage(BaseModel):
    experiment_id: str
    ancestors: list[Brief] = Field(description="The line of first parents, oldest first")
    parents: list[Brief]
    children: list[Brief]


class Run(BaseModel):
    id: str
    created_at: datetime
    finished_at: datetime | None
    status: str
    designer: str
    seed: int
    notes: str | None
    config: dict[str, Any]
    experiments: int
    completed: int
    failed: int
    achieved: int

    @classmethod
    def of(cls, run: RunRecord) -> Run:
        return cls(
            id=run.id,
            created_at=run.created_at,
            finished_at=run.finished_at,
            status=run.status.value,
            designer=run.designer,
            seed=run.seed,
            notes=run.notes,
            config=run.config,
            experiments=run.experiments,
            completed=run.completed,
            failed=run.failed,
            achieved=run.achieved,
        )


class RunList(BaseModel):
    limit: int
    offset: int
    items: list[Run]


class RunProgress(BaseModel):
    """What a live run page polls for."""

    run: Run
    active: list[ExperimentSummary] = Field(description="Pending and running experiments")
    latest: list[ExperimentSummary]
    poll_seconds: float


class ExperimentState(BaseModel):
    """What a live experiment page polls for."""

    id: str
    status: str
    current_phase: str | None
    updated_at: datetime
    phases: list[Phase]


class Overview(BaseModel):
    experiments: int
    by_status: dict[str, int]
    achieved: int
    runs: int
    bytes_stored: int
    experiments_storing: int
    price_per_gb_month: float
    monthly_cost_usd: float


class Progress(BaseModel):
    """Completed experiments in order, at most `limit` points (evenly thinned)."""

    total: int
    iteration: list[int]
    id: list[str]
    mbps: list[float | None]
    psnr_y: list[float | None]
    achieved: list[bool]
    best_psnr_y: list[float | None] = Field(
        description="Best PSNR-Y so far among experiments that achieved their target"
    )
    best_mbps: list[float | None] = Field(
        description="Lowest rate so far among experiments that achieved their target"
    )


class Deleted(BaseModel):
    experiment_id: str
    deleted_objects: list[str]


class Published(BaseModel):
    experiment_id: str
    ok: bool
    error: str | None
    artifacts: dict[str, str]
    bytes_stored: int


# what a campaign searches: fixed when it started, so a resumed one takes none of them
_SEARCH_OPTIONS = (
    "designer",
    "frames",
    "target_mbps",
    "min_psnr",
    "min_vmaf",
    "seed",
    "baselines",
    "vmaf",
    "publish",
    "smoke_frames",
    "debug_rounds",
)


class CampaignStart(BaseModel):
    """The options of ``codeclab run`` (see ``codeclab run --help``); left out: its default."""

    model_config = ConfigDict(extra="forbid")

    designer: str | None = Field(
        None,
        max_length=300,
        pattern=r"^\S+$",
        description="offline (default), openai:MODEL or anthropic:MODEL, optionally @BASE_URL",
    )
    clips: list[Annotated[str, Field(min_length=1, max_length=4096)]] = Field(
        default_factory=list, max_length=16, description="Search clips: paths or builtin:NAME"
    )
    frames: int | None = Field(None, ge=1, le=100_000, description="Frames of each clip")
    iterations: int | None = Field(None, ge=1, le=1_000_000, description="Designs in the run")
    time_budget: str | None = Field(
        None, pattern=r"^\d+(\.\d+)?[smhd]?$", description="Start no design after: 90s, 30m, 2h"
    )
    forever: bool = Field(False, description="Run until stopped (no iterations or time budget)")
    target_mbps: float | None = Field(None, gt=0, le=10_000)
    min_psnr: float | None = Field(None, ge=0, le=100)
    min_vmaf: float | None = Field(None, ge=0, le=100)
    seed: int | None = Field(None, ge=0, le=2**31 - 1)
    workers: int | None = Field(None, ge=1, le=256)
    executor: str | None = Field(None, pattern=r"^(local|dask://[^\s/]+:\d+)$")
    quality: list[Annotated[int, Field(ge=0, le=100)]] = Field(default_factory=list, max_length=32)
    baselines: list[Literal["x264", "x265", "svtav1"]] | None = Field(
        None, description="Baseline encoders; [] for none (default: x264, x265)"
    )
    vmaf: bool | None = Field(None, description="Measure VMAF (default: yes)")
    publish: Literal["success", "always", "never"] | None = None
    smoke_frames: int | None = Field(None, ge=0, le=1000)
    debug_rounds: int | None = Field(None, ge=0, le=100)
    budget_usd: float | None = Field(None, ge=0, description="LLM spend limit")
    resume: str | None = Field(
        None, max_length=64, pattern=r"^[\w.-]+$", description="Continue this campaign run"
    )

    @model_validator(mode="after")
    def _consistent(self) -> CampaignStart:
        if self.forever and (self.iterations is not None or self.time_budget is not None):
            raise ValueError("forever runs until stopped: leave out iterations and time_budget")
        if self.resume is not None:
            kept = [name for name in _SEARCH_OPTIONS if getattr(self, name) is not None]
            kept += [name for name in ("clips", "quality") if getattr(self, name)]
            if kept:
                raise ValueError(
                    f"a resumed campaign keeps what it searches: leave out {', '.join(kept)}"
                )
        return self


class CampaignLaunch(BaseModel):
    """A ``codeclab run`` process started from the dashboard."""

    id: str
    pid: int
    state: str = Field(description="running, stopping, stopped, killed or exited")
    alive: bool
    started_at: datetime
    arguments: list[str] = Field(description="The command line after the interpreter")
    options: dict[str, Any]
    run_id: str | None = Field(description="The run its campaign recorded, once it has")
    run_page: str | None
    stop_requested_at: datetime | None
    stopped_by: str | None = Field(description="SIGTERM (its clean stop) or SIGKILL")
    exit_code: int | None = Field(description="Known when this dashboard process reaped it")
    log_tail: str = Field(description="The end of its output")

    @classmethod
    def of(cls, state: campaigns.LaunchState) -> CampaignLaunch:
        launch = state.launch
        return cls(
            id=launch.id,
            pid=launch.pid,
            state=state.state,
            alive=state.alive,
            started_at=launch.started_at,
            arguments=launch.arguments,
            options=launch.options,
            run_id=launch.run_id,
            run_page=None if launch.run_id is None else f"/runs/{launch.run_id}",
            stop_requested_at=launch.stop_requested_at,
            stopped_by=launch.stopped_by,
            exit_code=launch.exit_code,
            log_tail=state.log_tail,
        )


class CampaignLaunches(BaseModel):
    items: list[CampaignLaunch]
