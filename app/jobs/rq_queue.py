"""The scale-out job queue: RQ on Redis, and its worker, run by ``megabox worker`` on any host.

This module imports redis and rq, so it is imported only when ``REDIS_URL`` is set.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from flask import Flask
from redis import Redis
from rq import Queue, Retry, Worker
from rq.exceptions import DuplicateJobError
from rq.executions import Execution
from rq.job import Job, JobStatus, get_current_job
from rq.serializers import JSONSerializer

from sqlalchemy.pool import Pool

from app.extensions import db
from app.jobs import queue_name
from app.jobs.runner import (
    TRANSIENT_ERRORS,
    JobArg,
    check_job,
    describe_job,
    perform_job,
    retry_delays,
)

# JSON rather than pickle: plain values only, readable by workers on any Python version.
RQ_SERIALIZER = JSONSerializer
IDLE_POLL_SECONDS = 0.05


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


class MegaboxWorker(Worker):
    """An RQ worker that runs each job inside a fresh app context of one app."""

    def __init__(self, queues: Sequence[Queue], *, app: Flask, **kwargs: Any) -> None:
        super().__init__(queues, **kwargs)
        self.app = app
        self._parent_pools: list[Pool] = []

    def main_work_horse(self, job: Job, queue: Queue) -> None:
        # The horse is a fork, so pooled connections belong to the parent: give each engine a
        # new pool, and keep the old ones referenced so that garbage collection cannot close
        # the parent's connections from here (the horse ends with os._exit).
        with self.app.app_context():
            engines = list(db.engines.values())
            self._parent_pools = [engine.pool for engine in engines]
            for engine in engines:
                engine.dispose(close=False)
        super().main_work_horse(job, queue)

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        with self.app.app_context():
            return super().perform_job(job, queue, execution)


def build_worker(
    app: Flask,
    queue_names: Sequence[str] = (),
    *,
    worker_class: type[MegaboxWorker] = MegaboxWorker,
) -> MegaboxWorker:
    """A worker on ``app``'s Redis for ``queue_names`` (default: the app's queue)."""
    connection = Redis.from_url(app.config["REDIS_URL"])
    queues = [
        Queue(name, connection=connection, serializer=RQ_SERIALIZER)
        for name in (queue_names or [queue_name(app)])
    ]
    return worker_class(queues, connection=connection, serializer=RQ_SERIALIZER, app=app)
