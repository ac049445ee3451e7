"""/api/v1: authentication, CSRF for cookie sessions, and the OpenAPI document.

Requests authenticate with ``Authorization: Bearer <token>`` (personal API tokens) or with the
browser's session cookie. Cookie-authenticated writes must carry the ``X-CSRFToken`` header;
token-authenticated ones need not, since a token cannot be sent by another site. Each area's
``api.py`` blueprint is registered under ``API_PREFIX`` by ``create_app``; ``authenticate``
runs before every one of their requests.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template
from werkzeug.wrappers import Response

from app.api.helpers import API_PREFIX
from app.api.spec import build_spec, operation

bp = Blueprint("api", __name__, url_prefix=API_PREFIX)


@bp.get("/openapi.json")
@operation("This OpenAPI 3 document", tag="meta")
def openapi_document() -> Response:
    return jsonify(build_spec(current_app))


@bp.get("/docs")
@operation("Browsable API documentation (HTML)", tag="meta")
def docs() -> str:
    return render_template("api/docs.html", spec=build_spec(current_app))


def area_blueprints() -> list[Blueprint]:
    """Every area's /api/v1 blueprint, in registration order."""
    from app.accounts.api import bp as accounts_api
    from app.ads.api import bp as ads_api
    from app.catalog.api import bp as catalog_api
    from app.commerce.api import bp as commerce_api
    from app.ingest.api import bp as ingest_api
    from app.library.api import bp as library_api
    from app.payouts.api import bp as payouts_api
    from app.plays.api import bp as plays_api
    from app.statements.api import bp as statements_api

    return [bp, accounts_api, catalog_api, ingest_api, commerce_api, library_api, plays_api, ads_api,
            statements_api, payouts_api]  # fmt: skip
