"""The designer protocol: what a designer is given and what it returns.

Every design, whoever made it, goes through the same phases (validation, deployment,
execution, verification, analysis, publish). A designer sees the history of past
experiments (their code, numbers and errors) and the task's description (clip size
and rate, the target), never the frames of the clips it is scored on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Usage:
    """What producing a design cost (LLM calls); zero for the offline designer."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.calls + other.calls,
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cost_usd + other.cost_usd,
        )


@dataclass(frozen=True)
class Design:
    """A codec module's source, why it was made, and where it came from."""

    source: str
    rationale: str
    parent_ids: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)  # extra Encoder params (not quality)
    designer: str = ""
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True)
class PastExperiment:
    """One earlier experiment as a designer sees it."""

    id: str
    source: str
    rationale: str
    parent_ids: tuple[str, ...]
    params: dict[str, Any]
    status: str  # "completed" or "failed"
    failed_phase: str | None
    error: str | None
    bits_per_second: float | None  # at the operating point
    psnr_y: float | None
    ssim_y: float | None
    vmaf: float | None
    bd_rate_vs_x264: float | None  # percent, PSNR-Y; None when not computable
    target_achieved: bool
    curve: tuple[tuple[float, float], ...] = ()  # (bits per second, PSNR-Y) per quality point


@dataclass(frozen=True)
class TaskContext:
    """What the designer is told about the task (never the frames themselves)."""

    width: int
    height: int
    fps: float
    frame_count: int
    target_text: str  # e.g. "<= 1 Mbps, PSNR-Y >= 28 dB, VMAF >= 60"
    max_mbps: float
    min_psnr_y: float | None
    min_vmaf: float | None


class Designer(Protocol):
    """Proposes the next codec from the history so far."""

    @property
    def name(self) -> str: ...

    def propose(self, history: Sequence[PastExperiment], task: TaskContext) -> Design: ...

    def revise(
        self, design: Design, error: str, history: Sequence[PastExperiment], task: TaskContext
    ) -> Design | None:
        """Return a corrected design for one that failed with `error`, or None to give up."""
        ...
