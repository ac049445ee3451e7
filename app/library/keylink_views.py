"""Key-in-link downloads: ``/d/<token>#k=<key>`` and what its page fetches (see ``keylinks``).

- ``POST /d`` (signed in, CSRF): the buyer makes a link to one purchased file; the reply is
  a redirect to ``/d/<token>#k=<key>``, the only response that ever carries the key.
- ``GET /d`` (signed in): the buyer's links that still work, each with a revoke button.
- ``GET /d/<token>``: the download page, for anyone holding the link. Its script reads the
  key from the fragment, which browsers never send.
- ``GET /d/<token>/meta``: JSON with the wrapped key, the vault header, the file's name,
  type and sizes. ``GET /d/<token>/blob``: the stored object's raw bytes, with Range.
- ``POST /d/<token>/revoke`` (the buyer, CSRF): deletes the link's wrapped key.

A revoked link, or one whose purchase was refunded, answers 410 on all three GETs; an
unknown token 404. Every response here is ``no-store``, and the page sends no Referer.
"""

from __future__ import annotations

import base64
from typing import Any

from flask import (
    Blueprint,
    flash,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import login_required
from marshmallow import EXCLUDE, fields
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.wrappers import Response
from werkzeug.wsgi import FileWrapper

from app.accounts.current import viewer
from app.extensions import db
from app.library import keylinks
from app.library.models import FORMAT_MAX_LENGTH
from app.plays.views import STREAM_READ_BYTES, as_served, range_not_satisfiable
from app.validation import ID_RANGE, Length, Schema
from app.vault.errors import InvalidRange
from media_worker.downloads import DOWNLOAD_FORMATS

bp = Blueprint("keylinks", __name__)
# A 416 carries the blob's Content-Range, as streams do.
bp.register_error_handler(InvalidRange, range_not_satisfiable)

NO_STORE = "no-store"
BLOB_MIMETYPE = "application/octet-stream"


class KeyLinkCreateForm(Schema):
    """Which purchased file: the order item, one of its tracks, and a format."""

    class Meta:
        unknown = EXCLUDE

    order_item_id = fields.Integer(required=True, validate=ID_RANGE)
    track_id = fields.Integer(required=True, validate=ID_RANGE)
    format = fields.String(required=True, validate=Length(min=1, max=FORMAT_MAX_LENGTH))


def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = NO_STORE
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.post("/d")
@login_required
def create() -> Response:
    form = KeyLinkCreateForm().load(request.form)
    created = keylinks.create_key_link(
        db.session,
        viewer(),  # type: ignore[arg-type]
        order_item_id=form["order_item_id"],
        track_id=form["track_id"],
        fmt=form["format"],
    )
    db.session.commit()
    return _private(redirect(created.path, code=303))


@bp.get("/d")
@login_required
def links() -> Response:
    owned = keylinks.active_links(db.session, viewer())  # type: ignore[arg-type]
    labels = {name: fmt.label for name, fmt in DOWNLOAD_FORMATS.items()}
    html = render_template("library/keylink.html", links=owned, format_labels=labels)
    return _private(make_response(html))


@bp.get("/d/<token>")
def page(token: str) -> Response:
    described = keylinks.link_file(db.session, token)
    user = viewer()
    html = render_template(
        "library/keylink.html",
        file=described,
        is_owner=user is not None and user.id == described.link.owner_id,
    )
    return _private(make_response(html))


@bp.get("/d/<token>/meta")
def meta(token: str) -> Response:
    described = keylinks.link_file(db.session, token)
    body: dict[str, Any] = {
        "wrapped_key": base64.b64encode(described.wrapped_key).decode("ascii"),
        "header": base64.b64encode(described.header).decode("ascii"),
        "file_name": described.file_name,
        "content_type": described.content_type,
        "size": described.size,
        "segment_size": described.segment_size,
        "ciphertext_size": described.ciphertext_size,
        "blob_url": url_for("keylinks.blob", token=token),
    }
    return _private(jsonify(body))


@bp.get("/d/<token>/blob")
def blob(token: str) -> Response:
    link = keylinks.usable_link(db.session, token)
    reader = keylinks.open_ciphertext(db.session, link)
    # werkzeug's FileWrapper, as for streams: the reader is the store's, not an OS file.
    response = Response(
        FileWrapper(reader, STREAM_READ_BYTES), mimetype=BLOB_MIMETYPE, direct_passthrough=True
    )
    response.content_length = reader.size
    # The stored bytes of an object never change; this names them apart from its plaintext.
    response.set_etag(f"{link.object_id}.sealed")
    response.headers["X-Content-Type-Options"] = "nosniff"
    try:
        served = as_served(request.environ, reader.size)
        response.make_conditional(served, accept_ranges=True, complete_length=reader.size)
        if response.status_code == 206:
            reader.seek(response.content_range.start)
            reader.prefetch()
    except RequestedRangeNotSatisfiable:
        reader.close()
        raise InvalidRange(
            f"The range is outside the file's {reader.size} bytes.", {"size": reader.size}
        ) from None
    except BaseException:
        reader.close()
        raise
    return _private(response)


@bp.post("/d/<token>/revoke")
@login_required
def revoke(token: str) -> Response:
    keylinks.revoke_key_link(db.session, viewer(), token)  # type: ignore[arg-type]
    db.session.commit()
    flash("The link is revoked: its key is deleted, and the link no longer works.", "success")
    return redirect(url_for("keylinks.links"))
