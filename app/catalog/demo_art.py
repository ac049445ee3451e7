"""Generated art for the demo catalogue: release covers and artist avatars, drawn with Pillow.

Every picture is drawn from a seed text (the release's or artist's name), so the demo always
gets the same art: a palette around a hue the seed picks, a two-colour gradient, and one of
the compositions below, with shapes placed by a ``random.Random`` seeded with the text (a
text seed does not depend on ``PYTHONHASHSEED``).

- ``sun``: a low sun cut by widening bands over a horizon, its reflection below;
- ``rings``: concentric rings around a point off the centre;
- ``waves``: stacked bands with sine-wave edges, shading from one colour to another;
- ``stripes``: diagonal stripes of varied widths across a disc.

A picture is drawn at ``SUPERSAMPLE`` times its size and reduced once (each pixel the mean of
a block), so edges are smooth.
"""

from __future__ import annotations

import colorsys
import math
import random
from collections.abc import Callable
from io import BytesIO

from PIL import Image, ImageDraw, ImageOps

COVER_SIZE = 1200  # the largest cover thumbnail (app.ingest.service.COVER_SIZES)
AVATAR_SIZE = 600  # the largest avatar thumbnail (app.catalog.images.AVATAR_SIZES)
SUPERSAMPLE = 2
JPEG_QUALITY = 92
COMPOSITIONS = ("sun", "rings", "waves", "stripes")

RGB = tuple[int, int, int]
RGBA = tuple[int, int, int, int]


class Palette:
    """Colours around a base hue: the gradient's dark and light ends, an accent (the
    complementary hue), a highlight and a deep shade."""

    def __init__(self, rng: random.Random) -> None:
        hue = rng.random()
        turn = rng.choice((0.06, 0.1, -0.08))
        self.dark = _hls(hue, 0.18, 0.5)
        self.light = _hls(hue + turn, 0.48, 0.6)
        self.accent = _hls(hue + 0.5, 0.62, 0.75)
        self.highlight = _hls(hue + turn / 2 + 0.12, 0.84, 0.8)
        self.deep = _hls(hue - turn, 0.11, 0.55)


def cover_art(seed: str, *, composition: str | None = None, size: int = COVER_SIZE) -> bytes:
    """A square JPEG cover for ``seed``, ``size`` pixels wide; the composition is the seed's
    unless named (one of COMPOSITIONS). Raises ValueError for an unknown composition."""
    rng = random.Random(f"cover:{seed}")
    chosen = composition or rng.choice(COMPOSITIONS)
    if chosen not in _DRAWERS:
        raise ValueError(f"unknown composition {chosen!r}: use one of {', '.join(COMPOSITIONS)}")
    palette = Palette(rng)
    big = size * SUPERSAMPLE
    ramp = Image.linear_gradient("L").rotate(rng.choice((0, 90, 180, 270)))
    canvas = _colorize(ramp, big, palette.dark, palette.light)
    _DRAWERS[chosen](canvas, palette, rng)
    return _finish(canvas, size, vignette=True)


def avatar_art(seed: str, *, size: int = AVATAR_SIZE) -> bytes:
    """A square JPEG avatar for ``seed``: soft overlapping discs on a radial gradient."""
    rng = random.Random(f"avatar:{seed}")
    palette = Palette(rng)
    big = size * SUPERSAMPLE
    canvas = _colorize(Image.radial_gradient("L"), big, palette.light, palette.deep)
    draw = ImageDraw.Draw(canvas, "RGBA")
    colours = (palette.accent, palette.highlight, palette.light)
    for index in range(rng.randint(4, 6)):
        radius = big * rng.uniform(0.14, 0.32)
        x, y = big * rng.uniform(0.2, 0.8), big * rng.uniform(0.2, 0.8)
        fill = _alpha(colours[index % len(colours)], rng.uniform(0.35, 0.7))
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=fill)
    inset = big * 0.08
    draw.ellipse(
        (inset, inset, big - inset, big - inset),
        outline=_alpha(palette.highlight, 0.8),
        width=round(big * 0.012),
    )
    return _finish(canvas, size, vignette=False)


# Compositions: each draws on the supersampled canvas -------------------------------------


def _sun(canvas: Image.Image, palette: Palette, rng: random.Random) -> None:
    big = canvas.width
    horizon = big * rng.uniform(0.6, 0.7)
    radius = big * rng.uniform(0.22, 0.3)
    x = big * rng.uniform(0.38, 0.62)
    y = horizon - radius * rng.uniform(0.2, 0.5)
    sun = Image.new("L", canvas.size, 0)
    cut = ImageDraw.Draw(sun)
    cut.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    # Bands cut the sun's lower half, each wider than the last as they near the horizon.
    top, gap = y, big * 0.008
    while top < horizon:
        cut.rectangle((0, top, big, top + gap), fill=0)
        top += gap * 3.2
        gap *= 1.35
    canvas.paste(palette.accent, (0, 0), sun)
    draw = ImageDraw.Draw(canvas, "RGBA")
    draw.rectangle((0, horizon, big, big), fill=_alpha(palette.deep, 0.92))
    line, step = horizon + big * 0.02, big * 0.022
    while line < big:
        half = radius * rng.uniform(0.3, 1.0) * (1 - (line - horizon) / (big - horizon) * 0.5)
        draw.rounded_rectangle(
            (x - half, line, x + half, line + step * 0.35), radius=step * 0.17,
            fill=_alpha(palette.accent, 0.55),
        )  # fmt: skip
        line += step
        step *= 1.12


def _rings(canvas: Image.Image, palette: Palette, rng: random.Random) -> None:
    big = canvas.width
    draw = ImageDraw.Draw(canvas, "RGBA")
    x, y = big * rng.uniform(0.3, 0.7), big * rng.uniform(0.3, 0.7)
    colours = (palette.accent, palette.highlight, palette.deep)
    radius, index = big * 0.06, 0
    while radius < big * 1.1:
        width = big * rng.uniform(0.012, 0.05)
        opacity = max(0.25, 0.95 - radius / big * 0.6)
        draw.ellipse(
            (x - radius, y - radius, x + radius, y + radius),
            outline=_alpha(colours[index % len(colours)], opacity),
            width=round(width),
        )
        radius += width + big * rng.uniform(0.02, 0.07)
        index += 1
    core = big * 0.04
    draw.ellipse((x - core, y - core, x + core, y + core), fill=palette.highlight)


def _waves(canvas: Image.Image, palette: Palette, rng: random.Random) -> None:
    big = canvas.width
    draw = ImageDraw.Draw(canvas, "RGBA")
    radius, x = big * rng.uniform(0.06, 0.1), big * rng.uniform(0.2, 0.8)
    top = big * 0.12
    draw.ellipse((x - radius, top, x + radius, top + 2 * radius), fill=palette.highlight)
    bands = rng.randint(6, 9)
    phase, frequency = rng.uniform(0, math.tau), rng.uniform(1.2, 2.6)
    for band in range(bands):
        base = big * (0.3 + 0.75 * band / bands)
        amplitude = big * rng.uniform(0.025, 0.06)
        edge = [
            (x, base + amplitude * math.sin(phase + band * 0.7 + frequency * math.tau * x / big))
            for x in range(0, big + 1, max(1, big // 120))
        ]
        colour = _mix(palette.accent, palette.deep, band / max(1, bands - 1))
        draw.polygon([*edge, (big, big), (0, big)], fill=_alpha(colour, 0.9))


def _stripes(canvas: Image.Image, palette: Palette, rng: random.Random) -> None:
    big = canvas.width
    draw = ImageDraw.Draw(canvas, "RGBA")
    radius = big * rng.uniform(0.25, 0.36)
    x, y = big * rng.uniform(0.35, 0.65), big * rng.uniform(0.35, 0.65)
    disc = (x - radius, y - radius, x + radius, y + radius)
    draw.ellipse(disc, fill=_alpha(palette.highlight, 0.9))
    position = -big
    while position < big:
        width = big * rng.uniform(0.01, 0.06)
        left, right = position, position + width
        corners = [(left, 0), (right, 0), (right + big, big), (left + big, big)]
        draw.polygon(corners, fill=_alpha(palette.accent, 0.7))
        position += width + big * rng.uniform(0.02, 0.08)


_DRAWERS: dict[str, Callable[[Image.Image, Palette, random.Random], None]] = {
    "sun": _sun,
    "rings": _rings,
    "waves": _waves,
    "stripes": _stripes,
}


# Helpers ------------------------------------------------------------------------------------


def _hls(hue: float, lightness: float, saturation: float) -> RGB:
    red, green, blue = colorsys.hls_to_rgb(hue % 1.0, lightness, saturation)
    return round(red * 255), round(green * 255), round(blue * 255)


def _alpha(colour: RGB, opacity: float) -> RGBA:
    return (*colour, round(255 * opacity))


def _mix(start: RGB, end: RGB, share: float) -> RGB:
    red, green, blue = (round(a + (b - a) * share) for a, b in zip(start, end, strict=True))
    return red, green, blue


def _colorize(ramp: Image.Image, size: int, start: RGB, end: RGB) -> Image.Image:
    """An RGB square of ``size`` shading from ``start`` to ``end`` along the grey ``ramp``."""
    shades = ImageOps.colorize(ramp, black=start, white=end)
    return shades.resize((size, size), Image.Resampling.BILINEAR)


def _finish(canvas: Image.Image, size: int, *, vignette: bool) -> bytes:
    """The canvas scaled down to ``size``, its corners darkened a little if asked, as JPEG."""
    image = canvas.reduce(SUPERSAMPLE)
    if vignette:
        radial = Image.radial_gradient("L").resize(image.size, Image.Resampling.BILINEAR)
        shade = radial.point(lambda value: max(0, value - 150) * 70 // 105)
        image.paste((0, 0, 0), (0, 0), shade)
    out = BytesIO()
    image.save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()
