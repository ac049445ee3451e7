"""The upload protocol (tus 1.0.0): open an upload, append chunks at an offset, cancel, quotas.

Chunks are appended to a spool file (``UPLOAD_SPOOL_PATH``, by default
``<instance>/uploads``) named after the upload and created with mode 0600. When the last byte
arrives the upload moves to ``processing`` and ``app.ingest.tasks.process_upload`` is enqueued
after the commit. The spool file is the only plaintext copy; the pipeline removes it whatever
the outcome. In scale-out mode the spool folder must be shared by the web servers and the
workers, on a file system with working ``flock`` (local disks; NFS emulates it with POSIX
locks).

Concurrency, decided by the operating system and the database, never by a check alone:

- An append holds an exclusive, non-blocking ``flock`` on the spool file from before it reads
  the upload's offset until its transaction ends, so two writers never interleave bytes and a
  second writer gets ``UploadBusy`` at once instead of waiting behind a slow client. It then
  records the bytes with a compare-and-set ``UPDATE ... WHERE received = <offset>``; no row
  lock is held while the request body is read.
- Opening an upload locks the artist's row before it sums their storage, so concurrent
  openings for one artist are admitted one at a time against the quota.
- Files are removed only once the database agrees: a spool created by a transaction that rolls
  back is removed on rollback, and cancelled or deleted uploads lose theirs after the commit.

Callers own the transaction, as everywhere.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.catalog.models import Artist, Release
from app.catalog.service import require_owner
from app.database import lock_row
from app.ingest.errors import (
    ChecksumMismatch,
    ChunkTooLarge,
    EmptyFile,
    FileTooLarge,
    OffsetMismatch,
    QuotaExceeded,
    UploadBusy,
    UploadNotFound,
    UploadNotOpen,
)
from app.ingest.models import TrackMedia, Upload, UploadStatus
from app.jobs import enqueue_after_commit
from app.timestamps import utcnow
from app.transactions import after_commit, on_rollback
from app.vault.models import VaultObject

PROCESS_JOB = "app.ingest.tasks.process_upload"
COPY_BLOCK_BYTES = 1024 * 1024
FILENAME_MAX = 255
RECENT_UPLOADS = 50
SPOOL_MODE = 0o600
# tus checksum extension: sha1 is the one every server must support; sha256 is what our page uses.
CHECKSUM_ALGORITHMS: dict[str, Callable[[], Any]] = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}


class ByteSource(Protocol):
    """A request body: ``read`` returns up to ``size`` bytes, ``b""`` at the end, and raises
    OSError when the client goes away."""

    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class Checksum:
    """A chunk's expected digest (tus ``Upload-Checksum``); ``algorithm`` is a key of
    ``CHECKSUM_ALGORITHMS``."""

    algorithm: str
    digest: bytes


def spool_dir(config: Mapping[str, Any]) -> Path:
    folder = Path(config["UPLOAD_SPOOL_PATH"] or Path(config["INSTANCE_PATH"]) / "uploads")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def spool_path(config: Mapping[str, Any], upload_id: str) -> Path:
    return spool_dir(config) / f"{upload_id}.part"


def storage_used(session: Session, artist_id: int) -> int:
    """Bytes an artist's masters and their streaming renditions take, plus what their
    unfinished uploads have announced."""
    stored = session.scalar(
        select(func.coalesce(func.sum(VaultObject.size), 0))
        .join(
            TrackMedia,
            or_(
                TrackMedia.master_object_id == VaultObject.id,
                TrackMedia.opus_object_id == VaultObject.id,
                TrackMedia.mp3_object_id == VaultObject.id,
            ),
        )
        .where(TrackMedia.artist_id == artist_id)
    )
    pending = session.scalar(
        select(func.coalesce(func.sum(Upload.size), 0)).where(
            Upload.artist_id == artist_id,
            Upload.status.in_([UploadStatus.UPLOADING, UploadStatus.PROCESSING]),
        )
    )
    return int(stored) + int(pending)


def start_upload(
    session: Session,
    config: Mapping[str, Any],
    user: User,
    release: Release,
    filename: str,
    size: int,
) -> Upload:
    """Open an upload of ``size`` bytes into ``release``, with an empty spool file.

    Holds a lock on the artist's row until the transaction ends, so that the quota check and
    the new upload are one step. Raises NotOwner, EmptyFile, FileTooLarge and QuotaExceeded.
    """
    require_owner(user, release.artist)
    if size <= 0:
        raise EmptyFile("The file is empty.", {"size": size})
    limit = config["MAX_UPLOAD_BYTES"]
    if size > limit:
        raise FileTooLarge(
            f"The file is larger than the {_human(limit)} limit.", {"size": size, "limit": limit}
        )
    lock_artist(session, release.artist_id)
    quota = config["ARTIST_STORAGE_QUOTA_BYTES"]
    used = storage_used(session, release.artist_id)
    if used + size > quota:
        raise QuotaExceeded(
            f"This upload would take {release.artist.name} over their {_human(quota)} of storage.",
            {"used": used, "quota": quota, "size": size},
        )
    upload = Upload(
        id=uuid.uuid4().hex,
        user_id=user.id,
        artist_id=release.artist_id,
        release_id=release.id,
        filename=_clean_filename(filename),
        size=size,
        received=0,
        status=UploadStatus.UPLOADING,
    )
    session.add(upload)
    _create_spool(session, spool_path(config, upload.id))
    return upload


def lock_artist(session: Session, artist_id: int) -> None:
    """Serialise an artist's storage accounting until the transaction ends.

    A row lock on PostgreSQL, the database's write lock on SQLite (``app.database.lock_row``):
    either way a second opening (or a finished ingest) for this artist waits here until this
    transaction ends, and then counts what this one added.
    """
    lock_row(session, Artist.__table__, artist_id)


def _create_spool(session: Session, path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SPOOL_MODE))
    on_rollback(session, partial(path.unlink, missing_ok=True))


def spool_local_file(
    session: Session, config: Mapping[str, Any], user: User, release: Release, path: Path
) -> Upload:
    """Open an upload of a file on this machine and copy it in whole, ready to process.

    The caller commits and then runs (or enqueues) the processing job. Raises what
    ``start_upload`` raises, and OSError when the file cannot be read.
    """
    upload = start_upload(session, config, user, release, path.name, path.stat().st_size)
    spool = os.open(spool_path(config, upload.id), os.O_RDWR)
    try:
        with open(path, "rb") as source:
            written, _ = _write_at(spool, 0, source, upload.size, None)
    finally:
        os.close(spool)
    upload.received = written
    if not upload.complete:
        raise OSError(f"{path} changed size while it was read")
    upload.status = UploadStatus.PROCESSING
    upload.stage = "queued"
    return upload


def get_upload(session: Session, user: User, upload_id: str) -> Upload:
    """An upload the user may see and change. Raises UploadNotFound."""
    upload = session.get(Upload, upload_id)
    if upload is None or not (user.is_admin or upload.user_id == user.id):
        raise UploadNotFound("No such upload.")
    return upload


def append_chunk(
    session: Session,
    config: Mapping[str, Any],
    upload: Upload,
    offset: int,
    body: ByteSource,
    length: int,
    checksum: Checksum | None = None,
) -> int:
    """Append ``length`` bytes read from ``body`` at ``offset``; returns the new offset.

    Whatever arrives before a dropped connection is kept, so the client resumes from the
    offset the upload reports; a chunk sent with a ``checksum`` is kept only whole and
    matching. The spool stays locked until the caller's transaction ends. Completing the
    upload enqueues its processing after the commit.

    Raises UploadNotOpen, OffsetMismatch, ChunkTooLarge, UploadBusy (another request is
    appending), ChecksumMismatch and UploadNotFound (cancelled meanwhile).
    """
    _require_open(upload.status)
    if offset != upload.received:
        raise _offset_mismatch(upload.received)
    if offset + length > upload.size:
        raise ChunkTooLarge(
            "The chunk runs past the size announced for the file.",
            {"offset": offset, "length": length, "size": upload.size},
        )
    lock = _SpoolLock.acquire(spool_path(config, upload.id))
    try:
        # Under the lock, the committed offset is the truth: a writer that held the lock
        # before has committed (or rolled back) by now.
        _require_at(session, upload.id, offset)
        written, digest = _write_at(lock.fd, offset, body, length, checksum)
        if checksum is not None and (written < length or digest != checksum.digest):
            os.ftruncate(lock.fd, offset)
            raise ChecksumMismatch(
                f"The chunk's {checksum.algorithm} checksum does not match; send it again.",
                {"offset": offset, "algorithm": checksum.algorithm},
            )
        received = _record(session, upload, offset, offset + written)
    except BaseException:
        lock.release()
        raise
    after_commit(session, lock.release)
    on_rollback(session, lock.release)
    return received


def _record(session: Session, upload: Upload, offset: int, received: int) -> int:
    """Compare-and-set the upload's offset from ``offset`` to ``received``."""
    values: dict[str, Any] = {"received": received}
    complete = received == upload.size
    if complete:
        values.update(status=UploadStatus.PROCESSING, stage="queued", progress=0)
    result = session.execute(
        update(Upload)
        .where(
            Upload.id == upload.id,
            Upload.received == offset,
            Upload.status == UploadStatus.UPLOADING,
        )
        .values(**values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        # Moved by something that does not take the spool lock (a cancel, a sweep).
        _require_at(session, upload.id, offset)
        raise _offset_mismatch(offset)
    if complete:
        enqueue_after_commit(session, PROCESS_JOB, upload.id)
    return received


def _require_at(session: Session, upload_id: str, offset: int) -> None:
    """Raises UploadNotFound, UploadNotOpen or OffsetMismatch unless the stored upload is
    open and stands at ``offset``. Reads the row, not the session's copy of it."""
    row = session.execute(
        select(Upload.received, Upload.status).where(Upload.id == upload_id)
    ).one_or_none()
    if row is None:
        raise UploadNotFound("No such upload.")
    _require_open(row.status)
    if row.received != offset:
        raise _offset_mismatch(row.received)


def _require_open(status: UploadStatus) -> None:
    if status is not UploadStatus.UPLOADING:
        raise UploadNotOpen(f"This upload is {status.value}.", {"status": status.value})


def _offset_mismatch(received: int) -> OffsetMismatch:
    return OffsetMismatch(
        f"The upload stands at byte {received}; send from there.", {"offset": received}
    )


class _SpoolLock:
    """An open spool file under an exclusive ``flock``: one writer at a time per upload."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._open = True

    @classmethod
    def acquire(cls, path: Path) -> _SpoolLock:
        """Raises UploadNotFound (the spool is gone) and UploadBusy (another writer has it)."""
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            raise UploadNotFound("No such upload.") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UploadBusy(
                "Another request is sending bytes to this upload. Ask for its offset "
                "(HEAD or GET) and resume from there once it has finished."
            ) from None
        return cls(fd)

    def release(self) -> None:
        if self._open:
            self._open = False
            os.close(self.fd)  # closing the only descriptor releases the lock


def _write_at(
    spool: int, offset: int, body: ByteSource, length: int, checksum: Checksum | None
) -> tuple[int, bytes | None]:
    """Copy up to ``length`` bytes of ``body`` into ``spool`` from ``offset``, cut the file
    there and sync it. Returns the bytes written and, with a checksum, their digest."""
    hasher = CHECKSUM_ALGORITHMS[checksum.algorithm]() if checksum is not None else None
    written = 0
    while written < length:
        try:
            block = body.read(min(COPY_BLOCK_BYTES, length - written))
        except OSError:
            break  # the client went away mid-chunk; keep what arrived so it can resume
        if not block:
            break
        view = memoryview(block)
        while view:
            done = os.pwrite(spool, view, offset + written)
            view, written = view[done:], written + done
        if hasher is not None:
            hasher.update(block)
    os.ftruncate(spool, offset + written)
    os.fsync(spool)
    return written, hasher.digest() if hasher is not None else None


def cancel_upload(session: Session, config: Mapping[str, Any], upload: Upload) -> None:
    """Abandon an upload that is still receiving bytes (tus termination); its spool file is
    removed after the commit. Raises UploadNotOpen and UploadNotFound."""
    removed = session.execute(
        delete(Upload).where(Upload.id == upload.id, Upload.status == UploadStatus.UPLOADING)
    )
    if removed.rowcount != 1:  # type: ignore[attr-defined]
        status = session.scalar(select(Upload.status).where(Upload.id == upload.id))
        if status is None:
            raise UploadNotFound("No such upload.")
        _require_open(status)
    discard_spools(session, config, [upload.id])


def discard_spools(session: Session, config: Mapping[str, Any], upload_ids: Iterable[str]) -> None:
    """Remove the spool files of these uploads once the session's transaction commits.

    For whoever deletes uploads (a cancelled upload, a deleted release or artist): the bytes
    stay if the deletion is rolled back.
    """
    paths = [spool_path(config, upload_id) for upload_id in upload_ids]
    if paths:
        after_commit(session, partial(_unlink_all, paths))


def _unlink_all(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def sweep_abandoned(session: Session, config: Mapping[str, Any]) -> int:
    """Remove uploads that stopped receiving bytes ``UPLOAD_EXPIRY_HOURS`` ago; their spooled
    bytes go after the commit. Returns how many were removed."""
    cutoff = utcnow() - timedelta(hours=config["UPLOAD_EXPIRY_HOURS"])
    abandoned = (Upload.status == UploadStatus.UPLOADING, Upload.updated_at < cutoff)
    removed: list[str] = []
    for upload_id in list(session.scalars(select(Upload.id).where(*abandoned))):
        # One conditional delete each: an upload that took a chunk meanwhile stays.
        result = session.execute(delete(Upload).where(Upload.id == upload_id, *abandoned))
        if result.rowcount:  # type: ignore[attr-defined]
            removed.append(upload_id)
    discard_spools(session, config, removed)
    return len(removed)


def recent_uploads(session: Session, release: Release) -> list[Upload]:
    return list(
        session.scalars(
            select(Upload)
            .where(Upload.release_id == release.id)
            .order_by(Upload.created_at.desc())
            .limit(RECENT_UPLOADS)
        )
    )


def _clean_filename(name: str) -> str:
    base = os.path.basename(name.replace("\\", "/")).replace("\x00", "").strip()
    return (base or "upload")[:FILENAME_MAX]


def _human(size: int) -> str:
    """``4 GiB``, ``512 MiB``, ``900 bytes``."""
    amount, unit = float(size), "bytes"
    for bigger in ("KiB", "MiB", "GiB", "TiB"):
        if amount < 1024:
            break
        amount, unit = amount / 1024, bigger
    return f"{amount:.3g} {unit}"
