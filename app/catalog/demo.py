"""The demo catalogue that ``make demo`` seeds: two artists, a listener, a few releases."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from app.accounts import service as accounts
from app.catalog import service
from app.catalog.models import PricingMode, ReleaseType

DEMO_LOGINS = {
    "artist": ("artist@demo.megabox.test", "demo-artist-pass"),
    "listener": ("listener@demo.megabox.test", "demo-listener-pass"),
    "admin": ("admin@demo.megabox.test", "demo-admin-pass"),
}

DEMO_ARTISTS = [
    {
        "slug": "aurora-lines",
        "name": "Aurora Lines",
        "bio": "Slow-burning synth pop recorded in a converted boathouse.",
        "releases": [
            {"title": "Northern Static", "release_type": ReleaseType.ALBUM,
             "release_date": date(2026, 9, 12), "pricing_mode": PricingMode.FIXED,
             "price_minor": 900, "currency": "USD",
             "description": "Nine songs about long winters and short radio waves.",
             "tracks": ["Cold Open", "Static Bloom", "Harbour Lights", "Night Ferry"]},
            {"title": "Tidal Memory", "release_type": ReleaseType.SINGLE,
             "release_date": date(2026, 10, 30), "pricing_mode": PricingMode.NAME_YOUR_PRICE,
             "price_minor": 200, "minimum_price_minor": 0, "currency": "USD",
             "description": "A single for the first frost.", "tracks": ["Tidal Memory"]},
        ],
    },
    {
        "slug": "the-copper-kettles",
        "name": "The Copper Kettles",
        "bio": "A four-piece folk band with too many banjos.",
        "releases": [
            {"title": "Kitchen Sessions", "release_type": ReleaseType.EP,
             "release_date": date(2026, 8, 1), "pricing_mode": PricingMode.FIXED,
             "price_minor": 500, "currency": "EUR",
             "description": "Recorded live around one microphone.",
             "tracks": ["Steam", "Whistle", "Pour"]},
            {"title": "Free Tea", "release_type": ReleaseType.SINGLE,
             "release_date": date(2026, 11, 1), "pricing_mode": PricingMode.FREE,
             "currency": "EUR", "description": "On the house.", "tracks": ["Free Tea"]},
        ],
    },
]  # fmt: skip


def seed_demo_catalogue(session: Session) -> bool:
    """Create the demo users, artists and published releases. Returns False if already there."""
    email, password = DEMO_LOGINS["artist"]
    if accounts.find_user_by_email(session, email) is not None:
        return False
    owner = accounts.create_user(session, email, password, "Demo Artist")
    listener_email, listener_password = DEMO_LOGINS["listener"]
    accounts.create_user(session, listener_email, listener_password, "Demo Listener")
    admin_email, admin_password = DEMO_LOGINS["admin"]
    accounts.create_user(session, admin_email, admin_password, "Demo Admin", is_admin=True)
    for spec in DEMO_ARTISTS:
        artist = service.create_artist(session, owner, spec)
        for release_spec in spec["releases"]:
            fields = {k: v for k, v in release_spec.items() if k != "tracks"}
            release = service.create_release(session, owner, artist, {**fields, "published": True})
            for title in release_spec["tracks"]:
                service.add_track(session, owner, release, {"title": title, "price_minor": 100})
    return True
