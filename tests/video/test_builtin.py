"""The generated built-in clips: bit-identical everywhere, natural-looking, moving."""

from __future__ import annotations

import hashlib
import itertools
from fractions import Fraction

import numpy as np
import pytest

from codeclab.video.builtin import (
    BUILTIN_CLIPS,
    DEFAULT_FRAME_COUNT,
    UnknownBuiltinError,
    _unit_noise,
    generate_builtin,
    rgb_to_yuv420,
)
from codeclab.video.frames import Frame

# sha256 of the first frames' yuv420p bytes. These pin the generator: the same bytes must
# come out on every machine and every numpy version. If a deliberate change to the
# generator alters them, bump GENERATOR_VERSION (so cached clips are regenerated) and
# update these values.
GOLDEN = {
    ("lab-cif", 3): "b807342f5ef10e15ccffb9c6a53059135733517efd0331a04812d1cfae98f4bd",
    ("lab-720p", 2): "09fb647d449c9b9ce62d33266b902ac9e11bca8e684a46cb1692b5acefe1f036",
}


def _digest(frames: list[Frame]) -> str:
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(frame.to_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def cif_frames() -> list[Frame]:
    return list(generate_builtin("lab-cif", 12))


def test_catalogue_holds_cif_and_720p_at_30_fps_60_frames() -> None:
    assert {name: (c.width, c.height) for name, c in BUILTIN_CLIPS.items()} == {
        "lab-cif": (352, 288),
        "lab-720p": (1280, 720),
    }
    for clip in BUILTIN_CLIPS.values():
        assert clip.fps == Fraction(30)
        assert clip.frame_count == DEFAULT_FRAME_COUNT == 60
        assert clip.description


@pytest.mark.parametrize(("name", "count"), sorted(GOLDEN))
def test_generated_bytes_match_the_pinned_digest(name: str, count: int) -> None:
    frames = list(generate_builtin(name, count))
    clip = BUILTIN_CLIPS[name]
    for frame in frames:
        frame.check(clip.format)
    assert _digest(frames) == GOLDEN[(name, count)]


def test_generating_twice_gives_identical_frames(cif_frames: list[Frame]) -> None:
    assert _digest(list(generate_builtin("lab-cif", 12))) == _digest(cif_frames)


def test_a_shorter_clip_is_a_prefix_of_a_longer_one(cif_frames: list[Frame]) -> None:
    assert _digest(list(generate_builtin("lab-cif", 5))) == _digest(cif_frames[:5])


def test_default_length_is_the_clip_frame_count() -> None:
    assert sum(1 for _ in generate_builtin("lab-cif")) == 60


def test_pictures_have_natural_contrast_and_colour(cif_frames: list[Frame]) -> None:
    for frame in cif_frames:
        assert float(frame.y.std()) > 20
        assert float(frame.u.std()) > 3
        assert float(frame.v.std()) > 3
        assert int(frame.y.min()) >= 1 and int(frame.y.max()) <= 254


def test_every_frame_moves(cif_frames: list[Frame]) -> None:
    for before, after in itertools.pairwise(cif_frames):
        change = np.abs(before.y.astype(np.int16) - after.y.astype(np.int16))
        assert float(change.mean()) > 2.0
    drift = np.abs(cif_frames[0].y.astype(np.int16) - cif_frames[-1].y.astype(np.int16))
    assert float(drift.mean()) > 10.0


def test_720p_frames_have_the_720p_shape() -> None:
    frame = next(generate_builtin("lab-720p", 1))
    assert frame.y.shape == (720, 1280)
    assert frame.u.shape == frame.v.shape == (360, 640)
    assert float(frame.y.std()) > 20


def test_unknown_name_lists_the_known_clips() -> None:
    with pytest.raises(UnknownBuiltinError, match=r"'lab-4k'; known clips: lab-cif, lab-720p"):
        generate_builtin("lab-4k")


def test_zero_frames_is_refused() -> None:
    with pytest.raises(ValueError, match="frame count must be 1 or more"):
        generate_builtin("lab-cif", 0)


@pytest.mark.parametrize(
    ("rgb", "yuv"),
    [
        ((0, 0, 0), (16, 128, 128)),
        ((255, 255, 255), (235, 128, 128)),
        ((255, 0, 0), (81, 90, 240)),
        ((0, 255, 0), (145, 54, 34)),
        ((0, 0, 255), (41, 240, 110)),
    ],
)
def test_colour_conversion_is_bt601_limited_range(
    rgb: tuple[int, int, int], yuv: tuple[int, int, int]
) -> None:
    image = np.empty((3, 4, 6))
    image[:] = np.array(rgb, dtype=np.float64)[:, None, None]
    frame = rgb_to_yuv420(image)
    assert frame.y.shape == (4, 6) and frame.u.shape == (2, 3)
    assert (int(frame.y[0, 0]), int(frame.u[0, 0]), int(frame.v[0, 0])) == yuv


def test_chroma_is_the_mean_of_each_2x2_block_and_odd_edges_repeat() -> None:
    image = np.zeros((3, 3, 3))
    image[2, 0, 0] = 255.0  # one blue pixel in the top-left 2x2 block
    frame = rgb_to_yuv420(image)
    assert frame.u.shape == (2, 2)
    assert int(frame.u[0, 0]) == round(128 + 112 / 4)
    assert int(frame.u[1, 1]) == 128


def test_noise_is_reproducible_and_unit_gaussian_like() -> None:
    noise = _unit_noise((1, 2, 3), 200_000)
    np.testing.assert_array_equal(noise, _unit_noise((1, 2, 3), 200_000))
    assert not np.array_equal(noise, _unit_noise((1, 2, 4), 200_000))
    assert abs(float(noise.mean())) < 0.01
    assert abs(float(noise.std()) - 1.0) < 0.01
    assert float(np.abs(noise).max()) < 3.5  # bounded: a sum of four uniforms
