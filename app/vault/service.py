"""The vault: what other areas call to store, read, verify and delete encrypted objects.

Functions take the caller's session and never commit. The ciphertext follows the
transaction, through the session events at the end of this module:

- a put writes the ciphertext at once; if the transaction, or the savepoint the put was made
  in, rolls back, or the session closes without committing, the ciphertext is deleted again,
  so a failed ingest leaves no orphan in the store;
- a delete removes the row, the only copy of the wrapped data key, in the transaction, and the
  ciphertext only after that transaction commits.

A process that dies between writing ciphertext and committing leaves an object that no row
points at; without its key it is unreadable.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session, object_session

from app import transactions
from app.vault.backends import Backend, ObjectReader, backend_from_config
from app.vault.errors import (
    AuthenticationFailed,
    InvalidKind,
    KekUnavailable,
    ObjectNotFound,
    StorageUnavailable,
    VaultError,
)
from app.vault.format import (
    IO_BATCH_BYTES,
    MAX_SEGMENT_LOG2,
    MIN_SEGMENT_LOG2,
    ObjectCipher,
    ReadableInto,
)
from app.vault.keys import Keyring, load_keyring, new_dek
from app.vault.models import KIND_MAX_LENGTH, VaultObject
from config import ConfigurationError

EXTENSION_NAME = "vault"
# Object ids read per query when walking every object.
ID_BATCH = 1000

logger = logging.getLogger(__name__)


@dataclass
class Vault:
    """An application's object store, keyring and segment size, built once from its settings."""

    backend: Backend
    keyring: Keyring
    segment_log2: int


def vault_from_config(config: Mapping[str, Any]) -> Vault:
    """Build the vault the settings describe. Raises ConfigurationError."""
    segment_log2 = config["VAULT_SEGMENT_SIZE_LOG2"]
    if not MIN_SEGMENT_LOG2 <= segment_log2 <= MAX_SEGMENT_LOG2:
        raise ConfigurationError(
            f"MEGABOX_VAULT_SEGMENT_SIZE_LOG2 must be {MIN_SEGMENT_LOG2}..{MAX_SEGMENT_LOG2}"
        )
    return Vault(
        backend=backend_from_config(config),
        keyring=load_keyring(config["KEK"], config["KEK_FILE"], config["INSTANCE_PATH"]),
        segment_log2=segment_log2,
    )


def current_vault() -> Vault:
    """The current app's vault, built on first use and kept in ``app.extensions``."""
    extensions = current_app.extensions
    if EXTENSION_NAME not in extensions:
        extensions[EXTENSION_NAME] = vault_from_config(current_app.config)
    vault: Vault = extensions[EXTENSION_NAME]
    return vault


def put_path(
    session: Session, path: str | os.PathLike[str], *, kind: str, content_type: str | None = None
) -> VaultObject:
    """Encrypt the file at ``path`` into the vault and add its record to the session.

    Raises InvalidKind, SizeMismatch if the file changes size while it is read,
    StorageUnavailable, and OSError if the file cannot be read.
    """
    with open(path, "rb", buffering=0) as source:
        size = os.fstat(source.fileno()).st_size
        return _put(session, source, size, kind, content_type)


def put_stream(
    session: Session,
    stream: ReadableInto,
    *,
    kind: str,
    content_type: str | None = None,
    size: int | None = None,
) -> VaultObject:
    """Encrypt a binary stream into the vault and add its record to the session.

    With ``size`` the stream is encrypted as it is read and must hold exactly that many
    bytes; without it the stream is first spooled to a temporary file. Memory stays flat
    either way. Raises InvalidKind, SizeMismatch and StorageUnavailable.
    """
    if size is not None:
        return _put(session, stream, size, kind, content_type)
    with tempfile.TemporaryFile() as spool:
        buffer = memoryview(bytearray(IO_BATCH_BYTES))
        while count := stream.readinto(buffer):
            spool.write(buffer[:count])
        size = spool.tell()
        spool.seek(0)
        return _put(session, spool, size, kind, content_type)


def _put(
    session: Session, source: ReadableInto, size: int, kind: str, content_type: str | None
) -> VaultObject:
    if not kind or len(kind) > KIND_MAX_LENGTH:
        raise InvalidKind(f"An object's kind is 1 to {KIND_MAX_LENGTH} characters.")
    vault = current_vault()
    object_id = uuid.uuid4().hex
    raw_id = bytes.fromhex(object_id)
    dek = new_dek()
    wrapped_dek, kek_version = vault.keyring.wrap(dek, raw_id)
    cipher = ObjectCipher.create(dek, raw_id, size, vault.segment_log2)
    hasher = hashlib.sha256()
    key = _backend_key(object_id)
    vault.backend.write(key, cipher.encrypt(source, hasher), cipher.ciphertext_size)
    stored = VaultObject(
        id=object_id,
        kind=kind,
        content_type=content_type,
        backend_key=key,
        size=size,
        sha256=hasher.hexdigest(),
        header=cipher.raw_header,
        wrapped_dek=wrapped_dek,
        kek_version=kek_version,
    )
    session.add(stored)
    _remember(stored, vault.backend, key, after_commit=False)
    return stored


def _backend_key(object_id: str) -> str:
    """Where an object's ciphertext is stored: ``objects/<first 2 hex digits>/<id>``.

    The prefix spreads a local store over 256 directories.
    """
    return f"objects/{object_id[:2]}/{object_id}"


def get_object(session: Session, object_id: str) -> VaultObject:
    """The record of an object. Raises ObjectNotFound."""
    stored = session.get(VaultObject, object_id)
    if stored is None:
        raise ObjectNotFound(f"No vault object has the id {object_id}.", {"id": object_id})
    return stored


def read_range(session: Session, object_id: str, start: int, end: int) -> bytes:
    """Plaintext bytes ``start`` to ``end`` inclusive, all of them authenticated.

    Raises ObjectNotFound, InvalidRange, KekUnavailable, AuthenticationFailed and
    StorageUnavailable.
    """
    plaintext = bytearray()
    with open_range_stream(session, object_id, start, end) as stream:
        stream.copy_to(plaintext.extend)
    return bytes(plaintext)


def open_range_stream(session: Session, object_id: str, start: int, end: int) -> PlaintextStream:
    """Stream plaintext bytes ``start`` to ``end`` inclusive, from one ranged read.

    The range is checked and the key and header authenticated before this returns. Raises
    as ``read_range``; while iterating, only AuthenticationFailed or StorageUnavailable, and
    no unauthenticated byte comes first.
    """
    vault = current_vault()
    stored = get_object(session, object_id)
    cipher = _cipher(vault, stored)
    span = cipher.span(start, end)
    reader = _open(vault, stored, cipher, span.offset, span.length)
    return PlaintextStream(reader, cipher.decrypt_span(reader, span))


def iter_plaintext(session: Session, object_id: str) -> PlaintextStream:
    """Stream the whole plaintext, segment by segment, each one authenticated before it is given.

    Raises ObjectNotFound, KekUnavailable, AuthenticationFailed and StorageUnavailable.
    """
    vault = current_vault()
    stored = get_object(session, object_id)
    cipher = _cipher(vault, stored)
    reader = _open(vault, stored, cipher, 0, None)
    return PlaintextStream(reader, cipher.decrypt_object(reader))


class ObjectRecord(Protocol):
    """What reading an object needs from its record: a ``VaultObject`` has it, and so does a
    row of ``RECORD_COLUMNS``."""

    @property
    def id(self) -> str: ...

    @property
    def backend_key(self) -> str: ...

    @property
    def size(self) -> int: ...

    @property
    def header(self) -> bytes: ...

    @property
    def wrapped_dek(self) -> bytes: ...

    @property
    def kek_version(self) -> int: ...

    @property
    def created_at(self) -> datetime: ...


# The columns of an ``ObjectRecord``. A caller that reaches an object through a join of its own
# on every request (streaming) selects these in that query, rather than loading the record
# as an ORM object in a second one.
RECORD_COLUMNS = (
    VaultObject.id,
    VaultObject.backend_key,
    VaultObject.size,
    VaultObject.header,
    VaultObject.wrapped_dek,
    VaultObject.kek_version,
    VaultObject.created_at,
)


def open_reader(session: Session, object_id: str) -> PlaintextReader:
    """A seekable, read-only file of an object's plaintext, for serving byte ranges.

    The key and header are authenticated before this returns; segments are read and
    authenticated as reads reach them. Raises ObjectNotFound, KekUnavailable,
    AuthenticationFailed and StorageUnavailable, here or from its reads, and logs each
    failure with the object id.
    """
    return open_record(get_object(session, object_id))


def open_record(stored: ObjectRecord) -> PlaintextReader:
    """``open_reader`` for a record the caller has read already.

    Raises as ``open_reader`` does; ObjectNotFound here means that the ciphertext is missing.
    """
    vault = current_vault()
    try:
        cipher = _cipher(vault, stored)
    except VaultError as exc:
        logger.error("vault: object %s cannot be opened: %s", stored.id, exc.message)
        raise
    return PlaintextReader(vault.backend, stored, cipher)


def verify(session: Session, object_id: str) -> None:
    """Re-authenticate every segment and check the plaintext's recorded SHA-256.

    Raises AuthenticationFailed for a damaged object, ObjectNotFound when the record or the
    ciphertext is missing, KekUnavailable and StorageUnavailable.
    """
    stored = get_object(session, object_id)
    hasher = hashlib.sha256()
    with iter_plaintext(session, object_id) as stream:
        stream.copy_to(hasher.update)
    if not hmac.compare_digest(hasher.hexdigest(), stored.sha256):
        raise AuthenticationFailed("The plaintext does not match its recorded SHA-256.")


def delete(session: Session, object_id: str) -> None:
    """Delete an object: its record and wrapped key now, its ciphertext once the session commits.

    Raises ObjectNotFound.
    """
    stored = get_object(session, object_id)
    session.delete(stored)
    _remember(stored, current_vault().backend, stored.backend_key, after_commit=True)


def all_object_ids(session: Session) -> Iterator[str]:
    """Every object id, in order, read in batches."""
    after = ""
    while True:
        ids = session.scalars(
            select(VaultObject.id)
            .where(VaultObject.id > after)
            .order_by(VaultObject.id)
            .limit(ID_BATCH)
        ).all()
        yield from ids
        if len(ids) < ID_BATCH:
            return
        after = ids[-1]


def count_by_kek_version(session: Session) -> dict[int, int]:
    """How many objects have their data key wrapped under each KEK version."""
    rows = session.execute(
        select(VaultObject.kek_version, func.count()).group_by(VaultObject.kek_version)
    )
    return {version: count for version, count in rows}


@dataclass(frozen=True)
class RewrapBatch:
    """One batch of a KEK rotation. ``last_id`` is where the next batch starts, None at the end."""

    rewrapped: int
    failed: dict[str, str]
    last_id: str | None


def rewrap_batch(session: Session, *, after: str, limit: int) -> RewrapBatch:
    """Re-wrap up to ``limit`` data keys, in id order after ``after``, under the current KEK.

    Only the records change; the objects are untouched. A key that does not unwrap is
    reported in ``failed`` and left as it is.
    """
    keyring = current_vault().keyring
    current = keyring.current_version
    stale = session.scalars(
        select(VaultObject)
        .where(VaultObject.id > after, VaultObject.kek_version != current)
        .order_by(VaultObject.id)
        .limit(limit)
    ).all()
    failed: dict[str, str] = {}
    for stored in stale:
        raw_id = bytes.fromhex(stored.id)
        try:
            dek = keyring.unwrap(stored.wrapped_dek, raw_id, stored.kek_version)
        except (AuthenticationFailed, KekUnavailable) as exc:
            failed[stored.id] = exc.message
            continue
        stored.wrapped_dek, stored.kek_version = keyring.wrap(dek, raw_id)
    return RewrapBatch(
        rewrapped=len(stale) - len(failed),
        failed=failed,
        last_id=stale[-1].id if stale else None,
    )


def _cipher(vault: Vault, stored: ObjectRecord) -> ObjectCipher:
    raw_id = bytes.fromhex(stored.id)
    dek = vault.keyring.unwrap(stored.wrapped_dek, raw_id, stored.kek_version)
    return ObjectCipher.open(dek, stored.header, raw_id)


def _open(
    vault: Vault, stored: VaultObject, cipher: ObjectCipher, offset: int, length: int | None
) -> ObjectReader:
    reader = vault.backend.open_range(stored.backend_key, offset, length)
    if reader.object_size != cipher.ciphertext_size:
        reader.close()
        raise AuthenticationFailed("The stored object is truncated or has trailing bytes.")
    return reader


class PlaintextStream(Iterator[bytes]):
    """Authenticated plaintext read from one open object: iterate for chunks of bytes, or
    ``copy_to`` a sink without copying them first.

    Exhausting it, an error while reading, or ``close()`` (a ``with`` block, or a WSGI server
    closing a streamed response) releases the object.
    """

    def __init__(self, reader: ObjectReader, views: Iterator[memoryview]) -> None:
        self._reader = reader
        self._views = views

    def __next__(self) -> bytes:
        try:
            return bytes(next(self._views))
        except BaseException:
            self.close()
            raise

    def copy_to(self, write: Callable[[memoryview], object]) -> None:
        """Call ``write`` with each remaining chunk, in order, then release the object.

        A chunk is a view of a reused buffer, valid only during its call: ``write`` must
        consume or copy it. Raises as iterating does.
        """
        try:
            for view in self._views:
                write(view)
        finally:
            self.close()

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> PlaintextStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SeekableReader(io.RawIOBase):
    """A read-only binary file of ``size`` bytes whose position a subclass reads from."""

    size: int
    _position: int

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        bases = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.size}
        if whence not in bases:
            raise ValueError(f"invalid whence: {whence}")
        position = bases[whence] + offset
        if position < 0:
            raise ValueError(f"negative seek position {position}")
        self._position = position
        return position


class PlaintextReader(SeekableReader):
    """The plaintext of one object as a seekable binary file (see ``open_reader``).

    It holds one decrypted segment at a time, and hands out bytes of a segment only after
    the segment's tag has passed. Reading on from where the last read stopped continues one
    ranged read of the store; a seek elsewhere opens another from the segment it lands in.
    A read returns at most the rest of the current segment.
    """

    def __init__(self, backend: Backend, stored: ObjectRecord, cipher: ObjectCipher) -> None:
        super().__init__()
        self._backend = backend
        self._key = stored.backend_key
        self._object_id = stored.id
        self._cipher = cipher
        self.size = stored.size
        self._position = 0
        self._segment = memoryview(bytearray(cipher.segment_size))
        self._segment_index = -1  # none held
        self._segment_length = 0
        self._source: ObjectReader | None = None
        self._source_index = -1  # the segment the open ranged read gives next

    def prefetch(self) -> None:
        """Authenticate the segment at the current position now, so that a failure is
        raised here (before an HTTP response has begun) rather than by a later read."""
        if self._position < self.size:
            self._load(self._cipher.segment_of(self._position)[0])

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        if self.closed:
            raise ValueError("read from a closed vault reader")
        if self._position >= self.size or not len(buffer):
            return 0
        index, start = self._cipher.segment_of(self._position)
        self._load(index)
        offset = self._position - start
        count = min(len(buffer), self._segment_length - offset)
        memoryview(buffer).cast("B")[:count] = self._segment[offset : offset + count]
        self._position += count
        return count

    def _load(self, index: int) -> None:
        if index == self._segment_index:
            return
        self._segment_index = -1
        try:
            if self._source is None or self._source_index != index:
                self._reopen(index)
            assert self._source is not None
            # Counted as read even if it fails: the source has moved on, so a retry reopens.
            self._source_index = -1
            self._segment_length = self._cipher.decrypt_segment(
                self._source, index, self._segment
            )
        except VaultError as exc:
            logger.error(
                "vault: object %s failed at segment %d: %s", self._object_id, index, exc.message
            )
            raise
        self._source_index = index + 1
        self._segment_index = index

    def _reopen(self, index: int) -> None:
        if self._source is not None:
            self._source.close()
            self._source = None
        source = self._backend.open_range(self._key, self._cipher.segment_offset(index), None)
        if source.object_size != self._cipher.ciphertext_size:
            source.close()
            raise AuthenticationFailed("The stored object is truncated or has trailing bytes.")
        self._source, self._source_index = source, index

    def close(self) -> None:
        if self._source is not None:
            self._source.close()
            self._source = None
        super().close()


# Ciphertext that follows the session's transaction (see the module docstring).


def _remember(stored: VaultObject, backend: Backend, key: str, *, after_commit: bool) -> None:
    """Delete ``key`` once the transaction commits (a delete), or unless it does (a put)."""
    # The row's own Session, not a scoped_session proxy that callers may have passed.
    session = object_session(stored)
    assert session is not None, "the row was added to a session or loaded from one"
    schedule = transactions.after_commit if after_commit else transactions.on_rollback
    schedule(session, lambda: _discard(backend, key))


def _discard(backend: Backend, key: str) -> None:
    try:
        backend.delete(key)
    except StorageUnavailable as exc:
        # The row is gone (or was never committed), so this ciphertext has no key: unreadable.
        logger.warning("vault: could not delete %s: %s", key, exc.message)
