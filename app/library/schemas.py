"""Library schemas: the page and API arguments, the library list and download states."""

from __future__ import annotations

from typing import Any

from flask import url_for
from marshmallow import EXCLUDE, fields, pre_load

from app.commerce.models import ItemKind
from app.validation import ID_RANGE, Length, OneOf, Range, Schema
from media_worker.downloads import DOWNLOAD_FORMATS

MAX_QUERY_LENGTH = 200
MAX_PAGE = 1_000_000
# What a track's download reports before anyone asked for it.
NOT_REQUESTED = "not_requested"
DOWNLOAD_STATUSES = (NOT_REQUESTED, "pending", "processing", "ready", "failed")

_FORMAT = OneOf(tuple(DOWNLOAD_FORMATS))
_FORMAT_DESCRIPTION = "One of: " + ", ".join(DOWNLOAD_FORMATS) + "."


class _Args(Schema):
    """Query-string or form arguments: blank ones are absent, the CSRF token is not data."""

    class Meta:
        unknown = EXCLUDE

    @pre_load
    def _drop_blanks(self, data: Any, **kwargs: Any) -> dict[str, Any]:
        return {
            key: value
            for key in data.keys()
            if key != "csrf_token" and (value := str(data.get(key, "")).strip())
        }


class LibraryArgs(_Args):
    """``/library?q=...&page=...``."""

    q = fields.String(load_default="", validate=Length(max=MAX_QUERY_LENGTH))
    page = fields.Integer(load_default=1, validate=Range(min=1, max=MAX_PAGE))


class LibrarySearchArgs(_Args):
    """``/api/v1/library?q=...`` (paging is ``limit`` and ``offset``, as everywhere)."""

    q = fields.String(load_default="", validate=Length(max=MAX_QUERY_LENGTH))


class FormatArgs(_Args):
    """``?format=...``; absent means the page's default."""

    format = fields.String(load_default=None, validate=_FORMAT)


class DownloadRequestSchema(Schema):
    """Ask for downloads of a purchase in one format: one track, or every track."""

    format = fields.String(
        required=True, validate=_FORMAT, metadata={"description": _FORMAT_DESCRIPTION}
    )
    track_id = fields.Integer(
        strict=True,
        allow_none=True,
        load_default=None,
        validate=ID_RANGE,
        metadata={"description": "One track of the purchase; omit for all of its tracks."},
    )


class DownloadRequestForm(_Args):
    """The library page's "Prepare" buttons: the same request as a posted form."""

    format = fields.String(required=True, validate=_FORMAT)
    track_id = fields.Integer(load_default=None, validate=ID_RANGE)


# Dumped -------------------------------------------------------------------------------------


class LibraryReleaseSchema(Schema):
    id = fields.Integer()
    title = fields.String()
    artist = fields.Function(lambda release: release.artist.name)
    cover_url = fields.String(allow_none=True)


class LibraryTrackSchema(Schema):
    id = fields.Integer()
    title = fields.String()
    position = fields.Integer()


class LibraryEntrySchema(Schema):
    """One release or single track the listener owns."""

    item_id = fields.Function(
        lambda entry: entry.item.id,
        metadata={"description": "The purchase (order item): downloads are asked for by it."},
    )
    kind = fields.Function(lambda entry: entry.item.kind.value,
                           metadata={"enum": [kind.value for kind in ItemKind]})  # fmt: skip
    acquired_at = fields.DateTime()
    free = fields.Function(lambda entry: entry.item.amount_minor == 0,
                           metadata={"description": "Acquired for nothing."})  # fmt: skip
    release = fields.Nested(LibraryReleaseSchema)
    track = fields.Nested(LibraryTrackSchema, allow_none=True)
    url = fields.Function(
        lambda entry: url_for("library.item_page", item_id=entry.item.id, _external=True),
        metadata={"description": "The purchase's page in the library."},
    )


class FormatOptionSchema(Schema):
    name = fields.String()
    label = fields.String()
    lossless = fields.Boolean(allow_none=True, metadata={"description": "null for the original."})
    available = fields.Boolean()
    reason = fields.String(allow_none=True, metadata={"description": "Why it is not offered."})


class DownloadStateSchema(Schema):
    track_id = fields.Integer()
    title = fields.String()
    position = fields.Integer()
    status = fields.String(metadata={"enum": list(DOWNLOAD_STATUSES)})
    progress = fields.Float(metadata={"description": "Fraction made, 0 to 1."})
    error = fields.String(allow_none=True)
    url = fields.String(
        allow_none=True,
        metadata={"description": "A signed download link once ready; it expires."},
    )


class ItemDownloadsSchema(Schema):
    """A purchase's tracks in one format, and the zip of a release once every track is ready."""

    item_id = fields.Integer()
    format = fields.String()
    formats = fields.List(fields.Nested(FormatOptionSchema))
    tracks = fields.List(fields.Nested(DownloadStateSchema))
    zip_url = fields.String(
        allow_none=True,
        metadata={"description": "A signed link to the release's zip, once every track is ready."},
    )
