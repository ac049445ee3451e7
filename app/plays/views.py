"""Streaming the renditions with HTTP Range, the waveform, and cover art from the vault.

Renditions and covers live in the vault like masters (encrypted with keys of their own), and
are served through here: so a free play can be counted by the server, and a stolen bucket
holds no playable audio.

Conditional and range requests follow RFC 9110 through werkzeug's ``make_conditional``, over a
seekable vault reader: a Range maps to whole vault segments, so seeking costs one ranged read,
and a byte is sent only once its segment has been authenticated. The ETag is the object id
(an object never changes), and Last-Modified its creation time. Only a single ``bytes`` range
is served; any other Range is ignored and the whole object sent, as RFC 9110 allows.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, jsonify, make_response, request
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.http import parse_range_header
from werkzeug.wsgi import FileWrapper

from app.accounts.current import viewer
from app.catalog import service as catalog
from app.errors import NotFound, error_response
from app.extensions import db
from app.ingest.models import ReleaseCover, TrackMedia
from app.vault import service as vault
from app.vault.errors import InvalidRange

bp = Blueprint("plays", __name__)

RENDITIONS = {
    "opus": (TrackMedia.opus_object_id, "audio/ogg"),
    "mp3": (TrackMedia.mp3_object_id, "audio/mpeg"),
}
COVER_CACHE_SECONDS = 86_400
# Bytes read from the vault reader per chunk sent; a read never spans two segments.
STREAM_READ_BYTES = 64 * 1024


@bp.get("/tracks/<int:track_id>/stream.<fmt>")
def stream(track_id: int, fmt: str) -> Response:
    if fmt not in RENDITIONS:
        abort(404)
    column, mimetype = RENDITIONS[fmt]
    stored = catalog.visible_track_object(db.session, track_id, viewer(), column)
    if stored is None:
        raise NotFound("This track has no audio yet.")
    return send_record(stored, mimetype, cache_seconds=0)


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
    return send_object(found.object_id, "image/jpeg", cache_seconds=COVER_CACHE_SECONDS)


def cover_path(release_id: int, size: int) -> str:
    """The cover's address, for code that runs outside a request (the ingest job)."""
    return f"/releases/{release_id}/cover/{size}.jpg"


def send_object(object_id: str, mimetype: str, cache_seconds: int) -> Response:
    """Send the vault object ``object_id`` as ``send_record`` does."""
    return send_record(vault.get_object(db.session, object_id), mimetype, cache_seconds)


def send_record(stored: vault.ObjectRecord, mimetype: str, cache_seconds: int) -> Response:
    """Send a vault object whole (200), one byte range of it (206), or 304/416 as RFC 9110 says.

    The first segment sent is authenticated before the response starts, so a damaged object
    or a missing key raises here and gets the app's generic 500 (the vault logs the object
    id); a segment that fails later ends the stream there (the server cuts the connection),
    so a client never receives a byte that failed authentication.
    """
    reader = vault.open_record(stored)
    # werkzeug's own FileWrapper, not the server's wsgi.file_wrapper: the bytes must pass
    # through the decryption, so a server's sendfile() of the reader could only fail.
    response = Response(
        FileWrapper(reader, STREAM_READ_BYTES), mimetype=mimetype, direct_passthrough=True
    )
    response.content_length = reader.size
    response.set_etag(stored.id)
    response.last_modified = stored.created_at
    response.headers["Cache-Control"] = (
        f"private, max-age={cache_seconds}" if cache_seconds else "no-store"
    )
    try:
        served = as_served(request.environ, reader.size)
        response.make_conditional(served, accept_ranges=True, complete_length=reader.size)
        if response.status_code in (200, 206) and request.method != "HEAD":
            reader.seek(response.content_range.start if response.status_code == 206 else 0)
            reader.prefetch()
    except RequestedRangeNotSatisfiable:
        reader.close()
        raise InvalidRange(
            f"The range is outside the file's {reader.size} bytes.", {"size": reader.size}
        ) from None
    except BaseException:
        reader.close()
        raise
    return response


def as_served(environ: dict[str, Any], size: int) -> dict[str, Any]:
    """The request's environ with its Range as this view honours it.

    A Range that is not one ``bytes`` range (another unit, several ranges, a malformed one)
    is dropped, so the whole object is sent with 200. A suffix longer than the object asks
    for all of it (RFC 9110, 14.1.3), which werkzeug would refuse with 416.
    """
    header = environ.get("HTTP_RANGE")
    if header is None:
        return environ
    parsed = parse_range_header(header)
    served = dict(environ)
    if parsed is None or parsed.units != "bytes" or len(parsed.ranges) != 1:
        del served["HTTP_RANGE"]
        return served
    start, stop = parsed.ranges[0]
    if stop is None and start < 0 and -start >= size:
        served["HTTP_RANGE"] = "bytes=0-"
    return served


@bp.errorhandler(InvalidRange)
def range_not_satisfiable(exc: InvalidRange) -> Response:
    """The API's error shape, with the Content-Range that a 416 carries (RFC 9110, 15.5.17)."""
    response = make_response(error_response(exc.code, exc.message, exc.status, exc.details))
    if "size" in exc.details:
        response.headers["Content-Range"] = f"bytes */{exc.details['size']}"
    return response
