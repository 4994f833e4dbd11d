"""The campaign: the lab's autonomous loop of designing codecs, testing them and learning.

A designer (offline search or an LLM) proposes a design from the history so far; the design is
evaluated through an **evaluation cascade**, one recorded experiment per stage:

1. a **smoke test** on the first `smoke_frames` frames of the first search clip, at one
   quality (the median of the ladder), without baselines, VMAF or publishing;
2. each **search clip**, with the full plan (quality ladder, baselines, VMAF, target, publish).

Only designs that complete the smoke test pay for the search clips, and a design stops at the
first stage that fails. A design that fails validation, execution or verification (or a
designer reply that held no codec) goes back to the designer's `revise` with the error, up to
`debug_rounds` times in a chain; a revision lists the design it fixes as its first parent.

**Parallelism** (`workers` = K designs in flight, on `codeclab.executors`): asynchronous.
The campaign keeps K designs in flight; whenever one finishes, its result joins the history
and the next design (one owed a stage, else a revision, else a new proposal) is chosen from
that history. Designers see designs in the order they were proposed, as ``d1, d2, ...``
(`codeclab.pipeline.history`), never as random experiment ids. With K = 1 the offline
designer's campaign is reproducible: the same seed gives the same designs, resumed or not (it
is deterministic given seed and history). With K > 1 what holds is: every design is evaluated
once and recorded; the designs proposed while others are in flight depend on which finished
first, so runs with the same seed share their first K designs (and every seed of the offline
designer's population, proposed before any breeding) but may then differ.

**State lives in the records database.** The run holds the config, the seed and the stage
clips (`create_run(config=...)`); every design is its experiments. `run_campaign(...,
resume=RUN_ID)` rebuilds everything from them: experiments left ``running`` or ``pending`` by a
dead process are marked failed with an error starting ``interrupted:``, and the stage of that
design is run once more (a second interruption fails the design); a design that passed its
smoke test but lacks search clips gets them; failed designs among the last K still owed a
revision get it; then the loop goes on. ``iterations`` counts the run's designs, so a resumed
run goes on to the same total (or to a new one given on resume). A design interrupted
before its source was stored cannot be run again and counts as failed.
The local process pool's workers die with the campaign process, so a killed campaign
leaves no writer behind; with Dask, let the workers finish (or restart them) before
resuming.

**Stopping.** After `iterations` designs (revisions and designer failures count), once
`time_budget_s` has passed (no new design starts after it; designs in flight finish), when
the LLM budget is spent (`BudgetExceeded`: the designs in flight finish and the run ends as
finished), after `MAX_DESIGNER_FAILURES` designer failures in a row, or on Ctrl-C (the run
ends as stopped, and can be resumed). With neither `iterations` nor `time_budget_s` it runs
until stopped.

**The leaderboard** ranks completed designs: those reaching the target on every search clip
first, then by target score (PSNR-Y at the target's rate limit, averaged over the search
clips), then by BD-rate against x264 (`codeclab.pipeline.history.leaderboard`).
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from codeclab import __version__
from codeclab.baselines.encoders import BASELINE_ENCODERS
from codeclab.baselines.ladder import run_baselines
from codeclab.config import PUBLISH_POLICIES, LLMSettings
from codeclab.designers.base import Design, Designer, PastExperiment, TaskContext, Usage
from codeclab.executors import (
    LOCAL,
    CampaignExecutor,
    ClipSpec,
    DesignJob,
    JobResult,
    StagePlan,
    dask_address,
    open_executor,
)
from codeclab.lab import Lab
from codeclab.liveness import OWNER_KEY, ProcessRef
from codeclab.metrics.vmaf import vmaf_available
from codeclab.pipeline.analysis import Target
from codeclab.pipeline.evaluate import DEFAULT_QUALITIES, check_qualities
from codeclab.pipeline.experiment import PHASES
from codeclab.pipeline.history import (
    INTERRUPTED,
    SEARCH,
    SMOKE,
    STAGE_CLIPS_KEY,
    ClipRef,
    SourceCache,
    StageClips,
    Standing,
    Trial,
    alias_map,
    designer_history,
    group_trials,
    leaderboard,
    run_experiments,
    source_key,
    task_context,
)
from codeclab.storage.records import ExperimentRecord, ExperimentStatus, RunRecord, RunStatus
from codeclab.video.clips import PreparedClip

DEFAULT_CLIP = "builtin:lab-cif"
DEFAULT_FRAMES = 20
DEFAULT_ITERATIONS = 10
DEFAULT_LLM_BUDGET_USD = 1.0
MAX_DESIGNER_FAILURES = 3
POLL_SECONDS = 0.5
CONFIG_KEY = "campaign"
RUNTIME_FIELDS = ("iterations", "time_budget_s", "workers", "executor", "budget_usd")
"""Settings a resumed campaign may change (how long and where, not what is searched)."""


class CampaignError(RuntimeError):
    """The campaign cannot start or go on; the message says why and what to do."""


# --- configuration ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignConfig:
    """What a campaign searches, how designs are tested, and when it stops."""

    designer: str = "offline"
    """``offline``, ``openai:MODEL[@BASE_URL]`` or ``anthropic:MODEL[@BASE_URL]``."""
    clips: tuple[str, ...] = (DEFAULT_CLIP,)
    """Search clips (paths or ``builtin:NAME``); the first describes the task to the designer."""
    frames: int | None = DEFAULT_FRAMES
    """Frames taken from each search clip (None: all)."""
    start: int = 0
    """First frame taken from each search clip."""
    iterations: int | None = DEFAULT_ITERATIONS
    """Designs to evaluate in the run (None: no limit)."""
    time_budget_s: float | None = None
    """No new design starts after this many seconds of this process (None: no limit)."""
    seed: int = 0
    workers: int | None = None
    """Designs in flight (None: 1 locally, every worker thread of a Dask cluster)."""
    executor: str = "local"
    """``local`` or ``dask://HOST:PORT``."""
    qualities: tuple[int, ...] = DEFAULT_QUALITIES
    target: Target = field(default_factory=Target)
    baselines: tuple[str, ...] = ("x264", "x265")
    with_vmaf: bool = True
    publish: str = "success"
    """Search-clip experiments: ``success`` (reaching the target), ``always`` or ``never``."""
    smoke_frames: int = 3
    """Frames of the smoke test (0: no smoke test)."""
    debug_rounds: int = 2
    """How many times in a row a failing design is sent back to the designer to fix."""
    budget_usd: float | None = None
    """LLM designers: money the run may spend on model calls (None: DEFAULT_LLM_BUDGET_USD)."""
    population: int = 8
    """Offline designer: proposals drawn as seeds before breeding starts."""

    def __post_init__(self) -> None:
        if not self.clips:
            raise ValueError("a campaign needs at least one search clip")
        if self.frames is not None and self.frames < 1:
            raise ValueError(f"frames must be 1 or more, got {self.frames}")
        if self.start < 0:
            raise ValueError(f"start must be 0 or more, got {self.start}")
        if self.iterations is not None and self.iterations < 1:
            raise ValueError(f"iterations must be 1 or more, got {self.iterations}")
        if self.time_budget_s is not None and not self.time_budget_s > 0:
            raise ValueError(f"the time budget must be positive, got {self.time_budget_s} s")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be 1 or more, got {self.workers}")
        check_qualities(self.qualities)
        unknown = [name for name in self.baselines if name not in BASELINE_ENCODERS]
        if unknown:
            raise ValueError(
                f"unknown baseline encoder(s) {', '.join(unknown)}; known: "
                f"{', '.join(BASELINE_ENCODERS)}"
            )
        if self.publish not in PUBLISH_POLICIES:
            raise ValueError(f"publish must be one of {', '.join(PUBLISH_POLICIES)}")
        if self.smoke_frames < 0 or self.debug_rounds < 0 or self.population < 1:
            raise ValueError(
                "smoke_frames and debug_rounds must be 0 or more and population 1 or more, got "
                f"{self.smoke_frames}, {self.debug_rounds}, {self.population}"
            )
        if self.executor != LOCAL:
            dask_address(self.executor)  # raises ValueError naming the expected form
        if self.budget_usd is not None and self.budget_usd < 0:
            raise ValueError(f"the LLM budget cannot be negative, got {self.budget_usd}")
        if not self.with_vmaf and self.target.min_vmaf is not None:
            raise ValueError(
                "the target has a VMAF floor but VMAF is not measured: drop the floor "
                "(min_vmaf=None) or measure VMAF"
            )

    @property
    def forever(self) -> bool:
        return self.iterations is None and self.time_budget_s is None

    @property
    def smoke_quality(self) -> int:
        ordered = sorted(self.qualities)
        return ordered[len(ordered) // 2]

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, Target):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            data[item.name] = value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CampaignConfig:
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown campaign setting(s): {', '.join(unknown)}")
        values: dict[str, Any] = dict(data)
        if "target" in values:
            values["target"] = Target(**values["target"])
        for name in ("clips", "qualities", "baselines"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)


def stored_config(lab: Lab, run_id: str) -> CampaignConfig:
    """The config campaign run `run_id` was started with."""
    run = lab.records.get_run(run_id)
    data = run.config.get(CONFIG_KEY)
    if not isinstance(data, Mapping):
        raise CampaignError(f"run {run_id} was not started by a campaign: nothing to resume")
    return CampaignConfig.from_dict(data)


# --- progress and result ------------------------------------------------------------------------


@dataclass(frozen=True)
class InFlight:
    """A design being evaluated, and where it is."""

    alias: str
    stage: str
    clip: str
    phase: str | None


@dataclass(frozen=True)
class CampaignStatus:
    """A snapshot of the campaign for a progress display."""

    run_id: str
    activity: str
    """What the campaign is doing: "preparing clips", "proposing d8", "evaluating d7, d8"..."""
    designs: int
    """Designs recorded in the run so far."""
    iterations: int | None
    elapsed_s: float
    in_flight: tuple[InFlight, ...]
    best: Standing | None
    spent_usd: float
    message: str | None = None
    """The latest event, e.g. "d7 completed: 33.10 dB at the rate limit"."""


Progress = Callable[[CampaignStatus], None]


@dataclass(frozen=True)
class CampaignResult:
    run: RunRecord
    stop_reason: str
    trials: tuple[Trial, ...]
    leaderboard: tuple[Standing, ...]
    spent_usd: float
    seconds: float

    @property
    def best(self) -> Standing | None:
        return self.leaderboard[0] if self.leaderboard else None

    @property
    def published(self) -> list[ExperimentRecord]:
        return [e for t in self.trials for e in t.experiments if e.artifacts]


# --- clips --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignClips:
    """The prepared clips of each stage and the specs a worker prepares them from again."""

    search: tuple[tuple[ClipSpec, PreparedClip], ...]
    smoke: tuple[ClipSpec, PreparedClip] | None

    @property
    def stage_clips(self) -> StageClips:
        smoke = ClipRef.of(self.smoke[1]) if self.smoke is not None else None
        return StageClips(smoke, tuple(ClipRef.of(clip) for _, clip in self.search))

    @property
    def primary(self) -> PreparedClip:
        return self.search[0][1]


def prepare_campaign_clips(config: CampaignConfig, cache_dir: Path) -> CampaignClips:
    """Prepare each search clip, and the smoke clip (the first frames of the first one)."""
    workdir = cache_dir / "clips"
    search: list[tuple[ClipSpec, PreparedClip]] = []
    for spec in config.clips:
        unchecked = ClipSpec(spec, config.start, config.frames)
        prepared = unchecked.prepare(workdir, cache_dir)
        search.append((replace(unchecked, sha256=prepared.sha256), prepared))
    smoke = None
    first = search[0][1]
    if 0 < config.smoke_frames < first.frame_count:
        unchecked = ClipSpec(config.clips[0], config.start, config.smoke_frames)
        prepared = unchecked.prepare(workdir, cache_dir)
        smoke = (replace(unchecked, sha256=prepared.sha256), prepared)
    return CampaignClips(tuple(search), smoke)


# --- the designer -------------------------------------------------------------------------------


def make_designer(
    config: CampaignConfig, spent_usd: float = 0.0, llm: LLMSettings | None = None
) -> Designer:
    """The designer `config.designer` names; an LLM designer gets the run's budget, of which
    `spent_usd` is already spent, and calls its model as `llm` (the ``[llm]`` settings) says."""
    if config.designer == "offline":
        from codeclab.designers.offline.designer import OfflineDesigner

        return OfflineDesigner(seed=config.seed, population=config.population)
    from codeclab.designers.llm import Budget, LLMDesigner, PriceTable, parse_spec

    llm = llm or LLMSettings()
    try:
        model = parse_spec(config.designer, **llm.client_options())
    except ValueError as exc:
        raise CampaignError(
            f"designer {config.designer!r}: {exc}; use offline, openai:MODEL or anthropic:MODEL"
        ) from None
    limit = DEFAULT_LLM_BUDGET_USD if config.budget_usd is None else config.budget_usd
    return LLMDesigner(
        model,
        budget=Budget(limit, spent_usd=spent_usd),
        prices=PriceTable.from_mapping(llm.prices),
    )


def _designer_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "this call gave no design" (recorded, the campaign goes on)."""
    from codeclab.designers.llm import DesignError, LLMError

    return (DesignError, LLMError)


def _budget_exceeded() -> type[BaseException]:
    from codeclab.designers.llm import BudgetExceeded

    return BudgetExceeded


# --- the campaign -------------------------------------------------------------------------------


@dataclass
class Pending:
    """A design waiting for (more of) its evaluation."""

    alias: str
    """Set when the batch is submitted (``d`` and its place among the run's designs)."""
    key: str
    design: Design
    stages: tuple[StagePlan, ...]
    lost: int = 0
    """Times its job died before recording anything."""

    @property
    def codec_sha256(self) -> str:
        return hashlib.sha256(self.design.source.encode("utf-8")).hexdigest()


class Campaign:
    """One campaign run in progress; `run_campaign` is the way in."""

    def __init__(
        self,
        lab: Lab,
        config: CampaignConfig,
        run: RunRecord,
        clips: CampaignClips,
        progress: Progress | None,
    ) -> None:
        self.lab = lab
        self.config = config
        self.record = run
        self.clips = clips
        self.stage_clips = clips.stage_clips
        self.progress = progress
        self.task: TaskContext = task_context(clips.primary, config.target)
        self.sources = SourceCache(lab)
        self.order: list[str] = []
        """Design keys in the order they were proposed (or found in the records)."""
        self.keys: dict[str, str] = {}
        """Experiment id -> key of its design, for the experiments of finished jobs."""
        self.trials: list[Trial] = []
        self.owed: deque[Pending] = deque()
        self.to_revise: deque[Trial] = deque()
        self.started = time.monotonic()
        self.activity = "starting"
        self.message: str | None = None
        self.in_flight: tuple[InFlight, ...] = ()
        self.stop_reason: str | None = None
        self.designer_failures = 0
        self.with_vmaf = config.with_vmaf
        self.plans = self._plans()
        self.reload()
        self.designer = make_designer(config, self.spent_usd(), lab.settings.llm)

    # --- state from the records -----------------------------------------------------------

    def reload(self) -> None:
        records = run_experiments(self.lab, self.record.id)
        self.trials = group_trials(records, self.stage_clips, self.order, self.keys)
        known = set(self.order)
        self.order += [trial.key for trial in self.trials if trial.key not in known]

    def spent_usd(self) -> float:
        return sum(e.cost_usd for t in self.trials for e in t.experiments)

    def trial(self, key: str) -> Trial | None:
        return next((t for t in self.trials if t.key == key), None)

    def history(self) -> list[PastExperiment]:
        return designer_history(self.trials, self.sources)

    def mark_interrupted(self, why: str) -> int:
        """Fail every running or pending experiment of the run with `why`; how many."""
        records = self.lab.records
        marked = 0
        for status in (ExperimentStatus.RUNNING, ExperimentStatus.PENDING):
            found = records.list_experiments(run_id=self.record.id, status=status, limit=1000)
            for record in found:
                phase = record.current_phase
                if phase is None:  # pending, or between two phases: charge the next one
                    done = [p.phase for p in record.phases if p.phase in PHASES]
                    phase = PHASES[min(PHASES.index(done[-1]) + 1, len(PHASES) - 1) if done else 0]
                    records.start_phase(record.id, phase)
                records.finish_phase(record.id, phase, error=f"{INTERRUPTED}{why}")
                marked += 1
        return marked

    def resume_state(self) -> None:
        """Queue what the records say is owed: interrupted stages, missing search clips, and
        revisions of the last batch's failures."""
        marked = self.mark_interrupted("the campaign process stopped during this experiment")
        self.reload()
        if marked:
            self.note(f"{marked} interrupted experiment(s) marked failed; their stages run again")
        self.queue_owed(self.trials)
        slots = self.slots_hint()
        for trial in self.trials[-slots:]:
            if self.needs_revision(trial) and not self.has_revision(trial):
                self.to_revise.append(trial)

    def queue_owed(self, trials: Sequence[Trial]) -> None:
        queued = {p.key for p in self.owed}
        for trial in trials:
            state = trial.state()
            if state.decided or not state.owed or trial.key in queued:
                continue
            source = self.sources.get(trial.first.codec_sha256)
            assert source is not None  # an undeployed interrupted design is failed, not owed
            first = trial.first
            design = Design(
                source=source,
                rationale=first.rationale,
                parent_ids=tuple(first.parent_ids),
                params=dict(first.params),
                designer=first.designer,
            )
            stages = tuple(self.plans[clip.sha256] for _, clip in state.owed)
            self.owed.append(Pending(trial.alias, trial.key, design, stages))

    def slots_hint(self) -> int:
        return self.config.workers or 1

    # --- revisions --------------------------------------------------------------------------

    def depth(self, trial: Trial) -> int:
        """How many failed designs this one is a revision of, in a chain."""
        by_id = {e.id: t for t in self.trials for e in t.experiments}
        depth, seen = 0, {trial.key}
        current = trial
        while current.first.parent_ids:
            parent = by_id.get(current.first.parent_ids[0])
            if parent is None or parent.key in seen or parent.state().failed is None:
                break
            depth, current = depth + 1, parent
            seen.add(parent.key)
        return depth

    def needs_revision(self, trial: Trial) -> bool:
        return trial.revisable() and self.depth(trial) < self.config.debug_rounds

    def has_revision(self, trial: Trial) -> bool:
        ids = {e.id for e in trial.experiments}
        return any(bool(t.first.parent_ids) and t.first.parent_ids[0] in ids for t in self.trials)

    # --- reporting --------------------------------------------------------------------------

    def status(self) -> CampaignStatus:
        board = leaderboard(self.trials)
        return CampaignStatus(
            run_id=self.record.id,
            activity=self.activity,
            designs=len(self.trials),
            iterations=self.config.iterations,
            elapsed_s=time.monotonic() - self.started,
            in_flight=self.in_flight,
            best=board[0] if board else None,
            spent_usd=self.spent_usd(),
            message=self.message,
        )

    def report(self, activity: str | None = None) -> None:
        if activity is not None:
            self.activity = activity
        if self.progress is not None:
            self.progress(self.status())

    def note(self, message: str) -> None:
        self.message = message
        self.report()

    # --- the loop ---------------------------------------------------------------------------

    def time_left(self) -> bool:
        budget = self.config.time_budget_s
        return budget is None or time.monotonic() - self.started < budget

    def room_for(self, in_flight: Sequence[Pending]) -> bool:
        """Whether one more new design may start now."""
        if self.stop_reason is not None:
            return False
        iterations = self.config.iterations
        new = sum(1 for p in in_flight if self.trial(p.key) is None)
        if iterations is not None and len(self.trials) + new >= iterations:
            self.stop_reason = f"{iterations} designs evaluated"
            return False
        if not self.time_left():
            self.stop_reason = f"time budget of {self.config.time_budget_s:g} s used"
            return False
        return True

    def next_pending(self, in_flight: Sequence[Pending]) -> Pending | None:
        """What to evaluate next: a design owed a stage, a revision, a new proposal; None when
        nothing may start now."""
        if self.owed:
            return self.owed.popleft()
        while self.room_for(in_flight):
            pending = self.next_design(in_flight)
            if pending is not None:
                return pending
        return None

    def next_design(self, in_flight: Sequence[Pending]) -> Pending | None:
        """A revision owed, else a new proposal; None when the designer gave nothing (the
        failure is recorded) or the campaign must stop."""
        alias = f"d{len(self.order) + 1}"
        history = self.history()
        designer_errors = _designer_errors()
        revising = self.to_revise.popleft() if self.to_revise else None
        try:
            if revising is not None:
                self.report(f"revising {revising.alias}")
                design = self.revise(revising, history)
                if design is None:
                    return None
            else:
                self.report(f"proposing {alias}")
                design = self.designer.propose(history, self.task)
        except _budget_exceeded() as exc:
            usage = getattr(exc, "usage", Usage())
            if usage.calls:
                self.record_designer_failure(str(exc), usage)
            self.stop_reason = f"LLM budget spent: {exc}"
            return None
        except designer_errors as exc:
            self.record_designer_failure(
                f"{type(exc).__name__}: {exc}", getattr(exc, "usage", Usage())
            )
            return None
        self.designer_failures = 0
        key = source_key(design.source, design.params)
        if self.trial(key) is not None or any(p.key == key for p in in_flight):
            self.designer_failures += 1
            self.note(f"the designer proposed a codec already evaluated ({key[:12]}); skipped")
            self.check_designer_failures("it keeps proposing codecs already evaluated")
            return None
        self.sources.remember(design.source)
        design = replace(design, parent_ids=self.real_parent_ids(design.parent_ids))
        return Pending(alias, key, design, self.all_stages())

    def revise(self, trial: Trial, history: Sequence[PastExperiment]) -> Design | None:
        failed = trial.state().failed
        source = self.sources.get(trial.first.codec_sha256) or ""
        if failed is None or not source:
            return None
        original = Design(
            source=source,
            rationale=failed.rationale,
            parent_ids=tuple(alias_map(self.trials).get(p, p) for p in failed.parent_ids),
            params=dict(failed.params),
            designer=failed.designer,
        )
        revised = self.designer.revise(original, trial.failure_text() or "", history, self.task)
        if revised is None:
            self.note(f"{self.designer.name} gave up on fixing {trial.alias}")
            return None
        parents = (failed.id, *(p for p in revised.parent_ids if p != trial.alias))
        return replace(revised, parent_ids=parents)

    def real_parent_ids(self, parent_ids: Sequence[str]) -> tuple[str, ...]:
        """Aliases (``d7``) -> the experiment ids they stand for; other ids as they are."""
        representative = {t.alias: t.representative().id for t in self.trials}
        return tuple(dict.fromkeys(representative.get(p, p) for p in parent_ids))

    def all_stages(self) -> tuple[StagePlan, ...]:
        return tuple(self.plans[clip.sha256] for _, clip in self.stage_clips.stages())

    def record_designer_failure(self, error: str, usage: Usage) -> None:
        """A designer call that gave no design: an experiment failed in its design phase."""
        records = self.lab.records
        record = records.create_experiment(
            designer=self.designer.name,
            run_id=self.record.id,
            rationale="(the designer gave no codec)",
            target=self.config.target.to_dict(),
        )
        records.update_experiment(
            record.id,
            cost_usd=usage.cost_usd,
            tokens_in=usage.input_tokens,
            tokens_out=usage.output_tokens,
        )
        records.start_phase(record.id, "design")
        records.finish_phase(record.id, "design", error=error)
        self.reload()
        self.designer_failures += 1
        self.note(f"the designer gave no codec: {error.splitlines()[0][:200]}")
        self.check_designer_failures(f"its last error: {error.splitlines()[0][:300]}")

    def check_designer_failures(self, why: str) -> None:
        if self.designer_failures >= MAX_DESIGNER_FAILURES:
            self.stop_reason = f"the designer failed {self.designer_failures} times in a row; {why}"

    def job(self, pending: Pending) -> DesignJob:
        return DesignJob(
            settings=self.lab.settings,
            run_id=self.record.id,
            alias=pending.alias,
            codec_name=f"{self.record.id}-{pending.alias}",
            design=pending.design,
            stages=pending.stages,
        )

    def submit(self, executor: CampaignExecutor, pending: Pending) -> cf.Future[JobResult]:
        if pending.key not in self.order:
            self.order.append(pending.key)
        pending.alias = f"d{self.order.index(pending.key) + 1}"
        self.report(f"evaluating {pending.alias}")
        return executor.submit(self.job(pending))

    def collect(self, finished: Sequence[tuple[cf.Future[JobResult], Pending]], where: str) -> None:
        """Read what finished jobs recorded; queue what they still owe and their revisions."""
        broken: list[Pending] = []
        for future, pending in finished:
            try:
                result = future.result()
            except cf.BrokenExecutor:
                broken.append(pending)
                continue
            except Exception as exc:
                raise CampaignError(
                    f"{pending.alias}: its evaluation job failed on {where}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            self.keys.update({stage.experiment_id: pending.key for stage in result.stages})
        if broken:  # every job of the pool has ended: whatever is running is an orphan
            marked = self.mark_interrupted(f"a worker of {where} died during this experiment")
            self.note(f"a worker died; {marked} experiment(s) marked interrupted")
        self.reload()
        for pending in broken:
            if self.trial(pending.key) is not None:
                continue
            if pending.lost > 0:
                raise CampaignError(
                    f"{pending.alias}: its evaluation job died twice before recording anything "
                    f"on {where}; see the workers' output (a script that calls run_campaign "
                    "must guard its top level with if __name__ == '__main__')"
                )
            pending.lost += 1  # it died before recording anything: once more
            self.owed.append(pending)
        evaluated = [t for t in (self.trial(p.key) for _, p in finished) if t is not None]
        for trial in evaluated:
            self.note(self.describe(trial))
        self.queue_owed(evaluated)
        for trial in evaluated:
            if self.needs_revision(trial) and self.stop_reason is None:
                self.to_revise.append(trial)

    def poll(self, batch: Iterable[Pending]) -> None:
        running = self.lab.records.list_experiments(
            run_id=self.record.id, status=ExperimentStatus.RUNNING, limit=100
        )
        batch = list(batch)
        by_sha = {p.codec_sha256: p for p in batch}
        by_rationale = {p.design.rationale: p for p in batch}
        found: list[InFlight] = []
        for record in running:
            pending = by_sha.get(record.codec_sha256 or "") or by_rationale.get(record.rationale)
            stage = self.stage_clips.stage_of(record.clip_sha256)
            if pending is None or stage is None:
                continue
            found.append(InFlight(pending.alias, stage[0], stage[1].name, record.current_phase))
        self.in_flight = tuple(sorted(found, key=lambda f: f.alias))
        self.report()

    def describe(self, trial: Trial) -> str:
        state = trial.state()
        if state.completed:
            found = next((s for s in leaderboard(self.trials) if s.trial.key == trial.key), None)
            if found is None:
                return f"{trial.alias} completed"
            score = "-" if found.score_db is None else f"{found.score_db:.2f} dB"
            bd = "-" if found.bd_rate_x264 is None else f"{found.bd_rate_x264:+.1f} %"
            reached = "target reached" if found.target_achieved else "target not reached"
            return (
                f"{trial.alias} completed: PSNR-Y at the rate limit {score}, BD-rate vs x264 {bd}, "
                f"{reached} (rank {found.rank})"
            )
        if state.failed is not None:
            return f"{trial.alias} failed: {(trial.failure_text() or '')[:300]}"
        return f"{trial.alias} will run again: {', '.join(s for s, _ in state.owed)} owed"

    def warm_baselines(self) -> None:
        """Run the baselines of each search clip once, before the workers need them."""
        if not self.config.baselines:
            return
        settings = self.lab.settings
        for _, clip in self.clips.search:
            self.report(f"baselines on {clip.name} ({', '.join(self.config.baselines)})")
            run_baselines(
                clip,
                self.config.baselines,
                cache_dir=settings.cache_dir / "baselines",
                workdir=settings.scratch_dir / "campaign-baselines",
                with_vmaf=self.with_vmaf,
            )

    def _plans(self) -> dict[str, StagePlan]:
        config = self.config
        plans: dict[str, StagePlan] = {}
        if self.clips.smoke is not None:
            spec, clip = self.clips.smoke
            plans[clip.sha256] = StagePlan(
                SMOKE, spec, (config.smoke_quality,), config.target, (), False, "never"
            )
        for spec, clip in self.clips.search:
            plans[clip.sha256] = StagePlan(
                SEARCH,
                spec,
                config.qualities,
                config.target,
                config.baselines,
                config.with_vmaf,
                config.publish,
            )
        return plans

    def loop(self) -> None:
        """Keep `slots` designs in flight; each finished one updates the history before the
        next proposal."""
        self.report("starting the workers")
        executor = open_executor(self.config.executor, self.config.workers)
        in_flight: dict[cf.Future[JobResult], Pending] = {}
        try:
            while True:
                while len(in_flight) < executor.slots:
                    pending = self.next_pending(list(in_flight.values()))
                    if pending is None:
                        break
                    in_flight[self.submit(executor, pending)] = pending
                if not in_flight:
                    break
                done, _ = cf.wait(in_flight, timeout=POLL_SECONDS, return_when=cf.FIRST_COMPLETED)
                self.poll(in_flight.values())
                if not done:
                    continue
                broke = any(_broken(future) for future in done)
                if broke:  # the pool is gone: every job in flight ends with it
                    cf.wait(in_flight)
                finished = [(f, p) for f, p in in_flight.items() if f.done()]
                for future, _ in finished:
                    del in_flight[future]
                self.in_flight = ()
                self.collect(finished, executor.description)
                if broke:
                    executor.close(cancel=True)
                    executor = open_executor(self.config.executor, self.config.workers)
        except BaseException:
            executor.close(cancel=True)
            raise
        executor.close()

    def run(self, resume: bool) -> CampaignResult:
        status = RunStatus.FINISHED
        try:
            if resume:
                self.resume_state()
            self.warm_baselines()
            self.loop()
            self.stop_reason = self.stop_reason or "nothing left to evaluate"
        except KeyboardInterrupt:
            status = RunStatus.STOPPED
            self.stop_reason = f"stopped by the user; continue with --resume {self.record.id}"
            self.mark_interrupted("the campaign was stopped by the user")
        except BaseException:
            self.mark_interrupted("the campaign failed")
            self.lab.records.finish_run(self.record.id, RunStatus.FAILED)
            raise
        run = self.lab.records.finish_run(self.record.id, status)
        self.reload()
        self.report("done")
        return CampaignResult(
            run=run,
            stop_reason=self.stop_reason,
            trials=tuple(self.trials),
            leaderboard=tuple(leaderboard(self.trials)),
            spent_usd=self.spent_usd(),
            seconds=time.monotonic() - self.started,
        )


def _check_resumable(stored: CampaignConfig, config: CampaignConfig, run_id: str) -> None:
    for item in fields(CampaignConfig):
        if item.name in RUNTIME_FIELDS:
            continue
        before, now = getattr(stored, item.name), getattr(config, item.name)
        if before != now:
            raise CampaignError(
                f"run {run_id} was started with {item.name}={before!r}, not {now!r}: a resumed "
                f"campaign keeps what it searches (only {', '.join(RUNTIME_FIELDS)} may change)"
            )


def run_campaign(
    lab: Lab,
    config: CampaignConfig,
    *,
    resume: str | None = None,
    progress: Progress | None = None,
) -> CampaignResult:
    """Run a campaign to its end (see the module docstring); with `resume`, continue the
    campaign run of that id, whose config must equal `config` except in `RUNTIME_FIELDS`."""
    if config.with_vmaf and not vmaf_available():
        raise CampaignError("this ffmpeg has no libvmaf filter: measure without VMAF")
    if progress is not None:
        progress(
            CampaignStatus(
                resume or "-", "preparing clips", 0, config.iterations, 0.0, (), None, 0.0
            )
        )
    settings = lab.settings
    clips = prepare_campaign_clips(config, settings.cache_dir)
    if resume is not None:
        _check_resumable(stored_config(lab, resume), config, resume)
        run = lab.records.get_run(resume)
        recorded = StageClips.from_run_config(run.config, run.id)
        if recorded != clips.stage_clips:
            raise CampaignError(
                f"run {resume}: its clips have changed since it started (recorded "
                f"{[c.sha256[:12] for _, c in recorded.stages()]}, now "
                f"{[c.sha256[:12] for _, c in clips.stage_clips.stages()]}); restore them or "
                "start a new campaign"
            )
        run = lab.records.reopen_run(resume, {OWNER_KEY: ProcessRef.current().to_dict()})
    else:
        stored = {
            CONFIG_KEY: config.to_dict(),
            STAGE_CLIPS_KEY: clips.stage_clips.to_dict(),
            OWNER_KEY: ProcessRef.current().to_dict(),
            "codeclab": __version__,
        }
        names = ", ".join(clip.name for _, clip in clips.search)
        run = lab.records.create_run(
            designer=config.designer,
            config=stored,
            seed=config.seed,
            notes=f"codeclab run: {config.designer} designer on {names}",
        )
    campaign = Campaign(lab, config, run, clips, progress)
    return campaign.run(resume=resume is not None)


def _broken(future: cf.Future[JobResult]) -> bool:
    return not future.cancelled() and isinstance(future.exception(), cf.BrokenExecutor)
