"""/api/v1 library: what you own, and its downloads in every format.

Ask for a purchase's tracks in a format with ``POST /library/items/<item_id>/downloads``, then
poll ``GET`` on the same path: each track reports ``status`` and ``progress``, and a signed
``url`` once ready (it expires after ``DOWNLOAD_LINK_TTL_SECONDS``; ask again for a fresh one).
A release's ``zip_url`` appears once every track is ready.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from werkzeug.wrappers import Response

from app.api.helpers import json_body, paging, require_user
from app.api.spec import operation
from app.extensions import db
from app.library import service
from app.library.schemas import (
    DownloadRequestSchema,
    FormatArgs,
    ItemDownloadsSchema,
    LibraryEntrySchema,
    LibrarySearchArgs,
)
from app.library.views import chosen_format, downloads_json

bp = Blueprint("library_api", __name__)
LIBRARY_QUERY = {
    "q": {"type": "string", "description": "Keep entries whose title or artist contains this."},
    "limit": {"type": "integer", "minimum": 1},
    "offset": {"type": "integer", "minimum": 0},
}
FORMAT_QUERY = {
    "format": {
        "type": "string",
        "description": "A download format; by default FLAC, or MP3 320 when a master is lossy.",
    }
}


@bp.get("/library")
@operation("List what you own (free acquisitions included), newest first", tag="library",
           response=LibraryEntrySchema, many=True, query=LIBRARY_QUERY, auth=True)  # fmt: skip
def list_library() -> Response:
    owner = require_user()
    limit, offset = paging()
    query = LibrarySearchArgs().load(request.args)["q"]
    entries = service.library_entries(db.session, owner, query=query, limit=limit, offset=offset)
    return jsonify(LibraryEntrySchema(many=True).dump(entries))


@bp.get("/library/items/<int:item_id>/downloads")
@operation("A purchase's downloads in one format: status, progress and signed links",
           tag="library", response=ItemDownloadsSchema, query=FORMAT_QUERY, auth=True)  # fmt: skip
def item_downloads(item_id: int) -> Response:
    item = service.library_item(db.session, item_id, require_user())
    fmt = chosen_format(item, FormatArgs().load(request.args)["format"])
    return jsonify(ItemDownloadsSchema().dump(downloads_json(item, fmt)))


@bp.post("/library/items/<int:item_id>/downloads")
@operation("Ask for a purchase's tracks (or one track) in a format; made in the background",
           tag="library", body=DownloadRequestSchema, response=ItemDownloadsSchema, status=202,
           auth=True)  # fmt: skip
def request_downloads(item_id: int) -> tuple[Response, int]:
    item = service.library_item(db.session, item_id, require_user())
    data = DownloadRequestSchema().load(json_body())
    fmt = service.get_format(data["format"])
    if data["track_id"] is None:
        service.request_item(db.session, current_app.config, item, fmt)
    else:
        track = service.owned_track(item, data["track_id"])
        service.request_download(db.session, current_app.config, item, track, fmt)
    db.session.commit()
    return jsonify(ItemDownloadsSchema().dump(downloads_json(item, fmt))), 202
