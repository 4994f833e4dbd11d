"""The baseline encoders and how the lab calls ffmpeg to run them.

Every baseline runs through the ffmpeg binary of the ``imageio-ffmpeg`` wheel
(``imageio_ffmpeg.get_ffmpeg_exe()``; the ``IMAGEIO_FFMPEG_EXE`` environment variable
overrides it), the same binary that decodes the streams back and that computes VMAF.

What is encoded, and why
------------------------
* **x264, preset medium** and **x265, preset medium**: the encoders' default presets, the
  usual reference points.  Their default tuning (psycho-visual RD on) is kept: no
  ``-tune psnr``.
* **SVT-AV1, preset 8**: on this class of machine preset 8 encodes at about the speed of
  x264 medium (measured on 2 cores: x264 medium 24-54 fps, SVT-AV1 preset 8 35-50 fps on a
  1280x720 clip), so the three baselines spend comparable effort.  Lower presets are
  stronger but several times slower; ffmpeg's own default (``-preset -2``) hands the
  choice to the library, whose default changes between releases.
* **Threads are fixed to 2** for every encoder (`THREADS`), so a ladder is the same bytes on
  any machine: x264's and x265's frame threading and SVT-AV1's level of parallelism change
  the stream, not only the speed.  x264 takes ffmpeg's ``-threads``; ffmpeg does not pass
  ``-threads`` to x265 or SVT-AV1, so x265 gets ``pools=2:frame-threads=1`` and SVT-AV1
  ``lp=2`` through their parameter strings.  ``encode_fps`` is therefore the speed of a
  2-thread encoder.
* **Elementary streams, no container**: H.264 and HEVC as Annex B byte streams (``-f
  h264`` / ``-f hevc``: start codes, parameter sets and slices, nothing else), AV1 as the
  low-overhead OBU stream of the AV1 specification, section 5 (``-f obu``: temporal
  delimiters, sequence header and frames).  IVF was not chosen for AV1 because it adds a
  32-byte file header and a 12-byte header per frame that are container, not codec.
* **Informational SEI removed**: x264 writes its version and full option string as a
  user-data SEI (about 0.7 kB) and x265 an "info" SEI (about 2.3 kB) that no decoder
  uses.  On short, low-rate clips that text is several percent of the stream and would
  make the baselines look worse than the codecs they are.  x265 is told ``info=0``; x264
  has no such switch, so the ``filter_units=remove_types=6`` bitstream filter drops the
  SEI NAL units from its stream (with preset medium and a closed GOP, the version SEI is
  the only one x264 writes).  The decoded pictures are bit-identical either way.

CRF ladders (`DEFAULT_LADDERS`) are chosen so the three PSNR ranges overlap and BD-rate has
an interval to integrate: SVT-AV1's CRF scale (0-63) lands far higher in PSNR than x264's
and x265's (0-51) at the same number.  Measured PSNR-Y (mean of per-frame values):

* carphone (176x144, 120 frames): x264 crf 22-42 -> 38.6-26.7 dB, x265 crf 22-42 ->
  39.2-27.1 dB, SVT-AV1 crf 27-63 -> 40.6-30.2 dB;
* bikes (640x272, first 60 frames): x264 47.2-33.8 dB, x265 46.2-34.6 dB, SVT-AV1
  46.3-34.8 dB.

SVT-AV1's CRF 63 is its lowest quality, so on some clips its curve starts a few dB above
x264's crf 42 point; BD-rate integrates over the common interval.

The encoders' version: `ffmpeg_version` is the first line of ``ffmpeg -version`` (the build
tag names the statically linked encoder libraries too), and `encoder_banner` the library's
own version, read from a two-frame probe encode (x264's and x265's version SEI, SVT-AV1's
start-up log).  Both are cached per binary for the life of the process.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from codeclab.video.frames import VideoFormat

THREADS = 2
"""Threads every baseline encoder runs with (see the module doc)."""

_TAIL_LINES = 15
_PROBE_FORMAT = VideoFormat(64, 64, Fraction(25))
_PROBE_FRAMES = 2


class BaselineError(RuntimeError):
    """A baseline could not be produced: ffmpeg failed, or its output is not what was asked."""


@dataclass(frozen=True)
class StreamFormat:
    """How one encoder's output is stored and read back."""

    muxer: str  # ffmpeg's muxer and demuxer name for the elementary stream
    extension: str  # file extension of the stream
    decoder: str  # the ffmpeg decoder that reads it back
    crf_max: int  # the encoder's highest CRF (the lowest is 0)
    even_size: bool  # whether the encoder refuses 4:2:0 video of odd width or height

    def to_dict(self) -> dict[str, Any]:
        return {
            "muxer": self.muxer,
            "extension": self.extension,
            "decoder": self.decoder,
            "crf_max": self.crf_max,
            "even_size": self.even_size,
        }


STREAM_FORMATS: dict[str, StreamFormat] = {
    "libx264": StreamFormat("h264", "264", "h264", crf_max=51, even_size=True),
    "libx265": StreamFormat("hevc", "hevc", "hevc", crf_max=51, even_size=True),
    "libsvtav1": StreamFormat("obu", "obu", "libdav1d", crf_max=63, even_size=False),
}


@dataclass(frozen=True)
class BaselineEncoder:
    """One baseline: an ffmpeg encoder library, its preset, a CRF ladder and fixed extras.

    ``extra_args`` are ffmpeg output options placed after ``-crf``; they are part of the
    cache key like every other field.
    """

    name: str
    library: str
    preset: str
    crf_ladder: tuple[int, ...]
    extra_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.library not in STREAM_FORMATS:
            raise ValueError(
                f"baseline {self.name!r}: unknown encoder library {self.library!r}; "
                f"known: {', '.join(sorted(STREAM_FORMATS))}"
            )
        if not self.preset:
            raise ValueError(f"baseline {self.name!r}: the preset is empty")
        if not self.crf_ladder:
            raise ValueError(f"baseline {self.name!r}: the CRF ladder is empty")
        crf_max = STREAM_FORMATS[self.library].crf_max
        for crf in self.crf_ladder:
            if isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= crf_max:
                raise ValueError(
                    f"baseline {self.name!r}: CRF {crf!r} is not an integer in "
                    f"0..{crf_max} ({self.library})"
                )
        if len(set(self.crf_ladder)) != len(self.crf_ladder):
            raise ValueError(
                f"baseline {self.name!r}: CRF ladder {self.crf_ladder} repeats a value"
            )

    @property
    def stream_format(self) -> StreamFormat:
        return STREAM_FORMATS[self.library]

    def check_size(self, fmt: VideoFormat, clip: str) -> None:
        """BaselineError if this encoder cannot encode video of `fmt`'s size."""
        if self.stream_format.even_size and (fmt.width % 2 or fmt.height % 2):
            raise BaselineError(
                f"{clip}: {self.library} ({self.name}) encodes 4:2:0 video of even width and "
                f"height only, and the clip is {fmt.width}x{fmt.height}; crop it to "
                f"{fmt.width - fmt.width % 2}x{fmt.height - fmt.height % 2} or leave "
                f"{self.name} out of the baselines"
            )

    def encode_args(self, crf: int) -> list[str]:
        """ffmpeg output options that encode at `crf` into the elementary stream."""
        return [
            "-c:v",
            self.library,
            "-preset",
            self.preset,
            "-crf",
            str(crf),
            *self.extra_args,
            "-f",
            self.stream_format.muxer,
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "library": self.library,
            "preset": self.preset,
            "crf_ladder": list(self.crf_ladder),
            "extra_args": list(self.extra_args),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BaselineEncoder:
        return cls(
            name=str(data["name"]),
            library=str(data["library"]),
            preset=str(data["preset"]),
            crf_ladder=tuple(int(c) for c in data["crf_ladder"]),
            extra_args=tuple(str(a) for a in data["extra_args"]),
        )


DEFAULT_LADDERS: dict[str, tuple[int, ...]] = {
    "x264": (22, 27, 32, 37, 42),
    "x265": (22, 27, 32, 37, 42),
    "svtav1": (27, 35, 43, 51, 59, 63),
}

BASELINE_ENCODERS: dict[str, BaselineEncoder] = {
    "x264": BaselineEncoder(
        name="x264",
        library="libx264",
        preset="medium",
        crf_ladder=DEFAULT_LADDERS["x264"],
        extra_args=("-threads", str(THREADS), "-bsf:v", "filter_units=remove_types=6"),
    ),
    "x265": BaselineEncoder(
        name="x265",
        library="libx265",
        preset="medium",
        crf_ladder=DEFAULT_LADDERS["x265"],
        extra_args=(
            "-x265-params",
            f"log-level=error:info=0:pools={THREADS}:frame-threads=1",
        ),
    ),
    "svtav1": BaselineEncoder(
        name="svtav1",
        library="libsvtav1",
        preset="8",
        crf_ladder=DEFAULT_LADDERS["svtav1"],
        extra_args=("-svtav1-params", f"lp={THREADS}"),
    ),
}


def get_encoder(encoder: BaselineEncoder | str) -> BaselineEncoder:
    """`encoder` itself, or the default baseline of that name."""
    if isinstance(encoder, BaselineEncoder):
        return encoder
    try:
        return BASELINE_ENCODERS[encoder]
    except KeyError:
        raise BaselineError(
            f"unknown baseline encoder {encoder!r}; known: {', '.join(BASELINE_ENCODERS)}"
        ) from None


# --- running ffmpeg -----------------------------------------------------------------------


def ffmpeg_exe() -> str:
    """The ffmpeg binary of imageio-ffmpeg."""
    import imageio_ffmpeg

    try:
        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError as exc:
        raise BaselineError(f"no ffmpeg binary for the baselines: {exc}") from None


def run_ffmpeg(
    command: Sequence[str], *, what: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run one ffmpeg command; BaselineError with the command and its last output on failure.

    Every ffmpeg process the baselines start goes through here.
    """
    try:
        done = subprocess.run(
            list(command),
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
    except OSError as exc:
        raise BaselineError(f"{what}: cannot run {command[0]}: {exc}") from None
    if done.returncode != 0:
        raise BaselineError(
            f"{what}: ffmpeg exited with code {done.returncode}\n"
            f"command: {' '.join(command)}\n{_tail(done.stderr)}"
        )
    return done


def _tail(output: bytes) -> str:
    lines = [ln for ln in output.decode("utf-8", "replace").splitlines() if ln.strip()]
    return "\n".join(lines[-_TAIL_LINES:]) if lines else "(ffmpeg printed nothing)"


def raw_input_args(url: str, fmt: VideoFormat) -> list[str]:
    """ffmpeg input options reading `url` (a ``file:`` path or ``pipe:0``) as raw yuv420p."""
    return [
        "-f",
        "rawvideo",
        "-pix_fmt",
        "yuv420p",
        "-s",
        f"{fmt.width}x{fmt.height}",
        "-r",
        f"{fmt.fps.numerator}/{fmt.fps.denominator}",
        "-i",
        url,
    ]


def _file_url(path: Path | str) -> str:
    """``file:`` + path, so no part of a path reads as a protocol or an option."""
    return f"file:{path}"


_COMMON = ["-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y"]


def encode_command(
    exe: str, encoder: BaselineEncoder, crf: int, source: Path, fmt: VideoFormat, output: Path
) -> list[str]:
    """The ffmpeg command encoding raw `source` at `crf` into the elementary stream `output`.

    ``-fps_mode passthrough`` keeps one output frame per input frame; audio is off.
    """
    return [
        exe,
        *_COMMON,
        *raw_input_args(_file_url(source), fmt),
        "-an",
        "-fps_mode",
        "passthrough",
        "-pix_fmt",
        "yuv420p",
        *encoder.encode_args(crf),
        _file_url(output),
    ]


def decode_command(exe: str, encoder: BaselineEncoder, stream: Path, output: Path) -> list[str]:
    """The ffmpeg command decoding `stream` to raw yuv420p `output`, every frame once."""
    fmt = encoder.stream_format
    return [
        exe,
        *_COMMON,
        "-f",
        fmt.muxer,
        "-c:v",
        fmt.decoder,
        "-i",
        _file_url(stream),
        "-fps_mode",
        "passthrough",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "yuv420p",
        _file_url(output),
    ]


# --- versions -----------------------------------------------------------------------------


def ffmpeg_version(exe: str) -> str:
    """The first line of ``ffmpeg -version`` without the copyright: ``ffmpeg version n9.0.2...``."""
    return _ffmpeg_version(exe, *_identity(exe))


def encoder_banner(exe: str, library: str) -> str:
    """The encoder library's own version, e.g. ``x264 core 165``, from a tiny probe encode."""
    return _encoder_banner(exe, library, *_identity(exe))


def _identity(exe: str) -> tuple[int, int]:
    """(mtime, size) of the binary: a replaced binary is probed again."""
    try:
        st = os.stat(exe)
    except OSError as exc:
        raise BaselineError(f"ffmpeg binary {exe}: {exc}") from None
    return st.st_mtime_ns, st.st_size


@functools.cache
def _ffmpeg_version(exe: str, mtime_ns: int, size: int) -> str:
    done = run_ffmpeg([exe, "-version"], what=f"reading the version of {exe}")
    first = done.stdout.decode("utf-8", "replace").splitlines()[:1]
    if not first:
        raise BaselineError(f"{exe} -version printed nothing")
    return first[0].split(" Copyright")[0].strip()


_BANNERS: dict[str, tuple[bytes, str]] = {
    # pattern searched in the probe's stream + log, and how to print the match
    "libx264": (rb"x264 - core (\d+)((?: r\d+ [0-9a-f]+)?)", "x264 core {0}{1}"),
    "libx265": (rb"x265 \(build (\d+)\) - ([^:\s]+)", "x265 {1} (build {0})"),
    "libsvtav1": (rb"SVT-AV1 Encoder Lib (v[^\s]+)", "SVT-AV1 {0}"),
}


@functools.cache
def _encoder_banner(exe: str, library: str, mtime_ns: int, size: int) -> str:
    fmt = _PROBE_FORMAT
    fmt_stream = STREAM_FORMATS[library]
    command = [
        exe,
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-loglevel",
        "info",
        *raw_input_args("pipe:0", fmt),
        "-c:v",
        library,
        "-f",
        fmt_stream.muxer,
        "pipe:1",
    ]
    gray = bytes([128]) * (fmt.frame_bytes * _PROBE_FRAMES)
    done = run_ffmpeg(command, what=f"probing the version of {library}", stdin=gray)
    pattern, template = _BANNERS[library]
    match = re.search(pattern, done.stdout + b"\n" + done.stderr)
    if match is None:
        return f"{library} (version not reported)"
    return template.format(*(g.decode("ascii", "replace") for g in match.groups())).strip()
