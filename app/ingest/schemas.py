"""Upload schemas for /api/v1."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from app.ingest.models import UploadStatus


class UploadCreateSchema(Schema):
    filename = fields.String(required=True, validate=validate.Length(min=1, max=1024))
    size = fields.Integer(
        required=True,
        strict=True,
        metadata={"description": "The file's exact size in bytes."},
    )


class UploadSchema(Schema):
    id = fields.String()
    release_id = fields.Integer()
    track_id = fields.Integer(allow_none=True)
    filename = fields.String()
    size = fields.Integer()
    received = fields.Integer(metadata={"description": "Bytes received: the offset to send next."})
    status = fields.Enum(UploadStatus, by_value=True)
    progress = fields.Integer(metadata={"description": "Processing progress, 0 to 100."})
    stage = fields.String()
    error_code = fields.String(allow_none=True)
    error_message = fields.String(allow_none=True)
    chunk_size = fields.Method("_chunk_size")
    created_at = fields.DateTime()
    updated_at = fields.DateTime()

    def _chunk_size(self, upload: object) -> int:
        from flask import current_app

        return int(current_app.config["UPLOAD_CHUNK_BYTES"])
