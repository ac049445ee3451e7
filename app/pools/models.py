"""Periods and their frozen pool allocations.

A ``Period`` is a calendar month (``key`` ``"2026-11"``, UTC). Counted plays and ad
impressions land in the period of their time, or, once that period is closed, in the next open
one. Its row is made when the first play or impression lands in it (or when the admin opens
it). Closing (``app.pools.service``) fixes the revenue, the model and the pool share, writes one
``PeriodAllocation`` per track that earned, posts one ledger transaction keyed by the period
and sets ``status`` to closed, after which nothing about the period changes.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.database import value_enum
from app.extensions import db
from app.plays.models import BigId
from app.timestamps import UTCDateTime, utcnow

PERIOD_KEY_LENGTH = 7  # "2026-11"
TRACK_TITLE_MAX_LENGTH = 200



class PeriodStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class PoolModel(enum.StrEnum):
    PRO_RATA = "pro_rata"
    USER_CENTRIC = "user_centric"


class RevenueSource(enum.StrEnum):
    ENTERED = "entered"  # the admin typed the ad network's figure
    IMPRESSIONS = "impressions"  # the sum of the period's impressions times their CPM


class Period(db.Model):
    __tablename__ = "periods"
    __table_args__ = (
        CheckConstraint("revenue_minor IS NULL OR revenue_minor >= 0", name="revenue_non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(PERIOD_KEY_LENGTH), unique=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())  # exclusive
    status: Mapped[PeriodStatus] = mapped_column(
        value_enum(PeriodStatus, "period_status"), default=PeriodStatus.OPEN
    )
    model: Mapped[PoolModel] = mapped_column(
        value_enum(PoolModel, "pool_model"), default=PoolModel.PRO_RATA
    )
    currency: Mapped[str] = mapped_column(String(3))
    # Revenue the admin entered; None means "impressions times CPM" at close.
    revenue_minor: Mapped[int | None] = mapped_column(BigInteger())
    # Filled in by the close, and never changed after.
    revenue_source: Mapped[RevenueSource | None] = mapped_column(
        value_enum(RevenueSource, "revenue_source")
    )
    closed_revenue_minor: Mapped[int | None] = mapped_column(BigInteger())
    pool_share_bps: Mapped[int | None]
    pool_minor: Mapped[int | None] = mapped_column(BigInteger())
    platform_minor: Mapped[int | None] = mapped_column(BigInteger())
    earning_plays: Mapped[int | None] = mapped_column(BigInteger())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    ledger_transaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("ledger_transactions.id")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PeriodListener(db.Model):
    """A listener's earning counted plays and ad impressions in a period, added to as they land.

    ``user_centric`` weighs each play by its listener's impressions over their earning plays.
    Counting those as they land (in the transaction that lands the play or the impression)
    spares the close from grouping a month of plays and of impressions by listener, and the
    impressions' CPMs summed as they land spare it from reading the impressions at all. The
    close checks the play counters against the plays it reads, and counts again from the rows
    when a deleted track took plays away (``app.pools.service``). Impressions go only with
    their listener, whose counters go too.
    """

    __tablename__ = "period_listeners"
    __table_args__ = (
        CheckConstraint("earning_plays >= 0", name="earning_plays_non_negative"),
        CheckConstraint("impressions >= 0", name="impressions_non_negative"),
        CheckConstraint("impression_cpm_minor >= 0", name="impression_cpm_minor_non_negative"),
    )

    period_id: Mapped[int] = mapped_column(ForeignKey("periods.id"), primary_key=True)
    listener_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("listeners.id", ondelete="CASCADE"), primary_key=True
    )
    earning_plays: Mapped[int] = mapped_column(BigInteger(), default=0)
    impressions: Mapped[int] = mapped_column(BigInteger(), default=0)
    # The sum of those impressions' CPMs: the period's impression revenue is the floor of the
    # sum over its listeners / 1000 (``app.ads.service.impression_revenue_minor``).
    impression_cpm_minor: Mapped[int] = mapped_column(BigInteger(), default=0)


class PeriodAllocation(db.Model):
    """One track's share of a closed period's pool. Kept as it is if the track is deleted."""

    __tablename__ = "period_allocations"
    __table_args__ = (
        CheckConstraint("amount_minor >= 0", name="amount_non_negative"),
        # A period's rows in track order (its page), and an artist's rows by period (their
        # statements and dashboard): two indexes a close keeps up to date, not three.
        Index("ix_period_allocations_period_track", "period_id", "track_id"),
        Index("ix_period_allocations_artist_period", "artist_id", "period_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    period_id: Mapped[int] = mapped_column(ForeignKey("periods.id"))
    # The track and its artist as they were at the close, like the title: a frozen record,
    # not a reference kept in step with the catalogue (a deleted track's id stays). Without
    # foreign keys, writing a month's tens of thousands of rows costs no trigger per row.
    track_id: Mapped[int | None]
    artist_id: Mapped[int | None]
    track_title: Mapped[str] = mapped_column(String(TRACK_TITLE_MAX_LENGTH))
    plays: Mapped[int]
    amount_minor: Mapped[int] = mapped_column(BigInteger())
