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
