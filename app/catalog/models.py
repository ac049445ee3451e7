"""The catalogue: artists, their releases, and the releases' tracks."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.database import value_enum
from app.extensions import db
from app.ledger.money import Money
from app.timestamps import UTCDateTime, utcnow

if TYPE_CHECKING:
    from app.accounts.models import User
    from app.ingest.models import TrackMedia
    from app.vault.models import VaultObject


# Track numbers run from 1 to this; a release holds at most this many tracks.
MAX_TRACK_POSITION = 999

class ReleaseType(enum.StrEnum):
    SINGLE = "single"
    EP = "ep"
    ALBUM = "album"


class PricingMode(enum.StrEnum):
    FIXED = "fixed"
    NAME_YOUR_PRICE = "name_your_price"
    FREE = "free"


class TrackStatus(enum.StrEnum):
    DRAFT = "draft"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"



class Artist(db.Model):
    __tablename__ = "artists"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    bio: Mapped[str] = mapped_column(Text, default="")
    avatar_url: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    owner: Mapped[User] = relationship(back_populates="artists")
    releases: Mapped[list[Release]] = relationship(
        back_populates="artist", cascade="all, delete-orphan", order_by="Release.id.desc()"
    )


class ArtistAvatar(db.Model):
    """An artist's picture, as square JPEG thumbnails in the vault, keyed by edge length."""

    __tablename__ = "artist_avatars"

    artist_id: Mapped[int] = mapped_column(
        ForeignKey("artists.id", ondelete="CASCADE"), primary_key=True
    )
    size: Mapped[int] = mapped_column(primary_key=True)
    object_id: Mapped[str] = mapped_column(ForeignKey("vault_objects.id"))

    vault_object: Mapped[VaultObject] = relationship()


class Release(db.Model):
    __tablename__ = "releases"

    id: Mapped[int] = mapped_column(primary_key=True)
    artist_id: Mapped[int] = mapped_column(ForeignKey("artists.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    release_type: Mapped[ReleaseType] = mapped_column(
        value_enum(ReleaseType, "release_type"), default=ReleaseType.ALBUM
    )
    release_date: Mapped[date | None]
    description: Mapped[str] = mapped_column(Text, default="")
    cover_url: Mapped[str | None] = mapped_column(String(500))
    pricing_mode: Mapped[PricingMode] = mapped_column(
        value_enum(PricingMode, "pricing_mode"), default=PricingMode.FIXED
    )
    # For name-your-price this is the suggested price; the buyer pays at least the minimum.
    price_minor: Mapped[int] = mapped_column(default=0)
    minimum_price_minor: Mapped[int] = mapped_column(default=0)
    currency: Mapped[str] = mapped_column(String(3))
    published: Mapped[bool] = mapped_column(default=False, index=True)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Fields the artist typed a value into; tags read from uploads never overwrite them.
    locked_fields: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    artist: Mapped[Artist] = relationship(back_populates="releases")
    tracks: Mapped[list[Track]] = relationship(
        back_populates="release", cascade="all, delete-orphan", order_by="Track.position"
    )

    @property
    def price(self) -> Money:
        return Money(self.price_minor, self.currency)

    @property
    def minimum_price(self) -> Money:
        return Money(self.minimum_price_minor, self.currency)


class Track(db.Model):
    __tablename__ = "tracks"

    id: Mapped[int] = mapped_column(primary_key=True)
    release_id: Mapped[int] = mapped_column(
        ForeignKey("releases.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(default=1)
    duration_ms: Mapped[int | None]
    isrc: Mapped[str | None] = mapped_column(String(12))
    explicit: Mapped[bool] = mapped_column(default=False)
    price_minor: Mapped[int] = mapped_column(default=0)
    sold_separately: Mapped[bool] = mapped_column(default=True)
    status: Mapped[TrackStatus] = mapped_column(
        value_enum(TrackStatus, "track_status"), default=TrackStatus.DRAFT
    )
    locked_fields: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    release: Mapped[Release] = relationship(back_populates="tracks")
    media: Mapped[TrackMedia | None] = relationship(
        back_populates="track", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def price(self) -> Money:
        return Money(self.price_minor, self.release.currency)
