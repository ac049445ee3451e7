"""One harness per queue backend, so that both run the same contract tests.

For RQ, the jobs are run by the real ``MegaboxWorker`` (forking a work horse per job) in burst
mode against the real Redis named by ``MEGABOX_TEST_REDIS_URL``, on the test's own app and so
on the test's database. Each test gets a queue of its own, and only that queue's keys are
deleted afterwards.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job

from app.extensions import db
from app.jobs import JobQueue, get_queue
from app.jobs.rq_queue import RQ_SERIALIZER, MegaboxWorker, build_worker
from tests.conftest import TEST_REDIS_URL

DRAIN_TIMEOUT_SECONDS = 15.0


@dataclass
class JobsHarness:
    app: Flask
    queue: JobQueue
    run_jobs: Callable[[], bool]

    def drain(self) -> None:
        """Run every queued job, retries included, and start the test's next read afresh."""
        assert self.run_jobs(), "the jobs did not finish in time"
        # End the test's transaction, so it reads what the jobs committed.
        db.session.rollback()


class _BurstWorker(MegaboxWorker):
    """The real worker without the pub/sub thread that takes remote commands ("stop job").

    RQ waits up to a second for that thread whenever a worker exits, and the tests start a
    new burst worker each time they run the queue.
    """

    def subscribe(self) -> None:
        pass


def _run_rq_worker_until_idle(app: Flask, queue: JobQueue) -> bool:
    deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
    while not queue.wait_idle(0):
        if time.monotonic() > deadline:
            return False
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            worker = build_worker(app, worker_class=_BurstWorker)
            worker.work(burst=True, with_scheduler=True, logging_level="WARNING")
        finally:
            for sig, handler in handlers.items():  # the worker installs its own
                signal.signal(sig, handler)
        time.sleep(0.05)  # a retry may not be due yet: RQ schedules to the second
    return True


def forget_rq_queue(name: str) -> None:
    """Delete the test queue and every job it knew of, leaving the rest of Redis alone."""
    connection = Redis.from_url(TEST_REDIS_URL)
    queue = Queue(name, connection=connection, serializer=RQ_SERIALIZER)
    registries = [
        queue.started_job_registry,
        queue.finished_job_registry,
        queue.failed_job_registry,
        queue.scheduled_job_registry,
        queue.deferred_job_registry,
        queue.canceled_job_registry,
    ]
    job_ids = set(queue.get_job_ids())
    for registry in registries:
        job_ids.update(registry.get_job_ids(cleanup=False))
    for job_id in job_ids:
        try:
            Job.fetch(job_id, connection=connection, serializer=RQ_SERIALIZER).delete()
        except NoSuchJobError:
            pass
    queue.delete(delete_jobs=True)
    # Registries, locks and worker sets are named after the queue, which is the test's own.
    for key in connection.scan_iter(match=f"*{name}*"):
        connection.delete(key)
    connection.close()


def _starter(backend: str, make_app: Any, cleanup: ExitStack) -> Callable[..., JobsHarness]:
    def start(**config: Any) -> JobsHarness:
        config.setdefault("JOB_RETRY_BACKOFF_SECONDS", 0.01)
        if backend == "rq":
            name = f"megabox-test-{uuid.uuid4().hex[:12]}"
            config.update(REDIS_URL=TEST_REDIS_URL, JOB_QUEUE_NAME=name)
            cleanup.callback(forget_rq_queue, name)
        app = make_app(**config)
        queue = get_queue(app)
        cleanup.callback(queue.shutdown)
        cleanup.enter_context(app.app_context())
        if backend == "rq":
            return JobsHarness(app, queue, lambda: _run_rq_worker_until_idle(app, queue))
        return JobsHarness(app, queue, lambda: queue.wait_idle(DRAIN_TIMEOUT_SECONDS))

    return start


@pytest.fixture(params=["in_process", pytest.param("rq", marks=pytest.mark.redis)])
def start_jobs(
    request: pytest.FixtureRequest, make_app: Any
) -> Iterator[Callable[..., JobsHarness]]:
    """``start_jobs(**config)``: an app on this parameter's backend, in its app context.

    Retries back off by 0.01 s unless ``config`` says otherwise.
    """
    with ExitStack() as cleanup:
        yield _starter(request.param, make_app, cleanup)


@pytest.fixture
def start_rq_jobs(make_app: Any) -> Iterator[Callable[..., JobsHarness]]:
    """Like ``start_jobs``, on RQ only (the test must be marked ``redis``)."""
    with ExitStack() as cleanup:
        yield _starter("rq", make_app, cleanup)
