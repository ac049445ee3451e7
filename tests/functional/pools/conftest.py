"""Pool fixtures: tracks by artist, listeners, and counted plays and impressions in a period."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import insert

from app.ads.models import Impression
from app.catalog.models import Track, TrackStatus
from app.extensions import db
from app.database import insert_or_add
from app.plays.models import Listener, Play, PlayOutcome, TrackPlayDay
from app.pools.periods import count_landed, ensure_period
from tests.factories import ArtistFactory, ReleaseFactory, TrackFactory, UserFactory

NOVEMBER = "2026-11"
IN_NOVEMBER = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
AFTER_NOVEMBER = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@dataclass
class Catalogue:
    tracks: dict[str, Track]

    def __getitem__(self, name: str) -> Track:
        return self.tracks[name]

    def artist_id(self, name: str) -> int:
        return self.tracks[name].release.artist_id


@pytest.fixture
def catalogue(app: Any) -> Catalogue:
    """Tracks A and B by one artist, C by another, all ready; committed."""
    first, second = ArtistFactory(name="First"), ArtistFactory(name="Second")
    one = ReleaseFactory(artist=first)
    two = ReleaseFactory(artist=second)
    tracks = {
        "A": TrackFactory(release=one, title="Track A", status=TrackStatus.READY),
        "B": TrackFactory(release=one, title="Track B", status=TrackStatus.READY),
        "C": TrackFactory(release=two, title="Track C", status=TrackStatus.READY),
    }
    return Catalogue(tracks)


class Listening:
    """Writes counted plays and impressions straight into a period, as counting would."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.listeners: dict[str, int] = {}

    def listener(self, name: str) -> int:
        if name not in self.listeners:
            row = Listener(key=f"c:{name}")
            db.session.add(row)
            db.session.flush()  # the id names the listener's plays
            self.listeners[name] = row.id
        return self.listeners[name]

    def plays(
        self, name: str, track: Track, count: int, *, key: str = NOVEMBER, earns: bool = True,
        at: datetime = IN_NOVEMBER,
    ) -> None:  # fmt: skip
        period = ensure_period(db.session, self.app.config, key)
        listener_id = self.listener(name)
        db.session.execute(
            insert(Play),
            [
                {
                    "track_id": track.id, "listener_id": listener_id, "started_at": at,
                    "threshold_ms": 30_000, "outcome": PlayOutcome.COUNTED, "counted_at": at,
                    "earns": earns, "period_id": period.id,
                }  # fmt: skip
                for _ in range(count)
            ],
        )
        day = {"track_id": track.id, "day": at.astimezone(UTC).date(), "plays": count}
        insert_or_add(db.session, TrackPlayDay, ["track_id", "day"], day)
        if earns:
            count_landed(db.session, period.id, listener_id, plays=count)
        db.session.commit()

    def impressions(
        self, name: str, count: int, *, key: str = NOVEMBER, cpm_minor: int = 0
    ) -> None:
        period = ensure_period(db.session, self.app.config, key)
        listener_id = self.listener(name)
        db.session.execute(
            insert(Impression),
            [
                {
                    "listener_id": listener_id, "period_id": period.id, "shown_at": IN_NOVEMBER,
                    "cpm_minor": cpm_minor, "currency": "USD",
                }  # fmt: skip
                for _ in range(count)
            ],
        )
        count_landed(
            db.session, period.id, listener_id, impressions=count, cpm_minor=count * cpm_minor
        )
        db.session.commit()


@pytest.fixture
def listening(app: Any) -> Listening:
    return Listening(app)


@pytest.fixture
def three_listeners(catalogue: Catalogue, listening: Listening) -> Catalogue:
    """The issue's third oracle: U1 plays A×9 and B×1, U2 B×10, U3 C×1; one impression each."""
    listening.plays("U1", catalogue["A"], 9)
    listening.plays("U1", catalogue["B"], 1)
    listening.plays("U2", catalogue["B"], 10)
    listening.plays("U3", catalogue["C"], 1)
    for name in ("U1", "U2", "U3"):
        listening.impressions(name, 1)
    return catalogue


@pytest.fixture
def admin(auth: Any) -> Any:
    user = UserFactory(is_admin=True)
    auth.login(user.email)
    return user
