"""The download job: make one cached download by id; the job runner commits."""

from __future__ import annotations

from flask import current_app

from app.extensions import db
from app.jobs import TransientJobError, on_failure
from app.library import service
from app.vault.errors import StorageUnavailable


def record_failure(error: BaseException, download_file_id: int) -> None:
    """Failure hook: the job will not be retried again, so tell the listener why."""
    service.fail_download(db.session, download_file_id, service.failure_message(error))


@on_failure(record_failure)
def make_format(download_file_id: int) -> None:
    """Make a download in its format. Idempotent: a row another job claimed or made is left
    alone."""
    try:
        service.make_format(db.session, current_app.config, download_file_id)
    except StorageUnavailable as exc:
        raise TransientJobError(str(exc)) from exc
