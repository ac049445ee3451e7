"""Play sessions and counting: when a free play counts, once, and whether it earns.

A play starts when the player asks for one (``start_play``) and is proven by heartbeats
(``heartbeat``). It is *due* once the server's clock has run ``threshold_ms`` past its start:
``PLAY_COUNT_SECONDS``, or the whole track if that is shorter. The position the player reports
is recorded and shown back, never used: a client whose clock runs ahead cannot count early.

The first heartbeat of a due play decides its outcome, once:

- ``REPLAY`` when the listener has a counted play of the same track within
  ``PLAY_DEDUPE_WINDOW_SECONDS`` before now;
- ``CAPPED`` when the listener has ``PLAY_DAILY_CAP`` counted plays since the start of the
  UTC day;
- otherwise ``COUNTED``, in the period it lands in (``app.pools.periods.landing_period``), and
  earning from the pool unless the listener is a signed-in user who owns the track (a paid
  order for it or its release; ``app.commerce.models.OWNING_STATUSES``).

An anonymous play also answers to its address (``Play.address_listener_id``, the day's keyed
hash of the IP address alone, see ``app.plays.listeners``), because a client can take a fresh
cookie for every play and be a new listener each time. It is also ``REPLAY`` when any play
from that address counted the same track within the window, and ``CAPPED`` when the address
has ``PLAY_ADDRESS_DAILY_CAP`` counted plays since the start of the UTC day. So anonymous
listeners sharing an address (a household, an office, a café behind one NAT) share these
limits: one counted play of a track per window between them. Signing in avoids that: a
signed-in play has no address listener and answers to its account's limits only. The address
key changes with the UTC day, as the anonymous listener keys do.

A play of a track by the track's own artist is ``ARTIST`` from its start and never counts.

The decision is serialised by row locks, so the windows and caps hold when heartbeats arrive
at once, and is written with a compare-and-set on ``outcome IS NULL``, so a play is decided
once however many heartbeats race. The locks are always taken in one order, so two heartbeats
never deadlock: the play's own row (the heartbeat's write), then the address listener's row
(anonymous plays), then the listener's row.

``counted_at`` is set exactly when a play counts, so "counted" below reads ``counted_at``: the
``(listener_id, counted_at)``, ``(address_listener_id, counted_at)`` and ``(track_id,
counted_at)`` indexes answer those queries alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.orm.attributes import set_committed_value

from app.accounts.models import User
from app.catalog.models import Track
from app.commerce.models import OWNING_STATUSES, ItemKind, Order, OrderItem
from app.database import insert_or_add, lock_row
from app.plays.errors import PlayExpired, PlayNotFound, TrackHasNoAudio
from app.plays.listeners import Identity
from app.plays.models import (
    PLAY_TOKEN_LENGTH,
    Listener,
    Play,
    PlayOutcome,
    TrackPlayDay,
    new_play_token,
)
from app.pools.periods import count_landed, landing_period
from app.timestamps import utcnow

# The largest position recorded, in ms: what the column (a 32-bit integer) holds.
POSITION_MAX_MS = 2**31 - 1
# What ``new_play_token`` makes; anything else names no play, and is not looked up.
_TOKEN = re.compile(rf"[A-Za-z0-9_-]{{{PLAY_TOKEN_LENGTH}}}")
_DAY = timedelta(days=1)
# What deciding a play writes.
_DECISION = ["outcome", "counted_at", "earns", "period_id"]


def threshold_ms(config: Mapping[str, Any], duration_ms: int | None) -> int:
    """The server-clock time a play of a track this long must run: ``PLAY_COUNT_SECONDS``, or
    the whole track if it is shorter (a track of unknown length takes the setting)."""
    setting = round(float(config["PLAY_COUNT_SECONDS"]) * 1000)
    if duration_ms is None or duration_ms <= 0:
        return setting
    return min(setting, duration_ms)


def start_play(
    session: Session,
    config: Mapping[str, Any],
    *,
    track: Track,
    identity: Identity,
    viewer: User | None,
    now: datetime | None = None,
) -> Play:
    """A new play of ``track`` by the listener ``identity`` (and its address, if anonymous),
    started now.

    The track's own artist gets a play whose outcome is ``ARTIST`` at once. Raises
    TrackHasNoAudio when the track has nothing to stream.
    """
    if track.media is None:
        raise TrackHasNoAudio("This track has no audio yet.", {"track_id": track.id})
    by_artist = viewer is not None and track.release.artist.owner_id == viewer.id
    play = Play(
        token=new_play_token(),
        track_id=track.id,
        listener_id=identity.listener_id,
        address_listener_id=identity.address_listener_id,
        user_id=identity.user_id,
        started_at=now or utcnow(),
        threshold_ms=threshold_ms(config, track.duration_ms),
        reported_position_ms=0,
        outcome=PlayOutcome.ARTIST if by_artist else None,
        earns=False,
    )
    session.add(play)
    return play


def heartbeat(
    session: Session,
    config: Mapping[str, Any],
    *,
    token: str,
    position_ms: int,
    now: datetime | None = None,
) -> Play:
    """Record a heartbeat of the play ``token`` at ``position_ms``; decide it once it is due.

    The position is kept (at least 0, at most the track's length) and never used for counting.
    Raises PlayNotFound for an unknown token, PlayExpired for a play that started more than
    ``PLAY_SESSION_TTL_SECONDS`` ago.
    """
    now = now or utcnow()
    found = _find(session, token)
    if found is None:
        # The token is not echoed: it may be anything the client put in the path.
        raise PlayNotFound("No such play.")
    play, duration_ms, release_id = found
    elapsed = now - play.started_at
    if elapsed > timedelta(seconds=int(config["PLAY_SESSION_TTL_SECONDS"])):
        raise PlayExpired("This play is too old for heartbeats: start a new one.", {"play": token})
    play.last_heartbeat_at = now
    play.reported_position_ms = min(max(position_ms, 0), duration_ms or POSITION_MAX_MS)
    if play.outcome is None and elapsed >= timedelta(milliseconds=play.threshold_ms):
        _decide(session, config, play, release_id, now)
    return play


def counted_plays(session: Session, track_ids: Iterable[int]) -> dict[int, int]:
    """Counted plays of each of ``track_ids`` (0 for none), owned plays included."""
    wanted = set(track_ids)
    if not wanted:
        return {}
    counts = dict.fromkeys(wanted, 0)
    rows = session.execute(
        select(Play.track_id, func.count())
        .where(Play.track_id.in_(wanted), Play.counted_at.is_not(None))
        .group_by(Play.track_id)
    )
    counts.update({track_id: count for track_id, count in rows})
    return counts


def _find(session: Session, token: str) -> tuple[Play, int | None, int] | None:
    """The play, its track's length and release, in one query."""
    if _TOKEN.fullmatch(token) is None:
        return None
    row = session.execute(
        select(Play, Track.duration_ms, Track.release_id)
        .join(Track, Track.id == Play.track_id)
        .where(Play.token == token)
    ).one_or_none()
    return None if row is None else (row[0], row[1], row[2])


def _decide(
    session: Session, config: Mapping[str, Any], play: Play, release_id: int, now: datetime
) -> None:
    # The locks, in the one order every decision takes them: the play's row (the heartbeat's
    # own write), the address listener's, the listener's.
    session.flush()
    if play.address_listener_id not in (None, play.listener_id):
        lock_row(session, Listener.__table__, play.address_listener_id)
    lock_row(session, Listener.__table__, play.listener_id)
    # Another heartbeat may have decided this play while this one waited for the lock.
    session.refresh(play, _DECISION)
    if play.outcome is not None:
        return
    values: dict[str, Any] = {"outcome": _outcome(session, config, play, now)}
    if values["outcome"] is PlayOutcome.COUNTED:
        values["counted_at"] = now
        values["period_id"] = landing_period(session, config, now).id
        values["earns"] = not _owns(session, play.user_id, play.track_id, release_id)
    written = session.execute(
        update(Play)
        .where(Play.id == play.id, Play.outcome.is_(None))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if written.rowcount != 1:  # decided elsewhere after all: take what it decided
        session.refresh(play, _DECISION)
        return
    for key, value in values.items():
        set_committed_value(play, key, value)
    if values["outcome"] is PlayOutcome.COUNTED:
        day = {"track_id": play.track_id, "day": now.astimezone(UTC).date(), "plays": 1}
        insert_or_add(session, TrackPlayDay, ["track_id", "day"], day)
    if values.get("earns"):
        count_landed(session, values["period_id"], play.listener_id, plays=1)


def _outcome(
    session: Session, config: Mapping[str, Any], play: Play, now: datetime
) -> PlayOutcome:
    # Whom the limits count against: the listener, and for an anonymous play its address.
    limits = [(Play.listener_id, play.listener_id, int(config["PLAY_DAILY_CAP"]))]
    if play.address_listener_id is not None:
        cap = int(config["PLAY_ADDRESS_DAILY_CAP"])
        limits.append((Play.address_listener_id, play.address_listener_id, cap))
    since = now - timedelta(seconds=int(config["PLAY_DEDUPE_WINDOW_SECONDS"]))
    for column, who, _ in limits:
        if _counted_since(session, column, who, play.track_id, since):
            return PlayOutcome.REPLAY
    day_start = datetime.combine(now.astimezone(UTC).date(), time(), tzinfo=UTC)
    for column, who, cap in limits:
        if _counted_today(session, column, who, day_start, cap) >= cap:
            return PlayOutcome.CAPPED
    return PlayOutcome.COUNTED


def _counted_since(
    session: Session, column: InstrumentedAttribute[Any], who: int, track_id: int, since: datetime
) -> bool:
    """Whether ``who`` (by ``column``) has a play of the track counted after ``since``."""
    replay = select(Play.id).where(
        column == who, Play.track_id == track_id, Play.counted_at > since
    )
    return bool(session.scalar(select(replay.exists())))


def _counted_today(
    session: Session, column: InstrumentedAttribute[Any], who: int, day_start: datetime, cap: int
) -> int:
    """``who``'s (by ``column``) plays counted on the UTC day from ``day_start``, up to ``cap``.

    Counting stops at the cap: a listener far over it costs no more than one at it.
    """
    today = (
        select(Play.id)
        .where(column == who, Play.counted_at >= day_start, Play.counted_at < day_start + _DAY)
        .limit(cap)
        .subquery()
    )
    return int(session.scalar(select(func.count()).select_from(today)) or 0)


def _owns(session: Session, user_id: int | None, track_id: int, release_id: int) -> bool:
    """Whether the user owns the track: a paid order for the track or for its release."""
    if user_id is None:
        return False
    owning = (
        select(OrderItem.id)
        .join(Order, Order.id == OrderItem.order_id)
        .where(
            Order.buyer_id == user_id,
            Order.status.in_(OWNING_STATUSES),
            or_(
                and_(OrderItem.kind == ItemKind.TRACK, OrderItem.track_id == track_id),
                and_(OrderItem.kind == ItemKind.RELEASE, OrderItem.release_id == release_id),
            ),
        )
    )
    return bool(session.scalar(select(owning.exists())))
