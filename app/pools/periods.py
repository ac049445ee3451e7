"""Calendar-month periods, and the period a play or an impression lands in.

A period is a UTC calendar month, named ``"YYYY-MM"``. Something that happens at time t lands
in t's month while that period is open; once it is closed, in the next month that is open. So
a play counted (or an impression shown) after the admin closed November lands in December,
and nothing ever changes a closed period.

``landing_period`` holds the period's row with a shared lock until the transaction ends, and
the close takes the row for update: a close waits for the plays already landing in the period,
and a play that comes after waits for the close and then lands in the next period.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, literal, select, union_all
from sqlalchemy.orm import Session

from app.ads.models import Impression
from app.database import insert_or_add, insert_unless_exists, share_row
from app.errors import InvalidInput
from app.plays.models import Play
from app.pools.models import Period, PeriodListener, PeriodStatus, PoolModel
from app.timestamps import utcnow

_KEY = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$", re.ASCII)
# Periods are months of these years (the next month of the last one must still be a date).
MIN_YEAR, MAX_YEAR = 1970, 9998
# Bounds a runaway search for an open period; 1200 months is a century of closed periods.
_MAX_MONTHS_AHEAD = 1200


def period_key(at: datetime) -> str:
    at = at.astimezone(UTC)
    return f"{at.year:04d}-{at.month:02d}"


def parse_key(key: str) -> tuple[int, int]:
    """(year, month) of ``"YYYY-MM"``. Raises InvalidInput for anything else."""
    match = _KEY.match(key or "")
    if match is None or not MIN_YEAR <= int(match.group(1)) <= MAX_YEAR:
        raise InvalidInput(
            f"{key!r} is not a period: write the year and month, as in 2026-11.",
            {"period": ["Write the year and month, as in 2026-11."]},
        )
    return int(match.group(1)), int(match.group(2))


def bounds(key: str) -> tuple[datetime, datetime]:
    """The period's start (inclusive) and end (exclusive), in UTC."""
    year, month = parse_key(key)
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def next_key(key: str) -> str:
    year, month = parse_key(key)
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}"


def ensure_period(session: Session, config: Mapping[str, Any], key: str) -> Period:
    """The period called ``key``, created open (also under a race) if it does not exist yet.

    A new period takes the ``POOL_MODEL`` setting and the ``DEFAULT_CURRENCY``.
    """
    found = session.scalar(select(Period).where(Period.key == key))
    if found is not None:
        return found
    start, end = bounds(key)
    session.execute(
        insert_unless_exists(session, Period, ["key"]).values(
            key=key,
            starts_at=start,
            ends_at=end,
            status=PeriodStatus.OPEN,
            model=PoolModel(config["POOL_MODEL"]),
            currency=config["DEFAULT_CURRENCY"],
            created_at=utcnow(),
        )
    )
    return session.scalars(select(Period).where(Period.key == key)).one()


def landing_period(
    session: Session, config: Mapping[str, Any], at: datetime | None = None
) -> Period:
    """The open period something happening at ``at`` lands in, held open until the end.

    The row is share-locked (see the module docstring) and read again after the lock, so the
    status seen is the one the close will see.
    """
    key = period_key(at or utcnow())
    for _ in range(_MAX_MONTHS_AHEAD):
        period = ensure_period(session, config, key)
        share_row(session, Period.__table__, period.id)
        session.refresh(period, ["status"])
        if period.status is PeriodStatus.OPEN:
            return period
        key = next_key(key)
    raise RuntimeError(f"no open period within {_MAX_MONTHS_AHEAD} months of {key}")


def count_landed(
    session: Session,
    period_id: int,
    listener_id: int,
    *,
    plays: int = 0,
    impressions: int = 0,
    cpm_minor: int = 0,
) -> None:
    """Add an earning play or an impression (with its CPM) that landed in the period to its
    listener's counters (``PeriodListener``), in the transaction that lands it."""
    insert_or_add(
        session,
        PeriodListener,
        ["period_id", "listener_id"],
        {
            "period_id": period_id,
            "listener_id": listener_id,
            "earning_plays": plays,
            "impressions": impressions,
            "impression_cpm_minor": cpm_minor,
        },
    )


def recount_landed(session: Session, period_id: int) -> None:
    """Count the period's listeners' earning plays and impressions afresh from the rows.

    The counters go wrong only when rows go without them: a deleted track takes its plays
    along (a deleted listener takes its counters too).
    """
    session.execute(delete(PeriodListener).where(PeriodListener.period_id == period_id))
    plays = (
        select(Play.listener_id.label("listener"), func.count().label("plays"),
               literal(0).label("impressions"), literal(0).label("cpm"))
        .where(Play.period_id == period_id, Play.earns)
        .group_by(Play.listener_id)
    )  # fmt: skip
    impressions = (
        select(Impression.listener_id, literal(0), func.count(), func.sum(Impression.cpm_minor))
        .where(Impression.period_id == period_id)
        .group_by(Impression.listener_id)
    )
    landed = union_all(plays, impressions).subquery("landed")
    counters = select(
        literal(period_id), landed.c.listener, func.sum(landed.c.plays),
        func.sum(landed.c.impressions), func.sum(landed.c.cpm),
    ).group_by(landed.c.listener)  # fmt: skip
    columns = ["period_id", "listener_id", "earning_plays", "impressions", "impression_cpm_minor"]
    session.execute(insert(PeriodListener).from_select(columns, counters))

