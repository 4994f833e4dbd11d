"""The reference codecs intra_dct and inter_dct, run in-process on real clips."""

import importlib.util
import itertools
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import av
import numpy as np
import numpy.typing as npt
import pytest

from codeclab.codec.validate import validate_source
from codeclab.codecs import REFERENCE_CODECS, reference_codec_path, reference_codec_source

Plane = npt.NDArray[np.uint8]
Planes = tuple[Plane, Plane, Plane]

CLIPS = Path(__file__).resolve().parents[2] / ".." / "shared" / "clips"
CARPHONE_FPS = 30000 / 1001
BIKES_FPS = 25.0
QUALITIES = (10, 30, 50, 70, 90)


# --- helpers and fixtures --------------------------------------------------------------------


def read_clip(name: str, count: int) -> list[Planes]:
    """The first `count` frames of a shared clip as yuv420p planes (even sizes only)."""
    path = CLIPS / name
    if not path.is_file():
        pytest.skip(f"shared test clip {path} is missing (CI keeps ../shared beside the clone)")
    frames: list[Planes] = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            height, width = frame.height, frame.width
            packed: Plane = np.asarray(frame.to_ndarray(format="yuv420p"), dtype=np.uint8)
            chroma = packed[height:].reshape(2, height // 2, width // 2)
            frames.append((packed[:height].copy(), chroma[0].copy(), chroma[1].copy()))
            if len(frames) == count:
                break
    return frames


def load_codec(name: str) -> ModuleType:
    """Load a reference codec from its file, as a standalone module (not as codeclab code)."""
    spec = importlib.util.spec_from_file_location(f"reference_{name}", reference_codec_path(name))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def psnr_y(reference: Sequence[Planes], decoded: Sequence[Planes]) -> float:
    """Mean over frames of the per-frame luma PSNR in dB."""
    values = []
    for ref, dec in zip(reference, decoded, strict=True):
        mse = np.mean((ref[0].astype(np.float64) - dec[0].astype(np.float64)) ** 2)
        values.append(100.0 if mse == 0 else 10 * np.log10(255.0**2 / mse))
    return float(np.mean(values))


@dataclass(frozen=True)
class Run:
    packets: list[bytes]
    decoded: list[Planes]
    reconstructions: list[Planes | None]

    @property
    def total_bytes(self) -> int:
        return sum(len(packet) for packet in self.packets)


def run_codec(
    codec: ModuleType, frames: Sequence[Planes], fps: float, params: dict[str, object]
) -> Run:
    """Encode `frames`, then decode only the packets, as the lab does."""
    height, width = frames[0][0].shape
    encoder = codec.Encoder(width, height, fps, params)
    packets, reconstructions = [], []
    for y, u, v in frames:
        packets.append(encoder.encode(y, u, v))
        reconstructions.append(getattr(encoder, "reconstruction", None))
    packets.extend(encoder.flush())
    decoder = codec.Decoder(width, height, fps)
    decoded: list[Planes] = []
    for packet in packets:
        decoded.extend(decoder.decode(packet))
    decoded.extend(decoder.flush())
    return Run(packets, decoded, reconstructions)


@pytest.fixture(scope="module", params=REFERENCE_CODECS)
def codec(request: pytest.FixtureRequest) -> ModuleType:
    return load_codec(request.param)


@pytest.fixture(scope="module")
def intra_dct() -> ModuleType:
    return load_codec("intra_dct")


@pytest.fixture(scope="module")
def inter_dct() -> ModuleType:
    return load_codec("inter_dct")


@pytest.fixture(scope="module")
def carphone() -> list[Planes]:
    return read_clip("carphone_pristine.mp4", 20)


@pytest.fixture(scope="module")
def bikes() -> list[Planes]:
    return read_clip("bikes.mp4", 20)


@pytest.fixture(scope="module")
def carphone_sweeps(carphone: list[Planes]) -> dict[str, list[tuple[int, float]]]:
    """(bytes, PSNR-Y) per quality in QUALITIES, for each codec on carphone."""
    sweeps = {}
    for name in REFERENCE_CODECS:
        module = load_codec(name)
        points = []
        for quality in QUALITIES:
            run = run_codec(module, carphone, CARPHONE_FPS, {"quality": quality})
            points.append((run.total_bytes, psnr_y(carphone, run.decoded)))
        sweeps[name] = points
    return sweeps


def bytes_at_psnr(points: Sequence[tuple[int, float]], target: float) -> float:
    """Bytes a rate-quality curve needs for `target` dB (linear in log-bytes between points)."""
    sizes, quality = np.log([p[0] for p in points]), np.array([p[1] for p in points])
    assert quality[0] <= target <= quality[-1], f"{target} dB is outside the curve {points}"
    return float(np.exp(np.interp(target, quality, sizes)))


# --- registry ------------------------------------------------------------------------------


def test_registry_names_both_codecs_with_their_source_files() -> None:
    assert REFERENCE_CODECS == ("intra_dct", "inter_dct")
    for name in REFERENCE_CODECS:
        path = reference_codec_path(name)
        assert path.name == f"{name}.py"
        assert reference_codec_source(name) == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("lookup", [reference_codec_path, reference_codec_source])
def test_unknown_codec_name_is_rejected_listing_the_known_ones(
    lookup: Callable[[str], object],
) -> None:
    with pytest.raises(ValueError, match=r"unknown reference codec 'h264'.*intra_dct, inter_dct"):
        lookup("h264")


@pytest.mark.parametrize("name", REFERENCE_CODECS)
def test_source_passes_the_labs_static_validation(name: str) -> None:
    report = validate_source(reference_codec_source(name), filename=f"{name}.py")
    assert report.ok, [str(violation) for violation in report.violations]


# --- behaviour shared by both codecs -------------------------------------------------------


def test_round_trip_returns_every_frame_as_uint8_planes_of_the_source_shape(
    codec: ModuleType, carphone: list[Planes]
) -> None:
    run = run_codec(codec, carphone, CARPHONE_FPS, {"quality": 50})
    assert len(run.decoded) == len(carphone)
    for source, decoded in zip(carphone, run.decoded, strict=True):
        for src_plane, dec_plane in zip(source, decoded, strict=True):
            assert dec_plane.dtype == np.uint8
            assert dec_plane.shape == src_plane.shape
    assert psnr_y(carphone, run.decoded) > 30


def test_odd_frame_size_round_trips_with_cropped_planes(codec: ModuleType) -> None:
    frames = read_clip("bikes.mp4", 6)
    odd = [(y[:143, :175].copy(), u[:72, :88].copy(), v[:72, :88].copy()) for y, u, v in frames]
    run = run_codec(codec, odd, BIKES_FPS, {"quality": 75})
    assert len(run.decoded) == len(odd)
    for decoded in run.decoded:
        assert [p.shape for p in decoded] == [(143, 175), (72, 88), (72, 88)]
    assert psnr_y(odd, run.decoded) > 35


def test_tiny_frame_smaller_than_one_block_round_trips(codec: ModuleType) -> None:
    rng = np.random.default_rng(7)
    frames = [
        (rng.integers(0, 256, (5, 3), dtype=np.uint8),) + (np.full((3, 2), 128, np.uint8),) * 2
        for _ in range(3)
    ]
    run = run_codec(codec, frames, 10.0, {"quality": 100})
    assert [p.shape for p in run.decoded[-1]] == [(5, 3), (3, 2), (3, 2)]
    assert psnr_y(frames, run.decoded) > 45


def test_flush_of_a_fresh_encoder_and_decoder_is_empty(codec: ModuleType) -> None:
    assert codec.Encoder(64, 48, 25.0, {}).flush() == []
    assert codec.Decoder(64, 48, 25.0).flush() == []
    assert codec.Decoder(64, 48, 25.0).decode(b"") == []


def test_missing_quality_means_quality_50(codec: ModuleType, carphone: list[Planes]) -> None:
    default = run_codec(codec, carphone[:4], CARPHONE_FPS, {})
    explicit = run_codec(codec, carphone[:4], CARPHONE_FPS, {"quality": 50})
    assert default.packets == explicit.packets
    assert default.packets != run_codec(codec, carphone[:4], CARPHONE_FPS, {"quality": 60}).packets


@pytest.mark.parametrize("quality", [-1, 101, "high", True])
def test_quality_outside_0_to_100_is_rejected(codec: ModuleType, quality: object) -> None:
    with pytest.raises(ValueError, match=r"params\['quality'\]"):
        codec.Encoder(64, 48, 25.0, {"quality": quality})


def test_encoder_rejects_a_plane_of_the_wrong_shape_naming_the_frame(codec: ModuleType) -> None:
    encoder = codec.Encoder(64, 48, 25.0, {})
    grey = np.full((24, 32), 128, np.uint8)
    encoder.encode(np.zeros((48, 64), np.uint8), grey, grey)
    with pytest.raises(ValueError, match=r"frame 1: plane u must be uint8 \(24, 32\)"):
        encoder.encode(np.zeros((48, 64), np.uint8), grey[:, :31], grey)


def test_decoder_rejects_a_packet_with_an_unknown_tag(codec: ModuleType) -> None:
    with pytest.raises(ValueError, match="packet 0: bad header"):
        codec.Decoder(64, 48, 25.0).decode(b"\x00\x32garbage")


def test_decoder_rejects_a_truncated_packet(codec: ModuleType, carphone: list[Planes]) -> None:
    packet = run_codec(codec, carphone[:1], CARPHONE_FPS, {}).packets[0]
    with pytest.raises(ValueError, match="packet 0: corrupt zlib payload"):
        codec.Decoder(176, 144, CARPHONE_FPS).decode(packet[: len(packet) // 2])


@pytest.mark.slow
@pytest.mark.parametrize("name", REFERENCE_CODECS)
def test_psnr_and_bytes_rise_with_quality_on_carphone(
    name: str, carphone_sweeps: dict[str, list[tuple[int, float]]]
) -> None:
    sizes, quality = zip(*carphone_sweeps[name], strict=True)
    assert all(a < b for a, b in itertools.pairwise(sizes)), sizes
    assert all(a < b for a, b in itertools.pairwise(quality)), quality


@pytest.mark.slow
@pytest.mark.parametrize("name", REFERENCE_CODECS)
def test_quality_90_exceeds_38_db_on_carphone(
    name: str, carphone_sweeps: dict[str, list[tuple[int, float]]]
) -> None:
    assert carphone_sweeps[name][QUALITIES.index(90)][1] > 38


# --- inter_dct -----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("clip", ["carphone", "bikes"])
def test_inter_decoder_output_is_bit_exact_with_the_encoder_reference(
    inter_dct: ModuleType, clip: str, request: pytest.FixtureRequest
) -> None:
    frames: list[Planes] = request.getfixturevalue(clip)
    run = run_codec(inter_dct, frames, 25.0, {"quality": 60, "intra_period": 8})
    assert len(run.decoded) == len(frames)
    for index, (decoded, reconstruction) in enumerate(
        zip(run.decoded, run.reconstructions, strict=True)
    ):
        assert reconstruction is not None
        for dec_plane, rec_plane in zip(decoded, reconstruction, strict=True):
            assert np.array_equal(dec_plane, rec_plane), f"frame {index} drifts"


def test_inter_codes_intra_frames_at_the_intra_period_only(
    inter_dct: ModuleType, carphone: list[Planes]
) -> None:
    run = run_codec(inter_dct, carphone[:9], CARPHONE_FPS, {"intra_period": 4})
    assert bytes(packet[0] for packet in run.packets) == b"IPPPIPPPI"
    default = run_codec(inter_dct, carphone[:3], CARPHONE_FPS, {})
    assert bytes(packet[0] for packet in default.packets) == b"IPP"


def test_inter_static_frames_are_all_skip_and_repeat_the_reference(
    inter_dct: ModuleType, carphone: list[Planes]
) -> None:
    run = run_codec(inter_dct, [carphone[0]] * 3, CARPHONE_FPS, {"quality": 50})
    assert len(run.packets[1]) < 40  # 99 skip modes and an empty symbol stream, zlib'd
    for later in run.decoded[1:]:
        for plane, first in zip(later, run.decoded[0], strict=True):
            assert np.array_equal(plane, first)


def test_inter_decoder_rejects_a_p_frame_without_a_reference(
    inter_dct: ModuleType, carphone: list[Planes]
) -> None:
    packets = run_codec(inter_dct, carphone[:2], CARPHONE_FPS, {}).packets
    with pytest.raises(ValueError, match="packet 0: P-frame before any I-frame"):
        inter_dct.Decoder(176, 144, CARPHONE_FPS).decode(packets[1])


def test_inter_decoder_rejects_motion_vectors_beyond_the_search_limit(
    inter_dct: ModuleType, carphone: list[Planes]
) -> None:
    decoder = inter_dct.Decoder(176, 144, CARPHONE_FPS)
    decoder.decode(run_codec(inter_dct, carphone[:1], CARPHONE_FPS, {}).packets[0])
    n = 99  # 11 x 9 macroblocks, all coded, each vector 127 further than the one before
    symbols = struct.pack("<I", 6 * n) + bytes([64]) * (6 * n)  # every block: end of block
    stream = bytes([1]) * n + bytes([127]) * (2 * n) + symbols
    with pytest.raises(ValueError, match=r"packet 1: a motion vector exceeds \+-63"):
        decoder.decode(b"P\x32" + zlib.compress(stream))


@pytest.mark.parametrize(
    ("key", "value"), [("intra_period", 0), ("search_range", 64), ("search_range", -1)]
)
def test_inter_rejects_out_of_range_params(inter_dct: ModuleType, key: str, value: int) -> None:
    with pytest.raises(ValueError, match=rf"params\['{key}'\]"):
        inter_dct.Encoder(64, 48, 25.0, {key: value})


def test_inter_without_motion_search_still_round_trips(
    inter_dct: ModuleType, carphone: list[Planes]
) -> None:
    searched = run_codec(inter_dct, carphone[:6], CARPHONE_FPS, {"search_range": 16})
    still = run_codec(inter_dct, carphone[:6], CARPHONE_FPS, {"search_range": 0})
    assert len(still.decoded) == 6
    assert psnr_y(carphone[:6], still.decoded) > 30
    assert still.total_bytes > searched.total_bytes


@pytest.mark.slow
def test_inter_needs_fewer_bytes_than_intra_for_the_same_psnr_on_carphone(
    carphone_sweeps: dict[str, list[tuple[int, float]]],
) -> None:
    for intra_bytes, intra_psnr in carphone_sweeps["intra_dct"][1:4]:
        assert bytes_at_psnr(carphone_sweeps["inter_dct"], intra_psnr) < 0.7 * intra_bytes


@pytest.mark.slow
def test_inter_needs_fewer_bytes_than_intra_for_the_same_psnr_on_bikes(
    intra_dct: ModuleType, inter_dct: ModuleType, bikes: list[Planes]
) -> None:
    frames = bikes[:12]
    intra = run_codec(intra_dct, frames, BIKES_FPS, {"quality": 30})
    intra_psnr = psnr_y(frames, intra.decoded)
    curve = []
    for quality in (30, 50, 70):
        run = run_codec(inter_dct, frames, BIKES_FPS, {"quality": quality})
        curve.append((run.total_bytes, psnr_y(frames, run.decoded)))
    assert bytes_at_psnr(curve, intra_psnr) < 0.7 * intra.total_bytes
