"""Release covers and artist avatars that artists upload: square JPEG thumbnails in the vault.

An upload must be a JPEG, PNG or WebP image (judged by its bytes, not its name) of at most
``MAX_COVER_PIXELS`` pixels; ``read_upload`` bounds its size in bytes (the views and the API
pass the ``COVER_UPLOAD_MAX_BYTES`` setting). Every thumbnail is made before anything
changes, so a bad file leaves the old picture in place. Replacing or removing a picture
deletes the old thumbnails' rows and vault objects in the same transaction (their ciphertext
goes once it commits). Callers commit.

A cover an artist uploads locks ``cover_url``, so embedded art in a later master does not
replace it. The stored address carries a version (``?v=``, from the new object's id) so a
browser that cached the old picture at the same address fetches the new one.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping
from typing import IO, Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.catalog import service
from app.catalog.models import Artist, ArtistAvatar, Release
from app.database import lock_row
from app.errors import InvalidInput
from app.ingest import media
from app.ingest.models import ReleaseCover
from app.ingest.service import COVER_DISPLAY_SIZE, COVER_SIZES
from app.vault import service as vault
from app.vault.models import VaultObject
from media_worker.covers import MAX_COVER_PIXELS, thumbnails
from media_worker.errors import IMAGE_TOO_LARGE, RejectedImage

AVATAR_SIZES = (600, 300, 100)
AVATAR_DISPLAY_SIZE = 300
# The formats a picture may be, by the bytes it starts with (WebP: "RIFF", a size, "WEBP").
IMAGE_SIGNATURES = ((0, b"\xff\xd8\xff"), (0, b"\x89PNG\r\n\x1a\n"), (8, b"WEBP"))
ACCEPTED_FOR_PEOPLE = "JPEG, PNG or WebP"
# Characters of the newest object id that version a picture's address.
VERSION_LENGTH = 12
LOCKED_COVER_FIELD = "cover_url"


class InvalidImage(InvalidInput):
    code = "invalid_image"


def avatar_path(slug: str, size: int) -> str:
    """An artist avatar's address (served by ``app.catalog.views``)."""
    return f"/artists/{slug}/avatar/{size}.jpg"


def upload_limit(config: Mapping[str, Any]) -> int:
    """The most bytes a cover or avatar upload may have: ``COVER_UPLOAD_MAX_BYTES``."""
    return int(config["COVER_UPLOAD_MAX_BYTES"])


def read_upload(stream: IO[bytes], max_bytes: int) -> bytes:
    """At most ``max_bytes`` from ``stream``. Raises InvalidImage if it holds more."""
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InvalidImage(
            f"The image is larger than {size_for_people(max_bytes)}. Choose a smaller file."
        )
    return data


def set_release_cover(session: Session, release: Release, data: bytes) -> None:
    """Make ``data`` the release's cover, replacing any cover it had, and lock it against
    embedded art. Raises InvalidImage with a message for people; nothing changes then."""
    sized = _thumbnails(data, COVER_SIZES)
    if release.id is None:
        session.flush()  # the cover's rows and address need the new release's id
    remove_release_cover(session, release)
    stored = _store(session, sized)
    for size, found in stored.items():
        session.add(ReleaseCover(release_id=release.id, size=size, vault_object=found))
    shown = media.cover_path(release.id, COVER_DISPLAY_SIZE)
    release.cover_url = _versioned(shown, stored[COVER_DISPLAY_SIZE])
    release.locked_fields = sorted(set(release.locked_fields or ()) | {LOCKED_COVER_FIELD})


def remove_release_cover(session: Session, release: Release) -> None:
    """Delete the release's stored cover, if any, and clear its address. The lock stays: an
    artist who removed a cover does not want a master's embedded art to bring one back.

    The release's row is held first, so that of two replacements at once the second deletes
    the first's files too, not only its rows."""
    lock_row(session, Release.__table__, release.id)
    ids = list(
        session.scalars(select(ReleaseCover.object_id).where(ReleaseCover.release_id == release.id))
    )
    session.execute(delete(ReleaseCover).where(ReleaseCover.release_id == release.id))
    media.shred(session, ids)
    release.cover_url = None
    release.locked_fields = sorted(set(release.locked_fields or ()) | {LOCKED_COVER_FIELD})


def set_artist_avatar(session: Session, artist: Artist, data: bytes) -> None:
    """Make ``data`` the artist's avatar, replacing any avatar they had.

    Raises InvalidImage with a message for people; nothing changes then.
    """
    sized = _thumbnails(data, AVATAR_SIZES)
    if artist.id is None:
        session.flush()  # the avatar's rows need the new artist's id
    remove_artist_avatar(session, artist)
    stored = _store(session, sized)
    for size, found in stored.items():
        session.add(ArtistAvatar(artist_id=artist.id, size=size, vault_object=found))
    shown = avatar_path(artist.slug, AVATAR_DISPLAY_SIZE)
    artist.avatar_url = _versioned(shown, stored[AVATAR_DISPLAY_SIZE])


def remove_artist_avatar(session: Session, artist: Artist) -> None:
    """Delete the artist's stored avatar, if any, and clear their picture's address (with the
    artist's row held first, as ``remove_release_cover`` holds the release's)."""
    lock_row(session, Artist.__table__, artist.id)
    ids = service.avatar_object_ids(session, [artist.id])
    session.execute(delete(ArtistAvatar).where(ArtistAvatar.artist_id == artist.id))
    media.shred(session, ids)
    artist.avatar_url = None


def _thumbnails(data: bytes, sizes: Iterable[int]) -> dict[int, bytes]:
    if not data:
        raise InvalidImage("The chosen file is empty.")
    if not _accepted_format(data):
        raise InvalidImage(
            f"That file is not an image we can use: choose a {ACCEPTED_FOR_PEOPLE} image."
        )
    try:
        return thumbnails(data, sizes)
    except RejectedImage as exc:
        if exc.code == IMAGE_TOO_LARGE:
            raise InvalidImage(
                f"The image is too large: use at most {MAX_COVER_PIXELS:,} pixels"
                " (3000 × 3000 is plenty)."
            ) from None
        raise InvalidImage(
            "That image is incomplete or damaged. Save it again and choose it anew."
        ) from None


def _accepted_format(data: bytes) -> bool:
    # Judged from the first bytes, not by Pillow: it refuses to open a decompression bomb,
    # which must be told apart from a file that is not an image at all.
    if data[8:12] == b"WEBP" and not data.startswith(b"RIFF"):
        return False
    return any(data[offset : offset + len(magic)] == magic for offset, magic in IMAGE_SIGNATURES)


def _store(session: Session, sized: dict[int, bytes]) -> dict[int, VaultObject]:
    """Each thumbnail into the vault; their records by size."""
    stored = {}
    for size, jpeg in sized.items():
        with tempfile.TemporaryFile() as spool:
            spool.write(jpeg)
            spool.seek(0)
            found = vault.put_stream(
                session, spool, kind="cover", content_type="image/jpeg", size=len(jpeg)
            )
        stored[size] = found
    return stored


def _versioned(path: str, stored: VaultObject) -> str:
    return f"{path}?v={stored.id[:VERSION_LENGTH]}"


def size_for_people(size: int) -> str:
    """``10 MB`` for 10 MiB, ``512 KB``, ``900 bytes``."""
    for unit, scale in (("MB", 1024**2), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:g} {unit}"
    return f"{size:,} bytes"
