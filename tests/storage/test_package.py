"""The decode package: decoder.py runs alone (Python + numpy) and gives the lab's frames exactly.

The key tests encode real frames with the reference codec ``inter_dct`` in-process, decode them
in-process with the codec's own Decoder (the "lab's frames"), build the package, unzip it, and
run ``python decoder.py stream.bin -o out.y4m`` in a fresh interpreter that can import numpy and
nothing else of this environment (see `NumpyOnlyPython` for how).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import io
import json
import re
import shutil
import subprocess
import sys
import types
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from codeclab.codec import bitstream
from codeclab.codec.bitstream import StreamHeader, encode_stream
from codeclab.codecs import reference_codec_source
from codeclab.metrics.quality import QualityReport, measure
from codeclab.metrics.rate import measure_rate
from codeclab.storage import decoder_template
from codeclab.storage.package import (
    DECODER_NAME,
    MANIFEST_NAME,
    README_NAME,
    STREAM_NAME,
    ClipIdentity,
    DecoderHeader,
    PackageContents,
    PackageError,
    build_package,
    key_metrics,
    python_literal,
    render_decoder,
    source_sha256,
    verify_package,
)
from codeclab.video.frames import Frame, VideoFormat
from codeclab.video.rawfile import RawVideo, write_raw
from codeclab.video.y4m import Y4MReader

CLIP = "carphone_qcif.y4m"
FRAMES = 10
QUALITY = 50
EXPERIMENT = "exp-20250102-inter-dct-q50"
PUBLISHED = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


# --- helpers -----------------------------------------------------------------------------------


def load_codec(source: str, name: str) -> types.ModuleType:
    """Run a codec source as a module, as the lab's harness does (the test's own copy)."""
    module = types.ModuleType(name)
    sys.modules[name] = module
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module


def import_decoder(path: Path) -> types.ModuleType:
    """Import a rendered decoder.py in this process under a name of its own."""
    name = f"published_decoder_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def raw_sha256(frames: Sequence[Frame]) -> str:
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(frame.to_bytes())
    return digest.hexdigest()


def make_stream(codec_source: str, packets: Sequence[bytes], fmt: VideoFormat, count: int) -> bytes:
    header = StreamHeader(
        width=fmt.width,
        height=fmt.height,
        fps_num=fmt.fps.numerator,
        fps_den=fmt.fps.denominator,
        frame_count=count,
        codec_sha256=bytes.fromhex(source_sha256(codec_source)),
    )
    return encode_stream(header, packets)


def header_for(name: str, fmt: VideoFormat, frames: Sequence[Frame]) -> DecoderHeader:
    clip = ClipIdentity(name, raw_sha256(frames), fmt.width, fmt.height, fmt.fps, len(frames))
    return DecoderHeader(EXPERIMENT, PUBLISHED, "test-codec", clip)


def unzip(package: bytes, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        archive.extractall(into)
    return into


def rezip(package: bytes, changes: dict[str, bytes | None]) -> bytes:
    """The package with some files replaced (bytes) or removed (None)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(package)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = changes.get(info.filename, src.read(info.filename))
            if data is not None:
                dst.writestr(info, data)
        for name, data in changes.items():
            if data is not None and name not in src.namelist():
                dst.writestr(name, data)
    return out.getvalue()


def read_y4m(path: Path) -> list[Frame]:
    with Y4MReader(path) as reader:
        return list(reader)


def assert_same_frames(got: Sequence[Sequence[np.ndarray]], want: Sequence[Frame]) -> None:
    assert len(got) == len(want)
    for index, (frame, expected) in enumerate(zip(got, want, strict=True)):
        for name, plane, plane_expected in zip(
            "yuv", frame, (expected.y, expected.u, expected.v), strict=True
        ):
            assert plane.dtype == np.uint8, f"frame {index} plane {name}"
            np.testing.assert_array_equal(plane, plane_expected, err_msg=f"frame {index} {name}")


# --- a fresh interpreter that can import numpy and nothing else --------------------------------


@dataclass(frozen=True)
class NumpyOnlyPython:
    """Runs this interpreter as ``python -s -S`` with a cleared environment.

    Why this recipe: ``-I`` (isolated mode) ignores PYTHONPATH but still runs ``site``, which
    adds the venv's site-packages, where codeclab's editable install lives (a ``.pth`` hook):
    codeclab would be importable. ``-S`` skips ``site`` altogether (no site-packages, no ``.pth``
    files, no user site; ``-s`` says the same for the user site), so ``sys.path`` is the
    script's directory plus the standard library, plus PYTHONPATH, which ``-S`` honours. The
    environment is emptied except for PYTHONPATH, which names a temporary directory holding
    only symlinks to the numpy package (and ``numpy.libs``, its bundled shared libraries).
    """

    python: str
    pythonpath: Path

    def run(self, args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.python, "-s", "-S", *args],
            cwd=cwd,
            env={"PYTHONPATH": str(self.pythonpath)},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )


@pytest.fixture(scope="module")
def numpy_only(tmp_path_factory: pytest.TempPathFactory) -> NumpyOnlyPython:
    site_dir = Path(np.__file__).resolve().parent.parent
    only = tmp_path_factory.mktemp("numpy-only")
    for name in ("numpy", "numpy.libs"):
        if (site_dir / name).exists():
            (only / name).symlink_to(site_dir / name)
    return NumpyOnlyPython(sys.executable, only)


# --- the lab's encode of a real clip -----------------------------------------------------------


@dataclass(frozen=True)
class LabEncode:
    codec_source: str
    fmt: VideoFormat
    source: list[Frame]  # the clip's first FRAMES frames
    packets: list[bytes]
    stream: bytes
    decoded: list[Frame]  # what the codec's own Decoder gives, in this process
    quality: QualityReport  # decoded against source, as the lab measures it
    header: DecoderHeader
    source_raw: RawVideo


@pytest.fixture(scope="module")
def lab(clips_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> LabEncode:
    codec_source = reference_codec_source("inter_dct")
    with Y4MReader(clips_dir / CLIP) as reader:
        fmt = reader.format
        source = [frame for _, frame in zip(range(FRAMES), reader, strict=False)]
    codec = load_codec(codec_source, "test_package_inter_dct")
    encoder = codec.Encoder(fmt.width, fmt.height, float(fmt.fps), {"quality": QUALITY})
    packets = [encoder.encode(f.y, f.u, f.v) for f in source] + list(encoder.flush())
    stream = make_stream(codec_source, packets, fmt, len(source))
    decoder = codec.Decoder(fmt.width, fmt.height, float(fmt.fps))
    decoded = [Frame(*planes) for packet in packets for planes in decoder.decode(packet)]
    decoded += [Frame(*planes) for planes in decoder.flush()]
    work = tmp_path_factory.mktemp("lab")
    source_raw = write_raw(work / "source.yuv", fmt, source)
    quality = measure(source_raw, write_raw(work / "decoded.yuv", fmt, decoded))
    rate = measure_rate(len(stream), fmt, len(source))
    clip = ClipIdentity(CLIP, raw_sha256(source), fmt.width, fmt.height, fmt.fps, len(source))
    header = DecoderHeader(
        EXPERIMENT, PUBLISHED, "inter_dct", clip, key_metrics(rate, quality.summary)
    )
    return LabEncode(
        codec_source, fmt, source, packets, stream, decoded, quality, header, source_raw
    )


@pytest.fixture(scope="module")
def package(lab: LabEncode) -> bytes:
    return build_package(PackageContents(lab.codec_source, lab.stream, lab.header))


@pytest.fixture
def unzipped(package: bytes, tmp_path: Path) -> Path:
    return unzip(package, tmp_path / "package")


@pytest.fixture(scope="module")
def decoder_module(package: bytes, tmp_path_factory: pytest.TempPathFactory) -> types.ModuleType:
    return import_decoder(unzip(package, tmp_path_factory.mktemp("imported")) / DECODER_NAME)


# --- the decoder runs alone and reproduces the lab's frames --------------------------------------


@pytest.mark.slow
def test_numpy_only_python_has_numpy_but_not_codeclab(
    numpy_only: NumpyOnlyPython, unzipped: Path
) -> None:
    failed = numpy_only.run(["-c", "import codeclab"], unzipped)
    assert failed.returncode != 0
    assert "No module named 'codeclab'" in failed.stderr
    probe = numpy_only.run(
        ["-c", "import json, sys, numpy; print(json.dumps([numpy.__file__, sys.path]))"],
        unzipped,
    )
    assert probe.returncode == 0, probe.stderr
    numpy_file, path = json.loads(probe.stdout)
    assert numpy_file.startswith(str(numpy_only.pythonpath))
    project_src = Path(__file__).resolve().parents[2] / "src"
    assert not [p for p in path if "site-packages" in p or p.startswith(str(project_src))]


@pytest.mark.slow
def test_packaged_decoder_cli_reproduces_the_lab_frames_bit_exactly(
    lab: LabEncode, numpy_only: NumpyOnlyPython, unzipped: Path, tmp_path: Path
) -> None:
    result = numpy_only.run([DECODER_NAME, STREAM_NAME, "-o", "out.y4m"], unzipped)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1
    assert f"decoded {FRAMES} frames" in result.stdout
    frames = read_y4m(unzipped / "out.y4m")
    assert_same_frames([(f.y, f.u, f.v) for f in frames], lab.decoded)
    again = measure(lab.source_raw, write_raw(tmp_path / "package.yuv", lab.fmt, frames))
    assert again.summary == lab.quality.summary


@pytest.mark.slow
def test_decompress_video_frame_in_a_fresh_process_returns_that_frame(
    lab: LabEncode, numpy_only: NumpyOnlyPython, unzipped: Path
) -> None:
    script = (
        "import decoder\n"
        "data = open('stream.bin', 'rb').read()\n"
        "y, u, v = decoder.decompress_video_frame(data, frame_index=5, config={})\n"
        "open('f5.yuv', 'wb').write(y.tobytes() + u.tobytes() + v.tobytes())\n"
    )
    result = numpy_only.run(["-c", script], unzipped)
    assert result.returncode == 0, result.stderr
    assert (unzipped / "f5.yuv").read_bytes() == lab.decoded[5].to_bytes()


@pytest.mark.slow
def test_cli_writes_one_frame_as_raw_yuv(
    lab: LabEncode, numpy_only: NumpyOnlyPython, unzipped: Path
) -> None:
    result = numpy_only.run([DECODER_NAME, STREAM_NAME, "--frame", "7", "-o", "f7.yuv"], unzipped)
    assert result.returncode == 0, result.stderr
    assert (unzipped / "f7.yuv").read_bytes() == lab.decoded[7].to_bytes()


@pytest.mark.slow
def test_decompress_video_frame_out_of_range_names_the_frame_count(
    lab: LabEncode, decoder_module: types.ModuleType
) -> None:
    with pytest.raises(IndexError, match=f"holds {FRAMES} frames"):
        decoder_module.decompress_video_frame(lab.stream, FRAMES)
    with pytest.raises(IndexError, match="out of range"):
        decoder_module.decompress_video_frame(lab.stream, -1)


@pytest.mark.slow
def test_decompress_video_frame_refuses_options_it_does_not_have(
    lab: LabEncode, decoder_module: types.ModuleType
) -> None:
    with pytest.raises(ValueError, match="not understood: quality"):
        decoder_module.decompress_video_frame(lab.stream, 0, config={"quality": 90})


@pytest.mark.slow
def test_decode_all_in_process_matches_the_lab(
    lab: LabEncode, decoder_module: types.ModuleType
) -> None:
    assert_same_frames(decoder_module.decode_all(lab.stream), lab.decoded)


@pytest.mark.slow
def test_cli_exits_nonzero_on_a_corrupt_stream_and_writes_nothing(
    numpy_only: NumpyOnlyPython, unzipped: Path
) -> None:
    stream = bytearray((unzipped / STREAM_NAME).read_bytes())
    stream[len(stream) // 2] ^= 0xFF
    (unzipped / "corrupt.bin").write_bytes(bytes(stream))
    result = numpy_only.run([DECODER_NAME, "corrupt.bin", "-o", "out.y4m"], unzipped)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "decoder.py: error: corrupt.bin: stream CRC mismatch; the data is corrupt"
    )
    assert result.stdout == ""
    assert not list(unzipped.glob("out.y4m*"))


@pytest.mark.slow
def test_cli_exits_nonzero_on_a_truncated_stream(
    numpy_only: NumpyOnlyPython, unzipped: Path
) -> None:
    stream = (unzipped / STREAM_NAME).read_bytes()
    (unzipped / "short.bin").write_bytes(stream[: len(stream) // 2])
    result = numpy_only.run([DECODER_NAME, "short.bin", "-o", "out.y4m"], unzipped)
    assert result.returncode == 1
    assert "short.bin: truncated in packet" in result.stderr


@pytest.mark.slow
def test_cli_names_the_packet_when_the_codec_rejects_it(
    lab: LabEncode, numpy_only: NumpyOnlyPython, unzipped: Path
) -> None:
    packets = list(lab.packets)
    packets[3] = packets[3][:2] + b"not zlib at all"  # a valid container around a bad packet
    (unzipped / "bad-packet.bin").write_bytes(
        make_stream(lab.codec_source, packets, lab.fmt, FRAMES)
    )
    result = numpy_only.run([DECODER_NAME, "bad-packet.bin", "-o", "out.y4m"], unzipped)
    assert result.returncode == 1
    assert "the codec failed in Decoder.decode (packet 3 of 10): ValueError:" in result.stderr
    assert "corrupt zlib payload" in result.stderr
    assert not list(unzipped.glob("out.y4m*"))


@pytest.mark.slow
def test_decoder_refuses_a_stream_written_by_another_codec(
    lab: LabEncode, decoder_module: types.ModuleType
) -> None:
    other = make_stream(lab.codec_source + "\n# another codec\n", lab.packets, lab.fmt, FRAMES)
    with pytest.raises(decoder_module.DecodeError, match="was written by the codec with sha256"):
        decoder_module.decode_all(other)


@pytest.mark.slow
def test_decoder_refuses_to_run_an_edited_codec_source(lab: LabEncode, unzipped: Path) -> None:
    path = unzipped / DECODER_NAME
    text = path.read_text()
    marker = "# --- the codec ---"
    assert text.count(marker) == 1  # a comment inside inter_dct's embedded source
    path.write_text(text.replace(marker, "# --- the codec (edited) ---"))
    edited = import_decoder(path)
    with pytest.raises(edited.DecodeError, match="the codec source was edited"):
        edited.decode_all(lab.stream)


# --- what decoder.py says and holds ------------------------------------------------------------


@pytest.mark.slow
def test_decoder_header_names_experiment_codec_clip_and_metrics(lab: LabEncode) -> None:
    text = render_decoder(lab.codec_source, header=lab.header)
    docstring = ast.get_docstring(ast.parse(text), clean=False)
    assert docstring is not None
    codec_sha = hashlib.sha256(lab.codec_source.encode()).hexdigest()
    summary = lab.quality.summary
    for expected in (
        EXPERIMENT,
        "2025-01-02T03:04:05Z",
        "inter_dct",
        codec_sha,
        lab.header.clip.sha256,
        "176x144 @ 30000/1001 fps, 10 frames",
        f"{measure_rate(len(lab.stream), lab.fmt, FRAMES).kbps:.2f} kbit/s",
        f"{summary.psnr_y_mean:.3f} dB",
        f"{summary.ssim_y_mean:.5f}",
        "VMAF, mean of frames:     not measured",
        "python decoder.py stream.bin -o out.y4m",
    ):
        assert expected in docstring
    assert text.startswith("#!/usr/bin/env python3\n")


@pytest.mark.slow
def test_decoder_embeds_codec_and_container_sources_verbatim(lab: LabEncode) -> None:
    text = render_decoder(lab.codec_source, header=lab.header)
    container = Path(bitstream.__file__).read_text()
    assert lab.codec_source in text  # character for character, between the marker lines
    assert container in text
    values = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in ast.parse(text).body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
        if node.targets[0].id in ("CODEC_SOURCE", "CONTAINER_SOURCE", "CODEC_SHA256")
    }
    assert values["CODEC_SOURCE"] == lab.codec_source
    assert values["CONTAINER_SOURCE"] == container
    assert values["CODEC_SHA256"] == source_sha256(lab.codec_source)
    begin = text.index("# BEGIN CODEC SOURCE")
    assert begin < text.index(lab.codec_source) < text.index("# END CODEC SOURCE")


@pytest.mark.slow
def test_decoder_keeps_the_template_runtime_unchanged(lab: LabEncode) -> None:
    text = render_decoder(lab.codec_source, header=lab.header)
    template = Path(decoder_template.__file__).read_text()
    runtime = template[template.index("from __future__") : template.index("# <codeclab:embedded>")]
    assert runtime in text


def _python39() -> str | None:
    candidates = [shutil.which("python3.9")]
    candidates += [str(p) for p in Path.home().glob(".pyenv/versions/3.9*/bin/python3.9")]
    for candidate in candidates:
        if candidate and subprocess.run([candidate, "-c", ""], check=False).returncode == 0:
            return candidate
    return None


@pytest.mark.slow
def test_decoder_runtime_and_container_work_on_python_3_9(lab: LabEncode, unzipped: Path) -> None:
    python39 = _python39()
    if python39 is None:
        pytest.skip("no Python 3.9 interpreter on this machine")
    # Python 3.9 here has no numpy: compile the whole file, and parse stream.bin with the
    # embedded container parser (standard library only).
    script = (
        "import ast, sys, types\n"
        "text = open('decoder.py', encoding='utf-8').read()\n"
        "compile(text, 'decoder.py', 'exec')\n"
        "source = next(ast.literal_eval(n.value) for n in ast.parse(text).body\n"
        "              if isinstance(n, ast.Assign) and getattr(n.targets[0], 'id', '')\n"
        "              == 'CONTAINER_SOURCE')\n"
        "module = types.ModuleType('container'); sys.modules['container'] = module\n"
        "exec(compile(source, 'container', 'exec'), module.__dict__)\n"
        "header, packets = module.decode_stream(open('stream.bin', 'rb').read(), 'stream.bin')\n"
        "print(header.frame_count, len(packets), sys.version_info[:2])\n"
    )
    result = subprocess.run(
        [python39, "-I", "-c", script], cwd=unzipped, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{FRAMES} {len(lab.packets)} (3, 9)"


@pytest.mark.parametrize(
    "text",
    [
        "x = 1\n",
        "s = '''single'''\n",
        's = """double"""\n',
        "a = '''x'''\nb = \"\"\"y\"\"\"\n",
        "ends with a backslash \\",
        "ends with a quote '",
        "crlf\r\nline\r\n",
        "tab\tnul\x00 and é ∑ 🎬\n",
        "lone surrogate \udcff\n",
        "",
    ],
)
def test_python_literal_evaluates_to_exactly_the_text(text: str) -> None:
    assert ast.literal_eval(python_literal(text)) == text


def test_python_literal_keeps_an_ordinary_source_verbatim() -> None:
    source = reference_codec_source("intra_dct")
    assert python_literal(source) in (f"r'''{source}'''", f'r"""{source}"""')


def test_codec_source_that_needs_escaping_still_decodes(
    tiny_clip: RawVideo, lossless_source: str
) -> None:
    awkward = lossless_source + "\nQUOTES = '''a''' + \"\"\"b\"\"\"  # and a backslash \\\n"
    frames = list(tiny_clip)
    fmt = tiny_clip.format
    codec = load_codec(awkward, "test_package_awkward")
    encoder = codec.Encoder(fmt.width, fmt.height, float(fmt.fps), {"quality": 50})
    stream = make_stream(awkward, [encoder.encode(f.y, f.u, f.v) for f in frames], fmt, 4)
    header = header_for("tiny", fmt, frames)
    text = render_decoder(awkward, header=header)
    assert "CODEC_SOURCE = (\n" in text  # written line by line, not as a raw string
    namespace: dict[str, Any] = {"__name__": "rendered_awkward"}
    exec(compile(text, "decoder.py", "exec"), namespace)
    assert_same_frames(namespace["decode_all"](stream), frames)


def test_decoder_header_with_quotes_and_backslashes_in_names_is_exact(
    tiny_clip: RawVideo, lossless_source: str
) -> None:
    frames = list(tiny_clip)
    header = replace(
        header_for('clip """ \\ \x07', tiny_clip.format, frames), experiment_id='exp "1" \\n'
    )
    text = render_decoder(lossless_source, header=header)
    docstring = ast.get_docstring(ast.parse(text), clean=False)
    assert docstring is not None
    assert 'exp "1" \\n' in docstring
    assert 'clip """ \\ \x07' in docstring


def test_decoder_header_needs_a_time_zone(tiny_clip: RawVideo) -> None:
    header = header_for("tiny", tiny_clip.format, list(tiny_clip))
    with pytest.raises(ValueError, match="has no time zone"):
        replace(header, created_at=datetime(2025, 1, 2))
    later = replace(header, created_at=datetime(2025, 1, 2, 5, tzinfo=timezone(timedelta(hours=2))))
    assert later.created_at_utc == "2025-01-02T03:00:00Z"


# --- the runtime's checks on what the codec returns ----------------------------------------------

_SHORT_CODEC = """
import numpy as np


class Decoder:
    def __init__(self, width, height, fps):
        self.shape = (height, width)

    def decode(self, packet):
        if packet == b"skip":
            return []
        h, w = self.shape
        ch, cw = (h + 1) // 2, (w + 1) // 2
        dtype = np.int16 if packet == b"wide" else np.uint8
        chroma = np.zeros((ch, cw), np.uint8)
        return [(np.zeros((h, w), dtype), chroma, chroma.copy())]
"""


def _runtime(source: str) -> decoder_template.EmbeddedDecoder:
    container = Path(bitstream.__file__).read_text()
    return decoder_template.EmbeddedDecoder(
        source, source_sha256(source), container, source_sha256(container), "short"
    )


def test_runtime_rejects_a_codec_that_produces_fewer_frames_than_declared() -> None:
    fmt = VideoFormat(16, 8, Fraction(25))
    stream = make_stream(_SHORT_CODEC, [b"frame", b"skip", b"frame"], fmt, 3)
    with pytest.raises(decoder_template.DecodeError, match="produced 2 frames, but the stream"):
        list(_runtime(_SHORT_CODEC).iter_frames(stream))


def test_runtime_rejects_a_codec_that_produces_more_frames_than_declared() -> None:
    fmt = VideoFormat(16, 8, Fraction(25))
    stream = make_stream(_SHORT_CODEC, [b"frame", b"frame"], fmt, 1)
    with pytest.raises(decoder_template.DecodeError, match="returned frame 2, but the stream"):
        list(_runtime(_SHORT_CODEC).iter_frames(stream))


def test_runtime_rejects_planes_of_the_wrong_dtype() -> None:
    fmt = VideoFormat(16, 8, Fraction(25))
    stream = make_stream(_SHORT_CODEC, [b"frame", b"wide"], fmt, 2)
    with pytest.raises(decoder_template.DecodeError, match="frame 1: plane y has dtype int16"):
        list(_runtime(_SHORT_CODEC).iter_frames(stream))


def test_codec_names_cannot_clobber_the_runtime(tiny_clip: RawVideo) -> None:
    source = _SHORT_CODEC + "\nDecodeError = None\nmain = None\nCODEC_SOURCE = ''\n"
    fmt = VideoFormat(16, 8, Fraction(25))
    text = render_decoder(source, header=header_for("tiny", tiny_clip.format, list(tiny_clip)))
    namespace: dict[str, Any] = {"__name__": "rendered_clobber"}
    exec(compile(text, "decoder.py", "exec"), namespace)
    frames = namespace["decode_all"](make_stream(source, [b"frame"], fmt, 1))
    assert len(frames) == 1
    assert isinstance(namespace["DecodeError"], type)
    assert callable(namespace["main"])
    assert namespace["CODEC_SOURCE"] == source


def test_the_template_itself_holds_no_codec() -> None:
    with pytest.raises(decoder_template.DecodeError, match="template"):
        decoder_template.decode_all(b"")


# --- the package --------------------------------------------------------------------------------


@pytest.mark.slow
def test_package_holds_decoder_stream_manifest_and_readme(lab: LabEncode, package: bytes) -> None:
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        assert archive.namelist() == sorted([DECODER_NAME, STREAM_NAME, MANIFEST_NAME, README_NAME])
        assert archive.read(STREAM_NAME) == lab.stream
        readme = archive.read(README_NAME).decode()
    assert "pip install numpy" in readme
    assert "python decoder.py stream.bin -o out.y4m" in readme
    assert "sha256sum" in readme


@pytest.mark.slow
def test_manifest_lists_sha256_and_size_of_every_other_file(
    lab: LabEncode, package: bytes, unzipped: Path
) -> None:
    manifest = verify_package(package)
    assert set(manifest["files"]) == {DECODER_NAME, STREAM_NAME, README_NAME}
    for name, entry in manifest["files"].items():
        data = (unzipped / name).read_bytes()
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    assert manifest["codec"]["sha256"] == hashlib.sha256(lab.codec_source.encode()).hexdigest()
    assert manifest["experiment_id"] == EXPERIMENT
    assert manifest["created_at"] == "2025-01-02T03:04:05Z"
    assert manifest["clip"] == {
        "name": CLIP,
        "sha256": raw_sha256(lab.source),
        "width": 176,
        "height": 144,
        "fps": "30000/1001",
        "frames": FRAMES,
    }
    assert manifest["versions"]["container"] == bitstream.VERSION
    assert manifest["how_to_decode"][-1] == "python decoder.py stream.bin -o out.y4m"


@pytest.mark.slow
def test_manifest_rate_is_the_lab_rate_of_stream_bin(lab: LabEncode, package: bytes) -> None:
    manifest = verify_package(package)
    rate = measure_rate(len(lab.stream), lab.fmt, FRAMES)
    assert manifest["stream"]["bytes"] == len(lab.stream) == manifest["files"][STREAM_NAME]["size"]
    assert manifest["stream"]["bits_per_second"] == rate.bits_per_second
    assert manifest["metrics"]["bits_per_second"] == rate.bits_per_second
    assert manifest["metrics"]["psnr_y_mean"] == lab.quality.summary.psnr_y_mean


@pytest.mark.slow
@pytest.mark.parametrize("name", [DECODER_NAME, STREAM_NAME, README_NAME])
def test_verify_package_names_the_file_that_was_tampered_with(
    package: bytes, name: str, tmp_path: Path
) -> None:
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        data = bytearray(archive.read(name))
    data[-10] ^= 0x01
    path = tmp_path / "package.zip"
    path.write_bytes(rezip(package, {name: bytes(data)}))
    with pytest.raises(PackageError, match=re.escape(f"{path}: {name} has sha256")):
        verify_package(path)


@pytest.mark.slow
def test_verify_package_rejects_missing_and_unlisted_files(package: bytes) -> None:
    with pytest.raises(
        PackageError, match=re.escape("README.md is listed in manifest.json but missing")
    ):
        verify_package(rezip(package, {README_NAME: None}))
    with pytest.raises(
        PackageError, match=re.escape("extra.txt is in the package but not in manifest")
    ):
        verify_package(rezip(package, {"extra.txt": b"surprise"}))


@pytest.mark.slow
def test_verify_package_rejects_a_decoder_and_manifest_that_agree_on_another_codec(
    lab: LabEncode, package: bytes
) -> None:
    other = render_decoder(lab.codec_source + "# other\n", header=lab.header).encode()
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        manifest = json.loads(archive.read(MANIFEST_NAME))
    manifest["files"][DECODER_NAME] = {
        "sha256": hashlib.sha256(other).hexdigest(),
        "size": len(other),
    }
    tampered = rezip(package, {DECODER_NAME: other, MANIFEST_NAME: json.dumps(manifest).encode()})
    with pytest.raises(PackageError, match=re.escape("decoder.py embeds codec sha256")):
        verify_package(tampered)


@pytest.mark.slow
def test_package_bytes_are_deterministic(lab: LabEncode, package: bytes) -> None:
    again = build_package(PackageContents(lab.codec_source, lab.stream, lab.header))
    assert again == package
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    stored = {i.filename for i in infos if i.compress_type == zipfile.ZIP_STORED}
    assert stored == {STREAM_NAME}


@pytest.mark.slow
def test_package_size_is_stream_plus_decoder(lab: LabEncode, package: bytes) -> None:
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        compressed = {i.filename: i.compress_size for i in archive.infolist()}
    assert compressed[STREAM_NAME] == len(lab.stream)
    assert len(package) < len(lab.stream) + sum(compressed.values()) + 1024


@pytest.mark.slow
def test_build_package_refuses_a_stream_of_another_codec(lab: LabEncode) -> None:
    contents = PackageContents(lab.codec_source + "# edited\n", lab.stream, lab.header)
    with pytest.raises(ValueError, match="not by the codec source given"):
        build_package(contents)


@pytest.mark.slow
def test_build_package_refuses_a_stream_of_another_clip(lab: LabEncode) -> None:
    clip = replace(lab.header.clip, frames=FRAMES + 1)
    contents = PackageContents(lab.codec_source, lab.stream, replace(lab.header, clip=clip))
    with pytest.raises(ValueError, match="declares 176x144 @ 30000/1001 fps, 10 frames"):
        build_package(contents)


@pytest.mark.slow
def test_build_package_refuses_metrics_measured_on_another_stream(lab: LabEncode) -> None:
    metrics = {**lab.header.metrics, "bits_per_second": 1.01 * len(lab.stream)}
    contents = PackageContents(lab.codec_source, lab.stream, replace(lab.header, metrics=metrics))
    with pytest.raises(ValueError, match="must carry the stream that was measured"):
        build_package(contents)
