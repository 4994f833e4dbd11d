"""The driver that runs inside a sandbox: one codec, one direction.

Standalone on purpose (standard library + numpy): it is copied into the job's
scratch directory next to ``codec.py`` and ``bitstream.py`` and started with
``python -I harness.py encode|decode ...``. It never sees anything the lab did not
put in that directory.

encode
    reads ``input.yuv`` (raw yuv420p frames), calls ``Encoder.encode`` per frame
    and ``flush``, writes the packets as ``u32 length + bytes`` to ``packets.bin``.
decode
    reads the container ``stream.bin``, feeds each packet to ``Decoder.decode``,
    then ``flush``; checks every returned frame (three uint8 planes of the right
    shapes) and appends it to ``output.yuv``.

Progress goes to the real stdout as ``@progress done/total`` lines; anything the
codec prints is sent to stderr. A rule broken by the codec ends the run with exit
code 3 and a one-line ``@error`` reason on stdout.
"""

import argparse
import importlib.util
import json
import struct
import sys
import traceback
from pathlib import Path
from types import ModuleType

import numpy as np

CODEC_FAILURE = 3
PROTOCOL = sys.stdout


class ContractError(Exception):
    """The codec broke the contract; the message says how."""


def _say(line: str) -> None:
    PROTOCOL.write(line + "\n")
    PROTOCOL.flush()


def _load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ContractError(f"cannot load {path.name}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _plane_shapes(width: int, height: int) -> tuple[tuple[int, int], tuple[int, int]]:
    return (height, width), ((height + 1) // 2, (width + 1) // 2)


def run_encode(args: argparse.Namespace) -> None:
    codec = _load_module(Path(args.codec), "codec")
    with open(args.params, encoding="utf-8") as fh:
        params = json.load(fh)
    fps = args.fps_num / args.fps_den
    encoder = codec.Encoder(args.width, args.height, fps, params)
    luma, chroma = _plane_shapes(args.width, args.height)
    ly, lc = luma[0] * luma[1], chroma[0] * chroma[1]
    frame_bytes = ly + 2 * lc
    data = np.memmap(args.input, dtype=np.uint8, mode="r")
    count = data.size // frame_bytes
    with open(args.output, "wb") as out:

        def emit(packet: object, where: str) -> None:
            if not isinstance(packet, (bytes, bytearray)):
                raise ContractError(f"{where} returned {type(packet).__name__}, expected bytes")
            out.write(struct.pack(">I", len(packet)))
            out.write(packet)

        for i in range(count):
            flat = data[i * frame_bytes : (i + 1) * frame_bytes]
            y = np.array(flat[:ly]).reshape(luma)
            u = np.array(flat[ly : ly + lc]).reshape(chroma)
            v = np.array(flat[ly + lc :]).reshape(chroma)
            emit(encoder.encode(y, u, v), f"Encoder.encode (frame {i})")
            _say(f"@progress {i + 1}/{count}")
        flush = getattr(encoder, "flush", None)
        if flush is not None:
            tail = flush()
            if not isinstance(tail, (list, tuple)):
                raise ContractError(f"Encoder.flush returned {type(tail).__name__}, expected list")
            for packet in tail:
                emit(packet, "Encoder.flush")


def _check_frame(frame: object, index: int, width: int, height: int) -> bytes:
    luma, chroma = _plane_shapes(width, height)
    if not isinstance(frame, (tuple, list)) or len(frame) != 3:
        raise ContractError(f"decoded frame {index} is not a (y, u, v) triple")
    parts = []
    for name, plane, shape in zip("yuv", frame, (luma, chroma, chroma), strict=True):
        if not isinstance(plane, np.ndarray):
            raise ContractError(
                f"decoded frame {index}: plane {name} is {type(plane).__name__}, not an array"
            )
        if plane.dtype != np.uint8:
            raise ContractError(
                f"decoded frame {index}: plane {name} has dtype {plane.dtype}, expected uint8"
            )
        if plane.shape != shape:
            raise ContractError(
                f"decoded frame {index}: plane {name} has shape {plane.shape}, expected {shape}"
            )
        parts.append(np.ascontiguousarray(plane).tobytes())
    return b"".join(parts)


def run_decode(args: argparse.Namespace) -> None:
    bitstream = _load_module(Path(args.bitstream), "bitstream")
    codec = _load_module(Path(args.codec), "codec")
    if args.stream == "-":  # the lab started us early and delivers the stream now
        header, packets = bitstream.read_stream(sys.stdin.buffer, "the bitstream")
    else:
        with open(args.stream, "rb") as src:
            header, packets = bitstream.read_stream(src, args.stream)
    fps = header.fps_num / header.fps_den
    decoder = codec.Decoder(header.width, header.height, fps)
    produced = 0
    with open(args.output, "wb") as out:

        def take(frames: object, where: str) -> None:
            nonlocal produced
            if not isinstance(frames, (list, tuple)):
                raise ContractError(f"{where} returned {type(frames).__name__}, expected a list")
            for frame in frames:
                if produced >= header.frame_count:
                    raise ContractError(
                        f"{where} returned frame {produced + 1}, but the stream holds "
                        f"{header.frame_count} frames"
                    )
                out.write(_check_frame(frame, produced, header.width, header.height))
                produced += 1

        for i, packet in enumerate(packets):
            take(decoder.decode(packet), f"Decoder.decode (packet {i})")
            _say(f"@progress {i + 1}/{len(packets)}")
        flush = getattr(decoder, "flush", None)
        if flush is not None:
            take(flush(), "Decoder.flush")


def main() -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    enc = sub.add_parser("encode")
    enc.add_argument("--codec", required=True)
    enc.add_argument("--input", required=True)
    enc.add_argument("--output", required=True)
    enc.add_argument("--width", type=int, required=True)
    enc.add_argument("--height", type=int, required=True)
    enc.add_argument("--fps-num", type=int, required=True)
    enc.add_argument("--fps-den", type=int, required=True)
    enc.add_argument("--params", required=True)
    dec = sub.add_parser("decode")
    dec.add_argument("--codec", required=True)
    dec.add_argument("--bitstream", required=True)
    dec.add_argument("--stream", required=True)
    dec.add_argument("--output", required=True)
    args = parser.parse_args()
    sys.stdout = sys.stderr  # the codec's prints must not mix with the protocol
    try:
        if args.mode == "encode":
            run_encode(args)
        else:
            run_decode(args)
    except ContractError as exc:
        _say(f"@error {exc}")
        return CODEC_FAILURE
    except MemoryError:
        _say("@error the codec ran out of memory (address-space limit)")
        return CODEC_FAILURE
    except Exception as exc:  # the codec's own bug: report it with its traceback
        traceback.print_exc()
        line = str(exc).splitlines()[0] if str(exc) else ""
        _say(f"@error {type(exc).__name__}: {line}"[:500])
        return CODEC_FAILURE
    return 0


if __name__ == "__main__":
    sys.exit(main())
