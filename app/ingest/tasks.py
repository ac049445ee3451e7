"""The ingest job: load the upload by id and run the ingest rules; the job runner commits."""

from __future__ import annotations

from flask import current_app

from app.extensions import db
from app.ingest import service
from app.jobs import TransientJobError, on_failure
from app.vault.errors import StorageUnavailable


def record_failure(error: BaseException, upload_id: str) -> None:
    """Failure hook: the job will not be retried again, so tell the artist why."""
    service.fail_upload(db.session, current_app.config, upload_id, *service.failure_reason(error))


@on_failure(record_failure)
def process_upload(upload_id: str) -> None:
    """Process a completed upload. Idempotent: an upload not in ``processing`` is left alone."""
    try:
        service.process_upload(db.session, current_app.config, upload_id)
    except StorageUnavailable as exc:
        raise TransientJobError(str(exc)) from exc
