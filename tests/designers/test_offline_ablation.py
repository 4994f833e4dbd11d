"""The ablation table (bench/ablation.py) compares what each row says it compares."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest

from codeclab.designers.offline.space import Genome, default_genome


@pytest.fixture
def ablation(bench_module: Callable[[str], ModuleType]) -> ModuleType:
    return bench_module("ablation")


def test_every_tool_is_measured_from_a_genome_on_one_of_its_two_sides(
    ablation: ModuleType,
) -> None:
    best = default_genome()
    for tool, (knob, with_tool, without_tool, _) in ablation.TOOLS.items():
        base = ablation.tool_base(best, tool)
        assert getattr(base, knob) in (with_tool, without_tool), tool


def test_a_tool_whose_knob_holds_a_third_value_is_refused_naming_it(
    ablation: ModuleType,
) -> None:
    genome = Genome.from_dict({**default_genome().to_dict(), "me_lambda": 0.8})
    with pytest.raises(ValueError, match=r"mv_cost.*me_lambda=0\.8"):
        ablation.tool_base(genome, "mv_cost")
