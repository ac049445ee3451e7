"""/api/v1 of app.payouts: an artist's payouts, for its owner (and admins) only.

Anyone else gets 404, as for an artist that does not exist, so a guessed slug tells nothing;
a caller who is not signed in gets 401 first, whatever the slug.
"""

from __future__ import annotations

from flask import Blueprint, jsonify
from werkzeug.wrappers import Response

from app.api.helpers import paging, require_user
from app.api.spec import operation
from app.extensions import db
from app.payouts import service
from app.payouts.schemas import PayoutSchema

bp = Blueprint("payouts_api", __name__)


@bp.get("/artists/<slug>/payouts")
@operation("Your artist's payouts, newest first (owner or admin only)", tag="payouts",
           response=PayoutSchema, many=True, auth=True,
           query={"limit": {"type": "integer", "minimum": 1}})  # fmt: skip
def artist_payouts(slug: str) -> Response:
    artist = service.owned_artist(db.session, slug, require_user())
    limit, _ = paging()
    found = service.artist_payouts(db.session, artist.id, limit)
    return jsonify(PayoutSchema(many=True).dump(found))
