"""Campaign images: decoded whole before they are accepted, and re-encoded before they are stored.

An ad image is shown to every listener, so what is stored is only ever a file Megabox wrote
from the decoded pixels (``prepare``):

- The format is decided by the bytes (PNG, JPEG, WebP or GIF, ``IMAGE_SIGNATURES``), never by
  the file's name, and Pillow must read the same format.
- The canvas the header declares is checked against ``AD_IMAGE_MAX_PIXELS`` before any pixel
  is decoded, since a small file can declare a huge canvas. Pillow's own decompression-bomb
  guard is refused with the same message.
- Every pixel is then decoded (``Image.load``), so a truncated or corrupt file is refused
  rather than shown half grey.
- The stored file is encoded anew from those pixels, turned upright by any EXIF orientation:
  a JPEG stays a JPEG (with its own quantisation tables where it can, so it loses nothing
  visible), and PNG, WebP and GIF become PNG. An animated GIF, WebP or PNG keeps its first
  frame only: the slot shows a still image. No metadata (EXIF, colour profile, comments) and
  no bytes after the image's end (a polyglot's payload) reach storage.
- The re-encoded file must fit ``AD_IMAGE_MAX_BYTES`` too, since every listener downloads it;
  a lossy WebP can grow a lot as a PNG.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from io import BytesIO

from PIL import ExifTags, Image, UnidentifiedImageError

from app.ads.errors import InvalidAdImage

# The formats an ad image may be, by the bytes it starts with, and Pillow's name for each.
IMAGE_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"WEBP", 8, "WEBP"),  # after "RIFF" and the chunk size
)
IMAGE_FORMATS_FOR_PEOPLE = "PNG, JPEG, WebP or GIF"
# What each accepted format is stored as.
STORED_AS = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "PNG", "GIF": "PNG"}
MIMETYPES = {"JPEG": "image/jpeg", "PNG": "image/png"}
# The quality of a JPEG that had to be changed (turned upright, or converted to RGB), and so
# cannot keep the tables it came with.
JPEG_QUALITY = 90
# Modes written as they are; anything else is converted to RGB (JPEG) or RGBA (PNG) first.
JPEG_MODES = frozenset({"L", "RGB"})
PNG_MODES = frozenset({"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"})
# What Pillow raises for a file it cannot decode to the end.
# How to turn a picture upright, by its EXIF orientation (1, upright, needs nothing).
UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_DECODE_ERRORS = (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError)
_TOO_LARGE = (Image.DecompressionBombError, Image.DecompressionBombWarning)
DAMAGED = "That image is incomplete or damaged. Save it again and choose it anew."


@dataclass(frozen=True)
class AdImage:
    """A campaign image as stored: bytes Megabox encoded, and their MIME type."""

    data: bytes
    mimetype: str


def sniff_format(data: bytes) -> str | None:
    """Pillow's name of the format ``data`` starts as ("PNG"), or None if none we take."""
    for signature, offset, name in IMAGE_SIGNATURES:
        if data[offset : offset + len(signature)] == signature:
            if name == "WEBP" and not data.startswith(b"RIFF"):
                continue
            return name
    return None


def prepare(data: bytes, *, max_bytes: int, max_pixels: int) -> AdImage:
    """``data`` decoded whole and encoded anew, as the module docstring says.

    Raises InvalidAdImage with a message for people: too large (bytes or pixels), empty, not
    an image Megabox shows, or incomplete or damaged.
    """
    if len(data) > max_bytes:
        raise InvalidAdImage(f"The image is larger than {bytes_for_people(max_bytes)}. "
                             "Choose a smaller file.")  # fmt: skip
    if not data:
        raise InvalidAdImage("The chosen file is empty.")
    sniffed = sniff_format(data)
    if sniffed is None:
        raise InvalidAdImage(
            f"That file is not an image Megabox shows: use {IMAGE_FORMATS_FOR_PEOPLE}."
        )
    try:
        with Image.open(BytesIO(data), formats=[sniffed]) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise InvalidAdImage(
                    f"The image is {width} × {height} pixels; an ad image has at most"
                    f" {pixels_for_people(max_pixels)}. Make it smaller and choose it again."
                )
            image.load()
            encoded = _encode(image, STORED_AS[sniffed])
    except _TOO_LARGE:
        raise InvalidAdImage(
            f"That image is too large to show: an ad image has at most"
            f" {pixels_for_people(max_pixels)}."
        ) from None
    except _DECODE_ERRORS:
        raise InvalidAdImage(DAMAGED) from None
    if len(encoded.data) > max_bytes:
        raise InvalidAdImage(
            f"Stored as {encoded.mimetype.removeprefix('image/').upper()}, without its hidden"
            f" data, this image takes more than {bytes_for_people(max_bytes)}. Make it smaller,"
            " or use a JPEG."
        )
    return encoded


def pixels_for_people(limit: int) -> str:
    """``4096 × 4096 pixels`` for a square limit, else ``16,000,000 pixels``."""
    side = math.isqrt(limit)
    if side * side == limit:
        return f"{side} × {side} pixels"
    return f"{limit:,} pixels"


def bytes_for_people(size: int) -> str:
    for unit, scale in (("MiB", 1024**2), ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:g} {unit}"
    return f"{size} bytes"


def _encode(image: Image.Image, stored_as: str) -> AdImage:
    """A new file of ``stored_as`` from the decoded first frame, without any metadata."""
    turn = UPRIGHT.get(image.getexif().get(ExifTags.Base.Orientation, 1))
    # Only a palette's transparency is part of the pixels; everything else in ``info`` is
    # metadata that would otherwise be written back (a JPEG's comment, a PNG's profile).
    transparency = image.info.get("transparency")
    image.info = {} if transparency is None else {"transparency": transparency}
    out = BytesIO()
    if stored_as == "JPEG" and turn is None and image.mode in JPEG_MODES:
        image.save(out, "JPEG", quality="keep")
    else:
        modes = JPEG_MODES if stored_as == "JPEG" else PNG_MODES
        if image.mode not in modes:
            image = image.convert("RGB" if stored_as == "JPEG" else "RGBA")
        if turn is not None:
            image = image.transpose(turn)
        image.save(out, stored_as, **({"quality": JPEG_QUALITY} if stored_as == "JPEG" else {}))
    return AdImage(out.getvalue(), MIMETYPES[stored_as])
