"""Users and their personal API tokens."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import TYPE_CHECKING

from flask_login import UserMixin
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.timestamps import UTCDateTime, utcnow

if TYPE_CHECKING:
    from app.catalog.models import Artist


class User(UserMixin, db.Model):
    """An account. ``session_epoch`` is named by every session and remember-me cookie.

    Signing out or changing the password bumps it, which ends every session that names the
    old value: cookies are signed but kept by the browser, so the server's only way to make a
    copied one useless is to stop accepting what it names.
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    session_epoch: Mapped[int] = mapped_column(default=0, server_default="0")

    artists: Mapped[list[Artist]] = relationship(back_populates="owner", order_by="Artist.name")
    api_tokens: Mapped[list[ApiToken]] = relationship(
        back_populates="user", cascade="all, delete-orphan", order_by="ApiToken.id"
    )

    def get_id(self) -> str:
        """What a session names: the user and the current epoch (``"<id>:<epoch>"``)."""
        return f"{self.id}:{self.session_epoch}"

    def new_session_id(self) -> str:
        """A session id for a new sign-in: ``get_id()`` plus a random nonce.

        Flask-Login stores it in the session and signs it into the remember-me cookie
        (``login.id_attribute``), so each sign-in writes a fresh cookie value.
        """
        return f"{self.get_id()}:{secrets.token_urlsafe(12)}"

    @property
    def is_artist(self) -> bool:
        return bool(self.artists)

    @property
    def roles(self) -> list[str]:
        roles = ["listener"]
        if self.is_artist:
            roles.append("artist")
        if self.is_admin:
            roles.append("admin")
        return roles


class ApiToken(db.Model):
    """A personal API token. Only its SHA-256 is stored; the secret is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship(back_populates="api_tokens")

    @property
    def active(self) -> bool:
        return self.revoked_at is None
