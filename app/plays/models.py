"""Listeners and play sessions: what the pool of a period is split over.

A ``Listener`` is whoever is listening: a signed-in user (``u:<user id>``), an anonymous
browser carrying the signed listener cookie (``c:<random id>``), or, without the cookie, a
keyed hash of the IP address and user agent (``h:<day>:<hmac>``), whose key changes every UTC
day so no raw address is kept and no hash links two days (see ``app.plays.listeners``).

A ``Play`` is one playback, started by the player (``token`` is what the player names it by)
and proven by heartbeats. It *counts* once the server's clock has run ``threshold_ms`` past
``started_at`` and a heartbeat arrives: ``outcome`` says what counting decided, and a counted
play gets ``counted_at`` and the ``period_id`` it lands in. ``earns`` marks the counted plays
that take part in the pool split (not the listener's own purchases).
"""

from __future__ import annotations

import enum
import secrets
from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.database import value_enum
from app.extensions import db
from app.timestamps import UTCDateTime, utcnow

LISTENER_KEY_MAX_LENGTH = 80
PLAY_TOKEN_BYTES = 18  # token_urlsafe(18) is 24 characters
PLAY_TOKEN_LENGTH = 24

# Big tables get 64-bit ids on PostgreSQL; SQLite's rowid is 64-bit already and must be INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class PlayOutcome(enum.StrEnum):
    COUNTED = "counted"  # counted in a period; ``earns`` says whether it takes a pool share
    REPLAY = "replay"  # the same listener counted this track within the dedupe window
    CAPPED = "capped"  # the listener reached the daily cap
    ARTIST = "artist"  # the track's own artist listening: never counted


def new_play_token() -> str:
    return secrets.token_urlsafe(PLAY_TOKEN_BYTES)


class Listener(db.Model):
    __tablename__ = "listeners"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(LISTENER_KEY_MAX_LENGTH), unique=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Play(db.Model):
    __tablename__ = "plays"
    __table_args__ = (
        # Dedupe and the daily cap read a listener's counted plays by time.
        Index("ix_plays_listener_counted", "listener_id", "counted_at"),
        # Period close reads a period's earning plays; the track page counts a track's plays.
        Index("ix_plays_period_earns", "period_id", "earns"),
        # The user_centric close reads a period's earning plays in listener order, from the
        # index alone, to merge them with the period's listeners (app.pools.allocation).
        Index(
            "ix_plays_period_listener",
            "period_id",
            "listener_id",
            postgresql_include=["track_id"],
            postgresql_where=text("earns"),
            sqlite_where=text("earns"),
        ),
        Index("ix_plays_track_counted", "track_id", "counted_at"),
        Index("ix_plays_address_counted", "address_listener_id", "counted_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token: Mapped[str] = mapped_column(
        String(PLAY_TOKEN_LENGTH), unique=True, default=new_play_token
    )
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"))
    listener_id: Mapped[int] = mapped_column(ForeignKey("listeners.id", ondelete="CASCADE"))
    # For an anonymous play, the day's address listener (``a:``) of the request that started it:
    # many cookies from one address share it, so the address's limits hold whatever the cookie.
    address_listener_id: Mapped[int | None] = mapped_column(
        ForeignKey("listeners.id", ondelete="SET NULL")
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The server-clock time the play must reach: PLAY_COUNT_SECONDS, or the whole track if it
    # is shorter, fixed when the play starts.
    threshold_ms: Mapped[int]
    last_heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The position the client last reported, in ms: shown back, never trusted for counting.
    reported_position_ms: Mapped[int] = mapped_column(default=0)
    outcome: Mapped[PlayOutcome | None] = mapped_column(
        value_enum(PlayOutcome, "play_outcome")
    )
    counted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    earns: Mapped[bool] = mapped_column(default=False)
    period_id: Mapped[int | None] = mapped_column(ForeignKey("periods.id"))


class TrackPlayDay(db.Model):
    """A track's counted plays on one UTC day, added to as plays count.

    Charts of plays by day (the artist's dashboard) read these few rows per track and day
    instead of counting a month of plays.
    """

    __tablename__ = "track_play_days"
    __table_args__ = (CheckConstraint("plays >= 0", name="plays_non_negative"),)

    track_id: Mapped[int] = mapped_column(
        ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date(), primary_key=True)
    plays: Mapped[int] = mapped_column(BigInteger(), default=0)
