"""Evolutionary search over genomes: what the history says about them, and what to try next.

* **Evaluated genomes** come from the history: an experiment's genome is read back from its
  source (`render.genome_from_source`); experiments of other designers are ignored.
* **Score** (higher is better, in dB): the PSNR-Y the genome's curve reaches at the task's
  rate limit (log-rate interpolation; below the curve's lowest rate, `SLOPE_DB_PER_OCTAVE`
  per halving is subtracted), plus `TARGET_BONUS_DB` when the target was achieved, minus
  `BD_RATE_DB_PER_PERCENT` per percent of BD-rate against x264 when that was computed.
  Failed experiments score -inf: they never become parents and are never proposed again.
* **Pareto archive**: the genomes owning a point of the non-dominated (rate, PSNR-Y) front of
  all curves, with the crowding distance of their points along the front (log-rate, dB).
* **Selection**: with probability `explore` a parent is drawn from the archive in proportion
  to its crowding distance (spreading the search along the front), otherwise by a tournament
  on score among the `population` best genomes; with probability `immigrants` the child is a
  fresh random genome instead.
* **Variation**: uniform crossover of two parents with probability `crossover`, then
  mutation; children already evaluated or proposed are redrawn (dedupe by `Genome.key`).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from codeclab.designers.base import PastExperiment, TaskContext
from codeclab.designers.offline.render import genome_from_source
from codeclab.designers.offline.space import Genome

SLOPE_DB_PER_OCTAVE = 5.0
TARGET_BONUS_DB = 1.0
BD_RATE_DB_PER_PERCENT = 0.02
MAX_DRAWS = 200


@dataclass(frozen=True)
class Evaluated:
    """A genome with what its best experiment measured."""

    genome: Genome
    experiment_id: str
    ok: bool
    curve: tuple[tuple[float, float], ...]
    score: float


@dataclass(frozen=True)
class Archive:
    """Everything the history says about genomes (by `Genome.key`)."""

    evaluated: dict[str, Evaluated] = field(default_factory=dict)
    crowding: dict[str, float] = field(default_factory=dict)  # Pareto archive members only

    @classmethod
    def from_history(cls, history: Sequence[PastExperiment], task: TaskContext) -> Archive:
        evaluated: dict[str, Evaluated] = {}
        for experiment in history:
            genome = genome_from_source(experiment.source)
            if genome is None:
                continue
            entry = evaluate(genome, experiment, task)
            known = evaluated.get(genome.key())
            if known is None or entry.score > known.score:
                evaluated[genome.key()] = entry
        return cls(evaluated, pareto_crowding(evaluated.values()))

    def successful(self) -> list[Evaluated]:
        """Genomes that completed, best score first (ties: experiment id)."""
        found = [e for e in self.evaluated.values() if e.ok]
        return sorted(found, key=lambda e: (-e.score, e.experiment_id))


def curve_of(experiment: PastExperiment) -> tuple[tuple[float, float], ...]:
    """The experiment's (bits/s, PSNR-Y) points with a positive rate, by rate; the operating
    point alone when no curve was recorded."""
    points = list(experiment.curve)
    if not points and experiment.bits_per_second is not None and experiment.psnr_y is not None:
        points = [(experiment.bits_per_second, experiment.psnr_y)]
    finite = [(r, q) for r, q in points if r > 0 and math.isfinite(r) and math.isfinite(q)]
    return tuple(sorted(finite))


def psnr_at_rate(curve: Sequence[tuple[float, float]], rate: float) -> float:
    """PSNR-Y of `curve` (sorted by rate) at `rate`: interpolated in log-rate, flat above the
    curve, falling `SLOPE_DB_PER_OCTAVE` per halving below it."""
    if not curve:
        return -math.inf
    low_rate, low_psnr = curve[0]
    if rate <= low_rate:
        return low_psnr - SLOPE_DB_PER_OCTAVE * math.log2(low_rate / rate)
    best = max(q for r, q in curve if r <= rate)  # never credit a curve for bending down
    for (r0, q0), (r1, q1) in itertools.pairwise(curve):
        if r0 <= rate <= r1 and r1 > r0:
            t = math.log(rate / r0) / math.log(r1 / r0)
            return max(best, q0 + t * (q1 - q0))
    return best


def evaluate(genome: Genome, experiment: PastExperiment, task: TaskContext) -> Evaluated:
    """The genome's score from one experiment (see the module docstring)."""
    curve = curve_of(experiment)
    if experiment.status != "completed" or not curve:
        return Evaluated(genome, experiment.id, False, curve, -math.inf)
    score = psnr_at_rate(curve, task.max_mbps * 1e6)
    if experiment.target_achieved:
        score += TARGET_BONUS_DB
    if experiment.bd_rate_vs_x264 is not None and math.isfinite(experiment.bd_rate_vs_x264):
        score -= BD_RATE_DB_PER_PERCENT * experiment.bd_rate_vs_x264
    return Evaluated(genome, experiment.id, True, curve, score)


def pareto_crowding(entries: Iterable[Evaluated]) -> dict[str, float]:
    """Genome key -> crowding distance, for the genomes owning a non-dominated point.

    A point is dominated when another has no more rate and no less PSNR-Y (and differs).
    A point's crowding distance is the log2-rate plus dB gap between its neighbours on the
    front; the front's two ends get twice the largest inner distance (at least 1).
    """
    points = sorted(
        ((rate, -psnr, e.genome.key()) for e in entries if e.ok for rate, psnr in e.curve),
    )
    front: list[tuple[float, float, str]] = []
    best = -math.inf
    for rate, negative_psnr, key in points:
        if -negative_psnr > best:
            front.append((math.log2(rate), -negative_psnr, key))
            best = -negative_psnr
    distances = [0.0] * len(front)
    for i in range(1, len(front) - 1):
        distances[i] = (front[i + 1][0] - front[i - 1][0]) + (front[i + 1][1] - front[i - 1][1])
    if front:
        end = 2 * max([*distances, 0.5])
        distances[0] = distances[-1] = end
    crowding: dict[str, float] = {}
    for (_, _, key), distance in zip(front, distances, strict=True):
        crowding[key] = max(crowding.get(key, 0.0), distance)
    return crowding


@dataclass(frozen=True)
class SearchSettings:
    """How the search balances exploitation and exploration (see the module docstring)."""

    population: int = 8
    tournament: int = 3
    explore: float = 0.2
    immigrants: float = 0.1
    crossover: float = 0.5
    mutation_rate: float = 0.15

    def __post_init__(self) -> None:
        if self.population < 1 or self.tournament < 1:
            raise ValueError(
                f"population ({self.population}) and tournament ({self.tournament}) must be >= 1"
            )
        for name in ("explore", "immigrants", "crossover", "mutation_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"search setting {name}={value} must be within 0..1")


@dataclass(frozen=True)
class Offspring:
    """A proposed genome, its parents (experiment ids) and how it was made."""

    genome: Genome
    parent_ids: tuple[str, ...]
    how: str


def select_parent(archive: Archive, rng: random.Random, settings: SearchSettings) -> Evaluated:
    """One parent: from the Pareto archive by crowding with probability `explore`, else the
    best of a `tournament` drawn from the `population` best-scoring genomes."""
    pool = archive.successful()
    if not pool:
        raise ValueError("no completed genome to select a parent from")
    if archive.crowding and rng.random() < settings.explore:
        keys = sorted(archive.crowding)
        weights = [archive.crowding[key] + 1e-3 for key in keys]
        return archive.evaluated[rng.choices(keys, weights)[0]]
    elite = pool[: settings.population]
    entrants = [rng.choice(elite) for _ in range(settings.tournament)]
    return max(entrants, key=lambda e: e.score)  # ties: the first drawn


def breed(
    archive: Archive, seen: set[str], rng: random.Random, settings: SearchSettings
) -> Offspring:
    """A genome not in `seen`: an immigrant, or a mutated (crossed-over) child of parents."""
    if not archive.successful() or rng.random() < settings.immigrants:
        return Offspring(_unseen_random(seen, rng), (), "random immigrant")
    for _ in range(MAX_DRAWS):
        first = select_parent(archive, rng, settings)
        if rng.random() < settings.crossover:
            second = select_parent(archive, rng, settings)
            if second.experiment_id != first.experiment_id:
                mixed = first.genome.crossover(second.genome, rng)
                child = mixed.mutate(rng, settings.mutation_rate)
                if child.key() not in seen:
                    how = (
                        f"crossover of {first.experiment_id} and {second.experiment_id}, "
                        f"then mutation ({changes(first.genome, child)} against the first)"
                    )
                    return Offspring(child, (first.experiment_id, second.experiment_id), how)
                continue
        child = first.genome.mutate(rng, settings.mutation_rate)
        if child.key() not in seen:
            how = f"mutation of {first.experiment_id} ({changes(first.genome, child)})"
            return Offspring(child, (first.experiment_id,), how)
    return Offspring(_unseen_random(seen, rng), (), "random (the neighbourhood is exhausted)")


def _unseen_random(seen: set[str], rng: random.Random) -> Genome:
    for _ in range(MAX_DRAWS):
        genome = Genome.random(rng)
        if genome.key() not in seen:
            return genome
    raise RuntimeError(f"no unseen genome in {MAX_DRAWS} random draws ({len(seen)} seen)")


def changes(parent: Genome, child: Genome) -> str:
    """The knobs that differ, as "knob a->b, ..."."""
    before, after = parent.canonical().to_dict(), child.canonical().to_dict()
    moved = [
        f"{name} {before[name]}->{after[name]}" for name in before if before[name] != after[name]
    ]
    return ", ".join(moved) or "no change"
