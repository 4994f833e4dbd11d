"""Fragments of generated codecs, run in place with their default knob values."""

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from codeclab.designers.offline.fragments import entropy, loopfilter, motion, transform

Encode = Callable[[list[bytes], list[list[int]]], bytes]
Decode = Callable[[bytes, list[list[int]], str], list[bytes]]
Search = Callable[..., tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]]

BACKENDS: list[tuple[Encode, Decode]] = [
    (entropy.encode_zlib, entropy.decode_zlib),
    (entropy.encode_lzma, entropy.decode_lzma),
    (entropy.encode_range, entropy.decode_range),
]


def skewed_sections(rng: np.random.Generator) -> list[bytes]:
    """Sections like a codec's: mostly small values, one empty, one long run of 255."""
    return [
        rng.geometric(0.6, 500).clip(0, 255).astype(np.uint8).tobytes(),
        b"",
        bytes([255]) * 300 + rng.integers(0, 256, 50, dtype=np.uint8).tobytes(),
    ]


@pytest.mark.parametrize(("encode", "decode"), BACKENDS)
def test_entropy_backends_round_trip_packet_after_packet(encode: Encode, decode: Decode) -> None:
    rng = np.random.default_rng(5)
    packets = [skewed_sections(rng) for _ in range(4)]
    encoder_models, decoder_models = entropy.entropy_models(3), entropy.entropy_models(3)
    for sections in packets:
        assert decode(encode(sections, encoder_models), decoder_models, "packet") == sections
    assert encoder_models == decoder_models


def test_range_coder_learns_skewed_statistics_better_than_one_byte_per_symbol() -> None:
    data = [bytes([255]) * 4000 + bytes(range(8)) * 50]
    coded = entropy.encode_range(data, entropy.entropy_models(1))
    assert len(coded) < len(data[0]) // 8


@pytest.mark.parametrize(("encode", "decode"), BACKENDS)
def test_corrupt_payload_is_rejected_with_the_packet_named(encode: Encode, decode: Decode) -> None:
    payload = encode([b"abc" * 10, b"x"], entropy.entropy_models(2))
    with pytest.raises(ValueError, match="packet 7"):
        decode(payload[:1], entropy.entropy_models(2), "packet 7")


@pytest.mark.parametrize("n", [4, 8, 16])
def test_run_length_round_trips_levels_with_escapes_and_empty_blocks(n: int) -> None:
    rng = np.random.default_rng(n)
    levels = rng.choice([0, 0, 0, 0, 1, -1, 3, 200, -700], size=(30, n * n)).astype(np.int64)
    levels[::4] = 0
    levels[:, transform.EOB :] = 0  # a 16x16 block codes 255 coefficients
    runs, codes, escapes = transform.run_length(levels)
    parsed = transform.parse_run_length(runs, codes, escapes, 30, n * n, "test")
    np.testing.assert_array_equal(parsed, levels)
    with pytest.raises(ValueError, match="test: expected 31 end-of-block"):
        transform.parse_run_length(runs, codes, escapes, 31, n * n, "test")


@pytest.mark.parametrize("basis", [transform.basis_dct, transform.basis_wht])
@pytest.mark.parametrize("n", [4, 8, 16])
def test_bases_are_orthonormal_and_the_integer_inverse_undoes_the_forward(
    basis: Callable[[int], npt.NDArray[np.float64]], n: int
) -> None:
    b = basis(n)
    np.testing.assert_allclose(b @ b.T, np.eye(n), atol=1e-12)
    forward = np.kron(b, b).T[:, transform.zigzag(n)]
    rounded = np.round(b * (1 << transform.IDCT_BITS))
    inverse = np.kron(rounded, rounded)[transform.zigzag(n), :]
    blocks = np.random.default_rng(1).integers(-255, 256, (20, n * n)).astype(np.float64)
    coefs = np.round(blocks @ forward)
    back = np.floor((coefs @ inverse + 0.5 * transform.IDCT_SCALE) / transform.IDCT_SCALE)
    assert np.abs(back - blocks).max() <= 2


def test_zigzag_visits_every_coefficient_low_frequencies_first() -> None:
    for n in (4, 8, 16):
        order = transform.zigzag(n)
        assert sorted(order.tolist()) == list(range(n * n))
        diagonals = [(i // n) + (i % n) for i in order]
        assert diagonals == sorted(diagonals)


@pytest.mark.parametrize("curve", [transform.base_ijg, transform.base_log])
def test_quantiser_steps_fall_as_quality_rises(curve: Callable[[int], int]) -> None:
    bases = [curve(q) for q in range(1, 101)]
    assert bases == sorted(bases, reverse=True)
    assert bases[0] > 20 * max(bases[-1], 1)


def test_step_offsets_double_the_step_every_six() -> None:
    assert transform.offset_base(256, 6) == 512
    assert transform.offset_base(256, -6) == 128
    assert transform.offset_base(256, 0) == 256
    assert 256 < transform.offset_base(256, 2) < transform.offset_base(256, 4) < 512


def test_integer_vectors_interpolate_to_plain_windows() -> None:
    plane = np.random.default_rng(2).integers(0, 256, (32, 32), dtype=np.uint8)
    extended = motion.extend(plane, 6)
    oy, ox = motion.grid_origins(plane, 8)
    vectors = np.random.default_rng(3).integers(-4, 5, (len(oy), 2))
    for scale in (1, 2, 4):
        found = motion.interpolate(extended, 6, oy, ox, vectors * scale, 8, scale)
        plain = motion.windows(extended, 6, oy + vectors[:, 0], ox + vectors[:, 1], 8)
        np.testing.assert_array_equal(found, plain)


def test_half_pel_interpolation_averages_the_neighbours() -> None:
    plane = np.tile(np.arange(0, 160, 10, dtype=np.uint8), (16, 1))
    extended = motion.extend(plane, 4)
    origin = np.array([4], dtype=np.int64)
    found = motion.interpolate(extended, 4, origin, origin, np.array([[0, 1]]), 4, 2)
    assert found[0, 0].tolist() == [45, 55, 65, 75]


@pytest.mark.parametrize(
    "search",
    [motion.search_full, motion.search_coarse_to_fine, motion.search_diamond, motion.search_hybrid],
)
def test_motion_searches_find_a_global_shift(search: Search) -> None:
    yy, xx = np.mgrid[0:96, 0:96].astype(np.float64)
    scene = 128 + 50 * np.sin(xx / 7 + np.cos(yy / 11)) + 40 * np.cos(yy / 9 - xx / 23)
    scene = scene.astype(np.uint8)
    ref, cur = scene[16:80, 16:80], scene[13:77, 18:82]  # content moved by (+3, -2)
    vectors, _ = search(cur, ref, np.zeros((16, 2), dtype=np.int64), 0.0)
    inner = vectors.reshape(4, 4, 2)[1:3, 1:3].reshape(-1, 2)
    assert (inner == (-3, 2)).all(), inner


def test_deblocking_smooths_small_block_steps_and_keeps_real_edges(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(loopfilter, "DEBLOCK", 2)  # the knob's value in a rendered codec
    plane = np.zeros((16, 16), dtype=np.int64)
    plane[:, 8:] = 6  # a blocking step
    plane[:8, 8:] = 200  # a real edge in the top half
    coded = np.ones((2, 2), dtype=np.bool_)
    motion_keys = np.zeros((2, 2), dtype=np.int64)
    out = loopfilter.deblock_on(plane, 8, coded, motion_keys, 16)
    assert out[12, 7] > 0 and out[12, 8] < 6
    np.testing.assert_array_equal(out[:4, 6:10], plane[:4, 6:10])
    assert loopfilter.deblock_off(plane, 8, coded, motion_keys, 16) is plane


def test_deblocking_thresholds_follow_each_edge_s_own_blocks_steps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a grid of steps, an edge between two fine blocks keeps a step that the same edge
    between coarse blocks smooths; a grid of one step equals that step."""
    monkeypatch.setattr(loopfilter, "DEBLOCK", 2)
    plane = np.zeros((16, 32), dtype=np.int64)
    plane[:, 8:16] = 12
    plane[:, 24:] = 12  # the same step at x = 8 and x = 24
    coded = np.ones((2, 4), dtype=np.bool_)
    keys = np.zeros((2, 4), dtype=np.int64)
    steps = np.array([[4, 4, 24, 24], [4, 4, 24, 24]], dtype=np.int64)
    out = loopfilter.deblock_on(plane, 8, coded, keys, steps)
    np.testing.assert_array_equal(out[:, 6:10], plane[:, 6:10])  # alpha of step 4: 6
    assert out[4, 23] > 0 and out[4, 24] < 12
    uniform = np.full((2, 4), 24, dtype=np.int64)
    np.testing.assert_array_equal(
        loopfilter.deblock_on(plane, 8, coded, keys, uniform),
        loopfilter.deblock_on(plane, 8, coded, keys, 24),
    )


def test_half_size_resampling_keeps_a_smooth_image_close() -> None:
    yy, xx = np.mgrid[0:31, 0:47]
    plane = (100 + 40 * np.sin(xx / 9) + 30 * np.cos(yy / 7)).astype(np.uint8)
    small = loopfilter.downscale2(plane)
    assert small.shape == (16, 24)
    back = loopfilter.upscale2(small, 31, 47)
    assert back.shape == plane.shape
    assert np.abs(back.astype(np.int64) - plane).mean() < 1.5


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_phase_planes_give_the_same_pixels_as_interpolation(scale: int) -> None:
    plane = np.random.default_rng(scale).integers(0, 256, (32, 48), dtype=np.uint8)
    extended = motion.extend(plane, 7)
    oy, ox = motion.grid_origins(plane, 8)
    vectors = np.random.default_rng(9).integers(-5 * scale, 5 * scale + 1, (len(oy), 2))
    planes = motion.phase_planes(extended, scale)
    found = motion.phase_windows(planes, 7, oy, ox, vectors, 8, scale)
    expected = motion.interpolate(extended, 7, oy, ox, vectors, 8, scale)
    np.testing.assert_array_equal(found, expected)
