"""/api/v1 of app.statements: an artist's statements, for its owner (or an admin) only.

Anyone else gets 404 ``statement_not_found``, as for an artist that does not exist. A period's
statement is an array, one per currency the artist has (usually one).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask import Blueprint, jsonify, url_for
from werkzeug.wrappers import Response

from app.api.helpers import require_user
from app.api.spec import operation
from app.extensions import db
from app.statements import service
from app.statements.content import StatementView
from app.statements.schemas import StatementSchema, StatementSummarySchema

bp = Blueprint("statements_api", __name__)


@bp.get("/artists/<slug>/statements")
@operation("List an artist's statements, newest period first (the artist's owner only)",
           tag="statements", response=StatementSummarySchema, many=True, auth=True)  # fmt: skip
def list_statements(slug: str) -> Response:
    artist = service.readable_artist(db.session, slug, require_user())
    summaries = [
        {
            "period": summary.period,
            "currency": summary.currency,
            "status": "final" if summary.closed else "provisional",
            "closing_minor": summary.closing_minor,
            "url": url_for(".get_statement", slug=artist.slug, period=summary.period),
        }
        for summary in service.artist_statements(db.session, artist)
    ]
    db.session.commit()  # a closed period's statements are frozen on their first listing
    return jsonify(StatementSummarySchema(many=True).dump(summaries))


@bp.get("/artists/<slug>/statements/<period>")
@operation("Get an artist's statements of a period, one per currency (the artist's owner only)",
           tag="statements", response=StatementSchema, many=True, auth=True)  # fmt: skip
def get_statement(slug: str, period: str) -> Response:
    artist = service.readable_artist(db.session, slug, require_user())
    views = [
        service.statement(db.session, artist, period, currency)
        for currency in service.currencies(db.session, artist.id)
    ]
    db.session.commit()  # a closed period's statements are frozen on their first reading
    return jsonify(StatementSchema(many=True).dump([_as_json(view) for view in views]))


def _as_json(view: StatementView) -> dict[str, Any]:
    return {
        **asdict(view.content),
        "status": "provisional" if view.provisional else "final",
        "content_hash": view.content_hash,
        "totals": view.content.totals(),
    }
