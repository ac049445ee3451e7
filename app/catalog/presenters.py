"""Template filters that present catalogue values: prices, durations, labels."""

from __future__ import annotations

from flask import Flask

from app.catalog.models import PricingMode, Release, Track
from app.ledger.money import Money

RELEASE_TYPE_LABELS = {"single": "Single", "ep": "EP", "album": "Album"}


def release_price_label(release: Release) -> str:
    """The release's price as a listener reads it; name-your-price shows the suggested price
    and the minimum."""
    if release.pricing_mode is PricingMode.FREE:
        return "Free download"
    if release.pricing_mode is PricingMode.NAME_YOUR_PRICE:
        if release.minimum_price_minor:
            return f"Suggested {release.price.format()} · minimum {release.minimum_price.format()}"
        if release.price_minor:
            return f"Pay what you want, suggested {release.price.format()}"
        return "Pay what you want"
    return release.price.format()


def track_price_label(track: Track) -> str:
    if not track.sold_separately:
        return "Album only"
    if track.price_minor == 0:
        return "Free"
    return track.price.format()


def duration(milliseconds: int | None) -> str:
    if milliseconds is None:
        return "–:––"
    seconds = round(milliseconds / 1000)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def minor_as_decimal(minor: int, currency: str) -> str:
    """The amount as an artist would type it into a form: ``7.00``, ``700`` for JPY."""
    return Money(minor, currency).format_plain()


def register_filters(app: Flask) -> None:
    app.add_template_filter(release_price_label, "release_price")
    app.add_template_filter(track_price_label, "track_price")
    app.add_template_filter(duration, "duration")
    app.add_template_global(minor_as_decimal)
    app.add_template_global(RELEASE_TYPE_LABELS, "RELEASE_TYPE_LABELS")
