"""What every /api/v1 view uses: the signed-in user, the JSON body, paging and the errors.

Area ``api.py`` modules import from here, never from ``app.api`` itself, so that any of them
imports on its own.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from flask_login import current_user

from app.accounts.models import User
from app.errors import DomainError

API_PREFIX = "/api/v1"


class Unauthorized(DomainError):
    code = "unauthorized"
    status = 401


class InvalidBody(DomainError):
    code = "invalid_body"
    status = 400


def is_api_request() -> bool:
    """Whether the current request is addressed to /api/v1."""
    return request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/")


def bearer_token() -> str | None:
    """The token of an ``Authorization: Bearer`` header, or None."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def require_user() -> User:
    """The authenticated user. Raises Unauthorized."""
    if not current_user.is_authenticated:
        raise Unauthorized("Sign in or send an API token: Authorization: Bearer <token>.")
    return current_user  # type: ignore[return-value]


def json_body() -> dict[str, Any]:
    """The request's JSON object. Raises InvalidBody."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidBody("Send a JSON object with Content-Type: application/json.")
    return body


def paging() -> tuple[int, int]:
    """``(limit, offset)`` from the query string, clamped. Raises InvalidBody."""
    limit_max = current_app.config["API_PAGE_SIZE_MAX"]
    try:
        limit = min(max(int(request.args.get("limit", limit_max)), 1), limit_max)
        offset = max(int(request.args.get("offset", 0)), 0)
    except ValueError:
        raise InvalidBody("limit and offset must be whole numbers.") from None
    return limit, offset
