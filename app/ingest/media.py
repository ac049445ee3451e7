"""The stored media of tracks and releases, as the catalogue sees it when deleting them.

Deleting a track or release crypto-shreds its media: the vault rows, which hold the only
wrapped copies of the data keys, go in the same transaction, and the ciphertext after it
commits.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.catalog.models import Release, Track
from app.ingest.models import ReleaseCover
from app.vault import service as vault


def object_ids(session: Session, releases: Iterable[Release] = (), tracks: Iterable[Track] = ()) -> list[str]:
    """The vault objects behind these releases (covers and tracks) and tracks."""
    releases = list(releases)
    tracks = list(tracks) + [track for release in releases for track in release.tracks]
    found = [oid for track in tracks if track.media is not None for oid in track.media.object_ids()]
    if releases:
        found += session.scalars(
            select(ReleaseCover.object_id).where(ReleaseCover.release_id.in_([r.id for r in releases]))
        )
    return found


def shred(session: Session, ids: list[str]) -> None:
    """Delete vault objects whose owning rows the caller has just deleted in this session."""
    if not ids:
        return
    # The media and cover rows point at the vault rows: their deletes must reach the
    # database first.
    session.flush()
    for object_id in ids:
        vault.delete(session, object_id)
