"""The record of each encrypted object: where its ciphertext lives and its wrapped data key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.timestamps import UTCDateTime, utcnow
from app.vault.format import HEADER_SIZE
from app.vault.keys import WRAPPED_DEK_SIZE

KIND_MAX_LENGTH = 32


class VaultObject(db.Model):
    """One stored object. Deleting the row destroys its key, so the ciphertext is unreadable."""

    __tablename__ = "vault_objects"
    __table_args__ = (CheckConstraint("size >= 0", name="size_non_negative"),)

    # 32 hex digits: the 16-byte object id in the ciphertext header.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # What the object is to its owner ("master", "rendition", "download" ...).
    kind: Mapped[str] = mapped_column(String(KIND_MAX_LENGTH))
    content_type: Mapped[str | None] = mapped_column(String(255))
    backend_key: Mapped[str] = mapped_column(String(255), unique=True)
    # Plaintext bytes, and the plaintext's SHA-256 in hex.
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    # A copy of the stored header, so a range read needs only the segments' ranged GET.
    header: Mapped[bytes] = mapped_column(LargeBinary(HEADER_SIZE))
    wrapped_dek: Mapped[bytes] = mapped_column(LargeBinary(WRAPPED_DEK_SIZE))
    kek_version: Mapped[int] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
