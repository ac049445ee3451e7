"""Plays fixtures: streamable tracks, listeners, purchases, and plays started in the past."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import current_app

from app.accounts.models import User
from app.catalog.models import Release, Track, TrackStatus
from app.commerce import service as commerce
from app.commerce.models import Order
from app.extensions import db
from app.ingest.models import TrackMedia
from app.plays import listeners
from app.plays.listeners import Identity
from app.plays.models import Play
from app.timestamps import utcnow
from app.vault import service as vault
from app.vault.models import VaultObject
from tests.factories import ReleaseFactory, TrackFactory


def put_rendition(data: bytes) -> VaultObject:
    """``data`` stored in the vault as a rendition, as ingest stores one."""
    return vault.put_stream(db.session, io.BytesIO(data), kind="rendition", size=len(data))


@pytest.fixture
def make_track() -> Callable[..., Track]:
    """A published, ready track with audio in the vault (``duration_ms`` as asked)."""

    def make(*, duration_ms: int | None = 180_000, release: Release | None = None) -> Track:
        track = TrackFactory(
            release=release or ReleaseFactory(),
            duration_ms=duration_ms,
            status=TrackStatus.READY,
        )
        master = put_rendition(f"master of track {track.id}".encode())
        rendition = put_rendition(b"rendition")
        db.session.add(
            TrackMedia(
                track_id=track.id,
                artist_id=track.release.artist_id,
                master_sha256=hashlib.sha256(f"master {track.id}".encode()).hexdigest(),
                master_object_id=master.id,
                opus_object_id=rendition.id,
                mp3_object_id=rendition.id,
                original_filename="take.wav",
                container="wav",
                codec="pcm_s16le",
                sample_rate=44100,
                channels=2,
                waveform={"buckets": 0, "peaks": []},
            )
        )
        db.session.commit()
        return track

    return make


@pytest.fixture
def listener() -> Callable[..., Identity]:
    """The listener identity of a signed-in user, or of an anonymous browser at an address:
    without a cookie (the address and user agent's), or with a new cookie (``fresh_cookie``),
    on ``now``'s day."""

    def identify(
        user: User | None = None,
        address: str = "198.51.100.20",
        *,
        fresh_cookie: bool = False,
        now: datetime | None = None,
    ) -> Identity:
        identity = listeners.identify(
            db.session,
            current_app.config,
            user=user,
            cookie=listeners.new_cookie(current_app.config) if fresh_cookie else None,
            remote_addr=address,
            user_agent="Test Player/1.0",
            now=now,
        )
        db.session.commit()
        return identity

    return identify


@pytest.fixture
def buy() -> Callable[..., Order]:
    """``buyer`` buys a release (or one of its tracks) and the sandbox reports it paid."""

    def purchase(
        buyer: User, release: Release, track: Track | None = None, paid: bool = True
    ) -> Order:
        line = commerce.CartLine(release_id=release.id, track_id=track.id if track else None)
        order = commerce.create_order(
            db.session, buyer, [line], gateway="sandbox", config=current_app.config
        )
        db.session.commit()
        if paid:
            commerce.record_payment(
                db.session,
                commerce.Payment(
                    order_public_id=order.public_id,
                    gateway=order.gateway,
                    amount_minor=order.total_minor,
                    currency=order.currency,
                    fee_minor=0,
                    paid_at=utcnow(),
                ),
                config=current_app.config,
            )
            db.session.commit()
        return order

    return purchase


@pytest.fixture
def age_play() -> Callable[[str, float], Play]:
    """Move a play's start ``seconds`` into the past, as if it had been playing that long."""

    def age(token: str, seconds: float) -> Play:
        play = db.session.query(Play).filter_by(token=token).one()
        play.started_at = play.started_at - timedelta(seconds=seconds)
        db.session.commit()
        return play

    return age


@pytest.fixture
def rows() -> Callable[..., Any]:
    """Every play, fresh from the database, oldest first."""

    def read(**filters: Any) -> list[Play]:
        db.session.expire_all()
        return db.session.query(Play).filter_by(**filters).order_by(Play.id).all()

    return read
