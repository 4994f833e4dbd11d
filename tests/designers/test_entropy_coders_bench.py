"""bench/entropy_coders.py codes the same captured bins with both range coders and gets
every bin back from both decoders, in about the same number of bytes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture
def entropy_coders(bench_module: Callable[[str], ModuleType]) -> ModuleType:
    return bench_module("entropy_coders")


def test_both_coders_round_trip_the_bins_of_a_real_encode(
    entropy_coders: ModuleType, clips_dir: Path, tmp_path: Path
) -> None:
    codec = entropy_coders.load_codec()
    rules = entropy_coders.Rules(prob_bits=int(codec.PROB_BITS), shift=int(codec.CABAC_SHIFT))
    streams = entropy_coders.capture_streams(
        codec, clips_dir / "carphone_qcif.y4m", 3, [50], tmp_path
    )
    assert streams and all(len(s.contexts) == len(s.bins) for s in streams)
    ours = entropy_coders.ours(codec, streams)
    theirs = entropy_coders.constriction_coder(streams, rules)
    assert ours["bytes"] > 0 and theirs["bytes"] > 0
    # Same probabilities, two exact coders: sizes within a word per stream and 2 %.
    assert abs(ours["bytes"] - theirs["bytes"]) <= max(4 * len(streams), 0.02 * ours["bytes"])


def test_the_adaptation_replay_gives_one_probability_per_bin(entropy_coders: ModuleType) -> None:
    stream = entropy_coders.Stream(contexts=[0, -1, 0, 0], bins=[1, 0, 1, 1], probs=[1024])
    rules = entropy_coders.Rules(prob_bits=11, shift=5)
    p_one = entropy_coders.probabilities_of_one(stream, rules)
    assert p_one.tolist()[:2] == [0.5, 0.5]
    assert p_one[2] > p_one[0] and p_one[3] > p_one[2]
