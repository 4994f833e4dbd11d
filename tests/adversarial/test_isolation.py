"""The isolation levels: the strongest working one is chosen and recorded, weak ones are
refused unless allowed, each layer does its part, and the harness never runs codec code
when a layer cannot be put in place."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from codeclab.codec.bitstream import StreamHeader, encode_stream
from codeclab.sandbox import landlock, seccomp
from codeclab.sandbox.isolation import (
    HARNESS_FILES,
    PROBE_ENV,
    STRONGEST_FIRST,
    IsolationLevel,
    detect_layers,
    fallback_level,
    level_problem,
    probe_isolation,
    python_roots,
)
from codeclab.sandbox.jobs import SandboxError, SandboxSettings, run_encoder, run_script
from codeclab.storage.package import ClipIdentity, DecoderHeader, render_decoder
from codeclab.video.clips import PreparedClip
from codeclab.video.rawfile import RawVideo

needs_seccomp = pytest.mark.skipif(
    detect_layers().seccomp is None, reason=f"seccomp: {detect_layers().seccomp_error}"
)
needs_landlock = pytest.mark.skipif(
    detect_layers().landlock_error is not None,
    reason=f"Landlock: {detect_layers().landlock_error}",
)


def test_the_strongest_working_level_is_chosen_and_recorded_by_jobs(
    tiny_clip: RawVideo, lossless_source: str, tmp_path: Path
) -> None:
    chosen = probe_isolation().level
    assert level_problem(chosen) is None
    stronger = STRONGEST_FIRST[: STRONGEST_FIRST.index(chosen)]
    assert all(level_problem(level) is not None for level in stronger)
    encoded = run_encoder(
        lossless_source,
        tiny_clip,
        {"quality": 50},
        settings=SandboxSettings(scratch_root=tmp_path / "scratch"),
    )
    assert encoded.ok, encoded.error
    assert encoded.isolation == chosen.value


def test_weak_isolation_is_refused_unless_the_user_allows_it(
    tiny_clip: RawVideo, lossless_source: str, tmp_path: Path
) -> None:
    refused = SandboxSettings(isolation=IsolationLevel.RLIMITS, scratch_root=tmp_path / "s")
    with pytest.raises(SandboxError, match="allow_weak_isolation = true"):
        run_encoder(lossless_source, tiny_clip, {"quality": 50}, settings=refused)
    allowed = SandboxSettings(
        isolation=IsolationLevel.RLIMITS, scratch_root=tmp_path / "s", allow_weak=True
    )
    encoded = run_encoder(lossless_source, tiny_clip, {"quality": 50}, settings=allowed)
    assert encoded.ok, encoded.error
    assert encoded.isolation == "rlimits"


def test_harness_never_loads_the_codec_when_a_layer_fails(tmp_path: Path) -> None:
    work = tmp_path / "job"
    work.mkdir()
    for name, path in HARNESS_FILES.items():
        shutil.copy(path, work / name)
    marker = tmp_path / "codec-ran"
    (work / "codec.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    spec = {
        "level": "landlock+seccomp",
        "parent_pid": None,
        "landlock": {"read_write": [str(tmp_path / "missing")], "read_only": []},
        "seccomp": None,
    }
    result = subprocess.run(
        [sys.executable, "-I", "harness.py", f"--confine={json.dumps(spec)}", "run", "codec.py"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=PROBE_ENV,
    )
    assert result.returncode == 4
    assert "@error sandbox:" in result.stdout
    assert "missing" in result.stdout
    assert not marker.exists()


CHILD_CHECKS = """
import json, os, socket, sys, threading
checks = {}
def attempt(name, action):
    try:
        action()
        checks[name] = "allowed"
    except OSError as exc:
        checks[name] = f"denied ({exc.errno})"
def fork():
    if os.fork() == 0:
        os._exit(0)
    os.wait()
thread = threading.Thread(target=lambda: None)
attempt("thread", lambda: (thread.start(), thread.join()))
attempt("socketpair", lambda: [s.close() for s in socket.socketpair()])
attempt("socket", lambda: socket.socket(socket.AF_INET).close())
attempt("unix socket", lambda: socket.socket(socket.AF_UNIX).close())
attempt("fork", fork)
attempt("exec", lambda: os.execv("/bin/true", ["true"]))
attempt("signal parent", lambda: os.kill(os.getppid(), 0))
attempt("setsid", os.setsid)
attempt("read outside", lambda: open(sys.argv[1], "rb").read())
attempt("write scratch", lambda: open(os.path.join(sys.argv[2], "x"), "wb").write(b"x"))
attempt("import scipy.fft", lambda: __import__("scipy.fft"))
print(json.dumps(checks))
"""


def _run_confined(setup: str, tmp_path: Path) -> dict[str, str]:
    outside = tmp_path / "outside.txt"
    outside.write_text("the lab's file")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    code = setup + CHILD_CHECKS
    result = subprocess.run(
        [sys.executable, "-c", code, str(outside), str(scratch)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=PROBE_ENV,
    )
    assert result.returncode == 0, result.stderr
    checks: dict[str, str] = json.loads(result.stdout.strip().splitlines()[-1])
    return checks


@needs_seccomp
def test_seccomp_filter_denies_sockets_processes_and_signals_but_not_threads(
    tmp_path: Path,
) -> None:
    program = seccomp.compile_filter()
    setup = (
        "from codeclab.sandbox import seccomp\n"
        f"seccomp.install(bytes.fromhex({program.bpf.hex()!r}))\n"
    )
    checks = _run_confined(setup, tmp_path)
    for allowed in ("thread", "socketpair", "read outside", "write scratch", "import scipy.fft"):
        assert checks[allowed] == "allowed", (allowed, checks)
    for denied in ("socket", "unix socket", "fork", "exec", "signal parent", "setsid"):
        assert checks[denied] == "denied (1)", (denied, checks)


@needs_landlock
def test_landlock_limits_files_to_the_scratch_directory_and_python(tmp_path: Path) -> None:
    roots = [str(p) for p in python_roots()] + ["/usr"]
    rules = landlock.rules_for_job(str(tmp_path / "scratch"), roots, [])
    setup = (
        "import json\n"
        "from codeclab.sandbox import landlock\n"
        f"landlock.restrict(landlock.LandlockRules.from_json(json.loads({json.dumps(rules.to_json())!r})))\n"
    )
    checks = _run_confined(setup, tmp_path)
    assert checks["read outside"] == "denied (13)"
    assert checks["exec"] == "denied (13)"
    for allowed in ("write scratch", "import scipy.fft", "thread"):
        assert checks[allowed] == "allowed", (allowed, checks)
    if landlock.abi_version() >= 4:
        assert checks["socket"] == "allowed"  # creating is fine; TCP connect/bind are not


LEVELS = [probe_isolation().level]
if fallback_level() not in (None, LEVELS[0]):
    LEVELS.append(fallback_level())  # type: ignore[arg-type]


@pytest.mark.parametrize("level", LEVELS, ids=[level.value for level in LEVELS])
def test_published_decoder_runs_confined_and_gives_the_frames_back(
    level: IsolationLevel, tiny_clip: RawVideo, lossless_source: str, tmp_path: Path
) -> None:
    """`codeclab decode` runs a package's decoder.py as codec code: confined like a codec,
    its output moved out, nothing of the harness's protocol in what it printed."""
    settings = SandboxSettings(isolation=level, scratch_root=tmp_path / "scratch")
    encoded = run_encoder(lossless_source, tiny_clip, {"quality": 50}, settings=settings)
    assert encoded.ok, encoded.error
    fmt = tiny_clip.format
    codec_sha = hashlib.sha256(lossless_source.encode()).digest()
    stream = encode_stream(
        StreamHeader(fmt.width, fmt.height, 25, 1, tiny_clip.frame_count, codec_sha),
        encoded.packets,
    )
    digest = hashlib.sha256(tiny_clip.path.read_bytes()).hexdigest()
    clip = PreparedClip("tiny", str(tiny_clip.path), tiny_clip, 0, digest, "raw")
    header = DecoderHeader("exp-test", datetime.now(UTC), "lossless", ClipIdentity.from_clip(clip))
    decoder = render_decoder(lossless_source, header=header).encode()
    outside = tmp_path / "outside.txt"
    outside.write_text("the lab's file")
    snoop = f"print(open({str(outside)!r}).read())\n".encode()
    result, produced = run_script(
        {"decoder.py": decoder, "stream.bin": stream},
        "decoder.py",
        ["stream.bin", "-o", "out.yuv"],
        outputs=["out.yuv"],
        dest=tmp_path / "dest",
        settings=settings,
    )
    assert result.returncode == 0, result.stderr
    assert "@confined" not in result.stdout
    assert [p.name for p in produced] == ["out.yuv"]
    assert produced[0].read_bytes() == tiny_clip.path.read_bytes()
    snooped, _ = run_script(
        {"snoop.py": snoop},
        "snoop.py",
        [],
        outputs=[],
        dest=tmp_path / "dest2",
        settings=settings,
    )
    assert snooped.returncode != 0
    assert "the lab's file" not in snooped.stdout
    assert "PermissionError" in snooped.stderr or "FileNotFoundError" in snooped.stderr
