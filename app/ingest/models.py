"""Uploads in flight, and the media a processed upload gives a track."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, BigInteger, Enum, Float, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.timestamps import UTCDateTime, utcnow

if TYPE_CHECKING:
    from app.catalog.models import Artist, Release, Track
    from app.vault.models import VaultObject


class UploadStatus(enum.StrEnum):
    UPLOADING = "uploading"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


class Upload(db.Model):
    """A master on its way in: bytes are appended in chunks, then a job processes them."""

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    artist_id: Mapped[int] = mapped_column(ForeignKey("artists.id", ondelete="CASCADE"), index=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id", ondelete="CASCADE"), index=True)
    track_id: Mapped[int | None] = mapped_column(ForeignKey("tracks.id", ondelete="SET NULL"))
    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    received: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[UploadStatus] = mapped_column(
        Enum(UploadStatus, name="upload_status", native_enum=False, create_constraint=True,
             length=20, values_callable=lambda members: [m.value for m in members]),
        default=UploadStatus.UPLOADING,
    )  # fmt: skip
    # Processing progress, 0..100, and the step it is in ("analysing", "encoding" ...).
    progress: Mapped[int] = mapped_column(default=0)
    stage: Mapped[str] = mapped_column(String(32), default="")
    error_code: Mapped[str | None] = mapped_column(String(40))
    error_message: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    artist: Mapped[Artist] = relationship()
    release: Mapped[Release] = relationship()
    track: Mapped[Track | None] = relationship()

    @property
    def complete(self) -> bool:
        return self.received == self.size


class TrackMedia(db.Model):
    """A track's audio: the encrypted master, its streaming renditions and what was measured.

    ``(artist_id, master_sha256)`` is unique, so an artist never stores the same master twice.
    """

    __tablename__ = "track_media"
    __table_args__ = (UniqueConstraint("artist_id", "master_sha256"),)

    track_id: Mapped[int] = mapped_column(
        ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True
    )
    artist_id: Mapped[int] = mapped_column(ForeignKey("artists.id", ondelete="CASCADE"))
    master_sha256: Mapped[str] = mapped_column(String(64))
    master_object_id: Mapped[str] = mapped_column(ForeignKey("vault_objects.id"))
    opus_object_id: Mapped[str] = mapped_column(ForeignKey("vault_objects.id"))
    mp3_object_id: Mapped[str] = mapped_column(ForeignKey("vault_objects.id"))
    original_filename: Mapped[str] = mapped_column(String(255))
    container: Mapped[str] = mapped_column(String(32))
    codec: Mapped[str] = mapped_column(String(32))
    sample_rate: Mapped[int]
    bit_depth: Mapped[int | None]
    channels: Mapped[int]
    # Measured on the master (EBU R128); informational, so floats are fine here.
    loudness_lufs: Mapped[float | None] = mapped_column(Float)
    true_peak_dbtp: Mapped[float | None] = mapped_column(Float)
    gain_db: Mapped[float | None] = mapped_column(Float)
    waveform: Mapped[dict[str, Any]] = mapped_column(JSON)
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    track: Mapped[Track] = relationship(back_populates="media")
    # Relationships (not only keys) so a flush writes the vault rows before these.
    master_object: Mapped[VaultObject] = relationship(foreign_keys=[master_object_id])
    opus_object: Mapped[VaultObject] = relationship(foreign_keys=[opus_object_id])
    mp3_object: Mapped[VaultObject] = relationship(foreign_keys=[mp3_object_id])

    def object_ids(self) -> list[str]:
        return [self.master_object_id, self.opus_object_id, self.mp3_object_id]


class ReleaseCover(db.Model):
    """A release's cover art, as JPEG thumbnails in the vault, keyed by edge length."""

    __tablename__ = "release_covers"

    release_id: Mapped[int] = mapped_column(
        ForeignKey("releases.id", ondelete="CASCADE"), primary_key=True
    )
    size: Mapped[int] = mapped_column(primary_key=True)
    object_id: Mapped[str] = mapped_column(ForeignKey("vault_objects.id"))

    vault_object: Mapped[VaultObject] = relationship()
