"""Mode decisions and the Encoder/Decoder classes of generated codecs."""

import struct

import numpy as np

from codeclab.designers.offline.fragments.cabac import payload_models, read_payload, write_payload
from codeclab.designers.offline.fragments.config import (
    DOWNSCALE_BELOW,
    INTER_ROUNDING,
    MACROBLOCK,
    RD_LAMBDA,
    SKIP_MEDIAN,
)
from codeclab.designers.offline.fragments.frame import (
    SECTIONS,
    TAG_INTRA,
    TAG_PREDICTED,
    Layout,
    frame_quantiser,
    intra_coding,
    is_intra,
    predict_frame,
    push_reference,
    reconstruct,
)
from codeclab.designers.offline.fragments.motion import (
    estimate,
    median_predictors,
    skip_vector,
    skip_vectors,
    vector_bits,
)
from codeclab.designers.offline.fragments.transform import (
    FORWARD_C,
    FORWARD_Y,
    INVERSE_C,
    INVERSE_Y,
    Quantiser,
    dequantise,
    quantise,
    to_blocks,
)
from codeclab.designers.offline.fragments.types import F64, I64, U8, Planes


def macroblock_sums(values: F64, mb_of: I64, count: int) -> F64:
    """Per-macroblock sums of per-block `values`."""
    sums: F64 = np.bincount(mb_of, weights=values, minlength=count).astype(np.float64)
    return sums


def decide_threshold(
    layout: Layout,
    cur: Planes,
    prediction: list[I64],
    skipped: list[I64],
    vectors: I64,
    skips: I64,
    ref_index: I64,
    levels: list[I64],
    quant: Quantiser,
) -> tuple[I64, list[I64]]:
    """Modes without RD: a macroblock is skipped when its vector is the skip vector on the
    most recent reference and its residual quantises to nothing."""
    coded = (vectors != skips).any(axis=1) | (ref_index != 0)
    for plane_levels, mb in zip(levels, layout.mb_of, strict=True):
        nonzero = (np.count_nonzero(plane_levels, axis=1) > 0).astype(np.float64)
        coded |= macroblock_sums(nonzero, mb, layout.nmb) > 0
    modes: I64 = np.where(coded, ref_index + 1, 0)
    return modes, levels


def decide_rd(
    layout: Layout,
    cur: Planes,
    prediction: list[I64],
    skipped: list[I64],
    vectors: I64,
    skips: I64,
    ref_index: I64,
    levels: list[I64],
    quant: Quantiser,
) -> tuple[I64, list[I64]]:
    """Modes and block zeroing by Lagrangian cost SSD + lambda * bits (lambda = RD_LAMBDA *
    step^2; bits estimated from the levels and vectors): a block keeps its levels only when
    they pay for themselves, a macroblock is skipped when its skip prediction (`skipped`: the
    most recent reference moved by the skip vectors `skips`) costs less than coding it."""
    lam = RD_LAMBDA * quant.flat_y * quant.flat_y
    steps = (quant.steps_y, quant.steps_c, quant.steps_c)
    inverses = (INVERSE_Y, INVERSE_C, INVERSE_C)
    coded_cost = np.zeros(layout.nmb, dtype=np.float64)
    skip_cost = np.zeros(layout.nmb, dtype=np.float64)
    kept = []
    for p in range(3):
        n = layout.sizes[p]
        source = to_blocks(cur[p].astype(np.int64), n)
        predicted = to_blocks(prediction[p], n)
        decoded = np.clip(predicted + dequantise(levels[p], steps[p], inverses[p]), 0, 255)
        ssd_coded = ((source - decoded) ** 2).sum(axis=1)
        ssd_zero = ((source - predicted) ** 2).sum(axis=1)
        magnitude = np.abs(levels[p])
        bits = ((magnitude > 0) * (2 + 2 * np.log2(1 + magnitude))).sum(axis=1)
        drop = ssd_zero <= ssd_coded + lam * bits
        plane_levels = levels[p].copy()
        plane_levels[drop] = 0
        kept.append(plane_levels)
        cost = np.where(drop, ssd_zero, ssd_coded + lam * bits)
        coded_cost += macroblock_sums(cost, layout.mb_of[p], layout.nmb)
        size = MACROBLOCK if p == 0 else MACROBLOCK // 2
        still = (cur[p].astype(np.int64) - skipped[p]) ** 2
        rows, cols = still.shape[0] // size, still.shape[1] // size
        skip_cost += still.reshape(rows, size, cols, size).sum(axis=(1, 3)).ravel()
    median = median_predictors(vectors, layout.mby, layout.mbx)
    coded_cost += lam * (1 + vector_bits(vectors - median))
    skip = skip_cost + lam <= coded_cost
    modes: I64 = np.where(skip, 0, ref_index + 1)
    for plane_levels, mb in zip(kept, layout.mb_of, strict=True):
        plane_levels[skip[mb]] = 0
    return modes, kept


decide_modes = decide_threshold


def code_inter(
    layout: Layout, refs: list[Planes], cur: Planes, hint: I64, quant: Quantiser
) -> tuple[I64, I64, list[I64], I64]:
    """A P-frame's decisions: (modes, vectors, levels per plane, next search hint)."""
    vectors, ref_index, hint = estimate(cur[0], [ref[0] for ref in refs], hint, quant.flat_y)
    prediction = predict_frame(layout, refs, ref_index + 1, vectors)
    forwards = (FORWARD_Y, FORWARD_C, FORWARD_C)
    steps = (quant.steps_y, quant.steps_c, quant.steps_c)
    levels = [
        quantise(to_blocks(cur[p] - prediction[p], n), forwards[p], steps[p], INTER_ROUNDING)
        for p, n in enumerate(layout.sizes)
    ]
    skips = skip_vectors(vectors, layout.mby, layout.mbx)
    for _ in range(3):
        if skips.any():
            skipped = predict_frame(layout, refs, np.ones(layout.nmb, dtype=np.int64), skips)
        else:
            skipped = [plane.astype(np.int64) for plane in refs[0]]
        modes, kept = decide_modes(
            layout, cur, prediction, skipped, vectors, skips, ref_index, levels, quant
        )
        if not SKIP_MEDIAN:
            break
        field = vectors.copy()
        field[modes == 0] = skips[modes == 0]
        settled = skip_vectors(field, layout.mby, layout.mbx)
        if np.array_equal(settled, skips):
            break
        skips = settled
    decided = modes
    modes, vectors = settle_skips(layout, modes, vectors, ref_index, skips)
    revived = (decided == 0) & (modes != 0)
    if revived.any():
        for plane_kept, plane_levels, mb in zip(kept, levels, layout.mb_of, strict=True):
            plane_kept[revived[mb]] = plane_levels[revived[mb]]
    return modes, vectors, kept, hint


def settle_skips(
    layout: Layout, modes: I64, vectors: I64, ref_index: I64, skips: I64
) -> tuple[I64, I64]:
    """Final modes and vectors: skipped macroblocks take the skip vector the decoder derives
    (the median of their final neighbours, in raster order); one whose estimated skip vector
    `skips` turns out different is coded with its own vector and residual instead."""
    if not SKIP_MEDIAN:
        final = vectors.copy()
        final[modes == 0] = 0
        return modes, final
    modes = modes.copy()
    field = vectors.tolist()
    estimated = skips.tolist()
    for mb in range(layout.nmb):
        if modes[mb]:
            continue
        predicted = skip_vector(field, mb, layout.mbx)
        if predicted == estimated[mb]:
            field[mb] = predicted
        else:
            modes[mb] = ref_index[mb] + 1
    return modes, np.array(field, dtype=np.int64).reshape(-1, 2)


def no_inter(
    layout: Layout, refs: list[Planes], cur: Planes, hint: I64, quant: Quantiser
) -> tuple[I64, I64, list[I64], I64]:
    """An all-intra codec codes no P-frame."""
    raise ValueError("an all-intra codec codes no P-frame")


inter_coding = code_inter


def int_param(params: dict[str, object], key: str, default: int, low: int, high: int) -> int:
    value = params.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"params[{key!r}] must be a number within {low}..{high}, got {value!r}")
    return round(value)


class Encoder:
    """I/P-frame encoder; keeps the decoder's exact reconstruction as its references."""

    def __init__(self, width: int, height: int, fps: float, params: dict[str, object]) -> None:
        self.quality = max(1, int_param(params, "quality", 50, 0, 100))
        self.layout = Layout(width, height, 2 if self.quality < DOWNSCALE_BELOW else 1)
        self.refs: list[Planes] = []
        self.models = payload_models(SECTIONS)
        self.quantisers: dict[tuple[int, bool], Quantiser] = {}
        self.hint = np.zeros((self.layout.nmb, 2), dtype=np.int64)
        self.frame_index = 0
        self.reconstruction: Planes | None = None  # the last frame as the decoder outputs it

    def encode(self, y: U8, u: U8, v: U8) -> bytes:
        layout = self.layout
        cur = layout.prepare((y, u, v), self.frame_index)
        intra = is_intra(self.frame_index, self.refs)
        quant = frame_quantiser(self.quantisers, self.quality, intra)
        vectors = np.zeros((layout.nmb, 2), dtype=np.int64)
        modes: I64 | None = None
        if intra:
            self.models = payload_models(SECTIONS)
            levels, vectors = intra_coding(layout, cur, quant)
        else:
            modes, vectors, levels, self.hint = inter_coding(
                layout, self.refs, cur, self.hint, quant
            )
        payload = write_payload(layout, modes, vectors, levels, self.models, len(self.refs))
        frame = reconstruct(layout, self.refs, quant, modes, vectors, levels)
        self.refs = push_reference(self.refs, frame)
        self.reconstruction = layout.output(frame)
        self.frame_index += 1
        return struct.pack("<BB", TAG_INTRA if intra else TAG_PREDICTED, self.quality) + payload

    def flush(self) -> list[bytes]:
        return []


class Decoder:
    """Decodes the packets of its Encoder; one frame per packet."""

    def __init__(self, width: int, height: int, fps: float) -> None:
        self.layouts = {scale: Layout(width, height, scale) for scale in (1, 2)}
        self.refs: list[Planes] = []
        self.models = payload_models(SECTIONS)
        self.quantisers: dict[tuple[int, bool], Quantiser] = {}
        self.frame_index = 0

    def decode(self, packet: bytes) -> list[Planes]:
        if not packet:
            return []
        what = f"packet {self.frame_index}"
        if len(packet) < 2 or packet[0] not in (TAG_INTRA, TAG_PREDICTED):
            raise ValueError(f"{what}: bad header {packet[:2].hex()} (want tag 49 or 50)")
        quality = packet[1]
        if not 1 <= quality <= 100:
            raise ValueError(f"{what}: quality {quality} is outside 1..100")
        intra = packet[0] == TAG_INTRA
        if not intra and not self.refs:
            raise ValueError(f"{what}: P-frame before any I-frame")
        layout = self.layouts[2 if quality < DOWNSCALE_BELOW else 1]
        if intra:
            self.models = payload_models(SECTIONS)
        modes, vectors, levels = read_payload(
            layout, packet[2:], intra, len(self.refs), self.models, what
        )
        quant = frame_quantiser(self.quantisers, quality, intra)
        frame = reconstruct(layout, self.refs, quant, modes, vectors, levels)
        self.refs = push_reference(self.refs, frame)
        self.frame_index += 1
        return [layout.output(frame)]

    def flush(self) -> list[Planes]:
        return []
