"""Earnings fixtures: an artist with tracks, sales paid on chosen days, counted plays by day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import insert

from app.catalog.models import Artist, Release, TrackStatus
from app.commerce import service as commerce
from app.commerce.models import Order
from app.extensions import db
from app.database import insert_or_add
from app.plays.models import Listener, Play, PlayOutcome, TrackPlayDay
from tests.factories import ArtistFactory, ReleaseFactory, TrackFactory, UserFactory

# A fixed "now" in the middle of a month, so that "this month" and "the last 90 days" are
# known: June 2026, with May and earlier months inside the window.
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def days_ago(days: int, hour: int = 12) -> datetime:
    return (NOW - timedelta(days=days)).replace(hour=hour)


@pytest.fixture
def owner(auth: Any) -> Any:
    """A signed-in user who owns one artist profile (``owner.artist``)."""
    user = UserFactory()
    auth.login(user.email)
    return user


@pytest.fixture
def artist(owner: Any) -> Artist:
    return ArtistFactory(owner=owner, name="Night Owls", slug="night-owls")


@pytest.fixture
def album(artist: Artist) -> Release:
    """A 7.00 album of three 1.00 tracks: Dawn, Dusk and Noon."""
    release = ReleaseFactory(artist=artist, price_minor=700, minimum_price_minor=700)
    for position, title in enumerate(("Dawn", "Dusk", "Noon"), start=1):
        TrackFactory(
            release=release, title=title, position=position, price_minor=100,
            status=TrackStatus.READY,
        )  # fmt: skip
    return release


class Shop:
    """Orders paid (and refunded) at chosen times, as the gateways report them."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.buyer = UserFactory()

    def sell(self, *lines: commerce.CartLine, at: datetime, fee: int = 0) -> Order:
        order = commerce.create_order(
            db.session, self.buyer, list(lines), gateway="sandbox", config=self.app.config
        )
        paid = commerce.record_payment(
            db.session,
            commerce.Payment(
                order_public_id=order.public_id, gateway=order.gateway,
                amount_minor=order.total_minor, currency=order.currency, fee_minor=fee,
                paid_at=at,
            ),
            config=self.app.config,
        )  # fmt: skip
        db.session.commit()
        return paid

    def refund(self, order: Order, total: int, at: datetime) -> None:
        commerce.record_refund(db.session, order, refunded_total_minor=total, at=at)
        db.session.commit()


@pytest.fixture
def shop(app: Flask) -> Shop:
    return Shop(app)


def play(track_id: int, at: datetime, count: int = 1) -> None:
    """Counted plays of a track at ``at``, written as counting writes them."""
    listener = Listener(key=f"c:{track_id}:{at.isoformat()}")
    db.session.add(listener)
    db.session.flush()  # the id names the plays
    db.session.execute(
        insert(Play),
        [
            {
                "track_id": track_id, "listener_id": listener.id, "started_at": at,
                "threshold_ms": 30_000, "outcome": PlayOutcome.COUNTED, "counted_at": at,
                "earns": True,
            }  # fmt: skip
            for _ in range(count)
        ],
    )
    day = {"track_id": track_id, "day": at.astimezone(UTC).date(), "plays": count}
    insert_or_add(db.session, TrackPlayDay, ["track_id", "day"], day)
    db.session.commit()
