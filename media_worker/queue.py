"""Background jobs: the queue protocol, its two backends, and enqueueing after commit.

A job is a function named by its dotted import path (``"app.ingest.tasks.transcode"``) that
takes ids and plain values only (``int``, ``str``, ``float``, ``bool``, ``None``), never model
objects: the row may have changed, or not be committed yet, by the time the job runs.

Which queue runs it is configuration (``get_queue(app)``):

- ``REDIS_URL`` empty: ``InProcessJobQueue``, ``WORKER_THREADS`` daemon threads in this process.
- ``REDIS_URL`` set: ``RQJobQueue``, RQ on Redis, run by ``megabox worker`` on any host.

Delivery is at least once. A job can run more than once: a transient failure retries the whole
job, a worker that dies mid-job has its job retried, an operator can requeue a failed job, and
two commits can enqueue the same work. So every job must be idempotent: it sets state rather
than incrementing it, writes outputs under names derived from its arguments (replacing, not
appending), and looks a row up by a natural unique key before inserting it. Jobs must also
tolerate the rows they name having gone (deleted since the commit), usually by doing nothing.

The other side of the guarantee: the in-process queue lives and dies with its process, so jobs
still waiting when it exits are lost, and a job whose commit succeeded but whose enqueue then
failed (Redis down) is logged and lost. Work that must eventually happen needs a state column
that a periodic sweep can find again, not only a queued job.

Each attempt of a job is one unit of work (see ``perform_job``): the runner commits the session
when the job returns and rolls it back when it raises. A job asks to be retried by raising
``TransientJobError``; database ``OperationalError`` (lost connection, deadlock, lock timeout)
counts as transient too. Any other exception is a permanent failure. A job that failed for good
(permanently, or transiently on its last attempt) is logged and handed to its failure hook, if
it has one (see ``on_failure``).
"""

from __future__ import annotations

import heapq
import importlib
import itertools
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from flask import Flask, current_app
from redis import Redis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError
from rq.job import JobStatus, get_current_job
from rq.serializers import JSONSerializer
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, SessionTransaction, scoped_session

from app.extensions import db
from app.transactions import within

logger = logging.getLogger(__name__)

JobArg = int | str | float | bool | None
JobFunction = Callable[..., object]
FailureHook = Callable[..., object]
F = TypeVar("F", bound=JobFunction)

EXTENSION_KEY = "jobs"
DEFAULT_QUEUE_NAME = "megabox"
FAILURE_HOOK_ATTRIBUTE = "on_failure_hook"
# JSON rather than pickle: plain values only, readable by workers on any Python version.
RQ_SERIALIZER = JSONSerializer
IDLE_POLL_SECONDS = 0.05
# What RQ accepts as a job id, kept for both backends so that a job id works on either.
JOB_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]+")

_PLAIN_TYPES = (int, str, float, bool, type(None))
_PENDING_INFO_KEY = "megabox.jobs_after_commit"
_queue_lock = threading.Lock()


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


@dataclass
class _Entry:
    job_path: str
    args: tuple[JobArg, ...]
    job_id: str | None
    attempt: int = 0


@dataclass(order=True)
class _Scheduled:
    due: float
    sequence: int
    entry: _Entry = field(compare=False)


class InProcessJobQueue:
    """Runs jobs on a pool of daemon threads of this process: the embedded mode's queue.

    Threads start with the first job. Each job runs in a fresh app context of ``app`` with its
    own session. Retries wait ``retry_delays`` without holding a thread. Jobs still waiting
    when the process exits are lost, and ``JOB_TIMEOUT_SECONDS`` is not enforced here (a
    thread cannot be stopped from outside).
    """

    def __init__(
        self, app: Flask, *, threads: int, max_retries: int, backoff_seconds: float
    ) -> None:
        if threads < 1:
            raise ValueError("WORKER_THREADS must be at least 1")
        self._app = app
        self._thread_count = threads
        self._max_retries = max_retries
        self._delays = retry_delays(max_retries, backoff_seconds)
        self._changed = threading.Condition()
        self._ready: deque[_Entry] = deque()
        self._scheduled: list[_Scheduled] = []
        self._waiting_ids: set[str] = set()
        self._unfinished = 0
        self._sequence = itertools.count()
        self._threads: list[threading.Thread] = []
        self._closed = False

    def enqueue(self, job_path: str, *args: JobArg, job_id: str | None = None) -> None:
        check_job(job_path, args, job_id)
        with self._changed:
            if self._closed:
                raise RuntimeError("the job queue is shut down")
            if job_id is not None:
                if job_id in self._waiting_ids:
                    return
                self._waiting_ids.add(job_id)
            self._ready.append(_Entry(job_path, tuple(args), job_id))
            self._unfinished += 1
            self._start_threads()
            self._changed.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._unfinished == 0, timeout)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the threads once their current jobs end; jobs still waiting are dropped."""
        with self._changed:
            self._closed = True
            dropped = len(self._ready) + len(self._scheduled)
            self._ready.clear()
            self._scheduled.clear()
            self._waiting_ids.clear()
            self._unfinished -= dropped
            self._changed.notify_all()
        if dropped:
            logger.warning("job queue shut down with %d jobs not run", dropped)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _start_threads(self) -> None:
        while len(self._threads) < self._thread_count:
            thread = threading.Thread(
                target=self._work, name=f"megabox-jobs-{len(self._threads)}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _work(self) -> None:
        while (entry := self._next_entry()) is not None:
            delay = None
            try:
                delay = self._attempt(entry)
            finally:
                with self._changed:
                    if delay is not None and not self._closed:
                        self._schedule_retry(entry, delay)
                    else:
                        self._unfinished -= 1
                    self._changed.notify_all()

    def _next_entry(self) -> _Entry | None:
        with self._changed:
            while not self._closed:
                now = time.monotonic()
                while self._scheduled and self._scheduled[0].due <= now:
                    self._ready.append(heapq.heappop(self._scheduled).entry)
                if self._ready:
                    entry = self._ready.popleft()
                    if entry.job_id is not None:
                        self._waiting_ids.discard(entry.job_id)
                    return entry
                next_due = self._scheduled[0].due - now if self._scheduled else None
                self._changed.wait(next_due)
            return None

    def _attempt(self, entry: _Entry) -> float | None:
        """Run one attempt; return the delay before the next one, or None when it is done."""
        final = entry.attempt >= self._max_retries
        with self._app.app_context():
            try:
                perform_job(entry.job_path, entry.args, final_attempt=final)
            except TRANSIENT_ERRORS:
                return None if final else self._delays[entry.attempt]
            except Exception:  # perform_job has logged it and run the failure hook
                return None
        return None

    def _schedule_retry(self, entry: _Entry, delay: float) -> None:
        if entry.job_id is not None:
            if entry.job_id in self._waiting_ids:
                # The same job was enqueued again meanwhile; that run covers this retry.
                self._unfinished -= 1
                return
            self._waiting_ids.add(entry.job_id)
        entry.attempt += 1
        heapq.heappush(
            self._scheduled, _Scheduled(time.monotonic() + delay, next(self._sequence), entry)
        )


class RQJobQueue:
    """Queues jobs in Redis for RQ workers (``megabox worker``), on as many hosts as needed.

    Each job is stored as a call of ``run_rq_job(job_path, *args)``, serialised as JSON, with
    ``JOB_TIMEOUT_SECONDS`` as its timeout and ``Retry(max=JOB_MAX_RETRIES, interval=delays)``.
    ``run_rq_job`` keeps RQ from retrying permanent failures. RQ also retries a job whose
    worker died (its work horse was killed, or its host went away); if that was the last
    attempt, the job is failed without running its hook. RQ's scheduler runs retries with a
    resolution of one second. A job that failed for good stays in RQ's failed job registry,
    where operators can inspect and requeue it.
    """

    def __init__(
        self,
        redis_url: str,
        *,
        name: str,
        timeout_seconds: int,
        max_retries: int,
        backoff_seconds: float,
    ) -> None:
        self._redis = Redis.from_url(redis_url)
        self.rq_queue = Queue(name, connection=self._redis, serializer=RQ_SERIALIZER)
        self._timeout_seconds = timeout_seconds
        delays = retry_delays(max_retries, backoff_seconds)
        self._retry = Retry(max=max_retries, interval=delays) if max_retries > 0 else None
        self._closed = False

    def enqueue(self, job_path: str, *args: JobArg, job_id: str | None = None) -> None:
        check_job(job_path, args, job_id)
        if self._closed:
            raise RuntimeError("the job queue is shut down")
        if job_id is None:
            self._push(job_path, args, None)
            return
        if self._push_unique(job_path, args, job_id):
            return
        existing = self.rq_queue.fetch_job(job_id)
        status = existing.get_status() if existing is not None else None
        if status in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
            return
        if status == JobStatus.STARTED:
            # It may have read data older than the caller's commit: run it once more.
            self._push(job_path, args, None)
            return
        if existing is not None:
            existing.delete()  # finished or failed for good: replace it with a fresh job
        self._push_unique(job_path, args, job_id)

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self._idle():
            if time.monotonic() >= deadline:
                return False
            time.sleep(IDLE_POLL_SECONDS)
        return True

    def shutdown(self, timeout: float = 10.0) -> None:
        self._closed = True
        self._redis.close()

    def _idle(self) -> bool:
        queue = self.rq_queue
        return not (
            queue.count
            or queue.intermediate_queue.get_job_ids()
            or queue.started_job_registry.get_job_count(cleanup=False)
            or queue.scheduled_job_registry.get_job_count(cleanup=False)
        )

    def _push_unique(self, job_path: str, args: Sequence[JobArg], job_id: str) -> bool:
        """Queue the job under ``job_id`` unless a job with that id exists; True if queued."""
        try:
            self._push(job_path, args, job_id)
        except DuplicateJobError:
            return False
        return True

    def _push(self, job_path: str, args: Sequence[JobArg], job_id: str | None) -> None:
        self.rq_queue.enqueue_call(
            run_rq_job,
            args=(job_path, *args),
            timeout=self._timeout_seconds,
            retry=self._retry,
            job_id=job_id,
            unique=job_id is not None,
            description=describe_job(job_path, args),
            result_ttl=0,  # jobs return nothing worth keeping
        )


def run_rq_job(job_path: str, *args: JobArg) -> None:
    """RQ's entry point for every Megabox job; ``MegaboxWorker`` has pushed an app context."""
    rq_job = get_current_job()
    final_attempt = rq_job is None or not rq_job.should_retry
    try:
        perform_job(job_path, args, final_attempt=final_attempt)
    except TRANSIENT_ERRORS:
        raise  # RQ retries it while the job's Retry allows
    except Exception:
        if rq_job is not None:
            rq_job.retries_left = 0  # a permanent failure: RQ must not retry it
        raise


def queue_name(app: Flask) -> str:
    """The RQ queue the app's jobs go to: ``JOB_QUEUE_NAME``, or "megabox"."""
    return app.config.get("JOB_QUEUE_NAME") or DEFAULT_QUEUE_NAME


def build_queue(app: Flask) -> JobQueue:
    """Make the queue the app's configuration asks for (RQ if ``REDIS_URL`` is set)."""
    config = app.config
    if config["REDIS_URL"]:
        return RQJobQueue(
            config["REDIS_URL"],
            name=queue_name(app),
            timeout_seconds=config["JOB_TIMEOUT_SECONDS"],
            max_retries=config["JOB_MAX_RETRIES"],
            backoff_seconds=config["JOB_RETRY_BACKOFF_SECONDS"],
        )
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


@dataclass
class _PendingJob:
    queue: JobQueue
    job_path: str
    args: tuple[JobArg, ...]
    job_id: str | None
    # The savepoint it was recorded in (None: the outermost transaction).
    savepoint: SessionTransaction | None


def enqueue_after_commit(
    session: Session | scoped_session[Any], job_path: str, *args: JobArg, **options: Any
) -> None:
    """Enqueue ``job_path(*args)`` on the current app's queue once ``session`` commits.

    The job joins the session's transaction (beginning one if none is open) and is discarded
    if it rolls back or the session closes without committing; one recorded inside a
    savepoint that rolls back is discarded too. ``options`` are those of ``JobQueue.enqueue``
    (``job_id``). The job and its arguments are checked now, so a mistake fails the caller's
    unit of work rather than vanishing after it.

    If the queue cannot take the job after the commit (Redis unreachable), the error is
    logged and the job is lost; see the module docstring.

    Raises what ``JobQueue.enqueue`` raises for a bad job, and RuntimeError outside an app
    context.
    """
    job_id = options.pop("job_id", None)
    if options:
        raise TypeError(f"unknown job options: {', '.join(sorted(options))}")
    check_job(job_path, args, job_id)
    queue = get_queue(current_app._get_current_object())
    real_session = session() if isinstance(session, scoped_session) else session
    if not real_session.in_transaction():
        # Open the transaction now, so a rollback before any query still discards the job.
        real_session.begin()
    pending: list[_PendingJob] = real_session.info.setdefault(_PENDING_INFO_KEY, [])
    pending.append(
        _PendingJob(queue, job_path, tuple(args), job_id, real_session.get_nested_transaction())
    )
    if not event.contains(real_session, "after_commit", _enqueue_pending):
        event.listen(real_session, "after_commit", _enqueue_pending)
        event.listen(real_session, "after_soft_rollback", _discard_rolled_back)
        event.listen(real_session, "after_transaction_end", _discard_uncommitted)


def _enqueue_pending(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint was released; its jobs wait for the outermost commit
    for job in session.info.pop(_PENDING_INFO_KEY, []):
        try:
            job.queue.enqueue(job.job_path, *job.args, job_id=job.job_id)
        except Exception:
            # The commit has happened, so raising would tell the caller it had not.
            logger.exception(
                "job %s was committed but could not be queued", describe_job(job.job_path, job.args)
            )


def _discard_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    # The outermost transaction is handled by _discard_uncommitted; this is for savepoints.
    if previous_transaction.nested:
        pending: list[_PendingJob] = session.info.get(_PENDING_INFO_KEY, [])
        pending[:] = [job for job in pending if not within(job.savepoint, previous_transaction)]


def _discard_uncommitted(session: Session, transaction: SessionTransaction) -> None:
    # The outermost transaction ended (rolled back, or closed); jobs of a commit are gone by
    # now, taken by _enqueue_pending.
    if transaction.parent is None:
        session.info.pop(_PENDING_INFO_KEY, None)

