"""/api/v1: token authentication, CSRF for cookie sessions, and the OpenAPI document.

Requests authenticate with ``Authorization: Bearer <token>`` (personal API tokens) or with the
browser's session cookie. Cookie-authenticated writes must carry the ``X-CSRFToken`` header;
token-authenticated ones need not, since a token cannot be sent by another site.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, request
from flask_login import current_user
from werkzeug.wrappers import Response

from app.accounts.models import User
from app.accounts.service import user_for_token
from app.api.spec import build_spec, operation
from app.errors import DomainError
from app.extensions import csrf, db, login

API_PREFIX = "/api/v1"
bp = Blueprint("api", __name__, url_prefix=API_PREFIX)
csrf.exempt(bp)

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class Unauthorized(DomainError):
    code = "unauthorized"
    status = 401


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


@login.request_loader
def _load_user_from_token(req: Any) -> User | None:
    token = bearer_token()
    if token is None:
        return None
    return user_for_token(db.session, token)


@bp.before_request
def _authenticate() -> None:
    if bearer_token() is not None:
        if not current_user.is_authenticated:
            raise Unauthorized("That API token is not valid or has been revoked.")
        db.session.commit()  # keeps the token's last-used time
    elif request.method in UNSAFE_METHODS and current_app.config.get("WTF_CSRF_ENABLED", True):
        csrf.protect()


def require_user() -> User:
    """The authenticated user. Raises Unauthorized."""
    if not current_user.is_authenticated:
        raise Unauthorized("Sign in or send an API token: Authorization: Bearer <token>.")
    return current_user


def json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidBody("Send a JSON object with Content-Type: application/json.")
    return body


class InvalidBody(DomainError):
    code = "invalid_body"
    status = 400


def paging() -> tuple[int, int]:
    limit_max = current_app.config["API_PAGE_SIZE_MAX"]
    try:
        limit = min(max(int(request.args.get("limit", limit_max)), 1), limit_max)
        offset = max(int(request.args.get("offset", 0)), 0)
    except ValueError:
        raise InvalidBody("limit and offset must be whole numbers.") from None
    return limit, offset


@bp.get("/openapi.json")
@operation("This OpenAPI 3 document", tag="meta")
def openapi_document() -> Response:
    return jsonify(build_spec(current_app))


@bp.get("/docs")
@operation("Browsable API documentation (HTML)", tag="meta")
def docs() -> str:
    return render_template("api/docs.html", spec=build_spec(current_app))


def register_area_apis() -> None:
    from app.accounts.api import bp as accounts_api
    from app.catalog.api import bp as catalog_api
    from app.ingest.api import bp as ingest_api

    for area_api in (accounts_api, catalog_api, ingest_api):
        csrf.exempt(area_api)  # nested blueprints are exempted one by one
        bp.register_blueprint(area_api)


register_area_apis()
