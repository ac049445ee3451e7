"""Mega-style key-in-link downloads: ``/d/<token>#k=<key>``, decrypted in the buyer's browser.

A key link lets whoever holds it download one purchased file (a track in one format) without
signing in, while the server holds nothing that decrypts it.

Creating a link (``create_key_link``). Only the buyer can, for an order item of theirs that
still owns the track (its order is paid or partly refunded; a release item owns each of the
release's ready tracks, a track item its track) and a format whose file is ready in the
cache (the original is the master object itself). The artist and admins make signed links
instead: a key link is a capability the buyer hands out, bound to their purchase. The server

1. generates a random 32-byte fragment key ``K`` and a 32-byte random token (43 characters
   of URL-safe base64);
2. derives the wrapping key ``W = HKDF-SHA256(ikm=K, salt=token, info="megabox-keylink/v1",
   length=32)``, where ``token`` is the token's 43 ASCII characters;
3. unwraps the object's data key (DEK) from its KEK-wrapped form, checks it against the
   object's key commitment, and stores only
   ``wrapped_key = nonce (12, random) ‖ AES-256-GCM(W, nonce, DEK, aad = the object's 64-byte
   vault header)``; the header as AAD binds the wrapped key to that one object;
4. returns ``/d/<token>#k=<base64url(K), unpadded>`` once (``POST /d`` answers with a 303
   to it). ``K`` is never stored, logged or sent again; browsers do not send a fragment to
   the server, in requests or in Referer, and the page sends no Referer at all.

A link keeps the object it was made for: when new tags supersede a cached download, the
cache keeps the old object while a key link points at it (``app.library.service``, step 4).
The token is a bearer capability of 256 random bits; a link does not expire, it is revoked.

The server, not the browser, generates ``K``. The other way round (the browser makes ``K``
and sends back only the wrapped DEK) would keep ``K`` off the server for an instant, but
the server would have to send the raw DEK to the buyer's browser to be wrapped, and could
not check what came back: a bad wrap would make a link that never works. Here the DEK
leaves the server only wrapped, and each link is checked as it is made. Either way the
server sees enough to open the file during that one request; what matters is that it
keeps nothing that does.

Using a link. ``/d/<token>`` is a page whose script reads ``K`` from ``location.hash``,
fetches ``/d/<token>/meta`` (the wrapped key, the header, the file's name, type and sizes)
and the raw stored object from ``/d/<token>/blob`` (header and segments, as the vault
backend holds them, served with Range and never decrypted here), then does in WebCrypto
what ``app/vault/FORMAT.md`` says: unwrap the DEK, derive the segment key and check the key
commitment, and decrypt one segment per AES-GCM call, checking each tag. A failed tag stops
the download and saves nothing. The file is written as it is decrypted through the File
System Access API where the browser has it (Chromium); elsewhere it is kept in memory as a
Blob, handed to the browser's download only once every segment has passed. Holding a link
gives the object's DEK to its holder, who receives the same plaintext anyway.

A link stops working (HTTP 410, and its meta no longer carries a key) when the buyer
revokes it, which deletes its wrapped key for good, or when its purchase no longer owns
the track (refunded, or disputed: checked on every use, so a won dispute brings it back).
An unknown token is 404.
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.catalog.models import Track
from app.errors import NotFound
from app.library import service as library
from app.library.errors import LibraryItemNotFound, LinkGone, NotOwned
from app.library.models import KeyLink, new_key_link_token
from app.timestamps import utcnow
from app.vault import service as vault
from app.vault.backends import Backend, ObjectReader
from app.vault.errors import AuthenticationFailed
from app.vault.format import ObjectCipher, ciphertext_size

KDF_INFO = b"megabox-keylink/v1"
FRAGMENT_KEY_BYTES = 32
WRAP_NONCE_BYTES = 12
WRAPPING_KEY_BYTES = 32
# Where a vault header keeps log2 of its segment size (FORMAT.md).
SEGMENT_LOG2_OFFSET = 6


@dataclass(frozen=True)
class CreatedLink:
    """A new link and its fragment key, which exists nowhere else: show it once."""

    link: KeyLink
    fragment_key: str  # base64url, unpadded

    @property
    def path(self) -> str:
        """``/d/<token>#k=<key>``: give it to the buyer, never to a log."""
        return f"/d/{self.link.token}#k={self.fragment_key}"


@dataclass(frozen=True)
class LinkFile:
    """What a link's page and its meta describe: one file, and how it is stored."""

    link: KeyLink
    track: Track
    format_label: str
    file_name: str
    content_type: str
    size: int  # plaintext bytes
    segment_size: int
    header: bytes  # the object's 64-byte vault header
    ciphertext_size: int  # the blob's bytes: header and segments
    wrapped_key: bytes


def wrap_for_link(dek: bytes, fragment_key: bytes, token: str, header: bytes) -> bytes:
    """``nonce ‖ AES-256-GCM(W, nonce, dek, aad=header)`` with W derived from the fragment key."""
    nonce = os.urandom(WRAP_NONCE_BYTES)
    return nonce + AESGCM(_wrapping_key(fragment_key, token)).encrypt(nonce, dek, header)


def _wrapping_key(fragment_key: bytes, token: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=WRAPPING_KEY_BYTES,
        salt=token.encode("ascii"),
        info=KDF_INFO,
    ).derive(fragment_key)


def create_key_link(
    session: Session, owner: User, *, order_item_id: int, track_id: int, fmt: str
) -> CreatedLink:
    """Make a key link to ``track_id`` in format ``fmt`` for the buyer's order item.

    Raises LibraryItemNotFound when the item is not the owner's purchase or does not hold
    the track, NotOwned when its order no longer owns it, UnknownFormat, FormatNotOffered,
    DownloadNotReady when the format is not made yet, and AuthenticationFailed or
    KekUnavailable when the object's data key cannot be read.
    """
    item = library.library_item(session, order_item_id, owner)
    # The artist and admins may use an item (signed links), but a key link is the buyer's.
    if item.order.buyer_id != owner.id:
        raise LibraryItemNotFound("No such purchase in your library.", {"item_id": order_item_id})
    track = library.owned_track(item, track_id)
    delivery = library.track_delivery(session, item, track, library.get_format(fmt))
    stored = vault.get_object(session, delivery.object_id)
    raw_id = bytes.fromhex(stored.id)
    dek = vault.current_vault().keyring.unwrap(stored.wrapped_dek, raw_id, stored.kek_version)
    # A DEK that does not open the header would make a link that can never work.
    ObjectCipher.open(dek, stored.header, raw_id)
    fragment_key = secrets.token_bytes(FRAGMENT_KEY_BYTES)
    token = new_key_link_token()
    link = KeyLink(
        token=token,
        owner_id=owner.id,
        order_item_id=item.id,
        track_id=track.id,
        format=fmt,
        object_id=stored.id,
        wrapped_key=wrap_for_link(dek, fragment_key, token, stored.header),
    )
    session.add(link)
    encoded = base64.urlsafe_b64encode(fragment_key).rstrip(b"=").decode("ascii")
    return CreatedLink(link=link, fragment_key=encoded)


def link_by_token(session: Session, token: str) -> KeyLink:
    """The link with ``token``, whatever its state. Raises NotFound."""
    link = session.scalar(select(KeyLink).where(KeyLink.token == token))
    if link is None:
        raise NotFound("There is no download at this link.")
    return link


def usable_link(session: Session, token: str) -> KeyLink:
    """The link with ``token`` if it still works.

    Raises NotFound for an unknown token, LinkGone for a revoked link or one whose purchase
    no longer owns the file.
    """
    link = link_by_token(session, token)
    if link.wrapped_key is None:
        raise LinkGone("This link has been revoked by the buyer.")
    try:
        library.require_owning(link.order_item)
    except NotOwned as exc:
        raise LinkGone(exc.message) from None
    return link


def link_file(session: Session, token: str) -> LinkFile:
    """Everything a browser needs, beside the fragment key, to decrypt a link's file.

    Raises NotFound, LinkGone (see ``usable_link``) and ObjectNotFound.
    """
    link = usable_link(session, token)
    assert link.wrapped_key is not None
    stored = vault.get_object(session, link.object_id)
    track = link.track
    fmt = library.get_format(link.format)
    plan = library.format_plan(track, fmt)
    log2 = stored.header[SEGMENT_LOG2_OFFSET]
    return LinkFile(
        link=link,
        track=track,
        format_label=fmt.label,
        file_name=library.download_filename(
            f"{track.release.artist.name} - {track.title}", plan.extension
        ),
        content_type=plan.mime_type,
        size=stored.size,
        segment_size=1 << log2,
        header=stored.header,
        ciphertext_size=ciphertext_size(stored.size, log2),
        wrapped_key=link.wrapped_key,
    )


def revoke_key_link(session: Session, owner: User, token: str) -> KeyLink:
    """Delete the link's wrapped key for good and mark it revoked; revoking twice is harmless.

    Raises NotFound for an unknown token or another user's link (which is not told apart,
    so a token's owner is not revealed).
    """
    link = link_by_token(session, token)
    if link.owner_id != owner.id:
        raise NotFound("There is no download at this link.")
    # Compare-and-set: the first revocation's time stays, whoever else races it.
    session.execute(
        update(KeyLink)
        .where(KeyLink.id == link.id, KeyLink.revoked_at.is_(None))
        .values(wrapped_key=None, revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.refresh(link)
    return link


def active_links(session: Session, owner: User) -> list[KeyLink]:
    """The owner's links that are not revoked, newest first."""
    return list(
        session.scalars(
            select(KeyLink)
            .where(KeyLink.owner_id == owner.id, KeyLink.revoked_at.is_(None))
            .order_by(KeyLink.created_at.desc(), KeyLink.id.desc())
        )
    )


def open_ciphertext(session: Session, link: KeyLink) -> CiphertextReader:
    """The link's stored object as the backend holds it (header and segments), seekable.

    Its first bytes are read before this returns, so a missing or resized object fails
    here: ObjectNotFound, StorageUnavailable, or AuthenticationFailed when the stored size
    is not the one its header implies.
    """
    stored = vault.get_object(session, link.object_id)
    size = ciphertext_size(stored.size, stored.header[SEGMENT_LOG2_OFFSET])
    reader = CiphertextReader(vault.current_vault().backend, stored.backend_key, size)
    try:
        reader.prefetch()
    except BaseException:
        reader.close()
        raise
    return reader


class CiphertextReader(vault.SeekableReader):
    """Raw stored bytes of one object as a seekable file, for serving byte ranges.

    Reading on continues one ranged read of the store; a seek elsewhere opens another.
    Nothing is decrypted: the bytes go to a browser that holds the key.
    """

    def __init__(self, backend: Backend, key: str, size: int) -> None:
        super().__init__()
        self._backend = backend
        self._key = key
        self.size = size
        self._position = 0
        self._source: ObjectReader | None = None
        self._source_position = -1

    def prefetch(self) -> None:
        """Open the store at the current position now, so that failures come before a
        response has begun."""
        if self._position < self.size:
            self._open()

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        if self.closed:
            raise ValueError("read from a closed ciphertext reader")
        want = min(len(buffer), self.size - self._position)
        if want <= 0:
            return 0
        source = self._open()
        count = source.readinto(memoryview(buffer).cast("B")[:want])
        if not count:
            raise AuthenticationFailed("The stored object is truncated.")
        self._position += count
        self._source_position = self._position
        return count

    def _open(self) -> ObjectReader:
        if self._source is not None and self._source_position == self._position:
            return self._source
        if self._source is not None:
            self._source.close()
            self._source = None
        source = self._backend.open_range(self._key, self._position, None)
        if source.object_size != self.size:
            source.close()
            raise AuthenticationFailed("The stored object is truncated or has trailing bytes.")
        self._source, self._source_position = source, self._position
        return source

    def close(self) -> None:
        if self._source is not None:
            self._source.close()
            self._source = None
        super().close()
