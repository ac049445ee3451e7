"""Streaming the renditions with HTTP Range, the waveform, and cover art from the vault.

Renditions and covers live in the vault like masters (encrypted with keys of their own), and
are served through here: so a free play can be counted by the server, and a stolen bucket
holds no playable audio. A Range request maps to whole vault segments, so seeking costs one
ranged read.
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import Blueprint, Response, abort, jsonify, request, stream_with_context

from app.accounts.current import viewer
from app.catalog import service as catalog
from app.errors import NotFound
from app.extensions import db
from app.ingest.models import ReleaseCover
from app.vault import service as vault

bp = Blueprint("plays", __name__)

RENDITIONS = {"opus": ("opus_object_id", "audio/ogg"), "mp3": ("mp3_object_id", "audio/mpeg")}
COVER_CACHE_SECONDS = 86_400


@bp.get("/tracks/<int:track_id>/stream.<fmt>")
def stream(track_id: int, fmt: str) -> Response:
    if fmt not in RENDITIONS:
        abort(404)
    track = catalog.visible_track(db.session, track_id, viewer())
    if track.media is None:
        raise NotFound("This track has no audio yet.")
    attribute, mimetype = RENDITIONS[fmt]
    return _send_object(getattr(track.media, attribute), mimetype, cache_seconds=0)


@bp.get("/tracks/<int:track_id>/waveform.json")
def waveform(track_id: int) -> Response:
    track = catalog.visible_track(db.session, track_id, viewer())
    if track.media is None:
        raise NotFound("This track has no audio yet.")
    return jsonify(track.media.waveform)


@bp.get("/releases/<int:release_id>/cover/<int:size>.jpg")
def cover(release_id: int, size: int) -> Response:
    catalog.visible_release(db.session, release_id, viewer())
    found = db.session.get(ReleaseCover, (release_id, size))
    if found is None:
        raise NotFound("No cover at that size.")
    return _send_object(found.object_id, "image/jpeg", cache_seconds=COVER_CACHE_SECONDS)


def cover_path(release_id: int, size: int) -> str:
    """The cover's address, for code that runs outside a request (the ingest job)."""
    return f"/releases/{release_id}/cover/{size}.jpg"


def _send_object(object_id: str, mimetype: str, cache_seconds: int) -> Response:
    """Send a vault object, honouring a single byte range (206) or sending it whole (200)."""
    size = vault.get_object(db.session, object_id).size
    start, end, status = 0, size - 1, 200
    if request.range is not None and size > 0:
        bounds = request.range.range_for_length(size)
        if bounds is None:
            return Response(status=416, headers={"Content-Range": f"bytes */{size}"})
        start, end, status = bounds[0], bounds[1] - 1, 206
    chunks: Iterator[bytes] = vault.open_range_stream(db.session, object_id, start, end) if size else iter(())
    response = Response(stream_with_context(chunks), status=status, mimetype=mimetype)
    response.headers["Accept-Ranges"] = "bytes"
    response.headers["Content-Length"] = str(end - start + 1 if size else 0)
    if status == 206:
        response.headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    response.headers["Cache-Control"] = f"private, max-age={cache_seconds}" if cache_seconds else "no-store"
    return response
