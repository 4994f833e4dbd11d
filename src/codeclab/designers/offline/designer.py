"""The offline designer: evolutionary search over the codec design space, no network, no key.

The first `population` proposals are seeds: the space's equivalents of the reference codecs
(inter_dct, intra_dct), a default design with the tools that usually pay off, then random
genomes. After that every proposal is bred from the history (`search.breed`).

Reproducible: each proposal draws from a `random.Random` seeded by the designer's seed, the
history (ids, statuses and genomes, in order) and the proposals this designer already made
and that the history does not hold yet; the same seed and the same calls give the same
designs. A genome is never proposed twice, nor one the history already holds.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Sequence

from codeclab.designers.base import Design, PastExperiment, TaskContext
from codeclab.designers.offline.render import genome_from_source, render
from codeclab.designers.offline.search import Archive, Offspring, SearchSettings, breed
from codeclab.designers.offline.space import (
    Genome,
    default_genome,
    inter_dct_like,
    intra_dct_like,
)

GENOME_TAIL = "genome: "
"""The rationale's last line: ``genome: {json}`` (machine-readable, for `genome_from_design`)."""

RESOURCE_ERROR = re.compile(
    r"wall[- ]clock|time ?limit|timed? ?out|cpu[- ]time|SIGXCPU|SIGKILL|memory|killed",
    re.IGNORECASE,
)
"""Errors a cheaper genome may avoid (the sandbox's limit messages, MemoryError)."""


def genome_from_design(source: str, rationale: str = "") -> Genome | None:
    """The genome of an offline design: its source's GENOME literal, else the rationale's tail."""
    genome = genome_from_source(source)
    if genome is not None:
        return genome
    for line in reversed(rationale.splitlines()):
        if line.startswith(GENOME_TAIL):
            try:
                return Genome.from_dict(json.loads(line[len(GENOME_TAIL) :]))
            except (ValueError, TypeError):
                return None
    return None


class OfflineDesigner:
    """Implements `codeclab.designers.base.Designer` with an evolutionary search."""

    def __init__(
        self,
        seed: int,
        population: int = 8,
        *,
        tournament: int = 3,
        explore: float = 0.2,
        immigrants: float = 0.1,
        crossover: float = 0.5,
        mutation_rate: float = 0.15,
    ) -> None:
        self.seed = seed
        self.settings = SearchSettings(
            population, tournament, explore, immigrants, crossover, mutation_rate
        )
        self.pending: list[str] = []  # keys proposed by this designer, oldest first

    @property
    def name(self) -> str:
        return "offline"

    def seeds(self) -> list[tuple[Genome, str]]:
        """The first proposals, in order, with why each was chosen."""
        found = [
            (inter_dct_like(), "seed: the inter_dct reference codec's equivalent in the space"),
            (intra_dct_like(), "seed: the intra_dct reference codec's equivalent in the space"),
            (default_genome(), "seed: the default design (the tools that usually pay off)"),
        ]
        rng = random.Random(f"offline-seeds|{self.seed}")
        keys = {genome.key() for genome, _ in found}
        while len(found) < self.settings.population:
            genome = Genome.random(rng)
            if genome.key() not in keys:
                keys.add(genome.key())
                found.append((genome, "seed: a random genome"))
        return found[: self.settings.population]

    def propose(self, history: Sequence[PastExperiment], task: TaskContext) -> Design:
        archive = Archive.from_history(history, task)
        known = set(archive.evaluated)
        self.pending = [key for key in self.pending if key not in known]
        seen = known | set(self.pending)
        offspring = None
        if len(seen) < self.settings.population:
            for genome, why in self.seeds():
                if genome.key() not in seen:
                    offspring = Offspring(genome, (), why)
                    break
        if offspring is None:
            rng = random.Random(self.state_digest(history))
            offspring = breed(archive, seen, rng, self.settings)
        return self.design(offspring)

    def revise(
        self, design: Design, error: str, history: Sequence[PastExperiment], task: TaskContext
    ) -> Design | None:
        """For a design that ran out of time or memory, the same design with its costliest knobs
        turned down (if that is a new genome); otherwise None: a generated codec is not fixed
        by hand, its genome is simply never proposed again."""
        genome = genome_from_design(design.source, design.rationale)
        if genome is None or not RESOURCE_ERROR.search(error):
            return None
        cheaper = genome.cheaper()
        seen = set(Archive.from_history(history, task).evaluated) | set(self.pending)
        if cheaper.key() == genome.key() or cheaper.key() in seen:
            return None
        why = f"revision of a design that failed ({error.strip().splitlines()[0][:200]}): cheaper"
        return self.design(Offspring(cheaper, design.parent_ids, why))

    def design(self, offspring: Offspring) -> Design:
        genome = offspring.genome.canonical()
        self.pending.append(genome.key())
        tail = json.dumps(genome.to_dict(), sort_keys=True, separators=(",", ":"))
        rationale = f"{genome.describe()}.\n\n{offspring.how}.\n\n{GENOME_TAIL}{tail}"
        return Design(
            source=render(genome),
            rationale=rationale,
            parent_ids=offspring.parent_ids,
            params={},
            designer=self.name,
        )

    def state_digest(self, history: Sequence[PastExperiment]) -> str:
        """What a proposal's random draws depend on: the seed, the history, pending proposals."""
        digest = hashlib.sha256(f"offline|{self.seed}".encode())
        for experiment in history:
            genome = genome_from_source(experiment.source)
            key = genome.key() if genome is not None else "-"
            digest.update(f"|{experiment.id}:{experiment.status}:{key}".encode())
        for key in self.pending:
            digest.update(f"|pending:{key}".encode())
        return digest.hexdigest()
