"""Ad campaigns and impressions.

A ``Campaign`` is an image with a link that the player's ad slot shows, picked at random by
``weight`` among the campaigns running on the day. ``is_house`` marks the platform's own ads:
they are shown when no paid campaign runs, and earn nothing (their CPM is 0). An
``Impression`` is one showing to one listener, recorded under the frequency cap, with the
campaign's CPM at the time, in the period it lands in (see ``app.pools.models``).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.plays.models import BigId
from app.timestamps import UTCDateTime, utcnow

CAMPAIGN_NAME_MAX_LENGTH = 120
LINK_MAX_LENGTH = 500
OBJECT_ID_LENGTH = 32


class Campaign(db.Model):
    __tablename__ = "ad_campaigns"
    __table_args__ = (
        CheckConstraint("weight >= 0", name="weight_non_negative"),
        CheckConstraint("cpm_minor >= 0", name="cpm_non_negative"),
        CheckConstraint(
            "starts_on IS NULL OR ends_on IS NULL OR starts_on <= ends_on", name="dates_ordered"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(CAMPAIGN_NAME_MAX_LENGTH))
    link_url: Mapped[str] = mapped_column(String(LINK_MAX_LENGTH))
    # The image, kept in the vault like every stored object; None shows the name as text.
    image_object_id: Mapped[str | None] = mapped_column(
        String(OBJECT_ID_LENGTH), ForeignKey("vault_objects.id")
    )
    image_mimetype: Mapped[str | None] = mapped_column(String(40))
    weight: Mapped[int] = mapped_column(default=1)
    starts_on: Mapped[date | None] = mapped_column(Date())  # inclusive, UTC days
    ends_on: Mapped[date | None] = mapped_column(Date())  # inclusive
    cpm_minor: Mapped[int] = mapped_column(default=0)  # per 1000 impressions
    currency: Mapped[str] = mapped_column(String(3))
    is_house: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Impression(db.Model):
    __tablename__ = "ad_impressions"
    __table_args__ = (
        Index("ix_ad_impressions_listener_shown", "listener_id", "shown_at"),
        Index("ix_ad_impressions_period_listener", "period_id", "listener_id"),
        Index("ix_ad_impressions_address_shown", "address_listener_id", "shown_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # None: the built-in house ad, shown when no campaign exists at all.
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("ad_campaigns.id", ondelete="SET NULL")
    )
    listener_id: Mapped[int] = mapped_column(ForeignKey("listeners.id", ondelete="CASCADE"))
    # As on plays: the day's address listener of an anonymous impression.
    address_listener_id: Mapped[int | None] = mapped_column(
        ForeignKey("listeners.id", ondelete="SET NULL")
    )
    period_id: Mapped[int] = mapped_column(ForeignKey("periods.id"))
    # The play it was shown during: at most one recorded impression per play.
    play_id: Mapped[int | None] = mapped_column(
        ForeignKey("plays.id", ondelete="SET NULL"), unique=True
    )
    shown_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    cpm_minor: Mapped[int] = mapped_column(default=0)
    currency: Mapped[str] = mapped_column(String(3))
