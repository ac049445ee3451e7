"""The job protocol and runner: what a job is, and one attempt of it as a unit of work.

A job is a function named by its dotted import path (``"app.ingest.tasks.process_upload"``)
that takes ids and plain values only (``int``, ``str``, ``float``, ``bool``, ``None``), never
model objects: the row may have changed, or not be committed yet, by the time the job runs.

Delivery is at least once. A job can run more than once: a transient failure retries the whole
job, a worker that dies mid-job has its job retried, an operator can requeue a failed job, and
two commits can enqueue the same work. So every job must be idempotent: it sets state rather
than incrementing it, writes outputs under names derived from its arguments (replacing, not
appending), and looks a row up by a natural unique key before inserting it. Jobs must also
tolerate the rows they name having gone (deleted since the commit), usually by doing nothing.

Each attempt of a job is one unit of work (see ``perform_job``): the runner commits the session
when the job returns and rolls it back when it raises. A job asks to be retried by raising
``TransientJobError``; database ``OperationalError`` (lost connection, deadlock, lock timeout)
counts as transient too. Any other exception is a permanent failure. A job that failed for good
(permanently, or transiently on its last attempt) is logged and handed to its failure hook, if
it has one (see ``on_failure``).
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from sqlalchemy.exc import OperationalError

from app.extensions import db

logger = logging.getLogger(__name__)

JobArg = int | str | float | bool | None
JobFunction = Callable[..., object]
FailureHook = Callable[..., object]
F = TypeVar("F", bound=JobFunction)

FAILURE_HOOK_ATTRIBUTE = "on_failure_hook"
# What RQ accepts as a job id, kept for both backends so that a job id works on either.
JOB_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]+")

_PLAIN_TYPES = (int, str, float, bool, type(None))


class TransientJobError(Exception):
    """Raised by a job to ask for another attempt later (a service was down, a lock was busy).

    The job is retried after ``JOB_RETRY_BACKOFF_SECONDS * 2**attempt`` seconds, at most
    ``JOB_MAX_RETRIES`` times; after the last attempt it is a permanent failure.
    """


TRANSIENT_ERRORS: tuple[type[Exception], ...] = (TransientJobError, OperationalError)


class JobQueue(Protocol):
    """Runs jobs in the background, at least once each (see the module docstring)."""

    def enqueue(self, job_path: str, *args: JobArg, job_id: str | None = None) -> None:
        """Queue ``job_path(*args)`` now; prefer ``enqueue_after_commit`` in a unit of work.

        ``job_id`` names the job deterministically (``f"transcode-{upload_id}"``): while a job
        with that id is waiting to start, enqueueing it again does nothing. Once it has
        started, a new one is queued, since the running one may have read older data.

        Raises TypeError for an argument that is not a plain value, ValueError for a
        ``job_id`` other than letters, digits, "_" and "-", and ImportError or AttributeError
        when ``job_path`` names no function.
        """
        ...

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no job is queued, running or waiting to retry; False if ``timeout`` passed."""
        ...

    def shutdown(self, timeout: float = 10.0) -> None:
        """Release the queue's threads and connections; later enqueues raise RuntimeError."""
        ...


def on_failure(hook: FailureHook) -> Callable[[F], F]:
    """Give a job a failure hook: ``hook(error, *args)`` runs once the job has failed for good.

    The hook runs in the job's app context, after the job's unit of work was rolled back, as a
    unit of work of its own (committed when it returns). Use it to record the failure on the
    job's row (an upload marked "failed"), so users and sweeps can see it. Like jobs, hooks
    must be idempotent: an operator may requeue a failed job, which can fail again.
    """

    def attach(job: F) -> F:
        setattr(job, FAILURE_HOOK_ATTRIBUTE, hook)
        return job

    return attach


def resolve_job(job_path: str) -> JobFunction:
    """Import the job function named by ``job_path`` ("package.module.function").

    Raises ImportError or AttributeError when there is no such function.
    """
    module_name, _, function_name = job_path.rpartition(".")
    if not module_name:
        raise ImportError(f"a job path is 'package.module.function', not {job_path!r}")
    job = getattr(importlib.import_module(module_name), function_name)
    if not callable(job):
        raise AttributeError(f"{job_path} is not a function")
    return job


def perform_job(job_path: str, args: Sequence[JobArg], *, final_attempt: bool) -> None:
    """Run one attempt of a job in the current app context, as one unit of work.

    The session is committed when the job returns and rolled back when it raises, and removed
    in any case, so each attempt starts with a fresh session. A transient error is re-raised
    for the queue to retry, unless this was the ``final_attempt``; a job that failed for good
    is logged and handed to its failure hook, then its error is re-raised.
    """
    description = describe_job(job_path, args)
    try:
        job = resolve_job(job_path)
    except (ImportError, AttributeError):
        logger.exception("job %s cannot run: no such function", description)
        raise
    try:
        job(*args)
        db.session.commit()
    except TRANSIENT_ERRORS as error:
        db.session.rollback()
        if not final_attempt:
            logger.warning("job %s failed transiently and will be retried: %s", description, error)
            raise
        logger.error("job %s failed transiently on its last attempt: %s", description, error)
        _run_failure_hook(job, error, args, description)
        raise
    except Exception as error:
        db.session.rollback()
        logger.exception("job %s failed", description)
        _run_failure_hook(job, error, args, description)
        raise
    finally:
        db.session.remove()


def _run_failure_hook(
    job: JobFunction, error: Exception, args: Sequence[JobArg], description: str
) -> None:
    hook = getattr(job, FAILURE_HOOK_ATTRIBUTE, None)
    if hook is None:
        return
    try:
        hook(error, *args)
        db.session.commit()
    except Exception:
        db.session.rollback()
        logger.exception("the failure hook of job %s failed", description)


def describe_job(job_path: str, args: Sequence[JobArg]) -> str:
    """The job as a call, for logs and RQ's dashboards: ``path.to.job(42, 'flac')``."""
    return f"{job_path}({', '.join(repr(arg) for arg in args)})"


def check_job(job_path: str, args: Sequence[JobArg], job_id: str | None = None) -> None:
    """Fail fast, in the caller, on a job that could never run.

    Raises TypeError for an argument that is not a plain value, ValueError for a ``job_id``
    other than letters, digits, "_" and "-", and ImportError or AttributeError when
    ``job_path`` names no function.
    """
    if job_id is not None and not JOB_ID_PATTERN.fullmatch(job_id):
        raise ValueError(f"a job id has only letters, digits, '_' and '-', not {job_id!r}")
    for arg in args:
        if type(arg) not in _PLAIN_TYPES:
            raise TypeError(
                f"job {job_path} got a {type(arg).__name__}: jobs take ids and plain values "
                "(int, str, float, bool, None), so pass the id"
            )
    resolve_job(job_path)


def retry_delays(max_retries: int, backoff_seconds: float) -> list[float]:
    """Seconds to wait before each retry: ``backoff_seconds * 2**attempt``."""
    return [backoff_seconds * 2**attempt for attempt in range(max_retries)]
