"""What a campaign run's records say: its designs, their stages, the designer's history, and
the leaderboard.

A campaign (`codeclab.pipeline.campaign`) evaluates each design in stages, each stage one
experiment record: a smoke test on the first frames of the first search clip, then each search
clip in turn. Nothing about stages is written into an experiment: it is read from the records.

* **Stage** of an experiment: its clip. The run's config holds the `StageClips` (the sha256 of
  the smoke clip and of each search clip), so an experiment on the smoke clip is a smoke test.
* **Design** of an experiment: its codec (sha256 of the source) and params. An experiment that
  never reached deployment (rejected by validation, or a designer that gave no code) has no
  codec and is a design of its own.
* **Order**: designs in the order their first experiment was created, unless the campaign
  passes the order it proposed them in. Designers see them as ``d1``, ``d2``, ... (`Trial.alias`)
  rather than as experiment ids, which are random: the offline designer's proposals depend on
  the ids in its history, and aliases keep them reproducible for a given seed.
* **Interrupted** experiments (left ``running`` by a process that died) are marked failed with
  an error starting with `INTERRUPTED`; such a stage is owed again once. A second interruption
  of the same stage ends the design as failed, and so does an interruption before its source
  was stored (at deployment, or on rejection by validation): there is nothing to run again.

The designer sees one `PastExperiment` per decided design: a completed design is described by
its experiment on the first search clip (curve, operating point), with the BD-rate against x264
averaged over the search clips and the target counted as achieved only if it was on every clip;
a failed design by the stage and phase that failed and why.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from codeclab.designers.base import PastExperiment, TaskContext
from codeclab.lab import Lab
from codeclab.pipeline.analysis import Target
from codeclab.storage.records import ExperimentRecord, ExperimentStatus
from codeclab.video.clips import PreparedClip

SMOKE = "smoke"
SEARCH = "search"
INTERRUPTED = "interrupted: "
"""How the error of an experiment whose process died starts."""
MAX_INTERRUPTIONS = 2
"""A stage interrupted this many times is not tried again."""
REVISABLE_PHASES = ("design", "validation", "execution", "verification")
"""Failures that are the design's fault, which a designer may be asked to fix."""
STAGE_CLIPS_KEY = "stage_clips"
"""Where `StageClips` is kept in a run's config."""


# --- stages -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClipRef:
    """The frames a stage runs on, as the records know them."""

    sha256: str
    name: str
    frames: int

    def to_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "name": self.name, "frames": self.frames}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClipRef:
        return cls(str(data["sha256"]), str(data["name"]), int(data["frames"]))

    @classmethod
    def of(cls, clip: PreparedClip) -> ClipRef:
        return cls(clip.sha256, clip.name, clip.frame_count)


@dataclass(frozen=True)
class StageClips:
    """The clip of each stage of a campaign: the smoke test's (None: no smoke test), then each
    search clip's, the first of which describes the task to the designer."""

    smoke: ClipRef | None
    search: tuple[ClipRef, ...]

    def __post_init__(self) -> None:
        if not self.search:
            raise ValueError("a campaign needs at least one search clip")

    def stages(self) -> tuple[tuple[str, ClipRef], ...]:
        """(stage, clip) in the order a design goes through them."""
        first = ((SMOKE, self.smoke),) if self.smoke is not None else ()
        return (*first, *((SEARCH, clip) for clip in self.search))

    def stage_of(self, clip_sha256: str | None) -> tuple[str, ClipRef] | None:
        for stage, clip in self.stages():
            if clip.sha256 == clip_sha256:
                return stage, clip
        return None

    def describe(self, clip_sha256: str | None) -> str:
        """ "smoke test (3 frames of lab-cif)" or "search clip lab-cif (30 frames)"."""
        found = self.stage_of(clip_sha256)
        if found is None:
            return "design"
        stage, clip = found
        if stage == SMOKE:
            return f"smoke test ({clip.frames} frames of {clip.name})"
        return f"search clip {clip.name} ({clip.frames} frames)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "smoke": self.smoke.to_dict() if self.smoke is not None else None,
            "search": [clip.to_dict() for clip in self.search],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StageClips:
        smoke = data.get("smoke")
        return cls(
            ClipRef.from_dict(smoke) if smoke is not None else None,
            tuple(ClipRef.from_dict(item) for item in data["search"]),
        )

    @classmethod
    def from_run_config(cls, config: Mapping[str, Any], run_id: str) -> StageClips:
        data = config.get(STAGE_CLIPS_KEY)
        if not isinstance(data, Mapping):
            raise ValueError(
                f"run {run_id} was not made by a campaign (its config has no {STAGE_CLIPS_KEY!r})"
            )
        return cls.from_dict(data)


def design_key(codec_sha256: str, params: Mapping[str, Any]) -> str:
    """What identifies a design: its codec and its params."""
    encoded = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return f"{codec_sha256}|{hashlib.sha256(encoded.encode()).hexdigest()[:16]}"


def source_key(source: str, params: Mapping[str, Any]) -> str:
    """`design_key` of a design not yet deployed (the codec sha256 is the source's)."""
    return design_key(hashlib.sha256(source.encode("utf-8")).hexdigest(), params)


def record_key(record: ExperimentRecord) -> str:
    if record.codec_sha256 is None:
        return f"exp:{record.id}"
    return design_key(record.codec_sha256, record.params)


def is_interrupted(record: ExperimentRecord) -> bool:
    return record.status is ExperimentStatus.FAILED and (record.error or "").startswith(INTERRUPTED)


# --- trials: one design and its experiments ---------------------------------------------------


@dataclass(frozen=True)
class StageState:
    """Where a design stands: finished (completed or failed), or the stages it is still owed."""

    completed: bool
    failed: ExperimentRecord | None
    """The experiment whose failure ended the design."""
    owed: tuple[tuple[str, ClipRef], ...]
    """Stages to run (again), in order; empty once decided."""
    running: bool

    @property
    def decided(self) -> bool:
        return self.completed or self.failed is not None


@dataclass(frozen=True)
class Trial:
    """One design of a campaign and the experiments that evaluated it (retries included)."""

    alias: str
    key: str
    experiments: tuple[ExperimentRecord, ...]
    """Oldest first."""
    clips: StageClips

    @property
    def first(self) -> ExperimentRecord:
        return self.experiments[0]

    def on(self, clip_sha256: str) -> list[ExperimentRecord]:
        return [e for e in self.experiments if e.clip_sha256 == clip_sha256]

    def latest(self, clip_sha256: str) -> ExperimentRecord | None:
        found = self.on(clip_sha256)
        return found[-1] if found else None

    def state(self) -> StageState:
        unstaged = [e for e in self.experiments if self.clips.stage_of(e.clip_sha256) is None]
        if unstaged:  # no clip, or a clip this campaign does not know: the design phase failed
            failed = next((e for e in unstaged if e.status is ExperimentStatus.FAILED), None)
            return StageState(False, failed or unstaged[0], (), failed is None)
        stages = self.clips.stages()
        for index, (_, clip) in enumerate(stages):
            latest = self.latest(clip.sha256)
            if latest is None:
                return StageState(False, None, stages[index:], False)
            if latest.status in (ExperimentStatus.PENDING, ExperimentStatus.RUNNING):
                return StageState(False, None, stages[index:], True)
            if latest.status is ExperimentStatus.FAILED:
                interruptions = sum(1 for e in self.on(clip.sha256) if is_interrupted(e))
                deployed = latest.codec_sha256 is not None  # else its source was never stored
                if is_interrupted(latest) and interruptions < MAX_INTERRUPTIONS and deployed:
                    return StageState(False, None, stages[index:], False)
                return StageState(False, latest, (), False)
        return StageState(True, None, (), False)

    def search_experiments(self) -> list[ExperimentRecord]:
        """The latest experiment on each search clip that has one, in search-clip order."""
        found = (self.latest(clip.sha256) for clip in self.clips.search)
        return [e for e in found if e is not None]

    def representative(self) -> ExperimentRecord:
        """The experiment that stands for the design: on the first search clip when there is one,
        else its latest."""
        latest = self.latest(self.clips.search[0].sha256)
        return latest if latest is not None else self.experiments[-1]

    def failure_text(self) -> str | None:
        """Why the design failed, naming the stage: what a designer's `revise` is given."""
        failed = self.state().failed
        if failed is None:
            return None
        where = self.clips.describe(failed.clip_sha256)
        return f"{where}: {failed.failed_phase or 'design'} failed: {failed.error or 'no reason'}"

    def revisable(self) -> bool:
        failed = self.state().failed
        return failed is not None and (failed.failed_phase or "design") in REVISABLE_PHASES


def group_trials(
    records: Iterable[ExperimentRecord],
    clips: StageClips,
    order: Sequence[str] = (),
    keys: Mapping[str, str] | None = None,
) -> list[Trial]:
    """The designs of a run's experiments, in order.

    ``order`` lists design keys in the order they were proposed: a listed design is
    ``d<its place in the list>`` (a listed key without experiments yet keeps its number); the
    others follow, by their first experiment. ``keys`` maps experiment ids to the key of the
    design they evaluated, when the caller knows it (an experiment that never reached
    deployment cannot tell). An experiment still in flight before its deployment is left out:
    which design it belongs to is not known yet.
    """
    keys = keys or {}
    by_key: dict[str, list[ExperimentRecord]] = {}
    for record in sorted(records, key=lambda r: (r.created_at, r.id)):
        key = keys.get(record.id)
        if key is None:
            in_flight = record.status in (ExperimentStatus.PENDING, ExperimentStatus.RUNNING)
            if record.codec_sha256 is None and in_flight:
                continue
            key = record_key(record)
        by_key.setdefault(key, []).append(record)
    place = {key: index for index, key in enumerate(order)}
    unlisted = [key for key in by_key if key not in place]  # already by first experiment
    place.update({key: len(order) + index for index, key in enumerate(unlisted)})
    keys_in_order = sorted(by_key, key=place.__getitem__)
    return [Trial(f"d{place[key] + 1}", key, tuple(by_key[key]), clips) for key in keys_in_order]


def load_trials(lab: Lab, run_id: str, order: Sequence[str] = ()) -> list[Trial]:
    """Every design of the campaign run `run_id`, with its experiments."""
    run = lab.records.get_run(run_id)
    clips = StageClips.from_run_config(run.config, run_id)
    return group_trials(run_experiments(lab, run_id), clips, order)


def run_experiments(lab: Lab, run_id: str, page: int = 500) -> list[ExperimentRecord]:
    """All experiments of a run, oldest first."""
    found: list[ExperimentRecord] = []
    while True:
        batch = lab.records.list_experiments(
            run_id=run_id, limit=page, offset=len(found), order="created_at"
        )
        found.extend(batch)
        if len(batch) < page:
            return found


# --- the designer's view ----------------------------------------------------------------------


class SourceCache:
    """Codec sources read back from the object store, by codec sha256."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.sources: dict[str, str] = {}

    def remember(self, source: str) -> None:
        self.sources[hashlib.sha256(source.encode("utf-8")).hexdigest()] = source

    def get(self, codec_sha256: str | None) -> str | None:
        if codec_sha256 is None:
            return None
        if codec_sha256 not in self.sources:
            codec = self.lab.records.get_codec(codec_sha256)
            self.sources[codec_sha256] = self.lab.store.get_bytes(codec.source_key).decode("utf-8")
        return self.sources[codec_sha256]


def curve_of(record: ExperimentRecord) -> tuple[tuple[float, float], ...]:
    """(bits per second, PSNR-Y) of each measured quality point, by rate."""
    points: list[tuple[float, float]] = []
    for point in record.metrics or []:
        rate = (point.get("rate") or {}).get("bits_per_second")
        summary = ((point.get("metrics") or {}).get("summary")) or {}
        psnr = summary.get("psnr_y_mean")
        if isinstance(rate, int | float) and isinstance(psnr, int | float):
            points.append((float(rate), float(psnr)))
    return tuple(sorted(points))


def bd_rate_of(
    record: ExperimentRecord, encoder: str = "x264", metric: str = "psnr_y"
) -> float | None:
    """The BD-rate (percent) of the experiment against `encoder`, None when not computed."""
    comparison = ((record.comparison or {}).get("comparisons") or {}).get(encoder) or {}
    result = comparison.get(f"bd_rate_{metric}") or {}
    value = result.get("value")
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _mean(values: Sequence[float | None]) -> float | None:
    if not values or any(v is None for v in values):
        return None
    present = [v for v in values if v is not None]
    return sum(present) / len(present)


def alias_map(trials: Sequence[Trial]) -> dict[str, str]:
    """Experiment id -> alias of its design, for every experiment of these trials."""
    return {record.id: trial.alias for trial in trials for record in trial.experiments}


def past_experiment(
    trial: Trial, sources: SourceCache, aliases: Mapping[str, str]
) -> PastExperiment:
    """The design as a designer sees it (see the module docstring)."""
    state = trial.state()
    shown = trial.representative() if state.completed else (state.failed or trial.first)
    parents = tuple(aliases.get(parent, parent) for parent in shown.parent_ids)
    source = sources.get(shown.codec_sha256) or ""
    if not state.completed:
        return PastExperiment(
            id=trial.alias,
            source=source,
            rationale=shown.rationale,
            parent_ids=parents,
            params=dict(shown.params),
            status="failed",
            failed_phase=shown.failed_phase or "design",
            error=trial.failure_text(),
            bits_per_second=None,
            psnr_y=None,
            ssim_y=None,
            vmaf=None,
            bd_rate_vs_x264=None,
            target_achieved=False,
        )
    searched = trial.search_experiments()
    return PastExperiment(
        id=trial.alias,
        source=source,
        rationale=shown.rationale,
        parent_ids=parents,
        params=dict(shown.params),
        status="completed",
        failed_phase=None,
        error=None,
        bits_per_second=shown.bitrate_bps,
        psnr_y=shown.psnr_y,
        ssim_y=shown.ssim_y,
        vmaf=shown.vmaf,
        bd_rate_vs_x264=_mean([bd_rate_of(e) for e in searched]),
        target_achieved=all(bool(e.target_achieved) for e in searched),
        curve=curve_of(shown),
    )


def designer_history(trials: Sequence[Trial], sources: SourceCache) -> list[PastExperiment]:
    """What the designer is shown: each decided design, in order (designs still being
    evaluated are left out)."""
    aliases = alias_map(trials)
    return [past_experiment(t, sources, aliases) for t in trials if t.state().decided]


def load_history(lab: Lab, run_id: str) -> list[PastExperiment]:
    """The history a designer of campaign run `run_id` is shown, from its records."""
    return designer_history(load_trials(lab, run_id), SourceCache(lab))


def task_context(clip: PreparedClip, target: Target) -> TaskContext:
    """What a designer is told about the task on `clip` (never its frames)."""
    fmt = clip.format
    return TaskContext(
        width=fmt.width,
        height=fmt.height,
        fps=float(fmt.fps),
        frame_count=clip.frame_count,
        target_text=target.describe(fmt),
        max_mbps=target.rate_limit(fmt) / 1e6,
        min_psnr_y=target.min_psnr_y,
        min_vmaf=target.min_vmaf,
    )


# --- the leaderboard --------------------------------------------------------------------------


def psnr_at_rate(curve: Sequence[tuple[float, float]], rate: float) -> float | None:
    """PSNR-Y a curve (sorted by rate) reaches at `rate`: interpolated in log-rate between the
    points around it, the best point below it when it is past the curve's end; None when the
    curve's lowest rate is above it (the rate cannot be reached)."""
    usable = [(r, q) for r, q in curve if r > 0 and math.isfinite(q)]
    below = [q for r, q in usable if r <= rate]
    if not below:
        return None
    best = max(below)
    for (r0, q0), (r1, q1) in itertools.pairwise(usable):
        if r0 <= rate <= r1 and r1 > r0:
            t = math.log(rate / r0) / math.log(r1 / r0)
            return max(best, q0 + t * (q1 - q0))
    return best


@dataclass(frozen=True)
class Standing:
    """A completed design's place on the leaderboard."""

    rank: int
    trial: Trial
    target_achieved: bool
    """On every search clip."""
    score_db: float | None
    """The target score: PSNR-Y at the target's rate limit, averaged over the search clips;
    None when some clip's curve does not come down to the limit."""
    bd_rate_x264: float | None
    """BD-rate (PSNR-Y, percent, negative is better) against x264, averaged over the search
    clips; None when not computed on every clip."""
    bd_rate_x264_vmaf: float | None
    bd_rate_x265: float | None
    bitrate_bps: float | None
    psnr_y: float | None
    vmaf: float | None
    tier: int | None
    """On the first search clip."""

    @property
    def alias(self) -> str:
        return self.trial.alias

    @property
    def experiment(self) -> ExperimentRecord:
        return self.trial.representative()

    @property
    def published(self) -> list[ExperimentRecord]:
        return [e for e in self.trial.search_experiments() if e.artifacts]

    def sort_key(self) -> tuple[bool, bool, float, bool, float]:
        return (
            not self.target_achieved,
            self.score_db is None,
            -(self.score_db or 0.0),
            self.bd_rate_x264 is None,
            self.bd_rate_x264 or 0.0,
        )


def standing(trial: Trial, rank: int = 0) -> Standing | None:
    """The leaderboard entry of a completed design, None for any other."""
    if not trial.state().completed:
        return None
    searched = trial.search_experiments()
    scores: list[float | None] = []
    for record in searched:
        limit = (record.comparison or {}).get("rate_limit_bps")
        scores.append(psnr_at_rate(curve_of(record), float(limit)) if limit else None)
    shown = trial.representative()
    return Standing(
        rank=rank,
        trial=trial,
        target_achieved=all(bool(e.target_achieved) for e in searched),
        score_db=_mean(scores),
        bd_rate_x264=_mean([bd_rate_of(e) for e in searched]),
        bd_rate_x264_vmaf=_mean([bd_rate_of(e, metric="vmaf") for e in searched]),
        bd_rate_x265=_mean([bd_rate_of(e, "x265") for e in searched]),
        bitrate_bps=shown.bitrate_bps,
        psnr_y=shown.psnr_y,
        vmaf=shown.vmaf,
        tier=shown.tier,
    )


def leaderboard(trials: Sequence[Trial]) -> list[Standing]:
    """Completed designs, best first: those reaching the target on every search clip, then by
    target score (higher first), then by BD-rate against x264 (lower first), then by age."""
    found = [s for s in (standing(t) for t in trials) if s is not None]
    order = {t.key: index for index, t in enumerate(trials)}
    found.sort(key=lambda s: (*s.sort_key(), order[s.trial.key]))
    return [replace(s, rank=rank) for rank, s in enumerate(found, 1)]
