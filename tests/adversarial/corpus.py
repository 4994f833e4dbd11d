"""The adversarial corpus: hostile codec modules and the outcome each must get.

Each file in ``codecs/`` is one standalone codec module whose docstring says what it
attempts and what must happen to it::

    static: banned-name                 the validator's rule id (or "none": it passes)
    runtime: encoder fails REGEX        the stage that must stop it (encoder, decoder or
                                        verification), "fails" or "timeout", and a regular
                                        expression its error must match; or "runtime:
                                        completes" (it runs, and gains nothing)
    runtime without seccomp: ...        optional: the outcome at a level without seccomp
    wall: 1.5                           optional: the wall-clock limit (seconds) for it

At run time the corpus goes around the validator on purpose (the sandbox must hold even
for code the validator would have refused): the source, with its ``@NAME@`` placeholders
filled in (`Targets`), goes straight to the sandbox jobs, encoder then decoder, as the
pipeline's execution phase runs them, and then to the lab's verification. A hostile codec
that gets what it was after raises ``EscapedError``: that name must never come back.

Shared by ``test_corpus.py`` and ``bench/robustness.py``.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from codeclab.codec.bitstream import StreamHeader, encode_stream
from codeclab.codec.validate import validate_source
from codeclab.pipeline.evaluate import Execution, verify_point
from codeclab.sandbox.isolation import IsolationLevel
from codeclab.sandbox.jobs import PendingDecode, SandboxSettings, run_encoder
from codeclab.sandbox.process import Limits, ProcessResult
from codeclab.video.clips import PreparedClip
from codeclab.video.frames import Frame, VideoFormat
from codeclab.video.rawfile import write_raw

CODECS = Path(__file__).resolve().parent / "codecs"
STAGES = ("encoder", "decoder", "verification")
ESCAPED = "EscapedError"

CORPUS_LIMITS = Limits(
    wall_seconds=20,
    cpu_seconds=20,
    memory_bytes=1 << 30,
    file_bytes=64 << 20,
    open_files=64,
    processes=32,
    output_bytes=16 << 10,
)
"""Small limits, so that every bomb goes off quickly."""


@dataclass(frozen=True)
class Outcome:
    """Where a run stopped and how: ``encoder fails <reason>``, or ``completes``."""

    stage: str | None  # None: it completed
    kind: str  # "fails" | "timeout" | "completes"
    pattern: re.Pattern[str] | None = None

    @classmethod
    def parse(cls, text: str, where: str) -> Outcome:
        words = text.split(maxsplit=2)
        if words == ["completes"]:
            return cls(None, "completes")
        if len(words) < 2 or words[0] not in STAGES or words[1] not in ("fails", "timeout"):
            raise ValueError(f"{where}: bad runtime expectation {text!r}")
        pattern = re.compile(words[2]) if len(words) == 3 else None
        return cls(words[0], words[1], pattern)

    def describe(self) -> str:
        if self.stage is None:
            return "completes"
        tail = f" /{self.pattern.pattern}/" if self.pattern else ""
        return f"{self.stage} {self.kind}{tail}"


@dataclass(frozen=True)
class Case:
    name: str
    title: str
    template: str
    static: str | None
    runtime: Outcome
    runtime_without_seccomp: Outcome | None
    wall_seconds: float | None

    def expected(self, level: IsolationLevel) -> Outcome:
        if not level.uses_seccomp and self.runtime_without_seccomp is not None:
            return self.runtime_without_seccomp
        return self.runtime


def load_case(path: Path) -> Case:
    template = path.read_text(encoding="utf-8")
    doc = ast.get_docstring(ast.parse(template)) or ""
    lines = doc.splitlines()
    title = " ".join(line.strip() for line in doc.split("\n\n")[0].splitlines())
    fields_: dict[str, str] = {}
    for line in lines[1:]:
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("static", "runtime", "runtime without seccomp", "wall"):
            fields_[key.strip()] = value.strip()
    where = path.name
    if "static" not in fields_ or "runtime" not in fields_:
        raise ValueError(f"{where}: the docstring needs 'static:' and 'runtime:' lines")
    without = fields_.get("runtime without seccomp")
    return Case(
        name=path.stem,
        title=title or path.stem,
        template=template,
        static=None if fields_["static"] == "none" else fields_["static"],
        runtime=Outcome.parse(fields_["runtime"], where),
        runtime_without_seccomp=None if without is None else Outcome.parse(without, where),
        wall_seconds=float(fields_["wall"]) if "wall" in fields_ else None,
    )


def load_cases() -> list[Case]:
    return [load_case(path) for path in sorted(CODECS.glob("*.py"))]


# --- what the hostile codecs aim at ------------------------------------------------------------


class Listener:
    """A TCP server on 127.0.0.1 that counts the connections it accepts (there must be none)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.accepted = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=2)
        self.server.close()


@dataclass
class Targets:
    """The lab's things a hostile codec is after, on this machine, for one run."""

    clip: PreparedClip
    records_db: Path
    object_file: Path
    store_dir: Path
    secret: Path
    outside: Path
    scratch: Path
    harness: Path
    listener_port: int
    token: str
    lab_pid: int = field(default_factory=os.getpid)

    def substitutions(self) -> dict[str, str]:
        return {
            "@CLIP@": str(self.clip.raw.path),
            "@DB@": str(self.records_db),
            "@OBJECT@": str(self.object_file),
            "@STORE@": str(self.store_dir),
            "@SECRET@": str(self.secret),
            "@OUTSIDE@": str(self.outside),
            "@SCRATCH@": str(self.scratch),
            "@HARNESS@": str(self.harness),
            "@PORT@": str(self.listener_port),
            "@TOKEN@": self.token,
            "@LABPID@": str(self.lab_pid),
        }

    def render(self, case: Case) -> str:
        source = case.template
        for name, value in self.substitutions().items():
            source = source.replace(name, value)
        leftover = re.findall(r"@[A-Z]+@", source)
        if leftover:
            raise ValueError(f"{case.name}: unknown placeholders {sorted(set(leftover))}")
        return source


SECRET_TEXT = "the lab's secret: do not leak\n"


def make_clip(directory: Path) -> PreparedClip:
    """Four 32x24 frames of seeded noise, prepared as the lab prepares a clip."""
    fmt = VideoFormat(32, 24, Fraction(25))
    rng = np.random.default_rng(11)
    frames = [
        Frame(
            rng.integers(0, 256, (24, 32), dtype=np.uint8),
            rng.integers(0, 256, (12, 16), dtype=np.uint8),
            rng.integers(0, 256, (12, 16), dtype=np.uint8),
        )
        for _ in range(4)
    ]
    directory.mkdir(parents=True, exist_ok=True)
    raw = write_raw(directory / "source.yuv", fmt, frames)
    digest = hashlib.sha256(raw.path.read_bytes()).hexdigest()
    return PreparedClip("noise", str(raw.path), raw, 0, digest, "raw")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- running a case ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Observed:
    """What happened to one case at one level."""

    case: str
    level: str
    stage: str | None
    kind: str
    error: str | None
    seconds: float
    escaped: list[str]
    """Every sign that the codec got out (must stay empty)."""
    processes: list[ProcessResult]

    def describe(self) -> str:
        if self.stage is None:
            return "completes"
        return f"{self.stage} {self.kind}: {self.error}"

    def matches(self, expected: Outcome) -> bool:
        if (self.stage, self.kind) != (expected.stage, expected.kind):
            return False
        return expected.pattern is None or bool(expected.pattern.search(self.error or ""))


def _leftover_processes(markers: list[str]) -> list[str]:
    """Processes whose name or command line carries one of `markers`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(marker in comm or marker in cmdline for marker in markers):
            found.append(f"pid {entry.name} ({comm})")
    return found


def _wait_for_no_leftovers(markers: list[str], grace: float = 3.0) -> list[str]:
    deadline = time.monotonic() + grace
    while True:
        left = _leftover_processes(markers)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def run_case(
    case: Case,
    targets: Targets,
    level: IsolationLevel,
    workdir: Path,
    *,
    limits: Limits = CORPUS_LIMITS,
) -> Observed:
    """Run `case` at `level` as the execution and verification phases would, no validation."""
    source = targets.render(case)
    if case.wall_seconds is not None:
        limits = replace(limits, wall_seconds=case.wall_seconds)
    settings = SandboxSettings(
        limits=limits,
        isolation=level,
        scratch_root=targets.scratch,
        allow_weak=level.weak,
    )
    clip = targets.clip
    fmt = clip.raw.format
    sha = hashlib.sha256(source.encode()).hexdigest()
    params = {"quality": 50}
    started = time.perf_counter()
    processes: list[ProcessResult] = []
    stage: str | None = None
    kind = "completes"
    error: str | None = None
    output = workdir / f"decoded-{case.name}.yuv"
    with PendingDecode(source, fmt, output_path=output, settings=settings) as pending:
        encoded = run_encoder(source, clip.raw, params, settings=settings)
        processes.append(encoded.process)
        if not encoded.ok:
            stage, error = "encoder", encoded.error
        else:
            header = StreamHeader(
                fmt.width,
                fmt.height,
                fmt.fps.numerator,
                fmt.fps.denominator,
                clip.raw.frame_count,
                bytes.fromhex(sha),
            )
            stream = encode_stream(header, encoded.packets)
            decoded = pending.finish(stream)
            processes.append(decoded.process)
            if not decoded.ok or decoded.output is None:
                stage, error = "decoder", decoded.error
            else:
                execution = Execution(
                    quality=50,
                    params=params,
                    ok=True,
                    error=None,
                    stream_path=None,
                    stream_sha256=hashlib.sha256(stream).hexdigest(),
                    stream_bytes=len(stream),
                    decoded=decoded.output,
                    encode_seconds=encoded.wall_seconds,
                    decode_seconds=decoded.wall_seconds,
                    isolation=decoded.isolation,
                )
                point = verify_point(execution, clip)
                if not point.ok:
                    stage, error = "verification", point.error
    if stage is not None:
        timed_out = any(p.timed_out for p in processes)
        kind = "timeout" if timed_out and "wall-clock" in (error or "") else "fails"
    seconds = time.perf_counter() - started
    return Observed(
        case=case.name,
        level=level.value,
        stage=stage,
        kind=kind,
        error=error,
        seconds=seconds,
        escaped=_escapes(error, processes, targets),
        processes=processes,
    )


def _escapes(error: str | None, processes: list[ProcessResult], targets: Targets) -> list[str]:
    signs = []
    texts = [error or ""] + [p.stdout + p.stderr for p in processes]
    if any(ESCAPED in text for text in texts):
        signs.append("the codec reported that it got out (EscapedError)")
    if any(SECRET_TEXT.strip() in text for text in texts):
        signs.append("the lab's secret came back in the codec's output")
    left = _wait_for_no_leftovers([f"cc{targets.token}", str(targets.scratch)])
    if left:
        signs.append(f"processes outlived the job: {', '.join(left)}")
    return signs


def scratch_leftovers(targets: Targets) -> list[str]:
    if not targets.scratch.is_dir():
        return []
    return sorted(p.name for p in targets.scratch.iterdir())


def outside_leftovers(targets: Targets) -> list[str]:
    return sorted(p.name for p in targets.outside.iterdir())


def static_rules(source: str) -> set[str]:
    return {violation.rule for violation in validate_source(source).violations}


def iter_levels(best: IsolationLevel, fallback: IsolationLevel | None) -> Iterator[IsolationLevel]:
    yield best
    if fallback is not None and fallback is not best:
        yield fallback
