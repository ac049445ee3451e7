"""The upload protocol: start an upload, append chunks at an offset, cancel, and quotas.

Chunks are appended to a spool file (``UPLOAD_SPOOL_PATH``, by default
``<instance>/uploads``) named after the upload. When the last byte arrives the upload moves
to ``processing`` and ``media_worker.pipeline.process_upload`` is enqueued after the commit.
The spool file is the only plaintext copy; the pipeline removes it whatever the outcome. In
scale-out mode the spool folder must be shared by the web servers and the workers.

Callers own the transaction, as everywhere.
"""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.catalog.models import Release
from app.catalog.service import require_owner
from app.ingest.errors import (
    ChunkTooLarge,
    EmptyFile,
    FileTooLarge,
    OffsetMismatch,
    QuotaExceeded,
    UploadNotFound,
    UploadNotOpen,
)
from app.ingest.models import TrackMedia, Upload, UploadStatus
from app.timestamps import utcnow
from app.vault.models import VaultObject
from media_worker.queue import enqueue_after_commit

PROCESS_JOB = "media_worker.pipeline.process_upload"
COPY_BLOCK_BYTES = 1024 * 1024
FILENAME_MAX = 255
RECENT_UPLOADS = 50


def spool_dir(config: Mapping[str, Any]) -> Path:
    folder = Path(config["UPLOAD_SPOOL_PATH"] or Path(config["INSTANCE_PATH"]) / "uploads")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def spool_path(config: Mapping[str, Any], upload_id: str) -> Path:
    return spool_dir(config) / f"{upload_id}.part"


def storage_used(session: Session, artist_id: int) -> int:
    """Bytes an artist's masters take, plus what their unfinished uploads have announced."""
    stored = session.scalar(
        select(func.coalesce(func.sum(VaultObject.size), 0))
        .join(TrackMedia, TrackMedia.master_object_id == VaultObject.id)
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
    """Open an upload of ``size`` bytes into ``release``.

    Raises NotOwner, EmptyFile, FileTooLarge and QuotaExceeded.
    """
    require_owner(user, release.artist)
    if size <= 0:
        raise EmptyFile("The file is empty.", {"size": size})
    limit = config["MAX_UPLOAD_BYTES"]
    if size > limit:
        raise FileTooLarge(
            f"The file is larger than the {_human(limit)} limit.", {"size": size, "limit": limit}
        )
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
    spool_path(config, upload.id).touch()
    return upload


def spool_local_file(
    session: Session, config: Mapping[str, Any], user: User, release: Release, path: Path
) -> Upload:
    """Open an upload of a file on this machine and copy it in whole, ready to process.

    The caller commits and then runs (or enqueues) the processing job. Raises what
    ``start_upload`` raises, and OSError when the file cannot be read.
    """
    upload = start_upload(session, config, user, release, path.name, path.stat().st_size)
    with open(path, "rb") as source:
        written = _write_at(spool_path(config, upload.id), 0, source, upload.size)
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


def lock_upload(session: Session, user: User, upload_id: str) -> Upload:
    """Like get_upload, but locks the row so concurrent chunks of one upload queue up."""
    upload = session.scalar(select(Upload).where(Upload.id == upload_id).with_for_update())
    if upload is None or not (user.is_admin or upload.user_id == user.id):
        raise UploadNotFound("No such upload.")
    return upload


def append_chunk(
    session: Session,
    config: Mapping[str, Any],
    upload: Upload,
    offset: int,
    body: IO[bytes],
    length: int,
) -> Upload:
    """Append ``length`` bytes read from ``body`` at ``offset``.

    Whatever arrives before a dropped connection is kept, so the client resumes from the
    offset the upload reports. Completing the upload enqueues its processing.
    Raises UploadNotOpen, OffsetMismatch and ChunkTooLarge.
    """
    if upload.status is not UploadStatus.UPLOADING:
        raise UploadNotOpen(f"This upload is {upload.status.value}.", {"status": upload.status.value})
    if offset != upload.received:
        raise OffsetMismatch(
            f"The upload stands at byte {upload.received}; send from there.",
            {"offset": upload.received},
        )
    if offset + length > upload.size:
        raise ChunkTooLarge(
            "The chunk runs past the size announced for the file.",
            {"offset": offset, "length": length, "size": upload.size},
        )
    written = _write_at(spool_path(config, upload.id), offset, body, length)
    upload.received = offset + written
    if upload.complete:
        upload.status = UploadStatus.PROCESSING
        upload.stage = "queued"
        upload.progress = 0
        enqueue_after_commit(session, PROCESS_JOB, upload.id)
    return upload


def _write_at(path: Path, offset: int, body: IO[bytes], length: int) -> int:
    written = 0
    with open(path, "r+b") as spool:
        spool.seek(offset)
        try:
            while written < length:
                block = body.read(min(COPY_BLOCK_BYTES, length - written))
                if not block:
                    break
                spool.write(block)
                written += len(block)
        except OSError:
            pass  # the client went away mid-chunk; keep what arrived so it can resume
        spool.truncate(offset + written)
        spool.flush()
        os.fsync(spool.fileno())
    return written


def cancel_upload(session: Session, config: Mapping[str, Any], upload: Upload) -> None:
    """Abandon an upload that is still receiving bytes. Raises UploadNotOpen."""
    if upload.status is not UploadStatus.UPLOADING:
        raise UploadNotOpen(f"This upload is {upload.status.value}.", {"status": upload.status.value})
    spool_path(config, upload.id).unlink(missing_ok=True)
    session.delete(upload)


def sweep_abandoned(session: Session, config: Mapping[str, Any]) -> int:
    """Remove uploads that stopped receiving bytes ``UPLOAD_EXPIRY_HOURS`` ago, with their
    spooled bytes. Returns how many were removed."""
    cutoff = utcnow() - timedelta(hours=config["UPLOAD_EXPIRY_HOURS"])
    stale = list(
        session.scalars(
            select(Upload).where(
                Upload.status == UploadStatus.UPLOADING, Upload.updated_at < cutoff
            )
        )
    )
    for upload in stale:
        spool_path(config, upload.id).unlink(missing_ok=True)
        session.delete(upload)
    return len(stale)


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
