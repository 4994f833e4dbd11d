"""PNG writing and colour conversion, checked with an independent decoder (Pillow)."""

from __future__ import annotations

import io
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from codeclab.video.frames import Frame, VideoFormat
from codeclab.web.images import colour_map, difference_image, encode_png, frame_to_rgb


def test_an_rgb_png_decodes_to_the_same_pixels() -> None:
    pixels = np.random.default_rng(3).integers(0, 256, (13, 17, 3), dtype=np.uint8)
    image = Image.open(io.BytesIO(encode_png(pixels)))
    assert image.mode == "RGB" and image.size == (17, 13)
    np.testing.assert_array_equal(np.asarray(image), pixels)


def test_a_grey_png_decodes_to_the_same_pixels() -> None:
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    image = Image.open(io.BytesIO(encode_png(pixels)))
    assert image.mode == "L"
    np.testing.assert_array_equal(np.asarray(image), pixels)


@pytest.mark.parametrize("shape", [(0, 4, 3), (4, 4, 4), (4,)])
def test_unwritable_shapes_are_refused(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        encode_png(np.zeros(shape, np.uint8))


def test_limited_range_black_white_and_grey_convert_to_neutral_rgb() -> None:
    fmt = VideoFormat(4, 2, Fraction(25))
    y = np.array([[16, 235, 126, 126], [16, 235, 126, 126]], np.uint8)
    rgb = frame_to_rgb(Frame(y, np.full((1, 2), 128, np.uint8), np.full((1, 2), 128, np.uint8)))
    assert fmt.width == rgb.shape[1]
    np.testing.assert_array_equal(rgb[0, 0], [0, 0, 0])
    np.testing.assert_array_equal(rgb[0, 1], [255, 255, 255])
    assert np.ptp(rgb[0, 2]) == 0 and 126 <= rgb[0, 2, 0] <= 130


def test_the_difference_is_signed_around_mid_grey() -> None:
    blank = np.full((1, 1), 128, np.uint8)
    original = Frame(np.array([[100, 100, 100, 100]], np.uint8), blank, blank)
    changed = Frame(np.array([[100, 110, 90, 200]], np.uint8), blank, blank)
    np.testing.assert_array_equal(difference_image(original, changed), [[128, 168, 88, 255]])


def test_the_colour_map_gets_brighter() -> None:
    colours = colour_map(np.linspace(0, 1, 9)).astype(int).sum(axis=1)
    assert list(colours) == sorted(colours)
