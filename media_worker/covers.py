"""Cover art: square JPEG thumbnails made with Pillow.

Images are checked before they are decoded: anything Pillow cannot identify is ``not_image``
and anything over ``MAX_COVER_PIXELS`` is ``image_too_large`` (a small file can declare a
huge canvas, so this is what bounds memory). Thumbnails are centre-cropped to a square,
turned upright by their EXIF orientation, flattened onto white if transparent, and saved
without any of the source's metadata. Every requested size is produced exactly, scaling up a
small source if it must, so pages can rely on the dimensions.
"""

from __future__ import annotations

from collections.abc import Iterable
from io import BytesIO

from PIL import Image, ImageOps, UnidentifiedImageError

from media_worker.errors import IMAGE_TOO_LARGE, NOT_IMAGE, RejectedImage

MAX_COVER_PIXELS = 40_000_000  # 6324 × 6324; covers are sold at 3000 × 3000 at most
DEFAULT_THUMBNAIL_SIZES = (1200, 600, 300, 100)
JPEG_QUALITY = 86
BACKGROUND = (255, 255, 255)
CENTRE = (0.5, 0.5)

_PILLOW_ERRORS = (
    UnidentifiedImageError,
    OSError,
    ValueError,
    SyntaxError,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
)


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from an image's header, or None if Pillow cannot read it."""
    try:
        with Image.open(BytesIO(data)) as image:
            return image.size
    except _PILLOW_ERRORS:
        return None


def image_mime(data: bytes) -> str | None:
    """The MIME type an image's header shows ("image/png"), or None if Pillow cannot read it.

    For pictures stored with no type of their own (APEv2 cover items).
    """
    try:
        with Image.open(BytesIO(data)) as image:
            return Image.MIME.get(image.format or "")
    except _PILLOW_ERRORS:
        return None


def thumbnails(
    image_bytes: bytes, sizes: Iterable[int] = DEFAULT_THUMBNAIL_SIZES
) -> dict[int, bytes]:
    """Square JPEGs of ``image_bytes``, one per size in pixels, keyed by size.

    Raises RejectedImage: ``not_image`` when the bytes are not a readable image,
    ``image_too_large`` when it has more than ``MAX_COVER_PIXELS`` pixels.
    """
    wanted = sorted(set(sizes), reverse=True)
    if not wanted or wanted[-1] < 1:
        raise ValueError(f"thumbnail sizes must be positive: {sorted(wanted)}")
    try:
        with Image.open(BytesIO(image_bytes)) as image:
            width, height = image.size
            if width * height > MAX_COVER_PIXELS:
                raise RejectedImage(
                    IMAGE_TOO_LARGE,
                    f"The image is {width} × {height} pixels; the limit is"
                    f" {MAX_COVER_PIXELS:,} pixels.",
                )
            # A JPEG can decode straight to a smaller scale, which is much cheaper.
            image.draft("RGB", (wanted[0], wanted[0]))
            square = _square_rgb(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise RejectedImage(IMAGE_TOO_LARGE, "The image is too large.") from None
    except _PILLOW_ERRORS:
        raise RejectedImage(NOT_IMAGE, "This file is not an image we can read.") from None
    result = {}
    for size in wanted:
        # Each size is made from the previous, larger one: cheaper and just as sharp.
        square = square.resize((size, size), Image.Resampling.LANCZOS)
        result[size] = _jpeg(square)
    return result


def _square_rgb(image: Image.Image) -> Image.Image:
    """Upright, opaque RGB, centre-cropped to a square (the pixels are decoded here)."""
    upright = ImageOps.exif_transpose(image)
    if upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info:
        rgba = upright.convert("RGBA")
        flat = Image.new("RGB", rgba.size, BACKGROUND)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        upright = flat
    rgb = upright.convert("RGB")
    side = min(rgb.size)
    return ImageOps.fit(rgb, (side, side), centering=CENTRE)


def _jpeg(image: Image.Image) -> bytes:
    out = BytesIO()
    image.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
    return out.getvalue()
