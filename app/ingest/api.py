"""/api/v1 uploads: tus 1.0.0 with the creation, termination and checksum extensions.

See the README, "Uploads". Any tus client works, given
``/api/v1/releases/<id>/uploads`` as its endpoint and the usual API authentication:

- ``OPTIONS`` on ``/uploads`` or the endpoint tells the version, extensions, maximum size and
  checksum algorithms.
- ``POST`` to the endpoint with ``Upload-Length`` (and ``Upload-Metadata`` with ``filename``)
  answers 201 with ``Location: /api/v1/uploads/<id>``; a JSON body ``{"filename", "size"}``
  works too. Either way the reply's body is the upload as JSON.
- ``HEAD`` on the upload gives ``Upload-Offset``; ``PATCH`` with ``Upload-Offset``,
  ``Content-Type: application/offset+octet-stream`` and optionally
  ``Upload-Checksum: sha256 <base64>`` appends a chunk and answers 204 with the new offset.
- ``GET`` on the upload gives its offset, status and processing progress as JSON;
  ``DELETE`` cancels it.

A request without ``Tus-Resumable`` is taken as 1.0.0 (so plain HTTP clients work); one naming
another version gets 412.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request, url_for
from marshmallow import Schema, ValidationError
from werkzeug.exceptions import ClientDisconnected
from werkzeug.wrappers import Response

from app.api.helpers import InvalidBody, json_body, require_user
from app.api.spec import operation
from app.catalog import service as catalog
from app.extensions import db
from app.ingest import uploads as service
from app.ingest.errors import UnsupportedMediaType, UnsupportedTusVersion
from app.ingest.schemas import (
    BYTE_COUNT_MAX,
    ChunkHeadersSchema,
    TusCreationSchema,
    UploadCreateSchema,
    UploadSchema,
)

bp = Blueprint("ingest_api", __name__)
TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination,checksum"
CHUNK_MEDIA_TYPE = "application/offset+octet-stream"
OFFSET_HEADER = "Upload-Offset"
# Each URL answers OPTIONS itself (tus discovery), not with Flask's automatic reply.
CUSTOM_OPTIONS = {"provide_automatic_options": False}


@bp.before_request
def _require_tus_version() -> None:
    version = request.headers.get("Tus-Resumable")
    if request.method != "OPTIONS" and version is not None and version != TUS_VERSION:
        raise UnsupportedTusVersion(
            f"This server speaks tus {TUS_VERSION}.", {"supported": [TUS_VERSION]}
        )


@bp.after_request
def _tus_headers(response: Response) -> Response:
    response.headers["Tus-Resumable"] = TUS_VERSION
    if response.status_code == UnsupportedTusVersion.status:
        response.headers["Tus-Version"] = TUS_VERSION
    return response


@bp.route("/uploads", methods=["OPTIONS"])
@bp.route("/uploads/<upload_id>", methods=["OPTIONS"])
@bp.route("/releases/<int:release_id>/uploads", methods=["OPTIONS"])
@operation("tus discovery (OPTIONS is not listed in this document)", tag="uploads")
def tus_options(**_: Any) -> tuple[str, int, dict[str, str]]:
    return "", 204, {
        "Tus-Version": TUS_VERSION,
        "Tus-Extension": TUS_EXTENSIONS,
        "Tus-Max-Size": str(current_app.config["MAX_UPLOAD_BYTES"]),
        "Tus-Checksum-Algorithm": ",".join(service.CHECKSUM_ALGORITHMS),
    }


@bp.post("/releases/<int:release_id>/uploads", **CUSTOM_OPTIONS)
@operation("Open a resumable upload of a master into your release (tus creation: or send "
           "Upload-Length and Upload-Metadata headers instead of the JSON body)", tag="uploads",
           body=UploadCreateSchema, response=UploadSchema, status=201, auth=True)  # fmt: skip
def create_upload(release_id: int) -> Response:
    user = require_user()
    release = catalog.editable_release(db.session, release_id, user)
    if "Upload-Length" in request.headers:
        data = _load_headers(TusCreationSchema())
    else:
        data = UploadCreateSchema().load(json_body())
    upload = service.start_upload(
        db.session, current_app.config, user, release, data["filename"], data["size"]
    )
    db.session.commit()
    response = _reply(upload)
    response.status_code = 201
    response.headers["Location"] = url_for(".get_upload", upload_id=upload.id)
    return response


@bp.get("/releases/<int:release_id>/uploads", **CUSTOM_OPTIONS)
@operation("Recent uploads into your release", tag="uploads", response=UploadSchema, many=True,
           auth=True)  # fmt: skip
def list_uploads(release_id: int) -> Response:
    release = catalog.editable_release(db.session, release_id, require_user())
    return jsonify(UploadSchema(many=True).dump(service.recent_uploads(db.session, release)))


@bp.get("/uploads/<upload_id>", **CUSTOM_OPTIONS)
@operation("An upload's offset, status and processing progress (HEAD: the tus offset)",
           tag="uploads", response=UploadSchema, auth=True)  # fmt: skip
def get_upload(upload_id: str) -> Response:
    return _reply(service.get_upload(db.session, require_user(), upload_id))


@bp.patch("/uploads/<upload_id>", **CUSTOM_OPTIONS)
@operation("Append a chunk at Upload-Offset (tus); answers 204 with the new Upload-Offset. "
           "Optional: Upload-Checksum: sha256 <base64 digest>", tag="uploads", status=204,
           auth=True, raw_body=CHUNK_MEDIA_TYPE,
           headers={OFFSET_HEADER: {"type": "integer", "format": "int64", "minimum": 0,
                                    "maximum": BYTE_COUNT_MAX}})  # fmt: skip
def append_chunk(upload_id: str) -> tuple[str, int, dict[str, str]]:
    user = require_user()
    if request.mimetype != CHUNK_MEDIA_TYPE:
        raise UnsupportedMediaType(f"Send the chunk with Content-Type: {CHUNK_MEDIA_TYPE}.")
    chunk = _load_headers(ChunkHeadersSchema())
    length = request.content_length
    if length is None:
        raise InvalidBody("Send the chunk with a Content-Length.")
    body = _ChunkBody(request.stream)  # a body over the size limit is refused (413) here
    upload = service.get_upload(db.session, user, upload_id)
    received = service.append_chunk(
        db.session, current_app.config, upload, chunk["offset"], body, length, chunk["checksum"]
    )
    db.session.commit()
    return "", 204, {OFFSET_HEADER: str(received)}


@bp.delete("/uploads/<upload_id>", **CUSTOM_OPTIONS)
@operation("Cancel an upload that is still receiving bytes (tus termination)", tag="uploads",
           status=204, auth=True)  # fmt: skip
def cancel_upload(upload_id: str) -> tuple[str, int]:
    upload = service.get_upload(db.session, require_user(), upload_id)
    service.cancel_upload(db.session, current_app.config, upload)
    db.session.commit()
    return "", 204


def _reply(upload: Any) -> Response:
    response = jsonify(UploadSchema().dump(upload))
    response.headers[OFFSET_HEADER] = str(upload.received)
    response.headers["Upload-Length"] = str(upload.size)
    response.headers["Cache-Control"] = "no-store"
    return response


def _load_headers(schema: Schema) -> dict[str, Any]:
    """The request's headers through ``schema``. Raises InvalidBody (400), as tus asks."""
    try:
        return schema.load(dict(request.headers))  # type: ignore[no-any-return]
    except ValidationError as exc:
        raise InvalidBody("The request has invalid tus headers.", exc.messages_dict) from None


class _ChunkBody:
    """The request body, where a client that went away reads as a ConnectionResetError,
    which ``uploads.append_chunk`` takes as the end of what arrived."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def read(self, size: int = -1, /) -> bytes:
        try:
            return self._stream.read(size)  # type: ignore[no-any-return]
        except ClientDisconnected as exc:
            raise ConnectionResetError("the client went away mid-chunk") from exc
