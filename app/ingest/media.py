"""The stored media of tracks and releases, as the catalogue sees it when deleting them.

Deleting a track or release crypto-shreds its media: the vault rows, which hold the only
wrapped copies of the data keys, go in the same transaction, and the ciphertext after it
commits. Uploads still spooled into a deleted release lose their bytes after the commit too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.catalog.models import Release, Track
from app.ingest.models import ReleaseCover, Upload
from app.vault import service as vault


def cover_path(release_id: int, size: int) -> str:
    """A release cover's address (served by ``app.plays.views``), for code outside a request."""
    return f"/releases/{release_id}/cover/{size}.jpg"


def object_ids(session: Session, releases: Iterable[Release] = (), tracks: Iterable[Track] = ()) -> list[str]:
    """The vault objects behind these releases (covers and tracks) and tracks, with their
    cached downloads."""
    releases = list(releases)
    tracks = list(tracks) + [track for release in releases for track in release.tracks]
    found = [oid for track in tracks if track.media is not None for oid in track.media.object_ids()]
    # Imported here: the library builds on the catalogue, which imports this module.
    from app.library.service import download_object_ids

    found += download_object_ids(session, [track.id for track in tracks])
    if releases:
        found += session.scalars(
            select(ReleaseCover.object_id).where(ReleaseCover.release_id.in_([r.id for r in releases]))
        )
    return found


def discard_uploads(session: Session, config: Mapping[str, Any], releases: Iterable[Release]) -> None:
    """The uploads in flight or processing into these releases go with them (the database
    cascades their rows): remove their spooled plaintext once the deletion commits."""
    # Imported here: the upload rules use the catalogue's ownership rule, which imports this.
    from app.ingest import uploads

    release_ids = [release.id for release in releases]
    if not release_ids:
        return
    upload_ids = session.scalars(select(Upload.id).where(Upload.release_id.in_(release_ids)))
    uploads.discard_spools(session, config, list(upload_ids))


def shred(session: Session, ids: list[str]) -> None:
    """Delete vault objects whose owning rows the caller has just deleted in this session."""
    if not ids:
        return
    # The media and cover rows point at the vault rows: their deletes must reach the
    # database first.
    session.flush()
    for object_id in ids:
        vault.delete(session, object_id)
