"""The coding tools of the design space (CABAC, 6-tap quarter-pel, intra modes, MV costs):
their fragments in place, and genomes using each rendered, validated and round-tripped
bit-exactly on real frames."""

from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from codeclab.codec.validate import validate_source
from codeclab.designers.offline.fragments import (
    cabac,
    codec,
    frame,
    lookahead,
    loopfilter,
    motion,
    transform,
)
from codeclab.designers.offline.render import render
from codeclab.designers.offline.space import Genome, default_genome
from tests.designers.test_offline_render import Planes, load, moving_frames, psnr_y, run_codec

I64 = npt.NDArray[np.int64]

TOOLS: dict[str, dict[str, object]] = {
    "cabac": {"entropy": "cabac"},
    "cabac_two_refs_8x8_mb": {"entropy": "cabac", "num_refs": 2, "macroblock": 8},
    "cabac_16x16_transform": {"entropy": "cabac", "transform_size": 16},
    "sixtap_quarter": {"subpel": "quarter", "interpolation": "sixtap"},
    "sixtap_half": {"subpel": "half", "interpolation": "sixtap"},
    "intra_modes_cabac": {"intra_pred": "modes", "entropy": "cabac"},
    "intra_modes_lzma": {"intra_pred": "modes", "entropy": "lzma"},
    "intra_modes_all_intra": {"intra_pred": "modes", "intra_period": 1},
    "median_skip": {"skip_mv": "median"},
    "median_skip_zlib_threshold": {"skip_mv": "median", "entropy": "zlib", "rd_lambda": 0.0},
    "amvp": {"mv_pred": "amvp", "bframes": 0},
    "median_mv_pred": {"mv_pred": "median"},
    "amvp_two_refs_median_skip": {"mv_pred": "amvp", "num_refs": 2, "skip_mv": "median"},
    "mv_cost": {"me_lambda": 0.8},
    "mv_cost_two_refs": {"me_lambda": 0.4, "num_refs": 2},
    "sad_motion_costs_4x4_transform": {"me_metric": "sad", "transform_size": 4},
    "sad_b_directions_one_b_frame": {"b_decision": "sad", "bframes": 1},
    "one_reference_frame": {"num_refs": 1},
    "partitions_two_refs_4x4_transform": {"num_refs": 2, "transform_size": 4},
    "partitions_16x16_transform_integer_pel": {"transform_size": 16, "subpel": "none"},
    "whole_macroblocks": {"partitions": "16x16"},
    "dead_zone_quantiser": {"rdoq_lambda": 0.0},
    "intra_8x8_directions_all_intra": {"intra_period": 1},
    "no_p_intra": {"p_intra": 0},
    "p_intra_two_refs_whole_macroblocks": {"p_intra": 1, "num_refs": 2, "partitions": "16x16"},
    "p_intra_dead_zone_4x4_transform": {"p_intra": 1, "rdoq_lambda": 0.0, "transform_size": 4},
    "intra_8x8_directions_4x4_transform": {"intra_pred": "blocks", "transform_size": 4},
    "rdoq_16x16_transform_all_intra": {"transform_size": 16, "intra_period": 1},
    "one_transform_size": {"adaptive_transform": 0},
    "intra_8x8_only": {"intra_pred": "blocks"},
    "intra_4x4_all_intra": {"intra_period": 1},
    "intra_4x4_dead_zone": {"rdoq_lambda": 0.0},
    "adaptive_transform_dead_zone_modes": {"rdoq_lambda": 0.0, "intra_pred": "modes"},
    "adaptive_transform_wht_flat_intra": {"transform": "wht", "intra_pred": "flat"},
    "mbtree": {"mbtree": 1},
    "mbtree_p_frames_two_refs": {"mbtree": 1, "bframes": 0, "num_refs": 2},
    "mbtree_intra_8x8_dead_zone": {"mbtree": 1, "intra_pred": "blocks", "rdoq_lambda": 0.0},
}


@pytest.fixture(scope="module")
def carphone(clips_dir: Path) -> list[Planes]:
    """The first 12 frames of the carphone clip (176x144) as yuv420p planes."""
    frames: list[Planes] = []
    with av.open(str(clips_dir / "carphone_pristine.mp4")) as container:
        for picture in container.decode(video=0):
            packed = np.asarray(picture.to_ndarray(format="yuv420p"), dtype=np.uint8)
            h, w = picture.height, picture.width
            chroma = packed[h:].reshape(2, h // 2, w // 2)
            frames.append((packed[:h].copy(), chroma[0].copy(), chroma[1].copy()))
            if len(frames) == 12:
                break
    return frames


def tool_genome(changes: dict[str, object]) -> Genome:
    """The default design with `changes`, an I-frame every 10 frames (two groups in 12)."""
    return Genome.from_dict({**default_genome().to_dict(), "intra_period": 10, **changes})


# --- genomes using each tool -----------------------------------------------------------------


@pytest.mark.parametrize("tool", TOOLS)
def test_tool_genome_renders_a_valid_module_that_round_trips_real_frames_bit_exactly(
    tool: str, carphone: list[Planes]
) -> None:
    genome = tool_genome(TOOLS[tool])
    source = render(genome)
    report = validate_source(source, filename=f"{tool}.py")
    assert report.ok, [str(v) for v in report.violations]
    codec = load(source, tool)
    for quality in (15, 60):
        run = run_codec(codec, carphone, quality)
        assert len(run.decoded) == len(carphone)
        for decoded, reconstruction in zip(run.decoded, run.reconstructions, strict=True):
            assert reconstruction is not None
            for plane, expected in zip(decoded, reconstruction, strict=True):
                np.testing.assert_array_equal(plane, expected, err_msg=f"{tool} q{quality}")
        assert psnr_y(carphone, run.decoded) > (24 if quality == 15 else 33), tool


@pytest.mark.parametrize(
    "changes",
    [
        {"bframes": 1},
        {"bframes": 2, "b_adapt": 0},
        {"bframes": 1, "b_direct": "zero"},
        {"bframes": 2, "b_qp_offset": 6},
        {"bframes": 2, "num_refs": 2},
    ],
)
def test_b_frame_genome_round_trips_real_frames_bit_exactly_in_display_order(
    changes: dict[str, object], carphone: list[Planes]
) -> None:
    """B-frames wait for their anchor: the encoder returns b"" for them, then one packet for
    the anchor and the B-frames before it; the decoder returns those frames in display order,
    each equal to what the encoder reconstructed; the frames after the last anchor come out of
    flush. 12 frames, an I-frame every 10: anchors 0, 2 (or 3), ..., 10 (I), then the tail."""
    genome = tool_genome(changes)
    source = render(genome)
    assert validate_source(source, filename="b.py").ok
    codec = load(source, "bframes")
    encoder, decoder = codec.Encoder(176, 144, 30.0, {"quality": 30}), codec.Decoder(176, 144, 30.0)
    decoded: list[Planes] = []
    empty = 0
    for y, u, v in carphone:
        packet = encoder.encode(y, u, v)
        empty += packet == b""
        frames = decoder.decode(packet)
        assert len(frames) == len(encoder.outputs)
        for got, expected in zip(frames, encoder.outputs, strict=True):
            for plane, plane_expected in zip(got, expected, strict=True):
                np.testing.assert_array_equal(plane, plane_expected)
        decoded += frames
    assert empty > 0
    for packet in encoder.flush():
        decoded += decoder.decode(packet)
    assert len(decoded) == len(carphone)
    assert psnr_y(carphone, decoded) > 28  # display order: a misplaced frame would show


def test_cabac_codes_the_same_decisions_in_fewer_bytes_than_lzma(carphone: list[Planes]) -> None:
    lzma = tool_genome({"entropy": "lzma", "bframes": 0})  # the byte back ends have no B-frames,
    # AMVP, partitions, RDOQ, 8x8 intra directions or intra P macroblocks: nor does CABAC here
    cabac = tool_genome(
        {
            "entropy": "cabac",
            "bframes": 0,
            "mv_pred": "median",
            "partitions": "16x16",
            "rdoq_lambda": 0.0,
            "intra_pred": "modes",
            "p_intra": 0,
            "adaptive_transform": 0,
        }
    )
    lzma_run = run_codec(load(render(lzma), "lzma"), carphone, 40)
    cabac_run = run_codec(load(render(cabac), "cabac"), carphone, 40)
    for ours, theirs in zip(cabac_run.decoded, lzma_run.decoded, strict=True):
        for plane, expected in zip(ours, theirs, strict=True):
            np.testing.assert_array_equal(plane, expected)  # same decisions, same pixels
    assert cabac_run.total_bytes < 0.8 * lzma_run.total_bytes


def test_cabac_decoder_rejects_a_truncated_stream_naming_the_packet(
    carphone: list[Planes],
) -> None:
    codec = load(render(tool_genome({"entropy": "cabac"})), "cabac")
    run = run_codec(codec, carphone[:1], 90)
    decoder = codec.Decoder(176, 144, 30.0)
    with pytest.raises(ValueError, match="packet 0"):
        decoder.decode(run.packets[0][:12])


def test_every_new_knob_value_gives_a_distinct_codec() -> None:
    base = default_genome()
    for name, value in (
        ("entropy", "lzma"),
        ("interpolation", "bilinear"),
        ("intra_pred", "flat"),
        ("me_lambda", 0.0),
        ("me_metric", "sad"),
        ("b_decision", "sad"),
        ("skip_mv", "median"),
        ("bframes", 0),
        ("b_qp_offset", 2),
        ("mv_pred", "median"),
        ("partitions", "16x16"),
        ("b_direct", "zero"),
        ("rdoq_lambda", 0.0),
        ("intra_pred", "modes"),
        ("p_intra", 0),
        ("b_adapt", 0),
    ):
        assert replace(base, **{name: value}).key() != base.key(), name
    assert replace(base, macroblock=8).canonical().partitions == "16x16"
    assert replace(base, entropy="zlib").canonical().partitions == "16x16"
    assert replace(base, subpel="none").canonical().interpolation == "bilinear"
    assert replace(base, subpel="none").canonical().me_metric == "sad"
    assert replace(base, rd_lambda=0.0).canonical().b_decision == "sad"
    assert replace(base, bframes=0).canonical().b_decision == "sad"
    assert replace(base, bframes=2, entropy="lzma").canonical().bframes == 0
    assert replace(base, entropy="lzma").canonical().rdoq_lambda == 0.0
    assert replace(base, entropy="lzma").canonical().p_intra == 0
    assert replace(base, macroblock=8).canonical().p_intra == 0
    assert replace(base, bframes=1).canonical().b_adapt == 0
    assert replace(base, p_intra=0).canonical().b_adapt == 0
    assert replace(base, intra_pred="blocks", macroblock=8).canonical().intra_pred == "modes"
    assert replace(base, intra_pred="blocks", transform_size=16).canonical().intra_pred == "modes"
    assert replace(base, inter_rounding=0.5).key() == base.key()  # RDOQ does the rounding
    assert replace(base, mbtree=1).key() != base.key()
    assert replace(base, mbtree=1, intra_pred="modes").canonical().mbtree == 0
    assert replace(base, mbtree=1, intra_period=1).canonical().mbtree == 0


# --- the fragments in place --------------------------------------------------------------------


def test_binary_range_coder_round_trips_context_and_bypass_bins() -> None:
    rng = np.random.default_rng(3)
    contexts = rng.integers(-1, 6, 5000)
    bins = (rng.random(5000) < np.where(contexts < 0, 0.5, (contexts + 1) / 8)).astype(np.int64)
    encoder_probs, decoder_probs = [cabac.HALF] * 6, [cabac.HALF] * 6
    data = cabac.rc_encode(contexts.tolist(), bins.tolist(), encoder_probs)
    decoder = cabac.BinDecoder(data, decoder_probs, "packet 1")
    decoded = [decoder.bypass() if c < 0 else decoder.bit(int(c)) for c in contexts]
    assert decoded == bins.tolist()
    assert encoder_probs == decoder_probs
    assert len(data) < 5000 / 8  # skewed contexts cost less than a bit a bin


def test_exp_golomb_bins_round_trip_through_the_decoder() -> None:
    values = [0, 1, 2, 3, 7, 8, 100, 40000]
    bins = [b for v in values for b in cabac.exp_golomb_bins(v)]
    data = cabac.rc_encode([-1] * len(bins), bins, [])
    decoder = cabac.BinDecoder(data, [], "packet")
    assert [decoder.exp_golomb() for _ in values] == values


@pytest.mark.parametrize(("ncoef", "split"), [(16, False), (64, False), (256, False), (64, True)])
def test_coefficient_bins_round_trip_levels_with_escapes_and_skipped_blocks(
    ncoef: int, split: bool
) -> None:
    """Also with 4x4 transform flags: every coded block says whether it is split (uncoded
    ones are read back as not split) and is coded in the contexts of its kind."""
    rng = np.random.default_rng(ncoef)
    grid = (4, 5)
    levels = rng.choice([0, 0, 0, 0, 0, 1, -1, 2, -3, 15, 40, -900], size=(20, ncoef))
    levels[::3] = 0
    levels[1, -1] = 5  # a level at the last position (its significance is inferred)
    present = rng.random(20) < 0.8
    levels[~present] = 0
    tx4 = rng.random(20) < 0.5 if split else None
    base, base4 = cabac.CTX_COEF, cabac.CTX_COEF4
    contexts, bins = cabac.coefficient_bins(
        levels.astype(np.int64), present, grid, base, tx4, base4
    )
    probs = [cabac.HALF] * cabac.CONTEXTS
    data = cabac.rc_encode(contexts.tolist(), bins.tolist(), probs)
    decoder = cabac.BinDecoder(data, [cabac.HALF] * cabac.CONTEXTS, "packet")
    parsed, small = cabac.parse_coefficients(
        decoder, present, grid, ncoef, base, base4 if split else None
    )
    np.testing.assert_array_equal(parsed, levels)
    coded = np.count_nonzero(levels, axis=1) > 0
    np.testing.assert_array_equal(small, coded & tx4 if tx4 is not None else np.zeros(20, bool))
    assert decoder.probs == probs
    if split:
        assert (contexts >= base4).any()  # the split blocks' own contexts


@pytest.mark.parametrize("amvp", [0, 1])
def test_motion_bins_round_trip_modes_and_vectors_against_their_predictors(
    amvp: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cabac, "AMVP", amvp)
    layout = frame.Layout(96, 64, 1)  # 6 x 4 macroblocks
    rng = np.random.default_rng(8)
    modes = rng.integers(0, 3, layout.nmb).astype(np.int64)
    vectors = rng.integers(-17, 18, (layout.nmb, 2)).astype(np.int64)
    vectors[modes == 0] = 0
    vectors[2], vectors[3] = (-16, 17), (17, -17)  # a difference beyond the unary prefix
    modes[2] = modes[3] = 1
    temporal = vectors.copy()
    temporal[::2] = rng.integers(-17, 18, (layout.nmb // 2, 2))  # half of them predict exactly
    contexts, bins = cabac.motion_bins(layout, modes, vectors, 2, temporal)
    data = cabac.rc_encode(contexts.tolist(), bins.tolist(), [cabac.HALF] * cabac.CONTEXTS)
    decoder = cabac.BinDecoder(data, [cabac.HALF] * cabac.CONTEXTS, "packet")
    parsed_modes, parsed_vectors = cabac.parse_motion(decoder, layout, 2, temporal, "packet")
    np.testing.assert_array_equal(parsed_modes, modes)
    np.testing.assert_array_equal(parsed_vectors, vectors)
    if amvp:  # the temporal candidate makes most differences zero: fewer bins
        plain = cabac.motion_bins(layout, modes, vectors, 2, np.zeros_like(temporal))[1]
        assert bins.size < plain.size


def test_median_predictor_follows_a_smooth_field_exactly() -> None:
    vectors = np.tile(np.array([[3, -2]], dtype=np.int64), (12, 1))
    predicted = motion.median_predictors(vectors, 3, 4)
    np.testing.assert_array_equal(predicted[5:], vectors[5:])  # inner rows: median of equals
    np.testing.assert_array_equal(predicted[0], (0, 0))


def test_skip_vectors_follow_h264_p_skip_rules_one_by_one_and_all_at_once() -> None:
    rng = np.random.default_rng(2)
    vectors = rng.integers(-6, 7, (20, 2)).astype(np.int64)
    vectors[7] = 0  # a still neighbour: the macroblocks right of and below it skip with (0, 0)
    field = vectors.tolist()
    one_by_one = [motion.skip_vector(field, mb, 5) for mb in range(20)]
    np.testing.assert_array_equal(motion.skip_median(vectors, 4, 5), one_by_one)
    assert one_by_one[8] == [0, 0] and one_by_one[12] == [0, 0]  # right of, below index 7
    assert one_by_one[:5] == [[0, 0]] * 5  # the top row
    assert one_by_one[6] == motion.median_vector(field, 6, 5)


def test_six_tap_half_pel_samples_match_the_h264_filter() -> None:
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (16, 16)).astype(np.uint8)
    pixels = image.astype(np.int64)
    taps = np.array(motion.SIXTAP)
    y, x = 7, 6
    across = int(np.clip((pixels[y, x - 2 : x + 4] @ taps + 16) >> 5, 0, 255))
    down = int(np.clip((pixels[y - 2 : y + 4, x] @ taps + 16) >> 5, 0, 255))
    rows = np.array([pixels[r, x - 2 : x + 4] @ taps for r in range(y - 2, y + 4)])
    centre = int(np.clip((rows @ taps + 512) >> 10, 0, 255))
    planes = motion.phase_planes_sixtap(image, 4)
    assert (planes[0, 2, y, x], planes[2, 0, y, x], planes[2, 2, y, x]) == (across, down, centre)
    assert planes[0, 1, y, x] == (pixels[y, x] + across + 1) >> 1  # quarter: mean of neighbours
    assert planes[0, 0, y, x] == pixels[y, x]


def test_six_tap_interpolation_keeps_a_linear_ramp_exact() -> None:
    yy, xx = np.mgrid[0:12, 0:12]
    ramp = (8 * xx + 4 * yy + 10).astype(np.uint8)
    planes = motion.phase_planes_sixtap(ramp, 4)
    for fy in range(4):
        for fx in range(4):
            assert planes[fy, fx, 5, 5] == 8 * 5 + 4 * 5 + 10 + 2 * fx + fy


def test_intra_prediction_modes_reproduce_what_they_model() -> None:
    plane = np.zeros((32, 32), dtype=np.int64)
    yy, xx = np.mgrid[0:32, 0:32]
    ramp = 40 + 2 * xx + 3 * yy
    plane[:16, :] = ramp[:16, :]
    plane[:, :16] = ramp[:, :16]
    np.testing.assert_array_equal(frame.intra_predict(plane, 16, 16, 16, 3), ramp[16:, 16:])
    vertical = frame.intra_predict(plane, 16, 16, 16, 1)
    np.testing.assert_array_equal(vertical, np.repeat(ramp[15:16, 16:], 16, axis=0))
    horizontal = frame.intra_predict(plane, 16, 16, 16, 2)
    np.testing.assert_array_equal(horizontal, np.repeat(ramp[16:, 15:16], 16, axis=1))
    assert (frame.intra_predict(plane, 0, 0, 16, 3) == 128).all()  # no neighbours: DC 128


def test_mv_cost_prefers_the_predicted_vector_when_the_sad_ties() -> None:
    flat = np.full((48, 48), 90, dtype=np.uint8)
    blocks = motion.mb_blocks(flat, 16)
    vectors = np.zeros((9, 2), dtype=np.int64)
    vectors[4] = (3, -2)  # an arbitrary vector in a flat picture: no better than any other
    sad = np.zeros(9, dtype=np.int64)
    zeros = np.zeros(9, np.int64)
    found, cost = motion.regularise(blocks, [flat], vectors, zeros, sad, 4.0, vectors * 0)
    np.testing.assert_array_equal(found, np.zeros((9, 2), dtype=np.int64))
    np.testing.assert_array_equal(cost, sad)


def test_temporal_direct_splits_the_anchor_vector_by_frame_distance() -> None:
    """The newer anchor moved (8, -4) quarter-pels from the older one over `span` frames: a
    B-frame `position` frames after the older anchor sits that fraction along the way."""
    layout = frame.Layout(32, 16, 1)  # two macroblocks
    vectors = np.array([[8, -4], [6, 3]], dtype=np.int64)
    refs = np.array([0, 1], dtype=np.int64)  # the second spans twice the distance
    forward, backward = codec.direct_temporal(layout, vectors, refs, 1, 2)
    assert forward.tolist() == [[4, -2], [2, 1]]  # 8 * 1/2, -4 * 1/2; 6 * 1/4, 3 * 1/4 rounded
    assert backward.tolist() == [[-4, 2], [-2, -1]]
    forward, backward = codec.direct_temporal(layout, vectors, refs, 2, 3)
    assert forward.tolist() == [[5, -3], [2, 1]]
    assert backward.tolist() == [[-3, 1], [-1, -1]]
    zeros = codec.direct_zero(layout, vectors, refs, 1, 2)
    assert all(not part.any() for part in zeros)


def test_partition_differences_round_trip_through_the_coder() -> None:
    """Split flags of the coded macroblocks, then the split ones' partition differences."""
    layout = frame.Layout(64, 48, 1)  # 4 x 3 macroblocks
    rng = np.random.default_rng(5)
    modes = np.array([1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1], dtype=np.int64)
    deltas = rng.integers(-6, 7, (layout.nmb, 4, 2)).astype(np.int64)
    deltas[[0, 1, 5, 6, 9]] = 0  # whole macroblocks, skipped ones among them
    deltas[3, :, 1] = 12  # large differences take the Exp-Golomb escape
    vectors = np.zeros((layout.nmb, 2), dtype=np.int64)
    contexts, bins = cabac.split_bins(layout, modes, deltas)
    probs = [cabac.HALF] * cabac.CONTEXTS
    data = cabac.rc_encode(contexts.tolist(), bins.tolist(), probs)
    decoder = cabac.BinDecoder(data, [cabac.HALF] * cabac.CONTEXTS, "packet 2")
    np.testing.assert_array_equal(cabac.parse_splits(decoder, layout, modes, vectors), deltas)
    with pytest.raises(ValueError, match="packet 3: a partition's motion vector exceeds"):
        decoder = cabac.BinDecoder(data, [cabac.HALF] * cabac.CONTEXTS, "packet 3")
        cabac.parse_splits(decoder, layout, modes, vectors + frame.MAX_VECTOR - 10)


def test_split_search_gives_each_half_of_a_macroblock_its_own_motion() -> None:
    """The upper 8 rows of every macroblock row moved 2 pixels right, the lower 8 left: whole
    macroblocks cannot follow both, 8x8 partitions can (integer pel, fragments in place)."""
    yy, xx = np.mgrid[0:64, 0:96].astype(np.float64)
    ref = (128 + 60 * np.sin(xx / 5 + yy / 7) + 50 * np.cos(yy / 4 - xx / 9)).astype(np.uint8)
    cur = ref.copy()
    for top in range(0, 64, 16):
        cur[top : top + 8, 2:] = ref[top : top + 8, :-2]
        cur[top + 8 : top + 16, :-2] = ref[top + 8 : top + 16, 2:]
    vectors = np.zeros((24, 2), dtype=np.int64)
    deltas = motion.split_8x8(cur, [ref], vectors, np.zeros(24, dtype=np.int64), 4)
    inner = deltas.reshape(4, 6, 4, 2)[:, 1:-1]  # away from the left and right edges
    assert (inner[:, :, :2] == (0, -2)).all() and (inner[:, :, 2:] == (0, 2)).all()
    assert not motion.split_none(cur, [ref], vectors, np.zeros(24, dtype=np.int64), 4).any()


def random_blocks(seed: int, count: int = 400) -> tuple[npt.NDArray[np.float64], I64]:
    """Residual-like 8x8 blocks (energy falling with frequency) and a sloped step matrix."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:8, 0:8]
    spread = 40.0 / (1 + yy + xx).ravel()
    coefs = rng.normal(0, 1, (count, 64)) * spread[transform.zigzag(8)]
    blocks = coefs @ transform.FORWARD_Y.T  # FORWARD_Y is orthonormal: its transpose inverts
    steps = transform.quant_steps(8, False, 160)
    return blocks, steps


def lagrangian(levels: I64, blocks: npt.NDArray[np.float64], steps: I64, prices: object) -> float:
    """Squared error + the RDOQ prices of `levels` (significance up to each block's last)."""
    assert isinstance(prices, transform.Prices)
    magnitude = np.abs(blocks @ transform.FORWARD_Y) / steps
    error = ((magnitude - np.abs(levels)) ** 2 * steps.astype(np.float64) ** 2).sum()
    rate = 0.0
    for row in levels:
        nonzero = np.flatnonzero(row)
        if not nonzero.size:
            continue
        last = nonzero[-1]
        mags = np.abs(row[: last + 1]).astype(np.float64)
        rate += float(
            np.where(mags > 0, prices.significant[: last + 1], prices.zero[: last + 1]).sum()
        )
        rate += float(transform.magnitude_prices(mags[mags > 0], prices).sum())
        rate += float(prices.last[last])
    return float(error + rate)


def test_rdoq_without_prices_per_bit_rounds_to_nearest_and_with_them_costs_less() -> None:
    """With every price zero RDOQ is plain rounding to the nearest level; with the CABAC
    contexts' prices it lowers the Lagrangian cost it minimises (squared error + lambda *
    bits) against both nearest rounding and the dead zone, by coding fewer levels."""
    blocks, steps = random_blocks(1)
    nearest = transform.quantise(blocks, transform.FORWARD_Y, steps, 0.5)
    free = transform.Prices(np.zeros(64), np.zeros(64), np.zeros(64), np.zeros(5), 1.0)
    np.testing.assert_array_equal(
        transform.levels_rdoq(blocks, transform.FORWARD_Y, steps, 0.5, free), nearest
    )
    np.testing.assert_array_equal(
        transform.levels_rdoq(blocks, transform.FORWARD_Y, steps, 0.33, None),
        transform.quantise(blocks, transform.FORWARD_Y, steps, 0.33),
    )
    models = cabac.models_cabac(1)
    lam = 0.17 * 10.0**2
    prices = cabac.prices_cabac(models, False, lam)[0]
    assert prices is not None
    optimised = transform.levels_rdoq(blocks, transform.FORWARD_Y, steps, 0.5, prices)
    deadzone = transform.quantise(blocks, transform.FORWARD_Y, steps, 0.17)
    cost = lagrangian(optimised, blocks, steps, prices)
    assert cost < lagrangian(nearest, blocks, steps, prices)
    assert cost < lagrangian(deadzone, blocks, steps, prices)
    assert np.count_nonzero(optimised) < np.count_nonzero(nearest)
    assert (np.abs(optimised) <= np.abs(nearest)).all()  # never rounds up past the nearest


def test_rdoq_prices_follow_the_context_probabilities() -> None:
    """Fresh contexts (p = 1/2) price every bin at lambda; a significance context that has seen
    mostly zeros makes a zero there cheap and a level there dear."""
    models = cabac.models_cabac(1)
    fresh = cabac.prices_cabac(models, True, 3.0)[0]
    assert fresh is not None
    np.testing.assert_allclose(fresh.zero, 3.0)
    np.testing.assert_allclose(fresh.significant[:-1], 9.0)  # significance, last, sign
    assert fresh.significant[-1] == 3.0 and fresh.last[-1] == 0.0  # the final position
    sig = cabac.CTX_COEF + cabac.CTX_SIG + 20  # intra luma, position class 20
    models[0][sig] = (1 << cabac.PROB_BITS) * 15 // 16
    skewed = cabac.prices_cabac(models, True, 1.0)[0]
    assert skewed is not None
    position = int(np.flatnonzero(cabac.position_classes(64) == 20)[0])
    assert skewed.zero[position] < 0.1 and skewed.significant[position] > 5.9
    assert cabac.prices_none(models, True, 1.0) == [None, None, None, None]


def reference_directional(
    top: list[int], left: list[int], corner: int, mode: int, n: int = 8
) -> I64:
    """H.264's Intra_4x4 (8.3.1.2.1-9) or Intra_8x8 (8.3.2.2.2-10, reference filter left out)
    equations, pixel by pixel: p(x, -1) = top[x] (x < 2n), p(-1, y) = left[y],
    p(-1, -1) = corner. (The two sizes' equations differ only in these sizes: the 4x4 ones
    are the 8x8 ones where they apply.)"""

    def p(x: int, y: int) -> int:
        return corner if x < 0 and y < 0 else (top[x] if y < 0 else left[y])

    out = np.zeros((n, n), dtype=np.int64)
    for y in range(n):
        for x in range(n):
            if mode == 0:
                v = p(x, -1)
            elif mode == 1:
                v = p(-1, y)
            elif mode == 2:
                v = (sum(top[:n]) + sum(left) + n) >> (n.bit_length())
            elif mode == 3:
                if x == n - 1 and y == n - 1:
                    v = (p(2 * n - 2, -1) + 3 * p(2 * n - 1, -1) + 2) >> 2
                else:
                    v = (p(x + y, -1) + 2 * p(x + y + 1, -1) + p(x + y + 2, -1) + 2) >> 2
            elif mode == 4:
                if x > y:
                    v = (p(x - y - 2, -1) + 2 * p(x - y - 1, -1) + p(x - y, -1) + 2) >> 2
                elif x < y:
                    v = (p(-1, y - x - 2) + 2 * p(-1, y - x - 1) + p(-1, y - x) + 2) >> 2
                else:
                    v = (p(0, -1) + 2 * p(-1, -1) + p(-1, 0) + 2) >> 2
            elif mode == 5:
                z = 2 * x - y
                if z >= 0 and z % 2 == 0:
                    v = (p(x - (y >> 1) - 1, -1) + p(x - (y >> 1), -1) + 1) >> 1
                elif z >= 0:
                    a, b, c = (p(x - (y >> 1) - k, -1) for k in (2, 1, 0))
                    v = (a + 2 * b + c + 2) >> 2
                elif z == -1:
                    v = (p(-1, 0) + 2 * p(-1, -1) + p(0, -1) + 2) >> 2
                else:
                    a, b, c = (p(-1, y - 2 * x - k) for k in (1, 2, 3))
                    v = (a + 2 * b + c + 2) >> 2
            elif mode == 6:
                z = 2 * y - x
                if z >= 0 and z % 2 == 0:
                    v = (p(-1, y - (x >> 1) - 1) + p(-1, y - (x >> 1)) + 1) >> 1
                elif z >= 0:
                    a, b, c = (p(-1, y - (x >> 1) - k) for k in (2, 1, 0))
                    v = (a + 2 * b + c + 2) >> 2
                elif z == -1:
                    v = (p(-1, 0) + 2 * p(-1, -1) + p(0, -1) + 2) >> 2
                else:
                    a, b, c = (p(x - 2 * y - k, -1) for k in (1, 2, 3))
                    v = (a + 2 * b + c + 2) >> 2
            elif mode == 7:
                k = x + (y >> 1)
                if y % 2 == 0:
                    v = (p(k, -1) + p(k + 1, -1) + 1) >> 1
                else:
                    v = (p(k, -1) + 2 * p(k + 1, -1) + p(k + 2, -1) + 2) >> 2
            else:
                z, k = x + 2 * y, y + (x >> 1)
                if z > 2 * n - 3:
                    v = p(-1, n - 1)
                elif z == 2 * n - 3:
                    v = (p(-1, n - 2) + 3 * p(-1, n - 1) + 2) >> 2
                elif z % 2 == 0:
                    v = (p(-1, k) + p(-1, k + 1) + 1) >> 1
                else:
                    v = (p(-1, k) + 2 * p(-1, k + 1) + p(-1, k + 2) + 2) >> 2
            out[y, x] = v
    return out


@pytest.mark.parametrize("mode", range(frame.LUMA_MODES))
def test_8x8_intra_directions_follow_the_h264_equations(mode: int) -> None:
    rng = np.random.default_rng(mode)
    plane = rng.integers(0, 256, (24, 32)).astype(np.int64)
    y0, x0 = 8, 8
    top = plane[y0 - 1, x0 : x0 + 16].tolist()
    left = plane[y0 : y0 + 8, x0 - 1].tolist()
    corner = int(plane[y0 - 1, x0 - 1])
    expected = reference_directional(top, left, corner, mode)
    np.testing.assert_array_equal(frame.predict_directional(plane, y0, x0, mode, True), expected)
    # without the pixels above-right, the last one above stands in for them (as H.264)
    padded = top[:8] + [top[7]] * 8
    np.testing.assert_array_equal(
        frame.predict_directional(plane, y0, x0, mode, False),
        reference_directional(padded, left, corner, mode),
    )


@pytest.mark.parametrize("mode", range(frame.LUMA_MODES))
def test_4x4_intra_directions_follow_the_h264_equations(mode: int) -> None:
    rng = np.random.default_rng(10 + mode)
    plane = rng.integers(0, 256, (12, 16)).astype(np.int64)
    y0, x0 = 4, 4
    top = plane[y0 - 1, x0 : x0 + 8].tolist()
    left = plane[y0 : y0 + 4, x0 - 1].tolist()
    corner = int(plane[y0 - 1, x0 - 1])
    got = frame.predict_directional(plane, y0, x0, mode, True, 4)
    np.testing.assert_array_equal(got, reference_directional(top, left, corner, mode, 4))
    padded = top[:4] + [top[3]] * 4
    got = frame.predict_directional(plane, y0, x0, mode, False, 4)
    np.testing.assert_array_equal(got, reference_directional(padded, left, corner, mode, 4))


def test_8x8_intra_directions_reproduce_the_edges_they_model() -> None:
    """Ramps constant along a diagonal are continued exactly by the diagonal modes (but for the
    far corner of down-left, whose pixels above run out); a mode whose neighbours are outside
    the frame falls back to DC."""
    yy, xx = np.mgrid[0:16, 0:24]
    plane = ((xx + yy) * 5).astype(np.int64)  # constant along down-left diagonals
    got = frame.predict_directional(plane, 8, 8, 3, True)
    expected = plane[8:16, 8:16].copy()
    expected[7, 7] = got[7, 7]
    np.testing.assert_array_equal(got, expected)
    plane = ((xx - yy) * 5 + 80).astype(np.int64)  # constant along down-right diagonals
    got = frame.predict_directional(plane, 8, 8, 4, True)
    np.testing.assert_array_equal(got, plane[8:16, 8:16])
    np.testing.assert_array_equal(
        frame.predict_directional(plane, 0, 8, 0, True),
        frame.predict_directional(plane, 0, 8, 2, True),
    )


def test_8x8_luma_modes_round_trip_through_the_coder_against_the_most_probable() -> None:
    layout = frame.Layout(64, 48, 1)
    rng = np.random.default_rng(5)
    quadrants = rng.integers(0, frame.LUMA_MODES, (layout.nmb, 4))
    quadrants[::3] = frame.MODE_DC  # runs of the most probable mode
    vectors = np.zeros((layout.nmb, 2), dtype=np.int64)
    vectors[:, 1] = (quadrants << (4 * np.arange(4))).sum(axis=1)
    contexts, bins = cabac.luma_modes_8x8(layout, vectors)
    data = cabac.rc_encode(contexts.tolist(), bins.tolist(), [cabac.HALF] * cabac.CONTEXTS)
    decoder = cabac.BinDecoder(data, [cabac.HALF] * cabac.CONTEXTS, "packet 0")
    parsed = np.zeros_like(vectors)
    cabac.parse_luma_modes_8x8(decoder, layout, parsed)
    np.testing.assert_array_equal(parsed, vectors)
    hits = int((bins[contexts == cabac.CTX_LUMA_MODE]).sum())
    assert 0 < hits < quadrants.size  # some modes are the predicted one, some are not


def test_p_frames_code_uncovered_flat_content_intra_and_decode_it_exactly() -> None:
    """A flat square appears over a noise texture the reference holds nowhere: motion
    compensation cannot predict it, its own decoded neighbours can (from the macroblock left
    of it or above it on), so those macroblocks are coded intra, and the decoder reproduces
    the encoder's frame. Without the tool every macroblock stays inter, at more bytes."""
    rng = np.random.default_rng(3)
    first = rng.integers(0, 256, (64, 96)).astype(np.uint8)
    second = first.copy()
    second[16:64, 32:96] = 200
    chroma = np.full((32, 48), 128, dtype=np.uint8)
    frames = [(first, chroma, chroma), (second, chroma, chroma)]
    sizes = {}
    for p_intra in (1, 0):
        codec = load(render(tool_genome({"bframes": 0, "p_intra": p_intra})), "p_intra")
        encoder = codec.Encoder(96, 64, 30.0, {"quality": 60})
        encoder.encode(*frames[0])
        layout, quant = encoder.layout, codec.frame_quantiser(encoder.quantisers, 60, False)
        modes = codec.inter_coding(
            layout, encoder.refs, frames[1], encoder.hint, quant, encoder.temporal
        )[0]
        intra = np.flatnonzero(modes >= frame.INTRA_MB)
        assert (intra.size > 0) == bool(p_intra)
        run = run_codec(codec, frames, 60)
        for plane, expected in zip(run.decoded[1], run.reconstructions[1], strict=True):
            np.testing.assert_array_equal(plane, expected)
        assert np.abs(run.decoded[1][0][16:64, 48:96].astype(int) - 200).mean() < 2
        sizes[p_intra] = len(run.packets[1])
    assert sizes[1] < sizes[0]


def test_adaptive_b_frames_shorten_the_group_after_a_p_frame_full_of_intra_macroblocks() -> None:
    """Two B-frames per group while the P-frames find their content in their references; one
    after a P-frame that had to code more than HARD_MOTION of its macroblocks intra per frame
    of distance; one before the first P-frame. The decoder needs no word of it: each packet
    carries its anchor and however many B-frames precede it."""
    codec = load(render(default_genome()), "b_adapt")
    assert codec.BFRAMES == 2
    easy = np.ones(99, dtype=np.int64)
    hard = easy.copy()
    hard[:10] = frame.INTRA_MB  # 10 % intra over 3 frames: 3.4 % per frame
    assert codec.b_frames_adaptive(easy, 3) == 2
    assert codec.b_frames_adaptive(hard, 3) == 1
    assert codec.b_frames_adaptive(easy, 0) == 1
    frames = moving_frames(12, 48, 64)
    run = run_codec(codec, frames, 50)
    assert len(run.decoded) == 12
    for decoded, expected in zip(run.decoded, run.reconstructions, strict=True):
        assert expected is not None
        for plane, plane_expected in zip(decoded, expected, strict=True):
            np.testing.assert_array_equal(plane, plane_expected)
    assert [len(p) > 0 for p in run.packets[:4]] == [True, False, True, False]  # I, B, P, B


def test_split_kernels_are_four_4x4_transforms_interleaved_and_invert_exactly() -> None:
    """Coefficient j*4 + k of a split 8x8 block is zig-zag coefficient j of the 4x4 transform
    of its sub-block k; the integer inverse brings back every block bit-exactly at step 1."""
    rng = np.random.default_rng(5)
    blocks = rng.integers(-255, 256, (6, 64)).astype(np.float64)
    forward, inverse = transform.kernels_split(8, 4)
    small_forward, _ = transform.kernels(4)
    coefs = blocks @ forward
    pixels = blocks.reshape(6, 2, 4, 2, 4)
    for k in range(4):
        sub = pixels[:, k // 2, :, k % 2, :].reshape(6, 16)
        np.testing.assert_allclose(coefs[:, k::4], sub @ small_forward, atol=1e-9)
    steps = np.ones(64, dtype=np.int64)
    levels = transform.quantise(blocks, forward, steps, 0.5)
    error = transform.dequantise(levels, steps, inverse) - blocks
    assert np.abs(error).max() <= 1  # the levels are rounded coefficients


def test_adaptive_transform_splits_blocks_whose_detail_sits_in_one_corner() -> None:
    """A residual confined to one 4x4 corner costs fewer bits and less error as four 4x4
    transforms; a smooth ramp over the whole block as one 8x8."""
    rng = np.random.default_rng(9)
    corner = np.zeros((8, 8))
    corner[:4, :4] = rng.integers(-60, 61, (4, 4))
    ramp = np.add.outer(np.arange(8), np.arange(8)) * 6.0 - 42
    blocks = np.stack([corner.ravel(), ramp.ravel()])
    quant = transform.Quantiser(60, 0)
    lam = 0.25 * quant.flat_y**2
    levels, tx4 = transform.luma_adaptive(blocks, quant, 0.33, lam)
    assert tx4.tolist() == [True, False]
    fixed, _ = transform.luma_fixed(blocks, quant, 0.33, lam)
    np.testing.assert_array_equal(levels[1], fixed[1])
    residual = transform.luma_residual(levels, quant, tx4)
    error = ((blocks - residual) ** 2).sum(axis=1)
    cost = error + lam * transform.luma_bits(levels, quant, tx4)
    fixed_error = ((blocks - transform.luma_residual(fixed, quant, None)) ** 2).sum(axis=1)
    assert cost[0] < fixed_error[0] + lam * transform.level_bits(fixed[:1], None)[0]


def test_luma_deblocking_filters_the_inner_edges_of_split_blocks_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With no split block the luma deblocking is the 8x8 one; a coded split block has its
    inner 4x4 edges smoothed, an unsplit coded one does not."""
    monkeypatch.setattr(loopfilter, "DEBLOCK", 2)
    monkeypatch.setattr(frame, "deblock", loopfilter.deblock_on)
    layout = frame.Layout(16, 16, 1)
    plane = np.tile(np.repeat(np.array([100, 108], dtype=np.int64), 4), (16, 2))  # steps at x4
    levels = np.zeros((4, 64), dtype=np.int64)
    levels[:, :4] = 1  # every 4x4 transform of a split block is coded
    motion = np.zeros((2, 2), dtype=np.int64)
    whole = frame.deblock_luma(layout, plane, levels, np.zeros(4, bool), motion, 40)
    coded = np.ones((2, 2), dtype=np.bool_)
    np.testing.assert_array_equal(whole, frame.deblock(plane, 8, coded, motion, 40))
    tx4 = np.array([True, False, False, False])
    split = frame.deblock_luma(layout, plane, levels, tx4, motion, 40)
    assert (split[:8, 3:5] != plane[:8, 3:5]).all()  # inside the split block: smoothed
    np.testing.assert_array_equal(split[9:, 3:5], plane[9:, 3:5])  # inside an unsplit one


def test_nested_luma_modes_round_trip_through_the_coder() -> None:
    """Quadrants of 8x8 modes and quadrants of four 4x4 modes, mixed, come back as coded."""
    layout = frame.Layout(64, 48, 1)
    rng = np.random.default_rng(6)
    quadrants = rng.integers(0, frame.LUMA_MODES, (layout.nmb, 4))
    quadrants[rng.random((layout.nmb, 4)) < 0.4] = frame.SUBDIVIDED
    vectors = np.zeros((layout.nmb, 6), dtype=np.int64)
    vectors[:, 1] = (quadrants << (4 * np.arange(4))).sum(axis=1)
    subs = rng.integers(0, frame.LUMA_MODES, (layout.nmb, 4, 4))
    packed = (subs << (4 * np.arange(4))).sum(axis=2)
    vectors[:, 2:] = np.where(quadrants == frame.SUBDIVIDED, packed, 0)
    contexts, bins = cabac.luma_modes_nested(layout, vectors)
    probs = [cabac.HALF] * cabac.CONTEXTS
    data = cabac.rc_encode(contexts.tolist(), bins.tolist(), probs)
    decoder = cabac.BinDecoder(data, [cabac.HALF] * cabac.CONTEXTS, "packet")
    parsed = np.zeros_like(vectors)
    cabac.parse_luma_modes_nested(decoder, layout, parsed)
    np.testing.assert_array_equal(parsed, vectors)


def test_i_frames_predict_fine_detail_as_4x4_blocks_where_that_costs_less(
    carphone: list[Planes],
) -> None:
    """On a real frame, some quadrants are four 4x4 blocks and the I-frame costs fewer bytes
    than with 8x8 directions only, at about the same quality."""
    sizes, quality = {}, {}
    for intra_pred in ("blocks_4x4", "blocks"):
        codec = load(render(tool_genome({"intra_pred": intra_pred})), intra_pred)
        run = run_codec(codec, carphone[:1], 50)
        sizes[intra_pred] = len(run.packets[0])
        quality[intra_pred] = psnr_y(carphone[:1], run.decoded)
        if intra_pred == "blocks_4x4":
            encoder = codec.Encoder(176, 144, 30.0, {"quality": 50})
            quant = codec.frame_quantiser(encoder.quantisers, 50, True)
            _, vectors, _ = codec.intra_coding(encoder.layout, carphone[0], quant)
            nibbles = (vectors[:, 1:2] >> (4 * np.arange(4))) & 15
            assert (nibbles == frame.SUBDIVIDED).sum() > 10
    assert sizes["blocks_4x4"] < sizes["blocks"]
    assert quality["blocks_4x4"] > quality["blocks"] - 0.2


def test_all_candidate_directions_at_once_equal_each_direction_alone() -> None:
    """`predict_candidates` (one product with the weights found from unit edges) gives
    `predict_directional`'s pixels exactly, for both block sizes, at frame borders, with and
    without the pixels above-right."""
    rng = np.random.default_rng(1)
    for trial in range(120):
        plane = rng.integers(0, 256, (24, 32)).astype(np.int64)
        n = (4, 8)[trial % 2]
        y0 = int(rng.integers(0, 3)) * n
        x0 = int(rng.integers(0, 3)) * n
        top_right = bool(rng.integers(0, 2))
        modes = [
            mode
            for mode in range(frame.LUMA_MODES)
            if (y0 > 0 or not frame.NEEDS_TOP[mode]) and (x0 > 0 or not frame.NEEDS_LEFT[mode])
        ]
        got = frame.predict_candidates(plane, y0, x0, modes, top_right, n)
        for prediction, mode in zip(got, modes, strict=True):
            expected = frame.predict_directional(plane, y0, x0, mode, top_right, n)
            np.testing.assert_array_equal(prediction, expected)


# --- the macroblock tree ---------------------------------------------------------------------


def test_qp_offsets_round_trip_through_the_coder_for_macroblocks_with_levels() -> None:
    """Offsets of the macroblocks with levels come back; the others are not coded, and take
    the last coded macroblock's."""
    layout = frame.Layout(96, 64, 1)
    rng = np.random.default_rng(3)
    levels = [rng.integers(-2, 3, (n, 64)) for n in layout.nblocks]
    for plane_levels, mb in zip(levels, layout.mb_of, strict=True):
        plane_levels[mb % 3 == 1] = 0  # these macroblocks code no levels
    drop = lookahead.TREE_DROP
    offsets = rng.integers(-drop, drop + 1, layout.nmb)
    offsets[:4] = (-drop, drop, -drop, 0)  # the largest jumps
    contexts, bins = cabac.offset_bins(layout, levels, offsets)
    data = cabac.rc_encode(contexts.tolist(), bins.tolist(), [cabac.HALF] * cabac.CONTEXTS)
    decoder = cabac.BinDecoder(data, [cabac.HALF] * cabac.CONTEXTS, "packet")
    parsed = cabac.parse_offsets(decoder, layout, levels)
    coded = cabac.coded_macroblocks(layout, levels)
    assert 0 < coded.sum() < layout.nmb
    np.testing.assert_array_equal(parsed[coded], offsets[coded])
    np.testing.assert_array_equal(parsed, cabac.settled_offsets(layout, levels, offsets))
    assert parsed[1] == offsets[0]  # no levels: the last coded macroblock's


def moving_window_frames(count: int) -> list[I64]:
    """Padded 64x64 lumas: a static texture, except the top-left 16x16 macroblock, which shows
    fresh noise in every frame (nothing of it survives into the next)."""
    rng = np.random.default_rng(8)
    texture = rng.integers(40, 200, (64, 64)).astype(np.uint8)
    frames = []
    for _ in range(count):
        luma = texture.copy()
        luma[:16, :16] = rng.integers(0, 256, (16, 16))
        frames.append(luma)
    return frames


def test_the_tree_refines_what_later_frames_inherit_and_not_what_they_replace() -> None:
    """Static texture that every later frame copies gets a finer QP the longer the lookahead;
    a macroblock whose content the next frame replaces keeps the frame's QP."""
    frames = moving_window_frames(11)
    tree = lookahead.Lookahead(4, 4)
    for index, luma in enumerate(frames):
        tree.push(index + 1, luma)  # index 0 would be an I-frame that cuts the chain
    long = tree.offsets(1).reshape(4, 4)
    assert long[0, 0] == 0
    assert (long.ravel()[1:] < -2).all()
    short_chain = [
        lookahead.frame_costs(frames[0], None),
        lookahead.frame_costs(frames[1], frames[0]),
    ]
    short = lookahead.tree_offsets(short_chain, 4, 4).reshape(4, 4)
    assert short[0, 0] == 0
    assert (short.ravel()[1:] > long.ravel()[1:]).all()
    assert (short.ravel()[1:] <= -1).all()


def test_offsets_quantise_each_macroblock_by_its_own_step_and_scale_its_prices() -> None:
    """`residual_planes` with offsets dequantises each macroblock's blocks as a quantiser
    that many QPs away would; a variant's RDOQ prices grow with its lambda (step^2)."""
    layout = frame.Layout(64, 32, 1)
    quant = transform.Quantiser(50, 0)
    quant.prices = [
        cabac.prices_cabac(cabac.models_cabac(cabac.CONTEXTS), True, 4.0)[p] for p in range(4)
    ]
    offsets = np.array([0, -6, 3, 6, -2, 0, 0, 1], dtype=np.int64)
    quant.set_offsets(layout.mb_of, offsets)
    rng = np.random.default_rng(2)
    levels = [rng.integers(-2, 3, (n, 64)) for n in layout.nblocks]
    residuals = transform.residual_planes(levels, quant, None)
    finer = quant.variant(-6)
    assert finer.flat_y * 2 in (quant.flat_y - 1, quant.flat_y, quant.flat_y + 1)
    for mb, offset in enumerate(offsets.tolist()):
        own = quant.variant(offset)
        blocks = layout.mb_of[0] == mb
        expected = transform.dequantise(levels[0][blocks], own.steps_y, transform.INVERSE_Y)
        np.testing.assert_array_equal(residuals[0][blocks], expected)
        chroma = layout.mb_of[1] == mb
        expected = transform.dequantise(levels[1][chroma], own.steps_c, transform.INVERSE_C)
        np.testing.assert_array_equal(residuals[1][chroma], expected)
    base_prices, finer_prices = quant.prices[0], finer.prices[0]
    assert base_prices is not None and finer_prices is not None
    ratio = (finer.flat_y / quant.flat_y) ** 2
    np.testing.assert_allclose(finer_prices.significant, base_prices.significant * ratio)
    quant.set_offsets(layout.mb_of, np.zeros(layout.nmb, dtype=np.int64))
    assert quant.offsets is None and quant.at(3) is quant


def test_mbtree_codes_static_background_finer_on_real_frames(carphone: list[Planes]) -> None:
    """On carphone (a static car interior around a moving face) the first I-frame's tree
    gives most macroblocks a finer QP, and the coded stream carries offsets that differ."""
    codec = load(render(tool_genome({"mbtree": 1})), "mbtree")
    encoder = codec.Encoder(176, 144, 30.0, {"quality": 40})
    for y, u, v in carphone:
        encoder.lookahead.push(encoder.frame_index, encoder.layout.prepare((y, u, v), 0)[0])
        encoder.frame_index += 1
    offsets = encoder.lookahead.offsets(0)
    assert (offsets < 0).mean() > 0.5
    assert len(set(offsets.tolist())) > 3
