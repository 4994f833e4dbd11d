"""Our binary range coder against constriction's, on the bins of a real encode.

The offline designer's CABAC (`fragments/cabac.py`) range-codes each packet's bins, each with
the adaptive probability of its context, in a plain-Python loop: codec modules may import
only numpy and the standard library, so a compiled coder cannot ship inside a decode
package. This measures what that costs against constriction (Rust, from PyPI), a
well-kept range coder, on exactly the same bins and the same adaptive probabilities.

The default genome encodes the first ``--frames`` frames of a clip in process (our own
rendered and validated module, as the tests run it) at each quality; every stream handed to
`rc_encode` is captured (contexts, bins, starting probabilities). Then, per coder:

* ``bytes``: the coded size of all streams (constriction's in whole 32-bit words);
* ``encode_seconds``: coding every stream; for constriction this is replaying the context
  adaptation to get each bin's probability (Python, ``model_seconds``) plus one vectorised
  encode call per stream (Rust, ``coder_seconds``), since the adaptation is the codec's;
* ``decode_seconds``: decoding every stream bin by bin, adapting as the codec's decoder does
  (each bin's context is known from the capture; the codec derives it from earlier bins,
  which is why neither decoder can be vectorised);
* ``bins_per_second`` of each side.

Both decoders must return every captured bin, else the script fails. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import constriction  # type: ignore[import-untyped]
import numpy as np

from _clips import shared_clips
from codeclab.codec.validate import validate_source
from codeclab.designers.offline.render import render
from codeclab.designers.offline.space import default_genome
from codeclab.video.clips import prepare_clip

QUALITIES = (20, 50, 80)


@dataclass(frozen=True)
class Stream:
    """One call of the codec's range coder: each bin's context (-1: bypass), the bins, and
    the context probabilities (of a 0 bin, PROB_BITS bits) it started from."""

    contexts: list[int]
    bins: list[int]
    probs: list[int]


@dataclass(frozen=True)
class Rules:
    """The codec's adaptation: probabilities in `prob_bits` bits, moved 1/2^`shift` of the
    way towards each coded bin."""

    prob_bits: int
    shift: int


def load_codec() -> ModuleType:
    source = render(default_genome())
    report = validate_source(source, filename="default_genome.py")
    if not report.ok:
        raise SystemExit(f"default genome fails validation: {report.violations}")
    module = ModuleType("default_genome")
    exec(compile(source, "default_genome.py", "exec"), module.__dict__)
    return module


def capture_streams(
    codec: ModuleType, path: Path, frames: int, qualities: list[int], work: Path
) -> list[Stream]:
    """Every stream the codec range-codes while encoding the clip at each quality."""
    clip = prepare_clip(str(path), work, frames=frames)
    streams: list[Stream] = []
    original = codec.rc_encode

    def recording(contexts: list[int], bins: list[int], probs: list[int]) -> bytes:
        streams.append(Stream(list(contexts), list(bins), list(probs)))
        return bytes(original(contexts, bins, probs))

    # the module's global: its payload functions look it up at each call
    codec.__dict__["rc_encode"] = recording
    fmt = clip.format
    try:
        for quality in qualities:
            settings = {"quality": quality}
            encoder = codec.Encoder(fmt.width, fmt.height, float(fmt.fps), settings)
            for index in range(clip.frame_count):
                picture = clip.raw.frame(index)
                encoder.encode(picture.y, picture.u, picture.v)
            encoder.flush()
    finally:
        codec.__dict__["rc_encode"] = original
    return streams


def ours(codec: ModuleType, streams: list[Stream]) -> dict[str, Any]:
    started = time.perf_counter()
    coded = [codec.rc_encode(s.contexts, s.bins, list(s.probs)) for s in streams]
    encode_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for stream, data in zip(streams, coded, strict=True):
        decoder = codec.BinDecoder(data, list(stream.probs), "bench")
        decoded = [decoder.bit(c) if c >= 0 else decoder.bypass() for c in stream.contexts]
        if decoded != stream.bins:
            raise SystemExit("our range decoder returned other bins than were coded")
    decode_seconds = time.perf_counter() - started
    return {
        "bytes": sum(len(data) for data in coded),
        "encode_seconds": round(encode_seconds, 3),
        "decode_seconds": round(decode_seconds, 3),
    }


def probabilities_of_one(stream: Stream, rules: Rules) -> np.ndarray:
    """Each bin's probability of being 1, adapting as the codec does (bypass: 1/2)."""
    one = 1 << rules.prob_bits
    probs = list(stream.probs)
    out = []
    for context, bit in zip(stream.contexts, stream.bins, strict=True):
        if context < 0:
            out.append(0.5)
            continue
        p = probs[context]
        out.append(1.0 - p / one)
        probs[context] = p - (p >> rules.shift) if bit else p + ((one - p) >> rules.shift)
    return np.clip(np.array(out, dtype=np.float64), 1e-6, 1 - 1e-6)


def constriction_coder(streams: list[Stream], rules: Rules) -> dict[str, Any]:
    model = constriction.stream.model.Bernoulli(perfect=False)
    model_seconds = coder_seconds = 0.0
    coded = []
    for stream in streams:
        started = time.perf_counter()
        p_one = probabilities_of_one(stream, rules)
        model_seconds += time.perf_counter() - started
        started = time.perf_counter()
        encoder = constriction.stream.queue.RangeEncoder()
        encoder.encode(np.array(stream.bins, dtype=np.int32), model, p_one)
        coded.append(encoder.get_compressed())
        coder_seconds += time.perf_counter() - started
    one = 1 << rules.prob_bits
    started = time.perf_counter()
    for stream, words in zip(streams, coded, strict=True):
        decoder = constriction.stream.queue.RangeDecoder(words)
        probs = list(stream.probs)
        decoded = []
        for context in stream.contexts:
            if context < 0:
                decoded.append(
                    int(decoder.decode(constriction.stream.model.Bernoulli(0.5, perfect=False)))
                )
                continue
            p = probs[context]
            bit = int(
                decoder.decode(
                    constriction.stream.model.Bernoulli(
                        min(max(1.0 - p / one, 1e-6), 1 - 1e-6), perfect=False
                    )
                )
            )
            probs[context] = p - (p >> rules.shift) if bit else p + ((one - p) >> rules.shift)
            decoded.append(bit)
        if decoded != stream.bins:
            raise SystemExit("constriction's range decoder returned other bins than were coded")
    decode_seconds = time.perf_counter() - started
    return {
        "bytes": sum(4 * len(words) for words in coded),
        "encode_seconds": round(model_seconds + coder_seconds, 3),
        "model_seconds": round(model_seconds, 3),
        "coder_seconds": round(coder_seconds, 3),
        "decode_seconds": round(decode_seconds, 3),
    }


def with_rates(row: dict[str, Any], bins: int) -> dict[str, Any]:
    row["encode_bins_per_second"] = round(bins / max(row["encode_seconds"], 1e-9))
    row["decode_bins_per_second"] = round(bins / max(row["decode_seconds"], 1e-9))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clip", default="carphone_qcif.y4m")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--qualities", default=",".join(map(str, QUALITIES)))
    args = parser.parse_args()
    qualities = [int(q) for q in args.qualities.split(",")]
    codec = load_codec()
    rules = Rules(prob_bits=int(codec.PROB_BITS), shift=int(codec.CABAC_SHIFT))
    with tempfile.TemporaryDirectory(prefix="bench-entropy-") as tmp:
        clip = shared_clips([args.clip])[0]
        streams = capture_streams(codec, clip, args.frames, qualities, Path(tmp))
    bins = sum(len(s.bins) for s in streams)
    mine = with_rates(ours(codec, streams), bins)
    theirs = with_rates(constriction_coder(streams, rules), bins)
    report = {
        "benchmark": "entropy_coders",
        "clip": args.clip,
        "frames": args.frames,
        "qualities": qualities,
        "streams": len(streams),
        "bins": bins,
        "bypass_bins": sum(s.contexts.count(-1) for s in streams),
        "ours": mine,
        "constriction": theirs,
        "size_ratio_ours_vs_constriction": round(mine["bytes"] / theirs["bytes"], 4),
        "encode_time_ratio_ours_vs_constriction": round(
            mine["encode_seconds"] / theirs["encode_seconds"], 2
        ),
        "decode_time_ratio_ours_vs_constriction": round(
            mine["decode_seconds"] / theirs["decode_seconds"], 2
        ),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
