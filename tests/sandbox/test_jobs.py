"""The sandbox runs codecs in fresh, limited processes and lets nothing through but
the bitstream. These fixture codecs skip static validation on purpose: the sandbox
must hold even for code the validator would have refused."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import pytest

from codeclab.codec.bitstream import StreamHeader, encode_stream
from codeclab.sandbox.isolation import IsolationLevel, probe_isolation
from codeclab.sandbox.jobs import SandboxSettings, run_decoder, run_encoder
from codeclab.sandbox.process import Limits
from codeclab.video.frames import VideoFormat
from codeclab.video.rawfile import RawVideo

needs_bwrap = pytest.mark.skipif(
    probe_isolation().level.weak,
    reason=f"no file isolation on this machine: {probe_isolation().detail}",
)
"""Tests of what file isolation must stop (bubblewrap, or Landlock where bwrap is missing)."""


@pytest.fixture(params=["best", "rlimits"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> SandboxSettings:
    """The strongest isolation here, and again the fallback level."""
    level = None if request.param == "best" else IsolationLevel.RLIMITS
    return SandboxSettings(
        limits=Limits(wall_seconds=60, cpu_seconds=60),
        isolation=level,
        scratch_root=tmp_path / "scratch",
        allow_weak=level is IsolationLevel.RLIMITS,  # the fallback level, on purpose
    )


@pytest.fixture
def bwrap_settings(tmp_path: Path) -> SandboxSettings:
    """The strongest isolation this machine has (bubblewrap with seccomp here)."""
    return SandboxSettings(
        limits=Limits(wall_seconds=60, cpu_seconds=60), scratch_root=tmp_path / "scratch"
    )


def _stream(clip: RawVideo, packets: list[bytes]) -> bytes:
    fmt = clip.format
    header = StreamHeader(
        fmt.width, fmt.height, fmt.fps.numerator, fmt.fps.denominator, clip.frame_count, bytes(32)
    )
    return encode_stream(header, packets)


def _round_trip(
    source: str, clip: RawVideo, settings: SandboxSettings, out: Path
) -> tuple[object, object]:
    encoded = run_encoder(source, clip, {"quality": 50}, settings=settings)
    if not encoded.ok:
        return encoded, None
    decoded = run_decoder(
        source, _stream(clip, encoded.packets), clip.format, output_path=out, settings=settings
    )
    return encoded, decoded


def test_lossless_codec_round_trips_bit_exactly(
    tiny_clip: RawVideo, lossless_source: str, settings: SandboxSettings, tmp_path: Path
) -> None:
    encoded = run_encoder(lossless_source, tiny_clip, {"quality": 50}, settings=settings)
    assert encoded.ok, encoded.error
    assert len(encoded.packets) == tiny_clip.frame_count
    assert encoded.isolation == settings.level().value
    decoded = run_decoder(
        lossless_source,
        _stream(tiny_clip, encoded.packets),
        tiny_clip.format,
        output_path=tmp_path / "out.yuv",
        settings=settings,
    )
    assert decoded.ok, decoded.error
    assert decoded.output is not None
    assert decoded.output.path.read_bytes() == tiny_clip.path.read_bytes()


def test_progress_is_reported_per_frame(
    tiny_clip: RawVideo, lossless_source: str, settings: SandboxSettings
) -> None:
    seen: list[tuple[int, int]] = []
    run_encoder(
        lossless_source,
        tiny_clip,
        {"quality": 50},
        settings=settings,
        on_progress=lambda d, t: seen.append((d, t)),
    )
    assert seen == [(i, 4) for i in range(1, 5)]


def test_scratch_directories_are_removed(
    tiny_clip: RawVideo, lossless_source: str, settings: SandboxSettings, tmp_path: Path
) -> None:
    _round_trip(lossless_source, tiny_clip, settings, tmp_path / "out.yuv")
    assert settings.scratch_root is not None
    assert list(settings.scratch_root.iterdir()) == []


def test_hanging_encoder_is_killed_at_the_wall_clock_limit(
    tiny_clip: RawVideo, lossless_source: str, tmp_path: Path
) -> None:
    source = lossless_source.replace(
        "    def encode(self, y, u, v):\n",
        "    def encode(self, y, u, v):\n        while True:\n            pass\n",
    )
    settings = SandboxSettings(limits=Limits(wall_seconds=2), scratch_root=tmp_path / "s")
    encoded = run_encoder(source, tiny_clip, {"quality": 50}, settings=settings)
    assert not encoded.ok
    assert encoded.process.timed_out
    assert encoded.error is not None and "wall-clock limit" in encoded.error
    assert encoded.wall_seconds < 10


def test_codec_exception_is_reported_with_its_message(
    tiny_clip: RawVideo, lossless_source: str, settings: SandboxSettings
) -> None:
    source = lossless_source.replace(
        "        return zlib.compress(", "        raise RuntimeError('boom at encode')\n        ("
    )
    encoded = run_encoder(source, tiny_clip, {"quality": 50}, settings=settings)
    assert not encoded.ok
    assert encoded.error == "encoder failed: RuntimeError: boom at encode"


def test_decoder_with_wrong_plane_shape_fails_with_the_reason(
    tiny_clip: RawVideo, lossless_source: str, settings: SandboxSettings, tmp_path: Path
) -> None:
    source = lossless_source.replace("return [(y, u, v)]", "return [(y[:-2], u, v)]")
    _, decoded = _round_trip(source, tiny_clip, settings, tmp_path / "o.yuv")
    assert decoded is not None and not decoded.ok  # type: ignore[attr-defined]
    assert "plane y has shape (22, 32), expected (24, 32)" in decoded.error  # type: ignore[attr-defined]


def test_decoder_returning_more_frames_than_the_stream_holds_fails(
    tiny_clip: RawVideo, lossless_source: str, settings: SandboxSettings, tmp_path: Path
) -> None:
    source = lossless_source.replace("return [(y, u, v)]", "return [(y, u, v), (y, u, v)]")
    _, decoded = _round_trip(source, tiny_clip, settings, tmp_path / "o.yuv")
    assert decoded is not None and not decoded.ok  # type: ignore[attr-defined]
    assert "the stream holds 4 frames" in decoded.error  # type: ignore[attr-defined]


def test_codec_prints_are_captured_and_capped(
    tiny_clip: RawVideo, lossless_source: str, tmp_path: Path
) -> None:
    source = lossless_source.replace(
        "    def encode(self, y, u, v):\n",
        "    def encode(self, y, u, v):\n        print('x' * 100000)\n",
    )
    settings = SandboxSettings(limits=Limits(output_bytes=1000), scratch_root=tmp_path / "s")
    encoded = run_encoder(source, tiny_clip, {"quality": 50}, settings=settings)
    assert encoded.ok, encoded.error
    assert encoded.process.stderr_bytes >= 400000
    assert len(encoded.process.stderr) < 1200


def test_lab_secrets_do_not_reach_the_codec(
    tiny_clip: RawVideo,
    lossless_source: str,
    settings: SandboxSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hunter2")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    source = "import os\n" + lossless_source.replace(
        "    def encode(self, y, u, v):\n",
        "    def encode(self, y, u, v):\n"
        "        leaked = [k for k in os.environ if 'KEY' in k or 'SECRET' in k]\n"
        "        assert not leaked, leaked\n",
    )
    encoded = run_encoder(source, tiny_clip, {"quality": 50}, settings=settings)
    assert encoded.ok, encoded.error


@needs_bwrap
def test_decoder_cannot_open_the_source_clip(
    tiny_clip: RawVideo, lossless_source: str, bwrap_settings: SandboxSettings, tmp_path: Path
) -> None:
    """The decoder gets only the bitstream: reading the source path must fail in the sandbox."""
    source = lossless_source.replace(
        "    def decode(self, packet):\n",
        "    def decode(self, packet):\n"
        f"        data = open({str(tiny_clip.path)!r}, 'rb').read()\n",
    )
    assert os.access(tiny_clip.path, os.R_OK)  # the lab itself can read it
    _, decoded = _round_trip(source, tiny_clip, bwrap_settings, tmp_path / "o.yuv")
    assert decoded is not None and not decoded.ok  # type: ignore[attr-defined]
    assert "FileNotFoundError" in decoded.error  # type: ignore[attr-defined]


@needs_bwrap
def test_encoder_leaves_nothing_for_the_decoder_in_tmp(
    tiny_clip: RawVideo, lossless_source: str, bwrap_settings: SandboxSettings, tmp_path: Path
) -> None:
    source = lossless_source.replace(
        "    def encode(self, y, u, v):\n",
        "    def encode(self, y, u, v):\n        open('/tmp/side-channel', 'wb').write(b'x')\n",
    ).replace(
        "    def decode(self, packet):\n",
        "    def decode(self, packet):\n        open('/tmp/side-channel', 'rb').read()\n",
    )
    encoded, decoded = _round_trip(source, tiny_clip, bwrap_settings, tmp_path / "o.yuv")
    assert encoded.ok  # type: ignore[attr-defined]
    assert decoded is not None and not decoded.ok  # type: ignore[attr-defined]
    assert "FileNotFoundError" in decoded.error  # type: ignore[attr-defined]


@needs_bwrap
def test_network_is_unreachable_from_the_sandbox(
    tiny_clip: RawVideo, lossless_source: str, bwrap_settings: SandboxSettings
) -> None:
    source = "import socket\n" + lossless_source.replace(
        "    def encode(self, y, u, v):\n",
        "    def encode(self, y, u, v):\n"
        "        socket.create_connection(('1.1.1.1', 53), timeout=2)\n",
    )
    encoded = run_encoder(source, tiny_clip, {"quality": 50}, settings=bwrap_settings)
    assert not encoded.ok
    # no network namespace route (OSError: unreachable) or seccomp refuses the socket
    error = encoded.error or ""
    assert any(word in error for word in ("OSError", "unreachable", "PermissionError")), error


def test_memory_bomb_is_stopped_by_the_address_space_limit(
    tiny_clip: RawVideo, lossless_source: str, tmp_path: Path
) -> None:
    source = lossless_source.replace(
        "    def encode(self, y, u, v):\n",
        "    def encode(self, y, u, v):\n        hog = bytearray(8 << 30)\n",
    )
    settings = SandboxSettings(limits=Limits(memory_bytes=1 << 30), scratch_root=tmp_path / "s")
    encoded = run_encoder(source, tiny_clip, {"quality": 50}, settings=settings)
    assert not encoded.ok
    assert "out of memory" in (encoded.error or "")


def test_same_format_is_required_for_output(tmp_path: Path) -> None:
    fmt = VideoFormat(8, 8, Fraction(1))
    (tmp_path / "bad.yuv").write_bytes(b"\0" * 95)
    with pytest.raises(ValueError, match="not a whole number"):
        RawVideo.open(tmp_path / "bad.yuv", fmt)
