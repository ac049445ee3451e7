"""The signed-in user as views see it."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from flask_login import current_user, login_required

from app.accounts.models import User
from app.errors import Forbidden

P = ParamSpec("P")
R = TypeVar("R")


def viewer() -> User | None:
    """The signed-in user (by session or API token), or None for an anonymous visitor."""
    return current_user if current_user.is_authenticated else None  # type: ignore[return-value]


def admin_required(view: Callable[P, R]) -> Callable[P, R]:
    """An admin page: anonymous visitors are sent to sign in, other users get 403."""

    @wraps(view)
    @login_required
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if not current_user.is_admin:
            raise Forbidden("This page is for administrators.")
        return view(*args, **kwargs)

    return wrapper
