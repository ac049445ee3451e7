"""Upload schemas for /api/v1: the JSON bodies, and the tus request headers."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from marshmallow import EXCLUDE, fields, post_load

from app.ingest.models import UploadStatus
from app.ingest.uploads import CHECKSUM_ALGORITHMS, Checksum
from app.validation import Length, Range, Schema

# A BIGINT column holds the offsets and lengths: 0 to 2**63 - 1, in at most 19 ASCII digits.
BYTE_COUNT_MAX = 2**63 - 1
_ASCII_DIGITS = re.compile(r"[0-9]{1,19}")
_METADATA_KEY = re.compile(r"[!-+\--~]+")  # printable ASCII without space or comma


class UploadCreateSchema(Schema):
    filename = fields.String(required=True, validate=Length(min=1, max=1024))
    size = fields.Integer(
        required=True,
        strict=True,
        validate=Range(min=0, max=BYTE_COUNT_MAX),
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


class ByteCount(fields.Field):
    """A header holding a number of bytes: ASCII digits only, 0 to 2**63 - 1."""

    default_error_messages = {
        "invalid": "Send a whole number of bytes in ASCII digits, from 0 to 2^63 - 1."
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        text = value.strip(" \t") if isinstance(value, str) else ""
        if not _ASCII_DIGITS.fullmatch(text) or int(text) > BYTE_COUNT_MAX:
            raise self.make_error("invalid")
        return int(text)


class ChecksumHeader(fields.Field):
    """``Upload-Checksum: <algorithm> <base64 digest>`` (tus checksum extension)."""

    default_error_messages = {
        "algorithm": "Use one of these checksum algorithms: {algorithms}.",
        "invalid": "Send the checksum as '<algorithm> <base64 digest>'.",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Checksum:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        algorithm, _, encoded = value.strip().partition(" ")
        if algorithm not in CHECKSUM_ALGORITHMS:
            raise self.make_error("algorithm", algorithms=", ".join(CHECKSUM_ALGORITHMS))
        digest = _base64(encoded.strip(), self.make_error("invalid"))
        if len(digest) != CHECKSUM_ALGORITHMS[algorithm]().digest_size:
            raise self.make_error("invalid")
        return Checksum(algorithm, digest)


class TusMetadata(fields.Field):
    """``Upload-Metadata: key base64value,key2 base64value2`` as a dict of UTF-8 strings."""

    default_error_messages = {
        "invalid": "Send Upload-Metadata as comma-separated 'key base64(value)' pairs."
    }

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> dict[str, str]:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        pairs: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in value.split(","))):
            key, _, encoded = item.partition(" ")
            if not _METADATA_KEY.fullmatch(key):
                raise self.make_error("invalid")
            try:
                pairs[key] = _base64(encoded.strip(), self.make_error("invalid")).decode("utf-8")
            except UnicodeDecodeError:
                raise self.make_error("invalid") from None
        return pairs


def _base64(encoded: str, error: Exception) -> bytes:
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise error from None


class _HeaderSchema(Schema):
    class Meta:
        unknown = EXCLUDE


class TusCreationSchema(_HeaderSchema):
    """tus creation: ``Upload-Length`` and optional ``Upload-Metadata`` (the file's name under
    ``filename``, or ``name`` as Uppy sends it). Loads to what UploadCreateSchema loads to."""

    size = ByteCount(
        data_key="Upload-Length",
        required=True,
        error_messages={"required": "Send Upload-Length: the file's size in bytes."},
    )
    metadata = TusMetadata(data_key="Upload-Metadata", load_default=dict)

    @post_load
    def _as_creation(self, data: Mapping[str, Any], **kwargs: Any) -> dict[str, Any]:
        metadata = data["metadata"]
        return {"size": data["size"], "filename": metadata.get("filename") or metadata.get("name") or ""}


class ChunkHeadersSchema(_HeaderSchema):
    """A tus PATCH: where the chunk starts, and optionally its checksum."""

    offset = ByteCount(
        data_key="Upload-Offset",
        required=True,
        error_messages={"required": "Send Upload-Offset: the byte offset this chunk starts at."},
    )
    checksum = ChecksumHeader(data_key="Upload-Checksum", load_default=None)
