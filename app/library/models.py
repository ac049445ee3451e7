"""The download cache and key-in-link rows.

``DownloadFile`` is one made download: a track in one format with one set of delivered tags.
``tags_digest`` names what went into the file besides the audio format (the tags, the cover
and the master), so an artist's edit of the metadata makes a new entry rather than serving
stale tags. The unique key ``(track_id, format, tags_digest)`` decides which request creates
an entry, and a compare-and-set on ``status`` decides which job makes it (see
``app.library.service``).

``KeyLink`` is a Mega-style link ``/d/<token>#k=<key>``: the object's data key wrapped under
a key only the link's fragment holds (see ``app.library.keylinks``).
"""

from __future__ import annotations

import enum
import secrets
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Enum,
    Float,
    ForeignKey,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.timestamps import UTCDateTime, utcnow

if TYPE_CHECKING:
    from app.accounts.models import User
    from app.catalog.models import Track
    from app.commerce.models import OrderItem
    from app.vault.models import VaultObject

FORMAT_MAX_LENGTH = 16
DIGEST_LENGTH = 64  # a SHA-256 in hex
ERROR_MAX_LENGTH = 500
KEY_LINK_TOKEN_BYTES = 32  # token_urlsafe(32) is 43 characters
KEY_LINK_TOKEN_LENGTH = 43


class DownloadStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for a job to claim it
    PROCESSING = "processing"  # a job claimed it and is making the file
    READY = "ready"
    FAILED = "failed"  # ``error`` says why; asking again retries


def new_key_link_token() -> str:
    return secrets.token_urlsafe(KEY_LINK_TOKEN_BYTES)


class DownloadFile(db.Model):
    __tablename__ = "download_files"
    __table_args__ = (
        UniqueConstraint("track_id", "format", "tags_digest"),
        CheckConstraint("progress >= 0 AND progress <= 1", name="progress_fraction"),
        CheckConstraint("size IS NULL OR size >= 0", name="size_non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # No index of its own: the unique key starts with it.
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"))
    # A key of media_worker.downloads.DOWNLOAD_FORMATS ("flac", "mp3_320" ...).
    format: Mapped[str] = mapped_column(String(FORMAT_MAX_LENGTH))
    tags_digest: Mapped[str] = mapped_column(String(DIGEST_LENGTH))
    status: Mapped[DownloadStatus] = mapped_column(
        Enum(DownloadStatus, name="download_status", native_enum=False, create_constraint=True,
             length=20, values_callable=lambda members: [m.value for m in members]),
        default=DownloadStatus.PENDING,
    )  # fmt: skip
    # The fraction made, 0..1: informational, so a float is fine here.
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    # Set once ready.
    object_id: Mapped[str | None] = mapped_column(ForeignKey("vault_objects.id"))
    size: Mapped[int | None] = mapped_column(BigInteger)
    # Why making it failed, for people.
    error: Mapped[str | None] = mapped_column(String(ERROR_MAX_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    track: Mapped[Track] = relationship()
    vault_object: Mapped[VaultObject | None] = relationship()


class KeyLink(db.Model):
    """A key-in-link download of one purchased file; revoking it deletes ``wrapped_key``."""

    __tablename__ = "key_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(
        String(KEY_LINK_TOKEN_LENGTH), unique=True, default=new_key_link_token
    )
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    order_item_id: Mapped[int] = mapped_column(
        ForeignKey("order_items.id", ondelete="CASCADE"), index=True
    )
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"), index=True)
    format: Mapped[str] = mapped_column(String(FORMAT_MAX_LENGTH))
    object_id: Mapped[str] = mapped_column(ForeignKey("vault_objects.id"), index=True)
    # The object's data key wrapped under the link's key; NULL once revoked.
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    owner: Mapped[User] = relationship()
    order_item: Mapped[OrderItem] = relationship()
    track: Mapped[Track] = relationship()
    vault_object: Mapped[VaultObject] = relationship()
