"""The signed-in user as views see it."""

from __future__ import annotations

from flask_login import current_user

from app.accounts.models import User


def viewer() -> User | None:
    """The signed-in user (by session or API token), or None for an anonymous visitor."""
    return current_user if current_user.is_authenticated else None  # type: ignore[return-value]
