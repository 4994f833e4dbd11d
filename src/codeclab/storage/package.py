"""The decode package a published experiment ships: ``decoder.py`` + ``stream.bin`` + manifest.

``package.zip`` holds four files:

``decoder.py``
    one standalone file (Python 3.9+ and numpy): a header naming the experiment, the codec,
    the clip and the measured metrics; the runtime (`codeclab.storage.decoder_template`,
    unchanged); the codec's source and the container parser's source
    (``codeclab/codec/bitstream.py``), each embedded verbatim as a string literal between
    marker comments and executed in a module of its own. See `render_decoder`.
``stream.bin``
    the container exactly as the lab measured it: its size is the bitrate's numerator.
``manifest.json``
    sha256 and size of every other file, the clip's identity, the metrics, the rate recomputed
    from ``stream.bin``, versions, and how to decode.
``README.md``
    what the package is, the one command, how to check the sha256s.

Why the codec source is a string executed into its own module rather than code appended
before the runtime: its names (``Decoder``, ``np``, private helpers) cannot collide with the
runtime's; it runs with its own ``__name__``, as in the lab's sandbox, so a
``if __name__ == "__main__":`` self-test stays dead; and the text that runs is one value whose
sha256 the runtime checks against ``CODEC_SHA256`` and against the stream's header before it
decodes anything. The literal is raw and triple-quoted, so the text between the marker lines
is the codec source character for character; a source that cannot be written that way
(it holds both ``'''`` and ``\"\"\"``, a carriage return, ...) is written as one ``repr`` per
line instead, still exact.

The zip is deterministic: sorted entries, fixed timestamps and permissions, so building the
same contents again gives the same bytes.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import math
import platform
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from codeclab import __version__
from codeclab.codec import bitstream
from codeclab.metrics.psnr import json_number
from codeclab.metrics.quality import QualitySummary
from codeclab.metrics.rate import Rate, measure_rate
from codeclab.metrics.vmaf import VmafReport
from codeclab.storage import decoder_template
from codeclab.video.clips import PreparedClip
from codeclab.video.frames import VideoFormat

DECODER_NAME = "decoder.py"
STREAM_NAME = "stream.bin"
MANIFEST_NAME = "manifest.json"
README_NAME = "README.md"
PACKAGE_FORMAT = "codeclab-decode-package"
PACKAGE_VERSION = 1

_EMBED_BEGIN = "# <codeclab:embedded>"
_EMBED_END = "# </codeclab:embedded>"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_RATE_TOLERANCE = 1e-9

DECODE_COMMANDS: tuple[str, ...] = (
    "pip install numpy",
    f"python {DECODER_NAME} {STREAM_NAME} -o out.y4m",
)


class PackageError(ValueError):
    """A package that does not verify; the message names the package and the file."""


@dataclass(frozen=True)
class ClipIdentity:
    """Which frames the codec was measured on: the clip's name and the sha256 of its pixels."""

    name: str
    sha256: str
    width: int
    height: int
    fps: Fraction
    frames: int

    @classmethod
    def from_clip(cls, clip: PreparedClip) -> ClipIdentity:
        fmt = clip.format
        return cls(clip.name, clip.sha256, fmt.width, fmt.height, fmt.fps, clip.frame_count)

    @property
    def format(self) -> VideoFormat:
        return VideoFormat(self.width, self.height, self.fps)

    def fps_text(self) -> str:
        return f"{self.fps.numerator}/{self.fps.denominator}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sha256": self.sha256,
            "width": self.width,
            "height": self.height,
            "fps": self.fps_text(),
            "frames": self.frames,
        }


@dataclass(frozen=True)
class DecoderHeader:
    """What the header of ``decoder.py`` and the manifest say about the experiment.

    `metrics` maps the lab's metric names to values (None: not measured); `key_metrics`
    builds it. Keys the header knows how to label: ``bits_per_second``, ``psnr_y_mean``,
    ``psnr_y_global``, ``ssim_y_mean``, ``vmaf_mean``; any other key is shown as it is.
    `created_at` must carry a time zone; it is written in UTC.
    """

    experiment_id: str
    created_at: datetime
    codec_name: str
    clip: ClipIdentity
    metrics: Mapping[str, float | None] = field(default_factory=dict)
    codeclab_version: str = __version__

    def __post_init__(self) -> None:
        if not self.experiment_id.strip():
            raise ValueError("experiment_id must not be empty")
        if not self.codec_name.strip():
            raise ValueError("codec_name must not be empty")
        if self.created_at.tzinfo is None or self.created_at.utcoffset() is None:
            raise ValueError(
                f"created_at {self.created_at.isoformat()} has no time zone; "
                "pass an aware datetime, e.g. datetime.now(timezone.utc)"
            )

    @property
    def created_at_utc(self) -> str:
        return self.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def key_metrics(
    rate: Rate, quality: QualitySummary, vmaf: VmafReport | None = None
) -> dict[str, float | None]:
    """The metrics a package reports, from the lab's own measurements of one encode."""
    return {
        "bits_per_second": rate.bits_per_second,
        "psnr_y_mean": quality.psnr_y_mean,
        "psnr_y_global": quality.psnr_y_global,
        "ssim_y_mean": quality.ssim_y_mean,
        "vmaf_mean": None if vmaf is None else vmaf.vmaf_mean,
    }


def _plain(value: float) -> str:
    return f"{value:g}"


def _format_metric(key: str, value: float | None) -> str:
    labels: dict[str, tuple[str, Callable[[float], str]]] = {
        "bits_per_second": ("bitrate", lambda v: f"{v / 1000:.2f} kbit/s ({v / 1e6:.4f} Mbit/s)"),
        "psnr_y_mean": ("PSNR-Y, mean of frames", lambda v: f"{v:.3f} dB"),
        "psnr_y_global": ("PSNR-Y of the mean MSE", lambda v: f"{v:.3f} dB"),
        "ssim_y_mean": ("SSIM-Y, mean of frames", lambda v: f"{v:.5f}"),
        "vmaf_mean": ("VMAF, mean of frames", lambda v: f"{v:.2f}"),
    }
    label, render = labels.get(key, (key, _plain))
    if value is None:
        text = "not measured"
    elif math.isinf(value):
        text = "inf (lossless)"
    elif math.isnan(value):
        text = "undefined"
    else:
        text = render(value)
    return f"{label + ':':<26}{text}"


def source_sha256(source: str) -> str:
    """sha256 of a source text as the lab computes it (UTF-8 bytes)."""
    return decoder_template.source_sha256(source)


def _safe_docstring(text: str) -> str:
    """`text` as the body of a triple-quoted docstring that evaluates back to `text`."""
    out = []
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif char == "\n" or (char.isprintable() and char not in "\r\x0b\x0c"):
            out.append(char)
        else:
            out.append(char.encode("unicode_escape", "backslashreplace").decode("ascii"))
    return '"""' + "".join(out) + '"""'


def python_literal(text: str) -> str:
    """A Python literal that evaluates to exactly `text`, readable where possible.

    A raw triple-quoted string keeps the text verbatim; it is used unless the text holds that
    quote three times in a row, ends in a backslash or that quote, or holds a character a
    source file cannot carry verbatim (a carriage return: Python translates it; a NUL, a lone
    surrogate). Otherwise the text is written as one ``repr`` per line inside parentheses.
    """
    awkward = "\r" in text or "\x00" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text)
    if not awkward:
        for quote in ("'''", '"""'):
            if quote not in text and not text.endswith(("\\", quote[0])):
                literal = f"r{quote}{text}{quote}"
                break
        else:
            literal = ""
    else:
        literal = ""
    if not literal:
        lines = text.splitlines(keepends=True) or [""]
        literal = "(\n" + "".join(f"    {line!r}\n" for line in lines) + ")"
    if ast.literal_eval(literal) != text:  # a bug here must never ship a wrong decoder
        raise RuntimeError("could not write the source as an exact Python literal")
    return literal


def _header_text(header: DecoderHeader, codec_sha: str) -> str:
    clip = header.clip
    metrics = [_format_metric(k, v) for k, v in header.metrics.items()] or ["(none recorded)"]
    lines = [
        f"{DECODER_NAME}: the standalone decoder of codeclab experiment {header.experiment_id}",
        "",
        f"Experiment:     {header.experiment_id}",
        f"Published:      {header.created_at_utc} (UTC)",
        f"Codec:          {header.codec_name}",
        f"Codec sha256:   {codec_sha}",
        "                (of the codec source embedded below as CODEC_SOURCE; checked at load)",
        f"Clip:           {clip.name}, {clip.width}x{clip.height} @ {clip.fps_text()} fps, "
        f"{clip.frames} frames",
        f"Clip sha256:    {clip.sha256} (of its raw yuv420p frames)",
        f"codeclab:       {header.codeclab_version}, container version {bitstream.VERSION}, "
        f"decoder runtime {decoder_template.RUNTIME_VERSION}",
        "",
        "Measured by the lab, from stream.bin's size and this decoder's output against the clip:",
        *(f"    {line}" for line in metrics),
        "",
        "Usage (needs Python 3.9+ and numpy, nothing else; the codec itself may need newer",
        f"versions: the lab ran it on Python {platform.python_version()} with numpy "
        f"{np.__version__}):",
        "",
        "    pip install numpy",
        f"    python {DECODER_NAME} {STREAM_NAME} -o out.y4m            # every frame, as Y4M",
        f"    python {DECODER_NAME} {STREAM_NAME} --frame 5 -o f5.yuv   # one frame, raw yuv420p",
        "",
        "From Python (frames are (y, u, v) tuples of uint8 numpy planes, 4:2:0):",
        "",
        "    from decoder import decompress_video_frame, decode_all",
        f"    data = open({STREAM_NAME!r}, 'rb').read()",
        "    y, u, v = decompress_video_frame(data, frame_index=0, config={})",
        "    frames = decode_all(data)",
        "",
        "The runtime below is codeclab's decoder_template.py; the codec and the lab's container",
        "parser (codeclab/codec/bitstream.py) follow it verbatim, between marker comments, and",
        "each runs in a module of its own.",
    ]
    return "\n".join(lines) + "\n"


def _embedded_block(codec_source: str, codec_sha: str, codec_name: str) -> list[str]:
    container_source = Path(bitstream.__file__).read_text(encoding="utf-8")
    container_sha = source_sha256(container_source)
    rule = "# " + "=" * 96
    return [
        f"CODEC_NAME = {codec_name!r}",
        f'LAB_PYTHON = "{platform.python_version()}"  # the Python the lab ran the codec on',
        f'CODEC_SHA256 = "{codec_sha}"',
        f'CONTAINER_SHA256 = "{container_sha}"',
        "",
        rule,
        f"# BEGIN CODEC SOURCE: {codec_name!r}, sha256 {codec_sha}",
        "# (exactly the text inside the literal below; executed as a module of its own)",
        rule,
        f"CODEC_SOURCE = {python_literal(codec_source)}",
        rule,
        "# END CODEC SOURCE",
        rule,
        "",
        rule,
        f"# BEGIN CONTAINER SOURCE: codeclab/codec/bitstream.py (container version "
        f"{bitstream.VERSION}), sha256 {container_sha}",
        rule,
        f"CONTAINER_SOURCE = {python_literal(container_source)}",
        rule,
        "# END CONTAINER SOURCE",
        rule,
    ]


def render_decoder(codec_source: str, *, header: DecoderHeader) -> str:
    """The standalone ``decoder.py`` for `codec_source`, with `header` as its docstring."""
    if not codec_source.strip():
        raise ValueError("the codec source is empty")
    template = Path(decoder_template.__file__).read_text(encoding="utf-8")
    tree = ast.parse(template)
    first = tree.body[0]
    if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)):
        raise RuntimeError(f"{decoder_template.__file__} must start with its docstring")
    lines = template.splitlines()
    body = lines[first.end_lineno or 0 :]
    try:
        begin = next(i for i, line in enumerate(body) if line.startswith(_EMBED_BEGIN))
        end = next(i for i, line in enumerate(body) if line.startswith(_EMBED_END))
    except StopIteration:
        raise RuntimeError(
            f"{decoder_template.__file__} lacks the {_EMBED_BEGIN} ... {_EMBED_END} block"
        ) from None
    codec_sha = source_sha256(codec_source)
    embedded = _embedded_block(codec_source, codec_sha, header.codec_name)
    rendered = [
        "#!/usr/bin/env python3",
        _safe_docstring(_header_text(header, codec_sha)),
        *body[:begin],
        *embedded,
        *body[end + 1 :],
    ]
    return "\n".join(rendered) + "\n"


# --- the package ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PackageContents:
    """What goes into a package: the codec's source, the measured stream, and the header."""

    codec_source: str
    stream: bytes
    header: DecoderHeader

    def stream_rate(self) -> Rate:
        clip = self.header.clip
        return measure_rate(len(self.stream), clip.format, clip.frames)

    def check(self) -> None:
        """Raise ValueError unless stream, codec, clip and metrics agree with each other."""
        clip = self.header.clip
        stream_header, _ = bitstream.decode_stream(self.stream, STREAM_NAME)
        codec_sha = source_sha256(self.codec_source)
        if stream_header.codec_sha256.hex() != codec_sha:
            raise ValueError(
                f"{STREAM_NAME} was written by codec sha256 {stream_header.codec_sha256.hex()}, "
                f"not by the codec source given (sha256 {codec_sha})"
            )
        declared = (
            stream_header.width,
            stream_header.height,
            Fraction(stream_header.fps_num, stream_header.fps_den),
            stream_header.frame_count,
        )
        if declared != (clip.width, clip.height, clip.fps, clip.frames):
            raise ValueError(
                f"{STREAM_NAME} declares {declared[0]}x{declared[1]} @ {declared[2]} fps, "
                f"{declared[3]} frames, but the clip {clip.name} is {clip.width}x{clip.height} "
                f"@ {clip.fps} fps, {clip.frames} frames"
            )
        claimed = self.header.metrics.get("bits_per_second")
        actual = self.stream_rate().bits_per_second
        if claimed is not None and not math.isclose(claimed, actual, rel_tol=_RATE_TOLERANCE):
            raise ValueError(
                f"the metrics give {claimed} bit/s, but {STREAM_NAME} ({len(self.stream)} bytes "
                f"over {clip.frames} frames at {clip.fps_text()} fps) gives {actual} bit/s: "
                "a package must carry the stream that was measured"
            )


def _file_entry(data: bytes) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def _readme(header: DecoderHeader, codec_sha: str, stream_bytes: int) -> str:
    clip = header.clip
    return f"""# Decode package: codeclab experiment {header.experiment_id}

This package lets anyone decode the stream the lab measured, with nothing but Python and numpy.

| file | what it is |
|---|---|
| `{DECODER_NAME}` | the decoder: codeclab's runtime plus the codec `{header.codec_name}` \
(sha256 `{codec_sha}`), one standalone file |
| `{STREAM_NAME}` | the compressed video, {stream_bytes} bytes: exactly the bytes whose size \
gave the measured bitrate |
| `{MANIFEST_NAME}` | sha256 and size of every file, the clip, the metrics, versions |

The clip is `{clip.name}` ({clip.width}x{clip.height} @ {clip.fps_text()} fps, {clip.frames} \
frames, sha256 of its raw frames `{clip.sha256}`).

## Decode

```sh
{DECODE_COMMANDS[0]}            # Python 3.9+; the decoder needs nothing else
{DECODE_COMMANDS[1]}   # every frame, as Y4M (play it with ffplay or mpv)
python {DECODER_NAME} {STREAM_NAME} --frame 0 -o frame0.yuv   # one frame, raw yuv420p
```

It prints one summary line, or an error naming what is wrong (exit status 1) if the stream is
corrupt or was written by another codec. From Python:

```python
from decoder import decompress_video_frame
y, u, v = decompress_video_frame(open("{STREAM_NAME}", "rb").read(), frame_index=0, config={{}})
```

## Verify

`{MANIFEST_NAME}` lists the sha256 of every other file:

```sh
sha256sum {DECODER_NAME} {STREAM_NAME} {README_NAME}   # compare with "files" in {MANIFEST_NAME}
```

The decoder checks by itself that its embedded codec source still has sha256 `{codec_sha}` and
that `{STREAM_NAME}` says it was written by that codec; to see the hash yourself:

```sh
python -c "import decoder as d, hashlib as h; print(h.sha256(d.CODEC_SOURCE.encode()).hexdigest())"
```
"""


def _manifest(contents: PackageContents, files: Mapping[str, bytes]) -> dict[str, Any]:
    header = contents.header
    rate = contents.stream_rate()
    return {
        "format": PACKAGE_FORMAT,
        "package_version": PACKAGE_VERSION,
        "experiment_id": header.experiment_id,
        "created_at": header.created_at_utc,
        "codec": {
            "name": header.codec_name,
            "sha256": source_sha256(contents.codec_source),
            "embedded_in": f"{DECODER_NAME} (CODEC_SOURCE)",
        },
        "clip": header.clip.to_dict(),
        "stream": {
            "file": STREAM_NAME,
            "container_version": bitstream.VERSION,
            "bytes": rate.stream_bytes,
            "frames": rate.frame_count,
            "duration_seconds": rate.duration_seconds,
            "bits_per_second": rate.bits_per_second,
        },
        "metrics": {key: _json_metric(value) for key, value in header.metrics.items()},
        "versions": {
            "codeclab": header.codeclab_version,
            "container": bitstream.VERSION,
            "decoder_runtime": decoder_template.RUNTIME_VERSION,
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
        "how_to_decode": list(DECODE_COMMANDS),
        "files": {name: _file_entry(files[name]) for name in sorted(files)},
    }


def _json_metric(value: float | None) -> float | str | None:
    return None if value is None else json_number(value)


def package_files(contents: PackageContents) -> dict[str, bytes]:
    """Name -> bytes of every file in the package, manifest included."""
    contents.check()
    header = contents.header
    codec_sha = source_sha256(contents.codec_source)
    files = {
        DECODER_NAME: render_decoder(contents.codec_source, header=header).encode("utf-8"),
        STREAM_NAME: bytes(contents.stream),
        README_NAME: _readme(header, codec_sha, len(contents.stream)).encode("utf-8"),
    }
    manifest = _manifest(contents, files)
    text = json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False) + "\n"
    files[MANIFEST_NAME] = text.encode("utf-8")
    return files


def build_package(contents: PackageContents) -> bytes:
    """``package.zip`` as bytes: deterministic (sorted entries, fixed times and modes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in sorted(package_files(contents).items()):
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.create_system = 3  # unix, so the modes below are honoured
            mode = 0o100755 if name == DECODER_NAME else 0o100644
            info.external_attr = mode << 16
            # the stream is already compressed: store it, so the zip adds only its headers
            stored = name == STREAM_NAME
            info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            archive.writestr(info, data, compresslevel=None if stored else 9)
    return buffer.getvalue()


# --- verification -----------------------------------------------------------------------------


def _embedded_codec_sha(decoder: bytes, where: str) -> str:
    try:
        tree = ast.parse(decoder.decode("utf-8"))
    except (SyntaxError, UnicodeDecodeError) as exc:
        raise PackageError(f"{where}: {DECODER_NAME} is not valid Python: {exc}") from None
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == "CODEC_SOURCE"
        ):
            value = ast.literal_eval(node.value)
            if isinstance(value, str):
                return source_sha256(value)
    raise PackageError(f"{where}: {DECODER_NAME} holds no CODEC_SOURCE literal")


def verify_package(package: Path | bytes) -> dict[str, Any]:
    """Check a package against its manifest; return the manifest.

    Every file listed must be present with the listed sha256 and size, nothing unlisted may be
    present, the codec embedded in ``decoder.py`` and the codec named in ``stream.bin``'s
    header must both be the manifest's codec. Raises PackageError naming the file that differs.
    """
    where = str(package) if isinstance(package, Path) else "package"
    try:
        source = io.BytesIO(package) if isinstance(package, bytes) else package
        with zipfile.ZipFile(source) as archive:
            entries = {name: archive.read(name) for name in archive.namelist()}
    except (zipfile.BadZipFile, OSError) as exc:
        raise PackageError(f"{where}: not a readable zip file: {exc}") from None
    if MANIFEST_NAME not in entries:
        raise PackageError(f"{where}: no {MANIFEST_NAME}")
    try:
        manifest: dict[str, Any] = json.loads(entries[MANIFEST_NAME])
        listed: dict[str, dict[str, Any]] = manifest["files"]
        codec_sha: str = manifest["codec"]["sha256"]
    except (ValueError, KeyError, TypeError) as exc:
        raise PackageError(f"{where}: {MANIFEST_NAME} is not a package manifest: {exc!r}") from None
    for name in sorted(set(listed) - set(entries)):
        raise PackageError(f"{where}: {name} is listed in {MANIFEST_NAME} but missing")
    for name in sorted(set(entries) - set(listed) - {MANIFEST_NAME}):
        raise PackageError(f"{where}: {name} is in the package but not in {MANIFEST_NAME}")
    for name in sorted(listed):
        actual = _file_entry(entries[name])
        expected = {"sha256": listed[name].get("sha256"), "size": listed[name].get("size")}
        if actual != expected:
            raise PackageError(
                f"{where}: {name} has sha256 {actual['sha256']} ({actual['size']} bytes), "
                f"{MANIFEST_NAME} lists {expected['sha256']} ({expected['size']} bytes)"
            )
    for name in (DECODER_NAME, STREAM_NAME):
        if name not in entries:
            raise PackageError(f"{where}: no {name}")
    embedded = _embedded_codec_sha(entries[DECODER_NAME], where)
    if embedded != codec_sha:
        raise PackageError(
            f"{where}: {DECODER_NAME} embeds codec sha256 {embedded}, {MANIFEST_NAME} says "
            f"{codec_sha}"
        )
    try:
        stream_header, _ = bitstream.decode_stream(entries[STREAM_NAME], STREAM_NAME)
    except bitstream.BitstreamError as exc:
        raise PackageError(f"{where}: {exc}") from None
    if stream_header.codec_sha256.hex() != codec_sha:
        raise PackageError(
            f"{where}: {STREAM_NAME} was written by codec sha256 "
            f"{stream_header.codec_sha256.hex()}, {MANIFEST_NAME} says {codec_sha}"
        )
    return manifest
