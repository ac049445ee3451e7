"""Background jobs: the app's queue, and enqueueing after commit.

Which queue runs a job is configuration (``get_queue(app)``):

- ``REDIS_URL`` empty: ``InProcessJobQueue`` (``app.jobs.inprocess``), ``WORKER_THREADS``
  daemon threads in this process.
- ``REDIS_URL`` set: ``RQJobQueue`` (``app.jobs.rq_queue``), RQ on Redis, run by
  ``megabox worker`` (``app.jobs.worker``) on any host.

What a job may assume, and the runner that makes each attempt one unit of work, are in
``app.jobs.runner``. The in-process queue lives and dies with its process, so jobs still waiting
when it exits are lost, and a job whose commit succeeded but whose enqueue then failed (Redis
down) is logged and lost. Work that must eventually happen needs a state column that a
periodic sweep can find again, not only a queued job (``megabox uploads sweep`` is one).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from flask import Flask, current_app
from sqlalchemy.orm import Session, scoped_session

from app import transactions
from app.jobs.runner import (
    JobArg,
    JobQueue,
    TransientJobError,
    check_job,
    describe_job,
    on_failure,
)

__all__ = [
    "JobArg",
    "JobQueue",
    "TransientJobError",
    "build_queue",
    "enqueue_after_commit",
    "get_queue",
    "on_failure",
    "queue_name",
]

logger = logging.getLogger(__name__)

EXTENSION_KEY = "jobs"
DEFAULT_QUEUE_NAME = "megabox"
_queue_lock = threading.Lock()


def queue_name(app: Flask) -> str:
    """The RQ queue the app's jobs go to: ``JOB_QUEUE_NAME``, or "megabox"."""
    return app.config.get("JOB_QUEUE_NAME") or DEFAULT_QUEUE_NAME


def build_queue(app: Flask) -> JobQueue:
    """Make the queue the app's configuration asks for (RQ if ``REDIS_URL`` is set)."""
    config = app.config
    if config["REDIS_URL"]:
        from app.jobs.rq_queue import RQJobQueue  # redis and rq only where they are used

        return RQJobQueue(
            config["REDIS_URL"],
            name=queue_name(app),
            timeout_seconds=config["JOB_TIMEOUT_SECONDS"],
            max_retries=config["JOB_MAX_RETRIES"],
            backoff_seconds=config["JOB_RETRY_BACKOFF_SECONDS"],
        )
    from app.jobs.inprocess import InProcessJobQueue

    return InProcessJobQueue(
        app,
        threads=config["WORKER_THREADS"],
        max_retries=config["JOB_MAX_RETRIES"],
        backoff_seconds=config["JOB_RETRY_BACKOFF_SECONDS"],
    )


def get_queue(app: Flask) -> JobQueue:
    """The app's job queue, built on first use and kept in ``app.extensions["jobs"]``."""
    with _queue_lock:
        if EXTENSION_KEY not in app.extensions:
            app.extensions[EXTENSION_KEY] = build_queue(app)
        queue: JobQueue = app.extensions[EXTENSION_KEY]
        return queue


def enqueue_after_commit(
    session: Session | scoped_session[Any], job_path: str, *args: JobArg, job_id: str | None = None
) -> None:
    """Enqueue ``job_path(*args)`` on the current app's queue once ``session`` commits.

    The job follows the session's transaction (see ``app.transactions.after_commit``): it is
    dropped if the transaction, or the savepoint open now, rolls back. ``job_id`` is that of
    ``JobQueue.enqueue``. The job and its arguments are checked now, so a mistake fails the
    caller's unit of work rather than vanishing after it. If the queue cannot take the job
    after the commit (Redis unreachable), the error is logged and the job is lost.

    Raises what ``JobQueue.enqueue`` raises for a bad job, and RuntimeError outside an app
    context.
    """
    check_job(job_path, args, job_id)
    queue = get_queue(current_app._get_current_object())  # type: ignore[attr-defined]

    def enqueue() -> None:
        try:
            queue.enqueue(job_path, *args, job_id=job_id)
        except Exception:
            logger.exception("job %s was committed but could not be queued", describe_job(job_path, args))

    transactions.after_commit(session, enqueue)
