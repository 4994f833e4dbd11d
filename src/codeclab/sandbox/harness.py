"""The driver that runs inside a sandbox: one codec, one direction.

Standalone on purpose (standard library + numpy): it is copied into the job's
scratch directory next to ``codec.py`` and ``bitstream.py`` and started with
``python -I harness.py encode|decode ...``. It never sees anything the lab did not
put in that directory.

Before anything of the codec is loaded, the harness confines itself as ``--confine``
(JSON from `codeclab.sandbox.isolation.Confinement.spec`) says: it dies with the lab,
drops every capability, sets no_new_privs, restricts itself with Landlock and installs the
seccomp filter (``layer_landlock.py`` and ``layer_seccomp.py``, beside it), then reports
``@confined LEVEL``; if any layer fails it exits with code 4 and an ``@error`` line.

encode
    reads ``input.yuv`` (raw yuv420p frames), calls ``Encoder.encode`` per frame
    and ``flush``, writes the packets as ``u32 length + bytes`` to ``packets.bin``.
decode
    reads the container (a file, or stdin when started ahead of it), then loads the
    codec (so no codec code runs in the decoder while the encoder still runs), feeds each
    packet to ``Decoder.decode``, then ``flush``; checks every returned frame (three uint8
    planes of the right shapes) and appends it to ``output.yuv``.
run
    runs a script (a published ``decoder.py``) as ``__main__`` with the given arguments.
probe
    checks that the confinement holds (a file outside, a socket, a new process) and
    reports ``@probe files=... socket=... fork=...``.

Progress goes to the real stdout as ``@progress done/total`` lines; anything the
codec prints is sent to stderr. A rule broken by the codec ends the run with exit
code 3 and a one-line ``@error`` reason on stdout.
"""

import argparse
import ctypes
import importlib.util
import json
import os
import runpy
import signal
import socket
import struct
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

CODEC_FAILURE = 3
SANDBOX_FAILURE = 4
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


# --- confinement (before any codec code is loaded) -----------------------------------------


class ConfinementError(Exception):
    """A sandbox layer could not be put in place; the codec must not run."""


PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _libc() -> Any:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
    return libc


def _die_with(parent_pid: int) -> None:
    """Get SIGKILL when the lab dies (outside bubblewrap, which does this itself)."""
    if _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise ConfinementError("prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:
        raise ConfinementError("the lab that started this job is gone")


def _drop_capabilities() -> None:
    """Drop every capability, for good: also from the bounding and ambient sets."""
    libc = _libc()
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == 22:
            break  # EINVAL: past the last capability (EPERM: not ours to drop, none held)
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = _CapHeader(LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if libc.capset(ctypes.byref(header), data) != 0:
        raise ConfinementError(f"capset failed: {os.strerror(ctypes.get_errno())}")
    libc.capget(ctypes.byref(header), data)
    if any(d.effective or d.permitted or d.inheritable for d in data):
        raise ConfinementError("capabilities are still held after dropping them")


def _load_layer(path: Path, name: str) -> ModuleType:
    """Load a layer module (registered in sys.modules: its dataclasses need that)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfinementError(f"cannot load {path.name}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def confine(spec: dict[str, Any]) -> str:
    """Put every layer `spec` names in place, in order; returns the level."""
    level = str(spec["level"])
    here = Path(__file__).parent
    if _threads() > 1:
        raise ConfinementError("the harness has several threads; layers would miss some")
    if spec.get("parent_pid") is not None:
        _die_with(int(spec["parent_pid"]))
    _drop_capabilities()
    if spec.get("landlock") is not None:
        layer = _load_layer(here / "layer_landlock.py", "codeclab_layer_landlock")
        layer.restrict(layer.LandlockRules.from_json(spec["landlock"]))
    if spec.get("seccomp") is not None:
        layer = _load_layer(here / "layer_seccomp.py", "codeclab_layer_seccomp")
        layer.install(bytes.fromhex(spec["seccomp"]))
    return level


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
    if args.stream == "-":  # the lab started us early and delivers the stream now
        header, packets = bitstream.read_stream(sys.stdin.buffer, "the bitstream")
    else:
        with open(args.stream, "rb") as src:
            header, packets = bitstream.read_stream(src, args.stream)
    # only now, with the encoder finished, does any of the codec's code run in here
    codec = _load_module(Path(args.codec), "codec")
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


def run_probe(args: argparse.Namespace) -> None:
    """Report which of the things a confined codec must not do are out of reach."""
    checks = {}
    try:
        with open(args.outside, "rb") as fh:
            fh.read(1)
        checks["files"] = "allowed"
    except OSError:
        checks["files"] = "denied"
    try:
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()
        checks["socket"] = "allowed"
    except OSError:
        checks["socket"] = "denied"
    try:
        pid = os.fork()
    except OSError:
        checks["fork"] = "denied"
    else:
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        checks["fork"] = "allowed"
    _say("@probe " + " ".join(f"{k}={v}" for k, v in checks.items()))


def run_script(args: argparse.Namespace) -> None:
    sys.argv = [args.script, *args.args]
    runpy.run_path(args.script, run_name="__main__")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--confine", required=True, help="the sandbox layers to put in place")
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
    probe = sub.add_parser("probe")
    probe.add_argument("--outside", required=True)
    run = sub.add_parser("run")
    run.add_argument("script")
    run.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    try:
        level = confine(json.loads(args.confine))
    except Exception as exc:  # any failure: the codec must not run at all
        _say(f"@error sandbox: {type(exc).__name__}: {exc}"[:500])
        return SANDBOX_FAILURE
    _say(f"@confined {level}")
    if args.mode == "probe":
        run_probe(args)
        return 0
    if args.mode == "run":
        run_script(args)
        return 0
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
