"""Ingest errors: each rejection has its own stable code."""

from app.errors import Conflict, DomainError, InvalidInput, NotFound


class UploadNotFound(NotFound):
    code = "upload_not_found"


class FileTooLarge(DomainError):
    code = "file_too_large"
    status = 413


class QuotaExceeded(DomainError):
    code = "quota_exceeded"
    status = 413


class EmptyFile(InvalidInput):
    code = "empty_file"


class OffsetMismatch(Conflict):
    """The chunk does not start where the upload stands; details give the right offset."""

    code = "offset_mismatch"


class UploadNotOpen(Conflict):
    code = "upload_not_open"


class ChunkTooLarge(DomainError):
    code = "chunk_too_large"
    status = 413


class UploadBusy(Conflict):
    """Another request holds the upload's spool: it is appending right now."""

    code = "upload_busy"


class ChecksumMismatch(DomainError):
    """The chunk's bytes do not match its Upload-Checksum; they were discarded (tus: 460)."""

    code = "checksum_mismatch"
    status = 460


class UnsupportedMediaType(DomainError):
    code = "unsupported_media_type"
    status = 415


class UnsupportedTusVersion(DomainError):
    """The request's Tus-Resumable names a protocol version this server does not speak."""

    code = "tus_version_unsupported"
    status = 412
