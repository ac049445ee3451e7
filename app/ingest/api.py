"""/api/v1 uploads: a resumable chunk protocol (see the README, "Uploads").

1. ``POST /releases/<id>/uploads`` with ``{"filename", "size"}`` opens an upload.
2. ``PATCH /uploads/<id>`` with header ``Upload-Offset: <n>`` and the raw bytes from ``n``
   (``Content-Type: application/offset+octet-stream``) appends a chunk. The reply's
   ``received`` (and header ``Upload-Offset``) is where the next chunk starts.
3. After a dropped connection, ``GET`` (or ``HEAD``) ``/uploads/<id>`` tells the offset to
   resume from. When the last byte arrives, processing starts; poll the same URL for
   ``status`` and ``progress``.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from werkzeug.wrappers import Response

from app.api.helpers import InvalidBody, json_body, require_user
from app.api.spec import operation
from app.catalog import service as catalog
from app.extensions import db
from app.ingest import service
from app.ingest.schemas import UploadCreateSchema, UploadSchema

bp = Blueprint("ingest_api", __name__)
CHUNK_MEDIA_TYPE = "application/offset+octet-stream"
OFFSET_HEADER = "Upload-Offset"


def _reply(upload, status: int = 200) -> tuple[Response, int]:  # type: ignore[no-untyped-def]
    response = jsonify(UploadSchema().dump(upload))
    response.headers[OFFSET_HEADER] = str(upload.received)
    response.headers["Cache-Control"] = "no-store"
    return response, status


@bp.post("/releases/<int:release_id>/uploads")
@operation("Open a resumable upload of a master into your release", tag="uploads",
           body=UploadCreateSchema, response=UploadSchema, status=201, auth=True)  # fmt: skip
def create_upload(release_id: int) -> tuple[Response, int]:
    user = require_user()
    release = catalog.editable_release(db.session, release_id, user)
    data = UploadCreateSchema().load(json_body())
    upload = service.start_upload(
        db.session, current_app.config, user, release, data["filename"], data["size"]
    )
    db.session.commit()
    return _reply(upload, 201)


@bp.get("/releases/<int:release_id>/uploads")
@operation("Recent uploads into your release", tag="uploads", response=UploadSchema, many=True,
           auth=True)  # fmt: skip
def list_uploads(release_id: int) -> Response:
    release = catalog.editable_release(db.session, release_id, require_user())
    return jsonify(UploadSchema(many=True).dump(service.recent_uploads(db.session, release)))


@bp.get("/uploads/<upload_id>")
@operation("An upload's offset, status and processing progress", tag="uploads",
           response=UploadSchema, auth=True)  # fmt: skip
def get_upload(upload_id: str) -> tuple[Response, int]:
    return _reply(service.get_upload(db.session, require_user(), upload_id))


@bp.patch("/uploads/<upload_id>")
@operation("Append a chunk at Upload-Offset", tag="uploads", response=UploadSchema, auth=True,
           raw_body=CHUNK_MEDIA_TYPE, headers={OFFSET_HEADER: {"type": "integer", "minimum": 0}})  # fmt: skip
def append_chunk(upload_id: str) -> tuple[Response, int]:
    user = require_user()
    offset = _header_int(OFFSET_HEADER)
    length = request.content_length
    if length is None:
        raise InvalidBody("Send the chunk with a Content-Length.")
    upload = service.lock_upload(db.session, user, upload_id)
    service.append_chunk(db.session, current_app.config, upload, offset, request.stream, length)
    db.session.commit()
    return _reply(upload)


@bp.delete("/uploads/<upload_id>")
@operation("Cancel an upload that is still receiving bytes", tag="uploads", status=204, auth=True)
def cancel_upload(upload_id: str) -> tuple[str, int]:
    upload = service.lock_upload(db.session, require_user(), upload_id)
    service.cancel_upload(db.session, current_app.config, upload)
    db.session.commit()
    return "", 204


def _header_int(name: str) -> int:
    raw = request.headers.get(name, "")
    if not raw.isdigit():
        raise InvalidBody(f"Send the {name} header: the byte offset this chunk starts at.")
    return int(raw)
