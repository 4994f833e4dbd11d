"""Shared fixtures: the real clips beside the project and small synthetic frames."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from codeclab.video.clips import PreparedClip, prepare_clip
from codeclab.video.frames import Frame, VideoFormat
from codeclab.video.rawfile import RawVideo, write_raw
from codeclab.video.y4m import Y4MWriter

PROJECT = Path(__file__).resolve().parents[1]
SHARED_CLIPS = PROJECT.parent / "shared" / "clips"
FIXTURE_CODECS = Path(__file__).resolve().parent / "fixtures" / "codecs"
BENCH = PROJECT / "bench"


@pytest.fixture(scope="session")
def clips_dir() -> Path:
    if not SHARED_CLIPS.is_dir():
        pytest.skip(f"real test clips not found at {SHARED_CLIPS}")
    return SHARED_CLIPS


@pytest.fixture
def bench_module(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], ModuleType]:
    """Import a script of bench/ by name (with bench/ on the path, as when it is run)."""
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module


@pytest.fixture
def tiny_clip(tmp_path: Path) -> RawVideo:
    """Four 32x24 frames of seeded noise as a raw yuv420p file."""
    fmt = VideoFormat(32, 24, Fraction(25))
    rng = np.random.default_rng(7)
    frames = [
        Frame(
            rng.integers(0, 256, (24, 32), dtype=np.uint8),
            rng.integers(0, 256, (12, 16), dtype=np.uint8),
            rng.integers(0, 256, (12, 16), dtype=np.uint8),
        )
        for _ in range(4)
    ]
    return write_raw(tmp_path / "tiny.yuv", fmt, frames)


@pytest.fixture
def tiny_y4m(tiny_clip: RawVideo, tmp_path: Path) -> Path:
    """`tiny_clip` as a Y4M file."""
    path = tmp_path / "tiny.y4m"
    with Y4MWriter(path, tiny_clip.format) as writer:
        for frame in tiny_clip:
            writer.write(frame)
    return path


@pytest.fixture
def tiny_prepared_clip(tiny_y4m: Path, tmp_path: Path) -> PreparedClip:
    """`tiny_clip` prepared as the lab prepares any clip."""
    return prepare_clip(str(tiny_y4m), tmp_path / "tiny")


@pytest.fixture
def lossless_source() -> str:
    return (FIXTURE_CODECS / "lossless_zlib.py").read_text()
