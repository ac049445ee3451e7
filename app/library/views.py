"""Library pages and downloads: what you own, formats made on demand, signed links, zips.

A download link (``/downloads/<token>``) is a bearer link: whoever holds it may fetch the file
until it expires, without signing in, so a download manager can resume it. It is served like a
stream (``app.plays.views``): Range and If-Range over a seekable vault reader, a strong ETag
(the object id, which never changes), Last-Modified, and ``Content-Disposition: attachment``
with a name built from the artist and title. A release's zip (``/downloads/zip/<token>``) is
built as it is sent, each entry decrypted only when the zip reaches it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user, login_required

from app.commerce.models import ItemKind, OrderItem
from app.extensions import db
from app.library import service
from app.library.errors import DownloadNotReady
from app.library.schemas import NOT_REQUESTED, DownloadRequestForm, FormatArgs, LibraryArgs
from app.plays.views import send_object as send_vault_object
from app.plays.views import range_not_satisfiable
from app.vault import service as vault
from app.vault.errors import InvalidRange
from media_worker.downloads import DownloadFormat

bp = Blueprint("library", __name__)
bp.register_error_handler(InvalidRange, range_not_satisfiable)
bp.add_app_template_filter(service.master_summary, "master_summary")

# How often the item page asks how the downloads it waits for are going.
POLL_SECONDS = 1.5


@bp.get("/library")
@login_required
def index() -> str:
    args = LibraryArgs().load(request.args)
    page, size = args["page"], int(current_app.config["PAGE_SIZE"])
    found = service.library_entries(
        db.session, current_user, query=args["q"], limit=size + 1, offset=(page - 1) * size
    )
    return render_template(
        "library/index.html",
        entries=found[:size],
        q=args["q"],
        page=page,
        has_next=len(found) > size,
    )


@bp.get("/library/items/<int:item_id>")
@login_required
def item_page(item_id: int) -> str:
    item = service.library_item(db.session, item_id, current_user)
    fmt = chosen_format(item, FormatArgs().load(request.args)["format"])
    downloads = downloads_json(item, fmt) if item.order.owns_items else None
    waiting = downloads is not None and any(
        t["status"] in ("pending", "processing") for t in downloads["tracks"]
    )
    tracks = service.item_tracks(item)
    return render_template(
        "library/item.html",
        item=item,
        fmt=fmt,
        tracks=tracks,
        any_lossless=any(service.master_info(track).lossless for track in tracks),
        downloads=downloads,
        waiting=waiting,
        poll_seconds=POLL_SECONDS,
    )


@bp.post("/library/items/<int:item_id>/downloads")
@login_required
def request_downloads(item_id: int) -> Response:
    form = DownloadRequestForm().load(request.form)
    item = service.library_item(db.session, item_id, current_user)
    fmt = service.get_format(form["format"])
    if form["track_id"] is None:
        service.request_item(db.session, current_app.config, item, fmt)
    else:
        track = service.owned_track(item, form["track_id"])
        service.request_download(db.session, current_app.config, item, track, fmt)
    db.session.commit()
    flash(f"{fmt.label}: on its way. The download appears here when it is ready.", "info")
    return redirect(url_for("library.item_page", item_id=item.id, format=fmt.name))


@bp.get("/downloads/<token>")
def download(token: str) -> Response:
    claims = service.read_link(current_app.config["SECRET_KEY"], token, service.LINK_TRACK)
    delivery = service.link_delivery(db.session, claims)
    response = send_vault_object(delivery.object_id, delivery.mime_type, cache_seconds=0)
    response.headers["Content-Disposition"] = service.content_disposition(delivery.filename)
    return response


@bp.get("/downloads/zip/<token>")
def download_zip(token: str) -> Response:
    claims = service.read_link(current_app.config["SECRET_KEY"], token, service.LINK_ZIP)
    try:
        plan = service.link_zip(db.session, claims)
    except DownloadNotReady:
        # A track added to the release since the link was made, say: start what is missing.
        db.session.rollback()
        item = service.linked_item(db.session, claims)
        fmt = service.get_format(claims.format)
        service.request_item(db.session, current_app.config, item, fmt)
        db.session.commit()
        raise
    archive = service.zip_stream(plan, _plaintext)
    # Everything the zip needs is read; no transaction stays open while it is sent.
    db.session.rollback()
    response = Response(stream_with_context(iter(archive)), mimetype=service.ZIP_MIME_TYPE)
    response.content_length = len(archive)
    response.headers["Content-Disposition"] = service.content_disposition(plan.filename)
    response.headers["Cache-Control"] = "no-store"
    return response


def _plaintext(object_id: str) -> Iterator[bytes]:
    """An object's bytes, opened when the zip reaches it."""
    stream = vault.iter_plaintext(db.session, object_id)
    db.session.rollback()  # the object is open; end the short read it took
    with stream:
        yield from stream


def _track_url(item: OrderItem, state: service.FormatState) -> str:
    token = service.track_link(current_app.config, item, state.track, state.format)
    return url_for("library.download", token=token, _external=True)


# Shared with the API ------------------------------------------------------------------------


def chosen_format(item: OrderItem, name: str | None) -> DownloadFormat:
    """The format asked for, or the item's default. Raises UnknownFormat."""
    if name is None:
        return service.default_format(service.item_tracks(item))
    return service.get_format(name)


def downloads_json(item: OrderItem, fmt: DownloadFormat) -> dict[str, Any]:
    """The item's tracks in ``fmt`` with signed links for the ready ones, and the release's
    zip link once every track is ready (``ItemDownloadsSchema``). Raises NotOwned."""
    config = current_app.config
    states = service.item_states(db.session, item, fmt)
    tracks = [
        {
            "track_id": state.track.id,
            "title": state.track.title,
            "position": state.track.position,
            "status": state.status.value if state.status is not None else NOT_REQUESTED,
            "progress": state.progress,
            "error": state.error,
            "url": _track_url(item, state) if state.ready else None,
        }
        for state in states
    ]
    whole = item.kind is ItemKind.RELEASE and len(states) == len(service.item_tracks(item))
    zip_url = None
    if whole and states and all(state.ready for state in states):
        zip_url = url_for(
            "library.download_zip", token=service.zip_link(config, item, fmt), _external=True
        )
    options = [
        {
            "name": option.format.name,
            "label": option.format.label,
            "lossless": option.format.lossless,
            "available": option.unavailable is None,
            "reason": option.unavailable,
        }
        for option in service.format_options(service.item_tracks(item))
    ]
    return {"item_id": item.id, "format": fmt.name, "formats": options, "tracks": tracks,
            "zip_url": zip_url}  # fmt: skip
