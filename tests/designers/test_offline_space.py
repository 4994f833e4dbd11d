"""The offline designer's genome: domains, canonical form, variation and description."""

import random
from dataclasses import replace

import pytest

from codeclab.designers.offline.space import (
    FULL_SEARCH_MAX_RANGE,
    KNOBS,
    Genome,
    default_genome,
    inter_dct_like,
    intra_dct_like,
    knob_names,
)


def test_every_field_is_a_knob_with_its_default_inside_its_domain() -> None:
    assert knob_names() == tuple(spec.name for spec in KNOBS)
    defaults = Genome().to_dict()
    for spec in KNOBS:
        assert defaults[spec.name] in spec.domain, spec.name
        assert len(spec.domain) >= 2, f"{spec.name} has nothing to choose from"


def test_a_value_outside_its_domain_is_rejected_naming_the_knob() -> None:
    domain = r"search_range=12 is outside its domain \(4, 8, 16, 32, 48, 64\)"
    with pytest.raises(ValueError, match=domain):
        Genome(search_range=12)
    with pytest.raises(ValueError, match="unknown genome knobs"):
        Genome.from_dict({"warp_drive": 1})


def test_from_dict_round_trips_and_accepts_integral_floats() -> None:
    genome = Genome.random(random.Random(3))
    assert Genome.from_dict(genome.to_dict()) == genome
    assert Genome.from_dict({"rd_lambda": 0}).rd_lambda == 0.0


def test_canonical_form_gives_codecs_that_cannot_differ_the_same_key() -> None:
    intra = Genome(intra_period=1)
    assert replace(intra, search="full", subpel="quarter", num_refs=2).key() == intra.key()
    assert Genome(entropy="lzma", zlib_level=1).key() == Genome(entropy="lzma").key()
    assert Genome(macroblock=8, transform_size=16).canonical().transform_size == 8
    full = Genome(search="full", search_range=32).canonical()
    assert full.search_range == FULL_SEARCH_MAX_RANGE
    assert Genome(entropy="zlib", zlib_level=1).key() != Genome(entropy="zlib").key()


def test_mutation_is_reproducible_and_always_changes_the_codec() -> None:
    parent = default_genome()
    children = [parent.mutate(random.Random(seed), 0.15) for seed in range(30)]
    again = [parent.mutate(random.Random(seed), 0.15) for seed in range(30)]
    assert children == again
    assert all(child.key() != parent.key() for child in children)
    assert len({child.key() for child in children}) > 20


def test_mutation_at_rate_zero_still_moves_one_knob() -> None:
    parent = inter_dct_like()
    child = parent.mutate(random.Random(1), 0.0)
    differing = [k for k, v in child.to_dict().items() if parent.to_dict()[k] != v]
    assert child.key() != parent.key()
    assert len(differing) >= 1


def test_crossover_takes_each_knob_from_one_of_the_parents() -> None:
    fixed = {"macroblock": 16, "entropy": "zlib"}
    a = replace(Genome.random(random.Random(1)), intra_period=30, search="diamond", **fixed)
    b = replace(Genome.random(random.Random(2)), intra_period=60, search="full", **fixed)
    children = [a.crossover(b, random.Random(seed)) for seed in range(20)]
    for child in children:
        for name, value in child.to_dict().items():
            assert value in (a.to_dict()[name], b.to_dict()[name]), name
    assert {child.intra_period for child in children} == {30, 60}


def test_random_genomes_cover_every_value_of_every_knob() -> None:
    rng = random.Random(0)
    genomes = [Genome.random(rng) for _ in range(500)]
    for spec in KNOBS:
        seen = {g.to_dict()[spec.name] for g in genomes}
        assert seen == set(spec.domain), spec.name


def test_reference_equivalents_are_all_intra_and_inter_variants_of_one_design() -> None:
    intra, inter = intra_dct_like(), inter_dct_like()
    assert intra.intra_only and not inter.intra_only
    assert (intra.quant_matrix, intra.quant_curve, intra.entropy) == ("jpeg", "ijg", "zlib")
    assert (inter.search, inter.subpel, inter.search_range) == ("coarse_to_fine", "none", 16)
    assert len({intra.key(), inter.key(), default_genome().key()}) == 3


def test_describe_reads_as_a_one_line_design_summary() -> None:
    text = default_genome().describe()
    assert "inter (I every 30)" in text
    assert (
        "8x8/4x4 DCT" in text and "slope log quant" in text and "intra 8x8 / 4x4 directions" in text
    )
    assert "hybrid quarter-pel 6-tap ME +-48" in text and "CABAC entropy" in text
    assert "MV cost lambda 0.4" in text and "RD lambda 0.25" in text
    assert "2 B-frames (QP +8, temporal direct, adaptive, RD directions)" in text
    assert "macroblock-tree QP" not in text
    assert "macroblock-tree QP" in replace(default_genome(), mbtree=1).describe()
    assert "\n" not in text
    assert intra_dct_like().describe().startswith("all-intra, 16x16 MB, 8x8 DCT, jpeg ijg quant")
    assert "ME" not in intra_dct_like().describe()


def test_cheaper_turns_down_the_costly_knobs_only() -> None:
    costly = replace(default_genome(), search="full", num_refs=2, subpel="quarter", entropy="range")
    cheap = costly.cheaper()
    assert (cheap.search, cheap.num_refs, cheap.subpel, cheap.entropy) == (
        "diamond",
        1,
        "half",
        "zlib",
    )
    assert cheap.deblock == costly.deblock and cheap.quant_matrix == costly.quant_matrix
