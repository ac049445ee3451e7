from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image

from media_worker.covers import DEFAULT_THUMBNAIL_SIZES, MAX_COVER_PIXELS, thumbnails
from media_worker.errors import RejectedImage
from media_worker.tags import read_tags
from tests import audio_fixtures
from tests.audio_fixtures import Cover

CRIMSON = (220, 20, 60)
WHITE = (255, 255, 255)
# JPEG moves colours a little.
COLOUR_TOLERANCE = 12


def opened(data: bytes) -> Image.Image:
    image = Image.open(BytesIO(data))
    image.load()
    return image


def close_to(actual: tuple[int, ...], expected: tuple[int, int, int]) -> bool:
    return all(abs(a - e) <= COLOUR_TOLERANCE for a, e in zip(actual, expected))


def test_every_default_size_is_a_square_jpeg() -> None:
    made = thumbnails(audio_fixtures.cover_image(1000, 1000))
    assert sorted(made) == sorted(DEFAULT_THUMBNAIL_SIZES)
    for size, data in made.items():
        image = opened(data)
        assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (size, size))


def test_a_wide_image_is_cropped_about_its_centre() -> None:
    # 800 x 200 with a 50 px white block in the middle: the centre 200 x 200 square shows
    # the block a quarter as wide as itself, so 25 px of the 100 px thumbnail, centred.
    # Squashed instead of cropped, the block would be 6 px wide; cropped off-centre, it
    # would be missing.
    image = opened(thumbnails(audio_fixtures.cover_image(800, 200), sizes=[100])[100])
    for x in (42, 50, 58):
        assert close_to(image.getpixel((x, 50)), WHITE)
    for x in (2, 30, 70, 97):
        assert close_to(image.getpixel((x, 50)), CRIMSON)


def test_small_sources_are_scaled_up_to_the_size_asked_for() -> None:
    image = opened(thumbnails(audio_fixtures.cover_image(50, 50), sizes=[300])[300])
    assert image.size == (300, 300)


def test_transparency_is_flattened_onto_white() -> None:
    clear = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    out = BytesIO()
    clear.save(out, "PNG")
    image = opened(thumbnails(out.getvalue(), sizes=[64])[64])
    assert close_to(image.getpixel((32, 32)), WHITE)


def test_exif_orientation_is_applied() -> None:
    # Stored 200 x 100, but EXIF orientation 6 says "rotate 90° clockwise to view".
    stored = Image.new("RGB", (200, 100), "crimson")
    stored.paste("white", (0, 0, 100, 100))  # the left half of the stored image
    exif = Image.Exif()
    exif[0x0112] = 6
    out = BytesIO()
    stored.save(out, "JPEG", exif=exif)
    image = opened(thumbnails(out.getvalue(), sizes=[100])[100])
    # Upright it is 100 x 200 with white on top; the centre crop is the middle 100 rows,
    # white above the middle and crimson below.
    assert close_to(image.getpixel((50, 10)), WHITE)
    assert close_to(image.getpixel((50, 90)), CRIMSON)


@pytest.mark.parametrize(
    "data", [b"", b"GIF89a but not really", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40]
)
def test_bytes_that_are_not_an_image_are_rejected(data: bytes) -> None:
    with pytest.raises(RejectedImage) as caught:
        thumbnails(data)
    assert caught.value.code == "not_image"


def test_an_image_over_the_pixel_cap_is_rejected_before_decoding() -> None:
    # A one-bit image compresses to almost nothing but declares 48 million pixels.
    huge = Image.new("1", (8000, 6000))
    assert 8000 * 6000 > MAX_COVER_PIXELS
    out = BytesIO()
    huge.save(out, "PNG")
    with pytest.raises(RejectedImage) as caught:
        thumbnails(out.getvalue())
    assert caught.value.code == "image_too_large"


def test_a_cover_read_from_tags_makes_thumbnails(tmp_path: Path) -> None:
    path = audio_fixtures.synthesise(tmp_path, "with-cover", "opus", seconds=0.2)
    audio_fixtures.write_tags(path, "opus", {}, [Cover(audio_fixtures.cover_image(640, 480))])
    cover = read_tags(path).cover
    assert cover is not None
    made = thumbnails(cover.data, sizes=[300, 100])
    assert [opened(made[size]).size for size in (300, 100)] == [(300, 300), (100, 100)]
