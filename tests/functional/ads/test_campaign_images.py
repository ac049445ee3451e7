"""Campaign images: decoded whole before they are accepted (truncated files, huge canvases and
decompression bombs refused), and stored only as Megabox re-encoded them (no metadata, no
appended payloads, the first frame of an animation, upright)."""

from __future__ import annotations

import struct
import zlib
from io import BytesIO
from typing import Any

import pytest
from PIL import Image, ImageChops
from sqlalchemy import func, select

from app.ads import images
from app.ads.errors import InvalidAdImage
from app.ads.models import Campaign
from app.vault.models import VaultObject
from tests.factories import UserFactory
from tests.functional.ads.conftest import image_bytes
from tests.functional.ads.test_campaign_pages import DAMAGED, field_errors, post_new

LIMITS = {"max_bytes": 2 * 1024 * 1024, "max_pixels": 4096 * 4096}
PAYLOAD = b"<html><script>alert('stored')</script></html>"


def prepare(data: bytes, **limits: int) -> images.AdImage:
    return images.prepare(data, **{**LIMITS, **limits})


def refusal(data: bytes, **limits: int) -> str:
    with pytest.raises(InvalidAdImage) as refused:
        prepare(data, **limits)
    return refused.value.message


def opened(data: bytes) -> Image.Image:
    image = Image.open(BytesIO(data))
    image.load()
    return image


def same_pixels(first: Image.Image, second: Image.Image, tolerance: int = 0) -> bool:
    if first.size != second.size:
        return False
    difference = ImageChops.difference(first.convert("RGBA"), second.convert("RGBA"))
    return max(high for _, high in difference.getextrema()) <= tolerance


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` × ``height`` but holds one row of pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" + b"\x00\x80\x80" * min(width, 16))

    def chunk(kind: bytes, body: bytes) -> bytes:
        checksum = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + checksum

    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def noise(size: tuple[int, int], fmt: str, **options: Any) -> bytes:
    out = BytesIO()
    Image.effect_noise(size, 80).convert("RGB").save(out, format=fmt, **options)
    return out.getvalue()


# Refused -------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_a_truncated_image_is_refused(fmt):
    whole = noise((64, 48), fmt)
    assert refusal(whole[: len(whole) // 2]) == DAMAGED


def test_a_canvas_over_the_pixel_limit_is_refused_before_it_is_decoded():
    assert refusal(png_declaring(5000, 5000)) == (
        "The image is 5000 × 5000 pixels; an ad image has at most 4096 × 4096 pixels."
        " Make it smaller and choose it again."
    )


def test_the_pixel_limit_itself_is_allowed():
    assert prepare(image_bytes("PNG", size=(64, 64)), max_pixels=64 * 64).mimetype == "image/png"
    assert "at most 64 × 64 pixels" in refusal(image_bytes("PNG", size=(65, 64)), max_pixels=4096)
    assert "at most 5,000 pixels" in refusal(image_bytes("PNG", size=(100, 51)), max_pixels=5000)


def test_a_decompression_bomb_is_refused_whatever_the_setting():
    message = refusal(png_declaring(20_000, 20_000), max_pixels=10**9)
    assert message == (
        "That image is too large to show: an ad image has at most 1,000,000,000 pixels."
    )


def test_an_image_too_large_once_stored_is_refused():
    lossy = noise((700, 700), "WEBP", quality=30)
    as_png = len(prepare(lossy, max_bytes=10**8).data)
    assert len(lossy) < as_png
    message = refusal(lossy, max_bytes=(len(lossy) + as_png) // 2)
    assert message.startswith("Stored as PNG, without its hidden data, this image takes more")


# Re-encoded ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF"])
def test_appended_bytes_never_reach_storage(fmt):
    data = image_bytes(fmt, size=(30, 20))
    stored = prepare(data + PAYLOAD)
    assert PAYLOAD not in stored.data and b"<script>" not in stored.data
    assert same_pixels(opened(stored.data), opened(data), tolerance=8)


def test_metadata_never_reaches_storage():
    out = BytesIO()
    exif = Image.Exif()
    exif[0x010E] = PAYLOAD.decode()  # ImageDescription
    Image.new("RGB", (30, 20), "navy").save(out, "JPEG", comment=PAYLOAD, exif=exif)
    stored = prepare(out.getvalue())
    assert PAYLOAD not in stored.data
    assert not opened(stored.data).getexif()


def test_a_jpeg_stays_a_jpeg_with_its_own_quality():
    data = noise((120, 80), "JPEG", quality=55)
    stored = prepare(data)
    assert stored.mimetype == "image/jpeg"
    original, again = opened(data), opened(stored.data)
    assert again.format == "JPEG"
    assert again.quantization == original.quantization
    assert same_pixels(again, original, tolerance=48)


def test_a_cmyk_jpeg_is_stored_as_rgb():
    out = BytesIO()
    Image.new("CMYK", (20, 10), (0, 255, 255, 0)).save(out, "JPEG")
    stored = opened(prepare(out.getvalue()).data)
    assert (stored.format, stored.mode, stored.size) == ("JPEG", "RGB", (20, 10))


def test_a_sideways_photo_is_stored_upright():
    out = BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to view
    picture = Image.new("RGB", (40, 20), "white")
    picture.paste((200, 0, 0), (0, 0, 10, 20))  # a red band on the left edge as stored
    picture.save(out, "JPEG", exif=exif, quality=95)
    stored = opened(prepare(out.getvalue()).data)
    assert stored.size == (20, 40)
    assert not stored.getexif()
    top_left, bottom_right = stored.getpixel((10, 2)), stored.getpixel((10, 37))
    assert top_left[0] > 150 and top_left[1] < 80  # the band is on top now
    assert min(bottom_right) > 200


def test_an_animated_gif_keeps_its_first_frame_as_a_png():
    frames = [Image.new("RGB", (16, 8), colour) for colour in ("red", "blue", "green")]
    out = BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert opened(out.getvalue()).n_frames == 3
    stored = prepare(out.getvalue())
    image = opened(stored.data)
    assert (stored.mimetype, image.format, getattr(image, "n_frames", 1)) == (
        "image/png", "PNG", 1,
    )  # fmt: skip
    assert same_pixels(image, frames[0])


def test_a_transparent_image_keeps_its_transparency():
    out = BytesIO()
    Image.new("RGBA", (10, 10), (0, 128, 0, 0)).save(out, "WEBP", lossless=True)
    stored = opened(prepare(out.getvalue()).data)
    assert stored.format == "PNG"
    assert stored.convert("RGBA").getpixel((5, 5))[3] == 0


# Through the form ------------------------------------------------------------------------------


def vault_objects(session: Any) -> int:
    return session.scalar(select(func.count()).select_from(VaultObject))


def test_the_form_refuses_a_truncated_image_and_stores_nothing(client, session, admin):
    whole = image_bytes("PNG", size=(300, 200))
    response = post_new(client, image=whole[: len(whole) // 2], filename="half.png")
    assert response.status_code == 422
    assert field_errors(response.get_data(as_text=True), "image") == [DAMAGED]
    assert session.scalar(select(Campaign)) is None
    assert vault_objects(session) == 0


def test_the_form_names_the_pixel_limit(client, session, admin):
    response = post_new(client, image=png_declaring(8000, 3000), filename="huge.png")
    assert response.status_code == 422
    [message] = field_errors(response.get_data(as_text=True), "image")
    assert "at most 4096 × 4096 pixels" in message
    page = client.get("/admin/ads/new").get_data(as_text=True)
    assert "4096 × 4096 pixels" in page


def test_the_form_stores_and_serves_the_clean_copy(client, session, admin):
    data = image_bytes("GIF", size=(24, 12)) + PAYLOAD
    assert post_new(client, image=data, filename="banner.gif").status_code == 302
    campaign = session.scalars(select(Campaign)).one()
    served = client.get(f"/ads/{campaign.id}/image")
    assert (served.mimetype, campaign.image_mimetype) == ("image/png", "image/png")
    assert PAYLOAD not in served.data
    assert served.data == prepare(data).data


def test_only_admins_upload(client, auth, session):
    auth.login(UserFactory().email)
    assert post_new(client).status_code == 403
    assert vault_objects(session) == 0
