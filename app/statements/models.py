"""Frozen statements: a closed period's statement, written once and rendered from forever after.

A statement of a closed period must read the same every time it is opened, downloaded or
printed, whatever happens later (a track renamed, an order's items edited by support). So the
first time one is asked for, its content (``app.statements.lines``) is serialised to canonical
JSON and stored with its SHA-256; every later rendering, in any format, is made from that text
alone. The unique key on (artist, period, currency) makes two first readers at once store one
row. An open period's statement is computed live and never stored.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.timestamps import UTCDateTime, utcnow

SHA256_HEX_LENGTH = 64


class Statement(db.Model):
    __tablename__ = "statements"
    __table_args__ = (UniqueConstraint("artist_id", "period_id", "currency"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    artist_id: Mapped[int] = mapped_column(ForeignKey("artists.id", ondelete="RESTRICT"))
    period_id: Mapped[int] = mapped_column(ForeignKey("periods.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    # The canonical JSON text (sorted keys, no spaces), exactly the bytes the hash covers.
    content: Mapped[str] = mapped_column(Text())
    content_hash: Mapped[str] = mapped_column(String(SHA256_HEX_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
