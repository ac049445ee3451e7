"""What every /api/v1 view uses: the signed-in user, the JSON body, paging and the errors.

Area ``api.py`` modules import from here, never from ``app.api`` itself, so that any of them
imports on its own.
"""

from __future__ import annotations

import re
from typing import Any

from flask import current_app, request
from flask_login import current_user

from app.accounts.models import User
from app.errors import DomainError

API_PREFIX = "/api/v1"
# Ids are INTEGER columns: signed 32-bit on PostgreSQL (SQLite's hold 64 bits, but no id can
# exceed what PostgreSQL stores). A larger id in a URL names nothing.
SQL_ID_MAX = 2**31 - 1
# Offsets are sent as BIGINT: signed 64-bit on both databases.
SQL_BIGINT_MAX = 2**63 - 1
_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,19}")


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
    """``(limit, offset)`` from the query string; limit clamped to 1..API_PAGE_SIZE_MAX.

    Raises InvalidBody unless both are whole numbers (ASCII digits, an optional minus sign)
    and the offset fits a database integer.
    """
    limit_max = current_app.config["API_PAGE_SIZE_MAX"]
    limit = min(max(_query_int("limit", limit_max), 1), limit_max)
    offset = max(_query_int("offset", 0), 0)
    return limit, offset


def _query_int(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    # Up to 19 digits: anything longer is beyond a 64-bit offset and would only make the
    # database raise. ``int()`` alone would also take "1_0", " 7 " and non-ASCII digits.
    if _WHOLE_NUMBER.fullmatch(raw) is None or int(raw) > SQL_BIGINT_MAX:
        raise InvalidBody(
            f"Write {name} as a whole number, such as {default or 20}.", {name: raw[:40]}
        )
    return int(raw)
