"""prepare_clip: specs to raw frames with a stable hash, built-in caching, bad specs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from codeclab.video.builtin import BUILTIN_CLIPS, generate_builtin
from codeclab.video.clips import (
    PreparedClip,
    builtin_cache_path,
    list_builtin_clips,
    prepare_clip,
)
from codeclab.video.source import VideoInputError

CLIPS = Path(__file__).resolve().parents[2] / ".." / "shared" / "clips"


def _clip(name: str) -> Path:
    path = CLIPS / name
    if not path.is_file():
        pytest.skip(f"real test clip not found at {path} (expects ../shared/clips beside the repo)")
    return path


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One built-in cache for the module, so lab-cif is generated once."""
    return tmp_path_factory.mktemp("builtin-cache")


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_builtin_clip_is_prepared_with_the_hash_of_its_raw_bytes(
    tmp_path: Path, cache_dir: Path
) -> None:
    clip = prepare_clip("builtin:lab-cif", tmp_path, cache_dir=cache_dir)
    assert (clip.name, clip.source, clip.start, clip.container) == (
        "lab-cif",
        "builtin:lab-cif",
        0,
        "y4m",
    )
    assert clip.frame_count == 60
    assert clip.format == BUILTIN_CLIPS["lab-cif"].format
    assert clip.duration_seconds == pytest.approx(2.0)
    assert clip.raw.path == tmp_path / f"lab-cif-0-60-{clip.sha256[:12]}.yuv"
    assert clip.raw.path.stat().st_size == 60 * clip.format.frame_bytes
    assert clip.sha256 == _file_sha256(clip.raw.path)


def test_builtin_cache_holds_exactly_the_generated_frames(tmp_path: Path, cache_dir: Path) -> None:
    clip = prepare_clip("builtin:lab-cif", tmp_path, cache_dir=cache_dir)
    generated = hashlib.sha256(b"".join(f.to_bytes() for f in generate_builtin("lab-cif")))
    assert clip.sha256 == generated.hexdigest()


def test_builtin_is_generated_once_and_then_read_from_the_cache(
    tmp_path: Path, cache_dir: Path
) -> None:
    first = prepare_clip("builtin:lab-cif", tmp_path / "a", cache_dir=cache_dir)
    cached = builtin_cache_path("lab-cif", cache_dir)
    stamp = cached.stat().st_mtime_ns
    second = prepare_clip("builtin:lab-cif", tmp_path / "b", cache_dir=cache_dir)
    assert cached.stat().st_mtime_ns == stamp
    assert second.sha256 == first.sha256
    assert sorted(p.name for p in cache_dir.iterdir()) == [cached.name]


def test_builtin_cache_defaults_to_the_workdir(tmp_path: Path) -> None:
    clip = prepare_clip("builtin:lab-cif", tmp_path, frames=2)
    assert builtin_cache_path("lab-cif", tmp_path / "builtin").is_file()
    assert clip.frame_count == 2


def test_hash_changes_with_start_and_frames(tmp_path: Path, cache_dir: Path) -> None:
    def sha(start: int, frames: int) -> str:
        clip = prepare_clip(
            "builtin:lab-cif", tmp_path, start=start, frames=frames, cache_dir=cache_dir
        )
        assert clip.raw.path.name == f"lab-cif-{start}-{frames}-{clip.sha256[:12]}.yuv"
        return clip.sha256

    base = sha(0, 10)
    assert sha(0, 10) == base
    assert len({base, sha(1, 10), sha(0, 11)}) == 3


def test_frames_beyond_the_end_take_what_exists(tmp_path: Path, cache_dir: Path) -> None:
    clip = prepare_clip("builtin:lab-cif", tmp_path, start=55, frames=100, cache_dir=cache_dir)
    assert clip.frame_count == 5
    assert clip.raw.path.name == f"lab-cif-55-5-{clip.sha256[:12]}.yuv"


def test_to_dict_is_json_safe_and_complete(tmp_path: Path) -> None:
    path = _clip("carphone_qcif.y4m")
    clip = prepare_clip(str(path), tmp_path, start=10, frames=30)
    record = json.loads(json.dumps(clip.to_dict()))
    assert record == {
        "name": "carphone_qcif.y4m",
        "source": str(path.absolute()),
        "container": "y4m",
        "width": 176,
        "height": 144,
        "fps": "30000/1001",
        "frames": 30,
        "start": 10,
        "sha256": clip.sha256,
        "duration": pytest.approx(30 * 1001 / 30000),
    }


def test_carphone_mp4_and_y4m_prepare_to_the_same_pixels(tmp_path: Path) -> None:
    y4m = prepare_clip(str(_clip("carphone_qcif.y4m")), tmp_path)
    mp4 = prepare_clip(str(_clip("carphone_pristine.mp4")), tmp_path)
    assert (y4m.frame_count, mp4.frame_count) == (120, 120)
    assert y4m.raw.path.name == f"carphone_qcif.y4m-0-120-{y4m.sha256[:12]}.yuv"
    assert mp4.raw.path.name == f"carphone_pristine.mp4-0-120-{mp4.sha256[:12]}.yuv"
    assert "mp4" in mp4.container
    assert mp4.sha256 == y4m.sha256


def test_prepared_raw_file_reads_back_frame_by_frame(tmp_path: Path) -> None:
    clip = prepare_clip(str(_clip("bikes.mp4")), tmp_path, start=100, frames=3)
    assert isinstance(clip, PreparedClip)
    assert len(clip.raw) == 3
    assert clip.raw.frame(2).y.shape == (272, 640)


def test_unknown_builtin_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(VideoInputError, match="known clips: lab-cif, lab-720p"):
        prepare_clip("builtin:foreman", tmp_path)


def test_builtin_name_without_prefix_gets_a_hint(tmp_path: Path) -> None:
    with pytest.raises(VideoInputError, match="write builtin:lab-cif"):
        prepare_clip("lab-cif", tmp_path)


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(VideoInputError, match="no such file"):
        prepare_clip(str(tmp_path / "absent.mp4"), tmp_path)


@pytest.mark.parametrize(("start", "frames"), [(0, 0), (0, -1), (-2, None)])
def test_invalid_window_is_refused(tmp_path: Path, start: int, frames: int | None) -> None:
    with pytest.raises(VideoInputError, match="must be"):
        prepare_clip("builtin:lab-cif", tmp_path, start=start, frames=frames)


def test_failed_preparation_leaves_no_partial_file(tmp_path: Path) -> None:
    source = tmp_path / "src" / "cut.y4m"
    source.parent.mkdir()
    data = _clip("carphone_qcif.y4m").read_bytes()
    source.write_bytes(data[: len(data) // 2])
    workdir = tmp_path / "work"
    with pytest.raises(VideoInputError, match=r"cut\.y4m: frame 59 is truncated"):
        prepare_clip(str(source), workdir)
    assert list(workdir.iterdir()) == []


def test_list_builtin_clips_returns_the_catalogue() -> None:
    assert [c.name for c in list_builtin_clips()] == ["lab-cif", "lab-720p"]
